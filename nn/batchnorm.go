package nn

import (
	"math"
	"math/rand/v2"
)

// BatchNorm normalizes each channel (of an image) or feature (of a flat
// vector) over the batch during training, and with running statistics at
// evaluation, as PyTorch's BatchNorm1d/2d and ONNX's BatchNormalization do.
//
// The running mean and variance live in the parameter vector after the
// scale and shift, so that they travel and merge with the model like
// weights; their gradients are always zero, so an optimizer step leaves
// them alone and the forward pass alone moves them. A policy that ships
// gradients instead of weights (asp, ssp, bsp) therefore never updates the
// server's running statistics: use a chunk policy for such models.
type BatchNorm struct {
	shape    Shape
	ch       int     // channels: the innermost dimension of the memory layout
	eps      float32 // added to the variance
	momentum float32 // weight of the batch in the running statistics (PyTorch's convention)

	gamma, beta, mean, vari []float32
	dgamma, dbeta           []float32

	xhat, y, dx   []float32
	invstd, bmean []float32
	sum, sumx     []float64
}

// NewBatchNorm returns a batch normalization over inputs of shape in:
// per channel for images [C, H, W], per feature for vectors.
func NewBatchNorm(in Shape, eps, momentum float64) *BatchNorm {
	return &BatchNorm{shape: in, ch: in[0], eps: float32(eps), momentum: float32(momentum)}
}

func (l *BatchNorm) Kind() string    { return "batchnorm" }
func (l *BatchNorm) OutShape() Shape { return l.shape }
func (l *BatchNorm) NumParams() int  { return 4 * l.ch }
func (l *BatchNorm) FLOPs() int64    { return 4 * int64(l.shape.Size()) }
func (l *BatchNorm) ParamTensors() []Tensor {
	c := []int{l.ch}
	return []Tensor{{"weight", c}, {"bias", c}, {"running_mean", c}, {"running_var", c}}
}

func (l *BatchNorm) Bind(params, grads []float32) {
	c := l.ch
	l.gamma, l.beta, l.mean, l.vari = params[:c], params[c:2*c], params[2*c:3*c], params[3*c:4*c]
	l.dgamma, l.dbeta = grads[:c], grads[c:2*c]
}

func (l *BatchNorm) Init(_ *rand.Rand) {
	for i := range l.ch {
		l.gamma[i], l.beta[i], l.mean[i], l.vari[i] = 1, 0, 0, 1
	}
}

// Forward treats the input as rows of ch values (one row per pixel of an
// image, or per sample of a vector), the channel-last layout.
func (l *BatchNorm) Forward(x []float32, n int, train bool) []float32 {
	size := n * l.shape.Size()
	x = x[:size]
	c := l.ch
	rows := size / c
	l.y = grow(l.y, size)
	l.invstd = grow(l.invstd, c)
	l.bmean = grow(l.bmean, c)
	if !train {
		for j := range c {
			l.bmean[j] = l.mean[j]
			l.invstd[j] = 1 / sqrt32(l.vari[j]+l.eps)
		}
		l.normalize(x, nil)
		return l.y
	}
	if cap(l.sum) < c {
		l.sum, l.sumx = make([]float64, c), make([]float64, c)
	}
	sum, sq := l.sum[:c], l.sumx[:c]
	clear(sum)
	clear(sq)
	for r := 0; r < size; r += c {
		for j, v := range x[r : r+c] {
			sum[j] += float64(v)
		}
	}
	for j := range c {
		sum[j] /= float64(rows)
	}
	for r := 0; r < size; r += c {
		for j, v := range x[r : r+c] {
			d := float64(v) - sum[j]
			sq[j] += d * d
		}
	}
	m := l.momentum
	for j := range c {
		v := sq[j] / float64(rows) // biased, for normalizing
		l.bmean[j] = float32(sum[j])
		l.invstd[j] = float32(1 / math.Sqrt(v+float64(l.eps)))
		unbiased := v
		if rows > 1 {
			unbiased = sq[j] / float64(rows-1)
		}
		l.mean[j] = (1-m)*l.mean[j] + m*float32(sum[j])
		l.vari[j] = (1-m)*l.vari[j] + m*float32(unbiased)
	}
	l.xhat = grow(l.xhat, size)
	l.normalize(x, l.xhat)
	return l.y
}

// normalize writes y = γ·(x-μ)·σ⁻¹ + β, and x̂ when xhat is not nil.
func (l *BatchNorm) normalize(x, xhat []float32) {
	c := l.ch
	for r := 0; r < len(x); r += c {
		row, y := x[r:r+c], l.y[r:r+c]
		for j, v := range row {
			h := (v - l.bmean[j]) * l.invstd[j]
			if xhat != nil {
				xhat[r+j] = h
			}
			y[j] = l.gamma[j]*h + l.beta[j]
		}
	}
}

// Backward is the training-mode gradient, with the batch statistics as
// functions of the input:
// dx = γσ⁻¹/m · (m·dy − Σdy − x̂·Σ(dy·x̂)).
func (l *BatchNorm) Backward(dy []float32, n int, needDx bool) []float32 {
	c := l.ch
	size := n * l.shape.Size()
	dy = dy[:size]
	rows := float32(size / c)
	clear(l.dgamma)
	clear(l.dbeta)
	for r := 0; r < size; r += c {
		h := l.xhat[r : r+c]
		for j, g := range dy[r : r+c] {
			l.dbeta[j] += g
			l.dgamma[j] += g * h[j]
		}
	}
	if !needDx {
		return nil
	}
	l.dx = grow(l.dx, size)
	for r := 0; r < size; r += c {
		h, dx := l.xhat[r:r+c], l.dx[r:r+c]
		for j, g := range dy[r : r+c] {
			dx[j] = l.gamma[j] * l.invstd[j] / rows * (rows*g - l.dbeta[j] - h[j]*l.dgamma[j])
		}
	}
	return l.dx
}
