package nn

import (
	"math"
	"math/rand/v2"
)

// MaxPool2D takes the maximum over size×size windows of channel-last images.
type MaxPool2D struct {
	c, h, w      int
	size, stride int
	oh, ow       int

	arg []int32 // index into the input of each output's maximum
	y   []float32
	dx  []float32

	x, dy    []float32 // the current call's, for fwd and bwd
	fwd, bwd func(lo, hi int, _ *gemmBuf)
}

// NewMaxPool2D returns a max-pooling layer over inputs of shape [c, h, w].
func NewMaxPool2D(in Shape, size, stride int) *MaxPool2D {
	l := &MaxPool2D{c: in[0], h: in[1], w: in[2], size: size, stride: stride}
	l.oh = (l.h-size)/stride + 1
	l.ow = (l.w-size)/stride + 1
	// Range functions made once: see Conv2D.
	l.fwd = func(lo, hi int, _ *gemmBuf) { l.forward(l.x, lo, hi) }
	l.bwd = l.backward
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
	l.x = x
	parallel(n, l.fwd)
	l.x = nil
	return l.y
}

// forward scans each window channel by channel and picks the maximum
// without a branch (see larger).
func (l *MaxPool2D) forward(x []float32, lo, hi int) {
	C, o := l.c, lo*l.oh*l.ow*l.c
	for s := lo; s < hi; s++ {
		base := s * l.h * l.w * C
		for oy := 0; oy < l.oh; oy++ {
			if l.size == 2 && l.stride == 2 {
				pool2Row(x, base+oy*2*l.w*C, C, l.w*C, l.ow, l.y[o:], l.arg[o:])
				o += l.ow * C
				continue
			}
			for ox := 0; ox < l.ow; ox++ {
				first := base + (oy*l.stride*l.w+ox*l.stride)*C
				y, arg := l.y[o:o+C], l.arg[o:o+C]
				if l.size == 2 {
					pool2Go(x, first, C, l.w*C, y, arg)
					o += C
					continue
				}
				for ch := range y {
					at := first + ch
					best := int64(orderKey(x[at]))
					for ky := 0; ky < l.size; ky++ {
						row := first + ky*l.w*C + ch
						for kx := 0; kx < l.size; kx++ {
							p := row + kx*C
							best, at = larger(best, at, int64(orderKey(x[p])), p)
						}
					}
					y[ch], arg[ch] = x[at], int32(at)
				}
				o += C
			}
		}
	}
}

// larger returns key k and its offset p if k is above best, else best and
// at, in arithmetic: the compiler keeps an if here as a branch, which the
// signs of a ReLU's outputs mispredict half the time.
func larger(best int64, at int, k int64, p int) (int64, int) {
	m := (best - k) >> 63 // all ones when k > best
	return best ^ (best^k)&m, at ^ (at^p)&int(m)
}

// orderKey maps a float32 to an int32 of the same order (NaN aside):
// negative floats' magnitude bits are flipped so that larger magnitudes
// compare lower. Adding +0 first makes -0 +0, so that the two tie, as they
// do in a float compare (and in the vector code).
func orderKey(v float32) int32 {
	b := int32(math.Float32bits(v + 0))
	return b ^ int32(uint32(b>>31)>>1)
}

func (l *MaxPool2D) Backward(dy []float32, n int, needDx bool) []float32 {
	if !needDx {
		return nil
	}
	l.dx = grow(l.dx, n*l.h*l.w*l.c)
	l.dy = dy
	parallel(n, l.bwd)
	l.dy = nil
	return l.dx
}

func (l *MaxPool2D) backward(lo, hi int, _ *gemmBuf) {
	in, out := l.h*l.w*l.c, l.oh*l.ow*l.c
	if l.size == 2 && l.stride == 2 {
		l.backward2(lo, hi)
		return
	}
	clear(l.dx[lo*in : hi*in])
	for i, a := range l.arg[lo*out : hi*out] {
		l.dx[a] += l.dy[lo*out+i]
	}
}

