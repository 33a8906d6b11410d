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

// prepareImplicit packs the weights as nr-filter strips over all K rows
// (l.packed) and makes the taps' offsets into the shifted images (l.offs).
func (l *Conv2D) prepareImplicit() {
	K, C := l.patch(), l.c
	g := gemmArgs{tb: true, n: l.filters, k: K, b: l.wt, ldb: K}
	l.packed = grow(l.packed, K*roundUp(l.filters, nr))
	packB(&g, l.packed, 0, K, 0, l.filters)
	if len(l.offs) != l.k*l.k {
		l.offs = make([]int, l.k*l.k)
	}
	img := l.paddedImage()
	for ky := range l.k {
		for kx := range l.k {
			l.offs[ky*l.k+kx] = kx*img + ky*l.ow*C
		}
	}
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
					kernelSeg(C, a, l.offs, C, b, y[p0*F+jr:], F, true)
					continue
				}
				kernelSeg(C, a, l.offs, C, b, buf.tmp[:], nr, true)
				for i := range mb {
					copy(y[(p0+i)*F+jr:(p0+i)*F+jr+wb], buf.tmp[i*nr:i*nr+wb])
				}
			}
		}
	}
}
