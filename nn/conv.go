package nn

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
)

// Conv2D is a 2-D convolution over channel-last images, computed as GEMMs
// over the lowered input (im2col: one row of K = kh·kw·C values per output
// position, P positions per sample). A stride-1 convolution whose channels
// fill whole kernel strips never materialises the lowered batch: its
// weight gradient reads shifted copies of the input (conv_weights.go), and
// on AVX-512 its forward pass and input gradient do too (conv_forward.go);
// elsewhere its forward pass lowers one sample at a time into L2.
type Conv2D struct {
	c, h, w     int // input
	filters, k  int
	stride, pad int
	oh, ow      int
	relu        bool

	wt, b   []float32 // (filters × K) weights, bias
	dwt, db []float32

	// cols is the im2col of the last input, kept for Backward's weight
	// gradient unless that reads the input itself (implicitWeights).
	// packed holds the weights packed once per Forward: for the chunks
	// of samples lowered into L2 (chunked), or as whole-K strips for the
	// segmented kernel (implicitForward).
	cols   []float32
	packed []float32
	taps   taps    // each tap's offset into the shifted images (conv_forward.go)
	back   *Conv2D // the transposed convolution that computes dx (implicitData)
	y      []float32
	dx     []float32

	// The per-range functions handed to parallel, made once with the
	// layer: closures made per call would escape to the engine's workers
	// and allocate on every step. x and dy are the current call's.
	x, dy                          []float32
	n                              int
	fwd, reluBwd, dataBwd, weights func(lo, hi int, buf *gemmBuf)
}

// NewConv2D returns a k×k convolution with the given number of filters over
// an input of shape [c, h, w]. It returns nil output size (oh or ow < 1) as
// an error from the model builder, which checks OutShape.
func NewConv2D(in Shape, filters, k, stride, pad int, relu bool) *Conv2D {
	l := &Conv2D{c: in[0], h: in[1], w: in[2], filters: filters, k: k, stride: stride, pad: pad, relu: relu}
	l.oh = (l.h+2*pad-k)/stride + 1
	l.ow = (l.w+2*pad-k)/stride + 1
	l.fwd, l.reluBwd, l.dataBwd, l.weights = l.forwardRange, l.reluRange, l.dataRange, l.weightsRange
	return l
}

func (l *Conv2D) Kind() string    { return "conv2d" }
func (l *Conv2D) OutShape() Shape { return Shape{l.filters, l.oh, l.ow} }
func (l *Conv2D) patch() int      { return l.k * l.k * l.c }
func (l *Conv2D) NumParams() int  { return l.filters*l.patch() + l.filters }
func (l *Conv2D) FLOPs() int64 {
	return 2 * int64(l.oh*l.ow) * int64(l.filters) * int64(l.patch())
}
func (l *Conv2D) ParamTensors() []Tensor {
	return []Tensor{{"weight", []int{l.filters, l.k, l.k, l.c}}, {"bias", []int{l.filters}}}
}

func (l *Conv2D) Bind(params, grads []float32) {
	n := l.filters * l.patch()
	l.wt, l.b = params[:n], params[n:]
	l.dwt, l.db = grads[:n], grads[n:]
}

func (l *Conv2D) Init(rng *rand.Rand) {
	initWeights(rng, l.wt, l.patch(), l.filters*l.k*l.k, l.relu)
	clear(l.b)
}

// Forward and Backward split the batch across cores: each range of samples
// is lowered, multiplied and activated by one goroutine, so the element-wise
// passes scale with the GEMMs. Backward reads the input Forward was given
// (the previous layer's output or the batch, both kept until then).
func (l *Conv2D) Forward(x []float32, n int, train bool) []float32 {
	K, P, F := l.patch(), l.oh*l.ow, l.filters
	l.y = grow(l.y, n*P*F)
	l.x, l.n = x, n
	switch {
	case l.implicitForward():
		l.prepareImplicit()
		l.recordImplicit(false)
	case l.chunked():
		g := gemmArgs{tb: true, n: F, k: K, b: l.wt, ldb: K}
		l.packed = packAllB(&g, l.packed)
		record(blas.NoTrans, blas.Trans, n*P, F, K) // run by chunks of samples
	default:
		l.cols = grow(l.cols, n*P*K)
		record(blas.NoTrans, blas.Trans, n*P, F, K) // run by ranges of samples
	}
	parallel(n, l.fwd)
	return l.y
}

