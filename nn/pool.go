package nn

import "math/rand/v2"

// MaxPool2D takes the maximum over size×size windows of channel-last images.
type MaxPool2D struct {
	c, h, w      int
	size, stride int
	oh, ow       int

	arg []int32 // index into the input of each output's maximum
	y   []float32
	dx  []float32
}

// NewMaxPool2D returns a max-pooling layer over inputs of shape [c, h, w].
func NewMaxPool2D(in Shape, size, stride int) *MaxPool2D {
	l := &MaxPool2D{c: in[0], h: in[1], w: in[2], size: size, stride: stride}
	l.oh = (l.h-size)/stride + 1
	l.ow = (l.w-size)/stride + 1
	return l
}

func (l *MaxPool2D) Kind() string        { return "maxpool2d" }
func (l *MaxPool2D) OutShape() Shape     { return Shape{l.c, l.oh, l.ow} }
func (l *MaxPool2D) NumParams() int      { return 0 }
func (l *MaxPool2D) Bind(_, _ []float32) {}
func (l *MaxPool2D) Init(_ *rand.Rand)   {}
func (l *MaxPool2D) FLOPs() int64        { return int64(l.oh * l.ow * l.c * l.size * l.size) }

func (l *MaxPool2D) Forward(x []float32, n int, train bool) []float32 {
	out := l.oh * l.ow * l.c
	l.y = grow(l.y, n*out)
	if cap(l.arg) < n*out {
		l.arg = make([]int32, n*out)
	}
	l.arg = l.arg[:n*out]
	parallel(n, func(lo, hi int, _ *gemmBuf) { l.forward(x, lo, hi) })
	return l.y
}

func (l *MaxPool2D) forward(x []float32, lo, hi int) {
	C, o := l.c, lo*l.oh*l.ow*l.c
	for s := lo; s < hi; s++ {
		base := s * l.h * l.w * C
		for oy := 0; oy < l.oh; oy++ {
			for ox := 0; ox < l.ow; ox++ {
				first := base + (oy*l.stride*l.w+ox*l.stride)*C
				y, arg := l.y[o:o+C], l.arg[o:o+C]
				for ch := range C {
					y[ch], arg[ch] = x[first+ch], int32(first+ch)
				}
				for ky := 0; ky < l.size; ky++ {
					for kx := 0; kx < l.size; kx++ {
						p := first + (ky*l.w+kx)*C
						for ch, v := range x[p : p+C] {
							if v > y[ch] {
								y[ch], arg[ch] = v, int32(p+ch)
							}
						}
					}
				}
				o += C
			}
		}
	}
}

func (l *MaxPool2D) Backward(dy []float32, n int, needDx bool) []float32 {
	if !needDx {
		return nil
	}
	in, out := l.h*l.w*l.c, l.oh*l.ow*l.c
	l.dx = grow(l.dx, n*in)
	parallel(n, func(lo, hi int, _ *gemmBuf) {
		clear(l.dx[lo*in : hi*in])
		for i, a := range l.arg[lo*out : hi*out] {
			l.dx[a] += dy[lo*out+i]
		}
	})
	return l.dx
}

// Flatten turns an image into a vector. Activations are already stored as
// one row per sample, so it moves no data.
type Flatten struct{ out int }

func (l *Flatten) Kind() string                                     { return "flatten" }
func (l *Flatten) OutShape() Shape                                  { return Shape{l.out} }
func (l *Flatten) NumParams() int                                   { return 0 }
func (l *Flatten) Bind(_, _ []float32)                              {}
func (l *Flatten) Init(_ *rand.Rand)                                {}
func (l *Flatten) FLOPs() int64                                     { return 0 }
func (l *Flatten) Forward(x []float32, n int, train bool) []float32 { return x }
func (l *Flatten) Backward(dy []float32, n int, needDx bool) []float32 {
	return dy
}
