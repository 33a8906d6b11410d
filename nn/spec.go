package nn

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Spec describes a sequential model: what users write in a model spec file
// to bring their own architecture without writing Go.
//
//	{"name": "tiny-cnn", "layers": [
//	  {"type": "conv2d", "filters": 8, "kernel": 3, "padding": 1, "activation": "relu"},
//	  {"type": "maxpool2d", "size": 2},
//	  {"type": "flatten"},
//	  {"type": "dense", "units": 10}]}
//
// The input shape comes from the data set unless Input is given, and the last
// layer must have one unit per class.
//
// Norm, when given as [mean, std], is the input normalization the model was
// designed for, applied to values in [0, 1] (bytes / 255); without it the
// training set's own mean and standard deviation are used. Imported ONNX
// models get [0, 1]: they see data as torchvision's ToTensor gives it.
type Spec struct {
	Name   string      `json:"name,omitempty"`
	Input  []int       `json:"input,omitempty"`
	Norm   []float64   `json:"norm,omitempty"`
	Layers []LayerSpec `json:"layers"`
}

// LayerSpec is one layer of a Spec. Which fields apply depends on Type:
//
//	dense:      units, activation ("relu" fuses it into the layer)
//	conv2d:     filters, kernel, stride (1), padding (0), activation
//	maxpool2d:  size, stride (= size)
//	avgpool2d:  size, stride (= size)
//	globalavgpool
//	batchnorm:  eps (1e-5), momentum (0.1, the batch's weight in the running statistics)
//	flatten
//	relu, tanh, sigmoid
//	leakyrelu:  alpha (0.01)
//	dropout:    rate in [0, 1)
type LayerSpec struct {
	Type       string  `json:"type"`
	Units      int     `json:"units,omitempty"`
	Filters    int     `json:"filters,omitempty"`
	Kernel     int     `json:"kernel,omitempty"`
	Stride     int     `json:"stride,omitempty"`
	Padding    int     `json:"padding,omitempty"`
	Size       int     `json:"size,omitempty"`
	Rate       float64 `json:"rate,omitempty"`
	Alpha      float64 `json:"alpha,omitempty"`
	Eps        float64 `json:"eps,omitempty"`
	Momentum   float64 `json:"momentum,omitempty"`
	Activation string  `json:"activation,omitempty"`
}

// Builtin returns the spec of a built-in model: "logreg", "mlp"
// (784-128-64-10, ReLU) or "cnn" (conv5x5x32-pool-conv5x5x64-pool-dense512,
// the model of the PyTorch peer). classes sets the size of the output layer.
func Builtin(name string, classes int) (Spec, bool) {
	out := LayerSpec{Type: "dense", Units: classes}
	switch name {
	case "logreg":
		return Spec{Name: name, Layers: []LayerSpec{{Type: "flatten"}, out}}, true
	case "mlp":
		return Spec{Name: name, Layers: []LayerSpec{
			{Type: "flatten"},
			{Type: "dense", Units: 128, Activation: "relu"},
			{Type: "dense", Units: 64, Activation: "relu"},
			out}}, true
	case "cnn":
		return Spec{Name: name, Layers: []LayerSpec{
			{Type: "conv2d", Filters: 32, Kernel: 5, Padding: 2, Activation: "relu"},
			{Type: "maxpool2d", Size: 2},
			{Type: "conv2d", Filters: 64, Kernel: 5, Padding: 2, Activation: "relu"},
			{Type: "maxpool2d", Size: 2},
			{Type: "flatten"},
			{Type: "dense", Units: 512, Activation: "relu"},
			out}}, true
	}
	return Spec{}, false
}

// ResolveSpec turns a --model argument into a spec: a built-in name, or the
// path of a JSON spec file.
func ResolveSpec(model string, classes int) (Spec, error) {
	if s, ok := Builtin(model, classes); ok {
		return s, nil
	}
	if !strings.HasSuffix(model, ".json") {
		if _, err := os.Stat(model); err != nil {
			return Spec{}, fmt.Errorf("model %q: not a built-in model (logreg, mlp, cnn) nor a spec file", model)
		}
	}
	return LoadSpec(model)
}

// LoadSpec reads a model spec file. Unknown fields are errors, so that a
// typo does not silently fall back to a default.
func LoadSpec(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("model spec: %w", err)
	}
	s, err := ParseSpec(b)
	if err != nil {
		return Spec{}, fmt.Errorf("model spec %s: %w", path, err)
	}
	if s.Name == "" {
		s.Name = path
	}
	return s, nil
}

