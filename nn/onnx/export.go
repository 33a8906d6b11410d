package onnx

import (
	"fmt"
	"strconv"

	"github.com/hermes-go/hermes/nn"
)

// exported is a model in PyTorch's conventions: the ONNX graph, and the
// state_dict of the equivalent nn.Sequential.
type exported struct {
	graph Graph
	torch []nn.NamedTensor
}

// Export returns m as an ONNX model (opset 13) that takes images as
// ToTensor gives them (NCHW, values in [0, 1]) and returns logits. The
// model's input normalization (norm, [mean, std]; nil for none) becomes a
// Sub and a Div at the front of the graph.
func Export(m *nn.Model, norm []float64) ([]byte, error) {
	e, err := convert(m, norm)
	if err != nil {
		return nil, err
	}
	return Encode(&Model{IRVersion: 7, Opset: 13, Producer: "hermes-go", Graph: e.graph,
		Metadata: map[string]string{"hermes.model": m.Spec().Name}}), nil
}

// TorchStateDict returns m's parameters under the state_dict names of the
// equivalent torch.nn.Sequential (Linear, Conv2d, BatchNorm1d/2d, ...), in
// PyTorch's layouts, so load_state_dict accepts them.
func TorchStateDict(m *nn.Model) ([]nn.NamedTensor, error) {
	e, err := convert(m, nil)
	if err != nil {
		return nil, err
	}
	return e.torch, nil
}

