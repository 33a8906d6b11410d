package nn

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/blas32"
)

// Optimizer updates a flat parameter vector from its gradient. The learning
// rate can be changed between steps, which is how schedules are applied.
type Optimizer interface {
	Step(params, grads []float32)
	SetLR(lr float64)
	LR() float64
}

// SGD is stochastic gradient descent with optional momentum and L2 weight
// decay: v = μv + (g + λp); p -= η v.
type SGD struct {
	Rate, Momentum, WeightDecay float64
	v                           []float32
}

func (o *SGD) SetLR(lr float64) { o.Rate = lr }
func (o *SGD) LR() float64      { return o.Rate }

func (o *SGD) Step(params, grads []float32) {
	lr, mu, wd := float32(o.Rate), float32(o.Momentum), float32(o.WeightDecay)
	if mu == 0 && wd == 0 {
		Axpy(-lr, grads, params)
		return
	}
	if mu == 0 {
		for i, g := range grads {
			params[i] -= lr * (g + wd*params[i])
		}
		return
	}
	if len(o.v) != len(params) {
		o.v = make([]float32, len(params))
	}
	v := o.v[:len(params)]
	for i, g := range grads[:len(params)] {
		v[i] = mu*v[i] + g + wd*params[i]
		params[i] -= lr * v[i]
	}
}

// Adam is the Adam optimizer (Kingma & Ba) with bias correction and optional
// L2 weight decay added to the gradient, as in PyTorch's Adam.
type Adam struct {
	Rate, Beta1, Beta2, Eps, WeightDecay float64
	t                                    int
	m, v                                 []float32
}

// NewAdam returns Adam with the usual β1 = 0.9, β2 = 0.999, ε = 1e-8.
func NewAdam(lr float64) *Adam { return &Adam{Rate: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

func (o *Adam) SetLR(lr float64) { o.Rate = lr }
func (o *Adam) LR() float64      { return o.Rate }

func (o *Adam) Step(params, grads []float32) {
	if len(o.m) != len(params) {
		o.m, o.v, o.t = make([]float32, len(params)), make([]float32, len(params)), 0
	}
	o.t++
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	c1 := 1 - math.Pow(o.Beta1, float64(o.t))
	c2 := 1 - math.Pow(o.Beta2, float64(o.t))
	step := float32(o.Rate * math.Sqrt(c2) / c1)
	eps := float32(o.Eps * math.Sqrt(c2))
	wd := float32(o.WeightDecay)
	m, v := o.m[:len(params)], o.v[:len(params)]
	for i, g := range grads[:len(params)] {
		g += wd * params[i]
		m[i] = b1*m[i] + (1-b1)*g
		v[i] = b2*v[i] + (1-b2)*g*g
		params[i] -= step * m[i] / (sqrt32(v[i]) + eps)
	}
}

// Axpy adds alpha·x to y, with gonum's vectorized kernel: the per-step
// parameter updates of small models are as long as their GEMMs.
func Axpy(alpha float32, x, y []float32) {
	blas32.Axpy(alpha, blas32.Vector{N: len(x), Data: x, Inc: 1}, blas32.Vector{N: len(x), Data: y, Inc: 1})
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// NewOptimizer returns the optimizer called name ("sgd", "momentum", "adam")
// with learning rate lr.
func NewOptimizer(name string, lr float64) (Optimizer, error) {
	switch name {
	case "sgd":
		return &SGD{Rate: lr}, nil
	case "momentum":
		return &SGD{Rate: lr, Momentum: 0.9}, nil
	case "adam":
		return NewAdam(lr), nil
	}
	return nil, fmt.Errorf("unknown optimizer %q (want sgd, momentum or adam)", name)
}