// chunked says whether Forward lowers its input a chunk at a time instead
// of keeping the whole lowered batch: when Backward does not read it and
// the weights fit one packed column block. Lowered in chunks, the input
// stays in L2 between im2col and the GEMM; the whole batch's (10 MB for
// the CNN at 16) went to memory and back and pushed the dense layer's
// weights out of L3.
func (l *Conv2D) chunked() bool { return l.implicitWeights() && l.filters <= nc }

func (l *Conv2D) forwardRange(lo, hi int, buf *gemmBuf) {
	K, P, F := l.patch(), l.oh*l.ow, l.filters
	switch {
	case l.implicitForward():
		l.forwardImplicit(lo, hi, buf)
	case !l.chunked():
		// One GEMM for the whole range.
		l.im2col(l.x, l.cols[lo*P*K:], lo, hi)
		g := gemmArgs{tb: true, m: (hi - lo) * P, n: F, k: K,
			a: l.cols[lo*P*K:], lda: K, b: l.wt, ldb: K, c: l.y[lo*P*F:], ldc: F}
		gemmOn(buf, &g)
	default:
		chunk := l.chunk()
		for s := lo; s < hi; s += chunk {
			e := min(s+chunk, hi)
			buf.scratch = grow(buf.scratch, (e-s)*P*K)
			l.im2col(l.x, buf.scratch, s, e)
			g := gemmArgs{tb: true, m: (e - s) * P, n: F, k: K,
				a: buf.scratch, lda: K, b: l.wt, ldb: K, c: l.y[s*P*F:], ldc: F, packed: l.packed}
			serialGemm(&g, buf)
		}
	}
	addBiasAct(l.y[lo*P*F:hi*P*F], l.b, l.relu)
}

// chunk is how many samples' lowered matrix fits in half of a 1 MB L2.
func (l *Conv2D) chunk() int { return max(1, (128<<10)/(l.oh*l.ow*l.patch())) }

func (l *Conv2D) reluRange(lo, hi int, _ *gemmBuf) {
	P, F := l.oh*l.ow, l.filters
	reluMask(l.dy[lo*P*F:hi*P*F], l.y[lo*P*F:hi*P*F])
}

// dataRange computes the input gradient of samples [lo, hi) a chunk at a
// time, through a lowered gradient that stays in L2 between the GEMM that
// writes it and col2im that reads it.
func (l *Conv2D) dataRange(lo, hi int, buf *gemmBuf) {
	K, P, F := l.patch(), l.oh*l.ow, l.filters
	size := l.h * l.w * l.c
	clear(l.dx[lo*size : hi*size])
	chunk := l.chunk()
	for s := lo; s < hi; s += chunk {
		e := min(s+chunk, hi)
		buf.scratch = grow(buf.scratch, (e-s)*P*K)
		g := gemmArgs{m: (e - s) * P, n: K, k: F,
			a: l.dy[s*P*F:], lda: F, b: l.wt, ldb: K, c: buf.scratch, ldc: K}
		gemmOn(buf, &g)
		l.col2im(l.dx, buf.scratch, s, e)
	}
}

func (l *Conv2D) Backward(dy []float32, n int, needDx bool) []float32 {
	K, P, F := l.patch(), l.oh*l.ow, l.filters
	l.dy, l.n = dy, n
	defer func() { l.dy = nil }()
	if l.relu {
		parallel(n, l.reluBwd)
	}
	sumRows(l.db, dy, n*P, F)
	if l.implicitWeights() {
		l.recordImplicit(true)
		clear(l.dwt)
		parallel((F+mr-1)/mr, l.weights)
	} else {
		gemm(blas.Trans, blas.NoTrans, F, K, n*P, dy, F, l.cols, K, 0, l.dwt, K)
	}
	if !needDx {
		return nil
	}
	if l.implicitData() {
		return l.backData(dy, n)
	}
	l.dx = grow(l.dx, n*l.h*l.w*l.c)
	record(blas.NoTrans, blas.NoTrans, n*P, K, F)
	parallel(n, l.dataBwd)
	return l.dx
}