func convert(m *nn.Model, norm []float64) (*exported, error) {
	e := &exported{}
	g := &e.graph
	g.Name = "hermes"
	in := m.LayerInput()
	dims := []int64{-1}
	for _, d := range in {
		dims = append(dims, int64(d))
	}
	g.Inputs = []ValueInfo{{Name: "input", ElemType: Float, Dims: dims}}
	g.Outputs = []ValueInfo{{Name: "output", ElemType: Float, Dims: []int64{-1, int64(m.Classes())}}}
	cur := "input"
	step := 0
	// add appends a node of op on cur with the extra inputs, and makes its
	// output the current value.
	add := func(op string, extra []string, attrs ...Attr) {
		out := fmt.Sprintf("%s_%d", op, step)
		step++
		g.Nodes = append(g.Nodes, Node{Name: out, Op: op, Inputs: append([]string{cur}, extra...), Outputs: []string{out}, Attrs: attrs})
		cur = out
	}
	init := func(name string, dims []int64, f []float32) string {
		g.Initializer = append(g.Initializer, Tensor{Name: name, Dims: dims, Type: Float, F: f})
		return name
	}
	if len(norm) == 2 && (norm[0] != 0 || norm[1] != 1) {
		add("Sub", []string{init("norm.mean", nil, []float32{float32(norm[0])})})
		add("Div", []string{init("norm.std", nil, []float32{float32(norm[1])})})
	}
	module := 0 // index in the equivalent nn.Sequential
	torch := func(name string, shape []int, f []float32) {
		e.torch = append(e.torch, nn.NamedTensor{Name: strconv.Itoa(module) + "." + name, Shape: shape, F32: f})
	}
	params := m.Params()
	off := 0
	shape := in
	var perm []int // after flattening an image: our index i holds ONNX's perm[i]
	for i, l := range m.Layers() {
		ls := m.LayerSpecs()[i]
		p := params[off : off+l.NumParams()]
		off += l.NumParams()
		name := "layers." + strconv.Itoa(i) + "."
		relu := ls.Activation == "relu"
		switch ls.Type {
		case "dense":
			nin, nout := shape[0], ls.Units
			w := make([]float32, nin*nout) // (out, in), ONNX's input order
			for j := range nin {
				src := j
				if perm != nil {
					src = perm[j]
				}
				for o := range nout {
					w[o*nin+src] = p[j*nout+o]
				}
			}
			b := p[nin*nout:]
			perm = nil
			add("Gemm", []string{init(name+"weight", []int64{int64(nout), int64(nin)}, w), init(name+"bias", []int64{int64(nout)}, b)},
				Attr{Name: "transB", Type: AttrInt, I: 1})
			torch("weight", []int{nout, nin}, w)
			torch("bias", []int{nout}, b)
		case "conv2d":
			C, k, F := shape[0], ls.Kernel, ls.Filters
			w := make([]float32, F*C*k*k)
			for f := range F {
				for ch := range C {
					for y := range k {
						for x := range k {
							w[((f*C+ch)*k+y)*k+x] = p[((f*k+y)*k+x)*C+ch]
						}
					}
				}
			}
			b := p[F*C*k*k:]
			stride := max(ls.Stride, 1)
			pad := int64(ls.Padding)
			add("Conv", []string{init(name+"weight", []int64{int64(F), int64(C), int64(k), int64(k)}, w), init(name+"bias", []int64{int64(F)}, b)},
				Attr{Name: "kernel_shape", Type: AttrInts, Ints: []int64{int64(k), int64(k)}},
				Attr{Name: "strides", Type: AttrInts, Ints: []int64{int64(stride), int64(stride)}},
				Attr{Name: "pads", Type: AttrInts, Ints: []int64{pad, pad, pad, pad}})
			torch("weight", []int{F, C, k, k}, w)
			torch("bias", []int{F}, b)
		case "maxpool2d", "avgpool2d":
			op := map[string]string{"maxpool2d": "MaxPool", "avgpool2d": "AveragePool"}[ls.Type]
			stride := ls.Stride
			if stride == 0 {
				stride = ls.Size
			}
			add(op, nil, Attr{Name: "kernel_shape", Type: AttrInts, Ints: []int64{int64(ls.Size), int64(ls.Size)}},
				Attr{Name: "strides", Type: AttrInts, Ints: []int64{int64(stride), int64(stride)}})
		case "globalavgpool":
			add("GlobalAveragePool", nil)
		case "batchnorm":
			ch := shape[0]
			ts := make([][]float32, 4)
			for j := range ts {
				ts[j] = p[j*ch : (j+1)*ch]
				if perm != nil { // features of a flattened image, in ONNX's order
					t := make([]float32, ch)
					for a, src := range perm {
						t[src] = ts[j][a]
					}
					ts[j] = t
				}
			}
			names := []string{"weight", "bias", "running_mean", "running_var"}
			var inputs []string
			for j, t := range ts {
				inputs = append(inputs, init(name+names[j], []int64{int64(ch)}, t))
				torch(names[j], []int{ch}, t)
			}
			e.torch = append(e.torch, nn.NamedTensor{Name: strconv.Itoa(module) + ".num_batches_tracked", Shape: []int{}, I64: []int64{0}})
			mom, eps := ls.Momentum, ls.Eps
			if mom == 0 {
				mom = 0.1
			}
			if eps == 0 {
				eps = 1e-5
			}
			add("BatchNormalization", inputs, Attr{Name: "epsilon", Type: AttrFloat, F: float32(eps)},
				Attr{Name: "momentum", Type: AttrFloat, F: float32(1 - mom)})
		case "flatten":
			if len(shape) == 3 && shape[0] > 1 && shape[1]*shape[2] > 1 {
				C, H, W := shape[0], shape[1], shape[2]
				perm = make([]int, C*H*W)
				for y := range H {
					for x := range W {
						for ch := range C {
							perm[(y*W+x)*C+ch] = ch*H*W + y*W + x
						}
					}
				}
			}
			add("Flatten", nil, Attr{Name: "axis", Type: AttrInt, I: 1})
		case "relu", "tanh", "sigmoid":
			add(map[string]string{"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}[ls.Type], nil)
		case "leakyrelu":
			alpha := ls.Alpha
			if alpha == 0 {
				alpha = 0.01
			}
			add("LeakyRelu", nil, Attr{Name: "alpha", Type: AttrFloat, F: float32(alpha)})
		case "dropout":
			// The identity at inference, as PyTorch exports it; the
			// module keeps its place in the Sequential.
		default:
			return nil, fmt.Errorf("export: layer %d (%s) has no ONNX form", i, ls.Type)
		}
		module++
		if relu {
			add("Relu", nil)
			module++
		}
		shape = l.OutShape()
	}
	// The last node writes the graph's output.
	if len(g.Nodes) == 0 {
		return nil, fmt.Errorf("export: model has no layers")
	}
	last := &g.Nodes[len(g.Nodes)-1]
	last.Outputs[0] = "output"
	return e, nil
}