// backward2 is backward for 2×2 windows at stride 2, a pair of input rows
// at a time: the windows do not overlap, so each input row pair is cleared
// and receives its output row's gradients while it is in L1, where a
// clear of the whole range and then the scatter went through it twice
// (1.6 MB for the CNN's first pooling at a mini-batch of 16).
func (l *MaxPool2D) backward2(lo, hi int) {
	C, in := l.c, l.h*l.w*l.c
	pair, row := 2*l.w*C, l.ow*C
	for s := lo; s < hi; s++ {
		base := s * in
		for oy := 0; oy < l.oh; oy++ {
			r := base + oy*pair
			clear(l.dx[r : r+pair])
			o := (s*l.oh + oy) * row
			dy := l.dy[o : o+row]
			for i, a := range l.arg[o : o+row] {
				l.dx[a] = dy[i]
			}
		}
		// An odd last row belongs to no window.
		clear(l.dx[base+l.oh*pair : base+in])
	}
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

// AvgPool2D averages kh×kw windows of channel-last images. A window as large
// as the image is global average pooling.
type AvgPool2D struct {
	c, h, w int
	kh, kw  int
	stride  int
	oh, ow  int
	global  bool

	x, dy    []float32 // the current call's input, for fwd and bwd
	fwd, bwd func(lo, hi int, _ *gemmBuf)
	y, dx    []float32
}

// NewAvgPool2D returns an average-pooling layer over inputs of shape
// [c, h, w] with kh×kw windows.
func NewAvgPool2D(in Shape, kh, kw, stride int) *AvgPool2D {
	l := &AvgPool2D{c: in[0], h: in[1], w: in[2], kh: kh, kw: kw, stride: stride}
	l.oh = (l.h-kh)/stride + 1
	l.ow = (l.w-kw)/stride + 1
	// Range functions made once: see Conv2D.
	l.fwd, l.bwd = l.forward, l.backward
	return l
}

// NewGlobalAvgPool returns the average over all positions of each channel.
func NewGlobalAvgPool(in Shape) *AvgPool2D {
	l := NewAvgPool2D(in, in[1], in[2], 1)
	l.global = true
	return l
}

func (l *AvgPool2D) Kind() string {
	if l.global {
		return "globalavgpool"
	}
	return "avgpool2d"
}
func (l *AvgPool2D) OutShape() Shape     { return Shape{l.c, l.oh, l.ow} }
func (l *AvgPool2D) NumParams() int      { return 0 }
func (l *AvgPool2D) Bind(_, _ []float32) {}
func (l *AvgPool2D) Init(_ *rand.Rand)   {}
func (l *AvgPool2D) FLOPs() int64        { return int64(l.oh * l.ow * l.c * l.kh * l.kw) }

func (l *AvgPool2D) Forward(x []float32, n int, train bool) []float32 {
	l.y = grow(l.y, n*l.oh*l.ow*l.c)
	l.x = x
	parallel(n, l.fwd)
	l.x = nil
	return l.y
}

func (l *AvgPool2D) forward(lo, hi int, _ *gemmBuf) {
	C, in, out := l.c, l.h*l.w*l.c, l.oh*l.ow*l.c
	x := l.x
	scale := 1 / float32(l.kh*l.kw)
	for s := lo; s < hi; s++ {
		img, ys := x[s*in:(s+1)*in], l.y[s*out:(s+1)*out]
		for oy := 0; oy < l.oh; oy++ {
			for ox := 0; ox < l.ow; ox++ {
				y := ys[(oy*l.ow+ox)*C : (oy*l.ow+ox+1)*C]
				clear(y)
				for ky := 0; ky < l.kh; ky++ {
					for kx := 0; kx < l.kw; kx++ {
						p := ((oy*l.stride+ky)*l.w + ox*l.stride + kx) * C
						for ch, v := range img[p : p+C] {
							y[ch] += v
						}
					}
				}
				for ch := range y {
					y[ch] *= scale
				}
			}
		}
	}
}

func (l *AvgPool2D) Backward(dy []float32, n int, needDx bool) []float32 {
	if !needDx {
		return nil
	}
	l.dx = grow(l.dx, n*l.h*l.w*l.c)
	l.dy = dy
	parallel(n, l.bwd)
	l.dy = nil
	return l.dx
}

func (l *AvgPool2D) backward(lo, hi int, _ *gemmBuf) {
	C, in, out := l.c, l.h*l.w*l.c, l.oh*l.ow*l.c
	dy := l.dy
	scale := 1 / float32(l.kh*l.kw)
	clear(l.dx[lo*in : hi*in])
	for s := lo; s < hi; s++ {
		dx, ds := l.dx[s*in:(s+1)*in], dy[s*out:(s+1)*out]
		for oy := 0; oy < l.oh; oy++ {
			for ox := 0; ox < l.ow; ox++ {
				g := ds[(oy*l.ow+ox)*C : (oy*l.ow+ox+1)*C]
				for ky := 0; ky < l.kh; ky++ {
					for kx := 0; kx < l.kw; kx++ {
						p := ((oy*l.stride+ky)*l.w + ox*l.stride + kx) * C
						d := dx[p : p+C]
						for ch, v := range g {
							d[ch] += v * scale
						}
					}
				}
			}
		}
	}
}
