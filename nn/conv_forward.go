package nn

// A stride-1 convolution's output is, for every tap (ky, kx), the input
// image shifted by the tap times that tap's C×F slice of the weights,
// summed over taps. With the input shifted horizontally once per kx (and
// padded vertically with zero rows), the window of output position p for
// tap (ky, kx) is row p + ky·ow of shifted image kx: eight consecutive
// output positions read eight consecutive rows. The segmented kernel
// (kernelSeg) runs the whole sum for an 8×32 block of the output, one
// segment of C values per tap, without the lowered input (im2col): no
// 627 KB per sample written and read back, and the same arithmetic, since
// the lowered input multiplies the padding's zeros too.

// implicitForward says whether Forward convolves the shifted input images
// directly (forwardImplicit): where Backward reads the input too
// (implicitWeights: stride 1, whole strips of channels, so a tap's
// segment is long enough to amortise its setup), on a CPU with the
// segmented kernel.
func (l *Conv2D) implicitForward() bool {
	return segKernel() && l.implicitWeights()
}

// taps are the offsets of a segmented A's segments (kernelSeg), checked
// once when made rather than on every block: none is negative, and last
// is the largest, which bounds what the kernel reads.
type taps struct {
	offs []int
	last int
}

// set makes t hold the n offsets offs(0), ..., offs(n-1), reusing its
// storage.
func (t *taps) set(offs func(i int) int, n int) {
	if len(t.offs) != n {
		t.offs = make([]int, n)
	}
	t.last = 0
	for i := range t.offs {
		o := offs(i)
		if o < 0 {
			panic("nn: negative segment offset")
		}
		t.offs[i], t.last = o, max(t.last, o)
	}
}

// prepareImplicit packs the weights as nr-filter strips over all K rows
// (l.packed) and makes the taps' offsets into the shifted images (l.taps).
func (l *Conv2D) prepareImplicit() {
	K, C := l.patch(), l.c
	g := gemmArgs{tb: true, n: l.filters, k: K, b: l.wt, ldb: K}
	l.packed = grow(l.packed, K*roundUp(l.filters, nr))
	packB(&g, l.packed, 0, K, 0, l.filters)
	img := l.paddedImage()
	l.taps.set(func(t int) int {
		ky, kx := t/l.k, t%l.k
		return kx*img + ky*l.ow*C
	}, l.k*l.k)
}

// paddedImage is the size of one shifted image with pad zero rows above
// and below: (oh + k - 1) rows of ow positions.
func (l *Conv2D) paddedImage() int { return (l.h + 2*l.pad) * l.ow * l.c }

// forwardImplicit computes the output of samples [lo, hi) without
// lowering them.
func (l *Conv2D) forwardImplicit(lo, hi int, buf *gemmBuf) {
	P, F, C := l.oh*l.ow, l.filters, l.c
	img := l.paddedImage()
	// The last sliver of positions reads up to mr-1 rows past the last
	// image: slack that stays zero.
	buf.scratch = grow(buf.scratch, l.k*img+mr*C)
	shifted := buf.scratch[:l.k*img+mr*C]
	clear(shifted[l.k*img:])
	for s := lo; s < hi; s++ {
		l.shift(shifted, l.x[s*l.h*l.w*C:(s+1)*l.h*l.w*C], l.pad)
		y := l.y[s*P*F : (s+1)*P*F]
		for p0 := 0; p0 < P; p0 += mr {
			mb := min(mr, P-p0)
			a := shifted[p0*C:]
			for jr := 0; jr < F; jr += nr {
				wb := min(nr, F-jr)
				b := l.packed[jr*l.patch():]
				if mb == mr && wb == nr {
					kernelSeg(C, a, l.taps, C, b, y[p0*F+jr:], F, true)
					continue
				}
				kernelSeg(C, a, l.taps, C, b, buf.tmp[:], nr, true)
				for i := range mb {
					copy(y[(p0+i)*F+jr:(p0+i)*F+jr+wb], buf.tmp[i*nr:i*nr+wb])
				}
			}
		}
	}
}

// implicitData says whether Backward computes the input gradient as a
// convolution too: the gradient of a stride-1 convolution with respect to
// its input is dy convolved, with padding k-1-pad, by the weights flipped
// in both axes with filters and channels swapped (l.back), which
// implicitForward runs without lowering dy (no col2im either).
func (l *Conv2D) implicitData() bool {
	return segKernel() && l.stride == 1 && l.pad <= l.k-1 && l.filters%nr == 0 && l.w <= kc
}

// backData returns the input gradient of dy by the transposed convolution.
func (l *Conv2D) backData(dy []float32, n int) []float32 {
	K, C, F, k := l.patch(), l.c, l.filters, l.k
	if l.back == nil {
		l.back = NewConv2D(Shape{F, l.oh, l.ow}, C, k, 1, k-1-l.pad, false)
		np := l.back.NumParams()
		l.back.Bind(make([]float32, np), make([]float32, np)) // bias stays zero
	}
	// back.wt[c][ky][kx][f] = wt[f][k-1-ky][k-1-kx][c].
	bt, kb := l.back.wt, k*k*F
	for f := range F {
		for t := range k * k {
			src := l.wt[f*K+t*C : f*K+t*C+C]
			ft := k*k - 1 - t // (k-1-ky)·k + (k-1-kx)
			for c, v := range src {
				bt[c*kb+ft*F+f] = v
			}
		}
	}
	return l.back.Forward(dy, n, false)
}

// recordImplicit records a product that runs without a lowered operand
// (the forward pass or the weight gradient) as the GEMM it stands for
// (StepGEMMs), with a Run that times it on a layer of the same geometry.
func (l *Conv2D) recordImplicit(weights bool) {
	if recorder.Load() == nil {
		return // the closures below would allocate on every step
	}
	shape := Shape{l.c, l.h, l.w}
	filters, k, stride, pad, relu, n := l.filters, l.k, l.stride, l.pad, l.relu, l.n
	s := GEMMShape{TB: true, M: n * l.oh * l.ow, N: filters, K: l.patch(), Implicit: true}
	if weights {
		s = GEMMShape{TA: true, M: filters, N: l.patch(), K: n * l.oh * l.ow, Implicit: true}
	}
	s.run = func() func() {
		c := NewConv2D(shape, filters, k, stride, pad, relu)
		fill := randomFill()
		np := c.NumParams()
		c.Bind(fill(np), make([]float32, np))
		x, dy := fill(n*shape.Size()), fill(n*c.oh*c.ow*filters)
		c.Forward(x, n, true)
		if !weights {
			return func() { c.Forward(x, n, true) }
		}
		c.dy = dy
		return func() {
			clear(c.dwt)
			parallel((filters+mr-1)/mr, c.weights)
		}
	}
	recordShape(s)
}