// span returns, for output coordinate o along an axis of length size, the
// first input coordinate of the window and the range [k0, k1) of kernel
// offsets that fall inside the input.
func (l *Conv2D) span(o, size int) (start, k0, k1 int) {
	start = o*l.stride - l.pad
	k0, k1 = 0, l.k
	if start < 0 {
		k0 = -start
	}
	if start+l.k > size {
		k1 = size - start
	}
	if k1 < k0 {
		k1 = k0
	}
	return start, k0, k1
}

// im2col lays out every receptive field of samples [lo, hi) of x as one
// row of cols, from its start, in (ky, kx, c) order; positions in the
// padding are zero.
func (l *Conv2D) im2col(x, cols []float32, lo, hi int) {
	if l.c == 1 {
		l.im2colOne(x, cols, lo, hi)
		return
	}
	l.im2colAny(x, cols, lo, hi)
}

// im2colAny is im2col for any number of channels, a receptive field at a
// time.
func (l *Conv2D) im2colAny(x, cols []float32, lo, hi int) {
	K, C, row := l.patch(), l.c, 0
	kw := l.k * C
	for s := lo; s < hi; s++ {
		img := x[s*l.h*l.w*C : (s+1)*l.h*l.w*C]
		for oy := 0; oy < l.oh; oy++ {
			iy0, ky0, ky1 := l.span(oy, l.h)
			for ox := 0; ox < l.ow; ox++ {
				ix0, kx0, kx1 := l.span(ox, l.w)
				dst := cols[row*K : row*K+K]
				row++
				for ky := 0; ky < l.k; ky++ {
					d := dst[ky*kw : ky*kw+kw]
					if ky < ky0 || ky >= ky1 {
						clear(d)
						continue
					}
					clear(d[:kx0*C])
					src := ((iy0+ky)*l.w + ix0 + kx0) * C
					copy(d[kx0*C:kx1*C], img[src:src+(kx1-kx0)*C])
					clear(d[kx1*C:])
				}
			}
		}
	}
}

// im2colOne is im2col for one input channel (a first convolution over a
// grey image): a receptive field's rows are a few values each (5 for the
// CNN), for which the runtime's copy and clear calls cost more than the
// values, so it copies them in loops, a row of taps at a time across an
// output row.
func (l *Conv2D) im2colOne(x, cols []float32, lo, hi int) {
	K, k := l.patch(), l.k
	row := 0
	for s := lo; s < hi; s++ {
		img := x[s*l.h*l.w : (s+1)*l.h*l.w]
		for oy := 0; oy < l.oh; oy++ {
			for ky := 0; ky < k; ky++ {
				iy := oy*l.stride - l.pad + ky
				out := cols[row*K+ky*k:]
				if iy < 0 || iy >= l.h {
					for ox := 0; ox < l.ow; ox++ {
						d := out[ox*K : ox*K+k]
						for i := range d {
							d[i] = 0
						}
					}
					continue
				}
				src := img[iy*l.w : iy*l.w+l.w]
				for ox := 0; ox < l.ow; ox++ {
					d := out[ox*K : ox*K+k]
					x0 := ox*l.stride - l.pad
					if x0 >= 0 && x0+k <= l.w {
						v := src[x0 : x0+k]
						d = d[:len(v)]
						for i, f := range v {
							d[i] = f
						}
						continue
					}
					for i := range d {
						if xi := x0 + i; xi >= 0 && xi < l.w {
							d[i] = src[xi]
						} else {
							d[i] = 0
						}
					}
				}
			}
			row += l.ow
		}
	}
}

// col2im is the adjoint of im2col: it adds every row of dcol, the lowered
// gradient of samples [lo, hi), back onto the input positions it was copied
// from.
func (l *Conv2D) col2im(dx, dcol []float32, lo, hi int) {
	K, C, row := l.patch(), l.c, 0
	kw := l.k * C
	for s := lo; s < hi; s++ {
		img := dx[s*l.h*l.w*C : (s+1)*l.h*l.w*C]
		for oy := 0; oy < l.oh; oy++ {
			iy0, ky0, ky1 := l.span(oy, l.h)
			for ox := 0; ox < l.ow; ox++ {
				ix0, kx0, kx1 := l.span(ox, l.w)
				src := dcol[row*K : row*K+K]
				row++
				for ky := ky0; ky < ky1; ky++ {
					part := src[ky*kw+kx0*C : ky*kw+kx1*C]
					at := ((iy0+ky)*l.w + ix0 + kx0) * C
					Axpy(1, part, img[at:at+len(part)])
				}
			}
		}
	}
}
