package nn

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
)

// Dense is a fully connected layer, y = act(x·W + b), with W stored as an
// (in × out) row-major matrix so that the whole batch is one GEMM.
type Dense struct {
	in, out int
	relu    bool // fused activation: saves a pass over the output and a buffer

	w, b   []float32 // views into the model's parameters
	dw, db []float32 // views into the model's gradients

	x  []float32 // input of the last forward pass (not owned)
	y  []float32
	dx []float32
}

// NewDense returns a dense layer from in to out units, with a fused ReLU
// when relu is set.
func NewDense(in, out int, relu bool) *Dense {
	return &Dense{in: in, out: out, relu: relu}
}

func (d *Dense) Kind() string    { return "dense" }
func (d *Dense) OutShape() Shape { return Shape{d.out} }
func (d *Dense) NumParams() int  { return d.in*d.out + d.out }
func (d *Dense) FLOPs() int64    { return 2 * int64(d.in) * int64(d.out) }
func (d *Dense) ParamTensors() []Tensor {
	return []Tensor{{"weight", []int{d.in, d.out}}, {"bias", []int{d.out}}}
}

func (d *Dense) Bind(params, grads []float32) {
	k := d.in * d.out
	d.w, d.b = params[:k], params[k:]
	d.dw, d.db = grads[:k], grads[k:]
}

// Init draws He-normal weights before a ReLU and Glorot-uniform weights
// otherwise; biases start at zero.
func (d *Dense) Init(rng *rand.Rand) {
	initWeights(rng, d.w, d.in, d.out, d.relu)
	clear(d.b)
}

func initWeights(rng *rand.Rand, w []float32, fanIn, fanOut int, relu bool) {
	if relu {
		std := math.Sqrt(2 / float64(fanIn))
		for i := range w {
			w[i] = float32(rng.NormFloat64() * std)
		}
		return
	}
	limit := math.Sqrt(6 / float64(fanIn+fanOut))
	for i := range w {
		w[i] = float32((2*rng.Float64() - 1) * limit)
	}
}

func (d *Dense) Forward(x []float32, n int, train bool) []float32 {
	d.x = x
	d.y = grow(d.y, n*d.out)
	gemm(blas.NoTrans, blas.NoTrans, n, d.out, d.in, x, d.in, d.w, d.out, 0, d.y, d.out)
	addBiasAct(d.y, d.b, d.relu)
	return d.y
}

func (d *Dense) Backward(dy []float32, n int, needDx bool) []float32 {
	if d.relu {
		reluMask(dy, d.y)
	}
	sumRows(d.db, dy, n, d.out)
	gemm(blas.Trans, blas.NoTrans, d.in, d.out, n, d.x, d.in, dy, d.out, 0, d.dw, d.out)
	if !needDx {
		return nil
	}
	d.dx = grow(d.dx, n*d.in)
	gemm(blas.NoTrans, blas.Trans, n, d.in, d.out, dy, d.out, d.w, d.out, 0, d.dx, d.in)
	return d.dx
}
