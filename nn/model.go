package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Model is a sequential network with a softmax cross-entropy head. All
// parameters live in one flat vector and all gradients in another, in layer
// order; layers hold views into them.
type Model struct {
	spec    Spec
	in      Shape
	classes int
	layers  []Layer
	index   []int       // spec index of each layer, for tensor names
	built   []LayerSpec // each layer's spec, with a folded ReLU as its activation

	params, grads []float32
	dlogits       []float32

	// Meta is saved with the model and restored by LoadFile: what a user of
	// the file needs besides the weights, such as the input normalization.
	Meta map[string]string
}

// Build makes a model from spec for samples of shape in and the given number
// of classes. Shape mismatches between layers are reported with the index and
// type of the offending layer.
func Build(spec Spec, in Shape, classes int) (*Model, error) {
	shape := in
	if len(spec.Input) > 0 && !Shape(spec.Input).Equal(in) {
		// A model that takes flat vectors (an MLP exported from PyTorch)
		// runs on single-channel images as they are: one sample's values
		// are in the same order either way.
		if len(spec.Input) != 1 || spec.Input[0] != in.Size() || (len(in) == 3 && in[0] != 1) {
			return nil, fmt.Errorf("model %s: input %v does not match data shape %v", spec.Name, spec.Input, in)
		}
		shape = Shape(spec.Input)
	}
	if len(spec.Norm) != 0 && (len(spec.Norm) != 2 || !(spec.Norm[1] > 0) || math.IsInf(spec.Norm[0], 0) || math.IsNaN(spec.Norm[0]) || math.IsInf(spec.Norm[1], 0)) {
		return nil, fmt.Errorf("model %s: norm %v, want [mean, std] with std > 0", spec.Name, spec.Norm)
	}
	m := &Model{spec: spec, in: in, classes: classes}
	total := 0
	for i := 0; i < len(spec.Layers); i++ {
		ls := spec.Layers[i]
		// A ReLU right after a dense or conv layer is folded into it.
		if (ls.Type == "dense" || ls.Type == "conv2d") && ls.Activation == "" &&
			i+1 < len(spec.Layers) && spec.Layers[i+1] == (LayerSpec{Type: "relu"}) {
			ls.Activation = "relu"
		}
		l, err := buildLayer(ls, shape)
		if err != nil {
			return nil, fmt.Errorf("model %s: layer %d (%s): %w", spec.Name, i, ls.Type, err)
		}
		m.layers = append(m.layers, l)
		m.index = append(m.index, i)
		m.built = append(m.built, ls)
		if ls.Activation == "relu" && spec.Layers[i].Activation == "" {
			i++
		}
		shape = l.OutShape()
		total += l.NumParams()
	}
	if len(shape) != 1 || shape[0] != classes {
		return nil, fmt.Errorf("model %s: output shape %v, but the data set has %d classes", spec.Name, shape, classes)
	}
	m.params = make([]float32, total)
	m.grads = make([]float32, total)
	off := 0
	for _, l := range m.layers {
		n := l.NumParams()
		l.Bind(m.params[off:off+n:off+n], m.grads[off:off+n:off+n])
		off += n
	}
	return m, nil
}

// Init sets every parameter from a seeded generator: the same seed always
// gives the same model.
func (m *Model) Init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x6865726d6573)) // "hermes"
	for _, l := range m.layers {
		l.Init(rng)
	}
}

// Spec returns the spec the model was built from.
func (m *Model) Spec() Spec { return m.spec }

// Input returns the per-sample input shape.
func (m *Model) Input() Shape { return m.in }

// Classes returns the number of output classes.
func (m *Model) Classes() int { return m.classes }

// Layers returns the model's layers in order.
func (m *Model) Layers() []Layer { return m.layers }

// LayerSpecs returns the spec of each layer of Layers: a ReLU folded into
// the dense or convolution layer before it shows as its activation.
func (m *Model) LayerSpecs() []LayerSpec { return m.built }

// LayerInput returns the per-sample shape the first layer takes: the
// model's input, or the flat Input of its spec when the model takes flat
// vectors of single-channel images.
func (m *Model) LayerInput() Shape {
	if len(m.spec.Input) == 1 {
		return Shape(m.spec.Input)
	}
	return m.in
}

// Params is the flat parameter vector. Writing to it changes the model.
func (m *Model) Params() []float32 { return m.params }

// Grads is the flat gradient vector written by Backprop.
func (m *Model) Grads() []float32 { return m.grads }

// FLOPs returns the floating-point operations per sample of a forward pass
// and of a training step (forward + backward, counted as three forwards).
func (m *Model) FLOPs() (forward, train int64) {
	for _, l := range m.layers {
		forward += l.FLOPs()
	}
	return forward, 3 * forward
}

// Forward computes the logits of n samples stored row by row in x. The
// result is owned by the model and valid until the next call.
func (m *Model) Forward(x []float32, n int, train bool) []float32 {
	for _, l := range m.layers {
		x = l.Forward(x, n, train)
	}
	return x
}

// Backprop runs a training forward and backward pass over n samples and
// leaves the gradient of the mean loss in Grads. It returns the mean loss.
func (m *Model) Backprop(x []float32, labels []int32, n int) float64 {
	return m.backprop(x, labels, n, nil)
}

// backprop is Backprop, telling at, when not nil, which layer and pass
// runs next (StepGEMMs labels the products with it).
func (m *Model) backprop(x []float32, labels []int32, n int, at func(layer int, pass string)) float64 {
	for i, l := range m.layers {
		if at != nil {
			at(i, "forward")
		}
		x = l.Forward(x, n, true)
	}
	m.dlogits = grow(m.dlogits, n*m.classes)
	loss, _ := SoftmaxCrossEntropy(x, labels, n, m.classes, m.dlogits)
	dy := m.dlogits
	// Below the first layer with parameters no gradient is wanted: the
	// input gradient of, say, the first dense layer behind a flatten would
	// cost as much as its weight gradient and go nowhere.
	first := 0
	for first < len(m.layers)-1 && m.layers[first].NumParams() == 0 {
		first++
	}
	for i := len(m.layers) - 1; i >= first; i-- {
		if at != nil {
			at(i, "backward")
		}
		dy = m.layers[i].Backward(dy, n, i > first)
	}
	return loss
}

// Evaluate returns the mean loss and the accuracy of the model on n samples,
// in batches of at most batch.
func (m *Model) Evaluate(x []float32, labels []int32, n, batch int) (loss, acc float64) {
	if n == 0 {
		return 0, 0
	}
	size := m.in.Size()
	correct := 0
	for i := 0; i < n; i += batch {
		b := min(batch, n-i)
		logits := m.Forward(x[i*size:(i+b)*size], b, false)
		l, c := SoftmaxCrossEntropy(logits, labels[i:i+b], b, m.classes, nil)
		loss += l * float64(b)
		correct += c
	}
	return loss / float64(n), float64(correct) / float64(n)
}
