package nn

// The weight gradient of a convolution, dW = dyᵀ·cols, read through the
// lowered input cols is the engine's worst GEMM: cols is the largest
// matrix of the step (10 MB for the CNN's second convolution at a batch of
// 16), it no longer sits in any cache when the backward pass reaches it,
// and its strips of 32 columns are 128 bytes a row at a 3,200-byte stride,
// which the hardware prefetchers do not follow (72% of peak with software
// prefetch). With stride 1 a strip of C columns of cols (one kernel tap,
// all channels) is the input image itself, shifted: row (oy, ox) of the
// strip for tap (ky, kx) is pixel (oy+ky-pad, ox+kx-pad). Shifting the
// image horizontally once per kx (zeros where the tap falls in the
// padding) makes every tap's strip a contiguous run of the shifted image,
// rows of C values one after the other, from which the kernel streams at
// cache speed; the vertical offset is where the run starts. No padding
// position is multiplied: a tap's run covers only the output rows whose
// input row exists.

// implicitWeights says whether Backward computes the weight gradient from
// the input image (weightsRange) instead of the lowered input: stride 1,
// whole kernel strips of channels, an output row that fits a k-block, and
// an assembly kernel that reads B in place.
func (l *Conv2D) implicitWeights() bool {
	return haveKernel && kernelReadsBInPlace && l.stride == 1 && l.c%nr == 0 && l.ow <= kc
}

// weightsRange adds to dW the gradient of filters [lo·mr, hi·mr) over the
// whole batch, one sample at a time: the sample's shifted images (k of
// h×ow×C, 125 KB for the CNN) stay in L2 while every sliver of filters and
// every tap reads them.
func (l *Conv2D) weightsRange(lo, hi int, buf *gemmBuf) {
	K, P, F, C := l.patch(), l.oh*l.ow, l.filters, l.c
	img := l.h * l.ow * C // one shifted image
	buf.scratch = grow(buf.scratch, l.k*img)
	shifted := buf.scratch[:l.k*img]
	// A k-block holds whole output rows, so that a tap's valid rows are
	// one contiguous run of the packed dy.
	rows := kc / l.ow
	for s := range l.n {
		l.shift(shifted, l.x[s*l.h*l.w*C:(s+1)*l.h*l.w*C], 0)
		dy := l.dy[s*P*F : (s+1)*P*F]
		for r0 := 0; r0 < l.oh; r0 += rows {
			r1 := min(r0+rows, l.oh)
			kb := (r1 - r0) * l.ow
			a := gemmArgs{ta: true, a: dy[r0*l.ow*F:], lda: F}
			for ir := lo * mr; ir < min(hi*mr, F); ir += mr {
				mb := min(mr, F-ir)
				packA(&a, buf.pa[:], ir, mb, 0, kb)
				for ky := range l.k {
					// Output rows whose input row oy+ky-pad exists.
					y0 := max(r0, l.pad-ky)
					y1 := min(r1, l.h+l.pad-ky)
					if y1 <= y0 {
						continue
					}
					run := (y1 - y0) * l.ow
					pa := buf.pa[(y0-r0)*l.ow:]
					for kx := range l.k {
						b := shifted[kx*img+(y0+ky-l.pad)*l.ow*C:]
						col := (ky*l.k + kx) * C
						for j := 0; j < C; j += nr {
							l.weightBlock(run, pa, kb, b[j:], C, ir, mb, col+j, K, buf)
						}
					}
				}
			}
		}
	}
}

// weightBlock adds the mb×nr block A·B to dW at (row, col); a sliver of
// fewer than mr filters goes through buf.tmp.
func (l *Conv2D) weightBlock(k int, a []float32, lda int, b []float32, ldb, row, mb, col, ldc int, buf *gemmBuf) {
	if mb == mr {
		kernel(k, a, lda, b, ldb, l.dwt[row*ldc+col:], ldc, false)
		return
	}
	kernel(k, a, lda, b, ldb, buf.tmp[:], nr, true)
	for i := range mb {
		d := l.dwt[(row+i)*ldc+col : (row+i)*ldc+col+nr]
		for j, v := range buf.tmp[i*nr : i*nr+nr] {
			d[j] += v
		}
	}
}

// shift writes, for each kx, the image x shifted left by kx-pad columns
// into dst, k images of (h+2·vpad)×ow×C: column ox of image kx holds input
// column ox+kx-pad, or zeros where that falls outside the input, and vpad
// rows of zeros lie above and below the input's h rows.
func (l *Conv2D) shift(dst, x []float32, vpad int) {
	C := l.c
	rowLen := l.ow * C
	img := (l.h + 2*vpad) * rowLen
	for kx := range l.k {
		out := dst[kx*img : (kx+1)*img]
		clear(out[:vpad*rowLen])
		clear(out[(vpad+l.h)*rowLen:])
		// Output columns [o0, o1) read input columns [o0+d, o1+d).
		d := kx - l.pad
		o0, o1 := max(0, -d), min(l.ow, l.w-d)
		for iy := range l.h {
			row := out[(vpad+iy)*rowLen : (vpad+iy+1)*rowLen]
			if o1 <= o0 {
				clear(row)
				continue
			}
			clear(row[:o0*C])
			src := (iy*l.w + o0 + d) * C
			copy(row[o0*C:o1*C], x[src:src+(o1-o0)*C])
			clear(row[o1*C:])
		}
	}
}
