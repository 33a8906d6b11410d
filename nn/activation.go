package nn

import (
	"math"
	"math/rand/v2"
)

// Activation is an element-wise nonlinearity: "relu", "leakyrelu" (slope
// alpha below zero), "tanh" or "sigmoid".
// Dense and Conv2D layers fuse a following ReLU themselves; this layer is for
// the other cases.
type Activation struct {
	kind  string
	alpha float32 // leakyrelu's slope below zero
	shape Shape
	y, dx []float32
}

func (l *Activation) Kind() string        { return l.kind }
func (l *Activation) OutShape() Shape     { return l.shape }
func (l *Activation) NumParams() int      { return 0 }
func (l *Activation) Bind(_, _ []float32) {}
func (l *Activation) Init(_ *rand.Rand)   {}
func (l *Activation) FLOPs() int64        { return int64(l.shape.Size()) }

func (l *Activation) Forward(x []float32, n int, train bool) []float32 {
	l.y = grow(l.y, len(x[:n*l.shape.Size()]))
	switch l.kind {
	case "relu":
		for i, v := range x[:len(l.y)] {
			l.y[i] = max(v, 0)
		}
	case "leakyrelu":
		for i, v := range x[:len(l.y)] {
			if v < 0 {
				v *= l.alpha
			}
			l.y[i] = v
		}
	case "tanh":
		for i, v := range x[:len(l.y)] {
			l.y[i] = float32(math.Tanh(float64(v)))
		}
	case "sigmoid":
		for i, v := range x[:len(l.y)] {
			l.y[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	}
	return l.y
}

// Backward uses only the saved outputs: relu' = [y>0], tanh' = 1-y²,
// sigmoid' = y(1-y); leakyrelu' = 1 or alpha by the sign of y, which is
// the sign of x for alpha > 0.
func (l *Activation) Backward(dy []float32, n int, needDx bool) []float32 {
	if !needDx {
		return nil
	}
	l.dx = grow(l.dx, len(dy))
	for i, y := range l.y[:len(dy)] {
		var d float32
		switch l.kind {
		case "relu":
			if y > 0 {
				d = 1
			}
		case "leakyrelu":
			d = 1
			if y < 0 || (y == 0 && l.alpha <= 0) {
				d = l.alpha
			}
		case "tanh":
			d = 1 - y*y
		case "sigmoid":
			d = y * (1 - y)
		}
		l.dx[i] = dy[i] * d
	}
	return l.dx
}

// Dropout zeroes each input with probability Rate during training and scales
// the rest by 1/(1-Rate), so evaluation needs no rescaling.
type Dropout struct {
	rate  float32
	shape Shape
	rng   *rand.Rand
	mask  []float32
	y, dx []float32
}

func (l *Dropout) Kind() string        { return "dropout" }
func (l *Dropout) OutShape() Shape     { return l.shape }
func (l *Dropout) NumParams() int      { return 0 }
func (l *Dropout) Bind(_, _ []float32) {}
func (l *Dropout) FLOPs() int64        { return int64(l.shape.Size()) }

// Init derives the layer's own random stream from the model's, so masks are
// reproducible from the model seed.
func (l *Dropout) Init(rng *rand.Rand) { l.rng = rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())) }

func (l *Dropout) Forward(x []float32, n int, train bool) []float32 {
	size := n * l.shape.Size()
	if !train || l.rate == 0 {
		l.mask = l.mask[:0]
		return x[:size]
	}
	l.mask = grow(l.mask, size)
	l.y = grow(l.y, size)
	scale := 1 / (1 - l.rate)
	for i, v := range x[:size] {
		m := float32(0)
		if l.rng.Float32() >= l.rate {
			m = scale
		}
		l.mask[i] = m
		l.y[i] = v * m
	}
	return l.y
}

func (l *Dropout) Backward(dy []float32, n int, needDx bool) []float32 {
	if !needDx || len(l.mask) == 0 {
		return dy
	}
	l.dx = grow(l.dx, len(dy))
	for i, m := range l.mask[:len(dy)] {
		l.dx[i] = dy[i] * m
	}
	return l.dx
}