// ParseSpec decodes a JSON model spec.
func ParseSpec(b []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, err
	}
	if len(s.Layers) == 0 {
		return Spec{}, fmt.Errorf("no layers")
	}
	return s, nil
}

// buildLayer makes the layer described by ls for inputs of shape in.
func buildLayer(ls LayerSpec, in Shape) (Layer, error) {
	relu := false
	switch ls.Activation {
	case "":
	case "relu":
		relu = true
	default:
		if ls.Type == "dense" || ls.Type == "conv2d" {
			return nil, fmt.Errorf("activation %q not supported here (use relu, or a separate %s layer)", ls.Activation, ls.Activation)
		}
		return nil, fmt.Errorf("field activation does not apply")
	}
	image := func() error {
		if len(in) != 3 {
			return fmt.Errorf("input shape %v is not an image [C H W]", in)
		}
		return nil
	}
	switch ls.Type {
	case "dense":
		if len(in) != 1 {
			return nil, fmt.Errorf("input shape %v is not flat; add a flatten layer before it", in)
		}
		if ls.Units < 1 {
			return nil, fmt.Errorf("units = %d, want >= 1", ls.Units)
		}
		return NewDense(in[0], ls.Units, relu), nil
	case "conv2d":
		if err := image(); err != nil {
			return nil, err
		}
		if ls.Filters < 1 || ls.Kernel < 1 || ls.Stride < 0 || ls.Padding < 0 {
			return nil, fmt.Errorf("filters = %d, kernel = %d, stride = %d, padding = %d: want filters, kernel >= 1, stride, padding >= 0", ls.Filters, ls.Kernel, ls.Stride, ls.Padding)
		}
		stride := max(ls.Stride, 1)
		l := NewConv2D(in, ls.Filters, ls.Kernel, stride, ls.Padding, relu)
		if l.oh < 1 || l.ow < 1 {
			return nil, fmt.Errorf("kernel %d does not fit input %v with padding %d", ls.Kernel, in, ls.Padding)
		}
		return l, nil
	case "maxpool2d", "avgpool2d":
		if err := image(); err != nil {
			return nil, err
		}
		if ls.Size < 1 || ls.Stride < 0 {
			return nil, fmt.Errorf("size = %d, stride = %d: want size >= 1", ls.Size, ls.Stride)
		}
		stride := ls.Stride
		if stride == 0 {
			stride = ls.Size
		}
		if ls.Size > in[1] || ls.Size > in[2] {
			return nil, fmt.Errorf("window %d does not fit input %v", ls.Size, in)
		}
		if ls.Type == "avgpool2d" {
			return NewAvgPool2D(in, ls.Size, ls.Size, stride), nil
		}
		return NewMaxPool2D(in, ls.Size, stride), nil
	case "globalavgpool":
		if err := image(); err != nil {
			return nil, err
		}
		return NewGlobalAvgPool(in), nil
	case "batchnorm":
		if len(in) != 1 && len(in) != 3 {
			return nil, fmt.Errorf("input shape %v is neither flat nor an image", in)
		}
		eps, mom := cmp.Or(ls.Eps, 1e-5), cmp.Or(ls.Momentum, 0.1)
		if !(eps > 0) || !(mom > 0 && mom <= 1) {
			return nil, fmt.Errorf("eps = %g, momentum = %g: want eps > 0, 0 < momentum <= 1", eps, mom)
		}
		return NewBatchNorm(in, eps, mom), nil
	case "leakyrelu":
		alpha := cmp.Or(ls.Alpha, 0.01)
		if !(alpha >= 0 && alpha < 1) {
			return nil, fmt.Errorf("alpha = %g, want 0 <= alpha < 1", alpha)
		}
		return &Activation{kind: ls.Type, alpha: float32(alpha), shape: in}, nil
	case "flatten":
		return &Flatten{out: in.Size()}, nil
	case "relu", "tanh", "sigmoid":
		return &Activation{kind: ls.Type, shape: in}, nil
	case "dropout":
		if ls.Rate < 0 || ls.Rate >= 1 {
			return nil, fmt.Errorf("rate = %g, want 0 <= rate < 1", ls.Rate)
		}
		return &Dropout{rate: float32(ls.Rate), shape: in}, nil
	}
	return nil, fmt.Errorf("unknown layer type %q (want dense, conv2d, maxpool2d, avgpool2d, globalavgpool, batchnorm, flatten, relu, leakyrelu, tanh, sigmoid, dropout)", ls.Type)
}
