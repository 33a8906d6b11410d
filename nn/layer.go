package nn

import "math/rand/v2"

// Layer is one stage of a sequential model. A layer owns its activation
// buffers; its parameters and gradients are views into the model's flat
// vectors, bound once when the model is built.
//
// Forward and Backward are not safe for concurrent use: a layer holds the
// state of the last forward pass for the backward pass that follows it.
type Layer interface {
	// Kind is the layer's type name as written in model specs ("dense", ...).
	Kind() string
	// OutShape is the per-sample output shape, fixed when the layer is built.
	OutShape() Shape
	// NumParams is the number of float32 parameters the layer needs.
	NumParams() int
	// Bind hands the layer its slices of the model's parameter and gradient
	// vectors, each NumParams long.
	Bind(params, grads []float32)
	// Init sets the parameters to their seeded initial values.
	Init(rng *rand.Rand)
	// Forward computes the outputs of n samples. The returned slice is owned
	// by the layer and valid until the next Forward.
	Forward(x []float32, n int, train bool) []float32
	// Backward takes the gradient of the loss with respect to the last
	// Forward's output, overwrites the parameter gradients, and returns the
	// gradient with respect to the input unless needDx is false (the first
	// layer never needs it). Backward may modify dy.
	Backward(dy []float32, n int, needDx bool) []float32
	// FLOPs is the number of floating-point operations of a forward pass for
	// one sample; the backward pass is counted as twice that.
	FLOPs() int64
}

// ParamNamer is implemented by layers whose parameter vector is made of
// named tensors, so that save files can name and shape-check them.
type ParamNamer interface {
	ParamTensors() []Tensor
}

// Tensor names a contiguous range of a layer's parameters and its shape.
type Tensor struct {
	Name  string
	Shape []int
}
