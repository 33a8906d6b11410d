//go:build amd64 && !purego

package nn

// addBiasAct adds b to every row of y and applies ReLU when relu is set, in
// one pass over y.
func addBiasAct(y, b []float32, relu bool) {
	w := len(b)
	if !haveKernel || w%8 != 0 || len(y) < w {
		addBiasActGo(y, b, relu)
		return
	}
	biasActAVX2(&y[0], len(y)/w, &b[0], w, relu)
}

// reluMask zeroes the gradient where the ReLU output was zero.
func reluMask(dy, y []float32) {
	y = y[:len(dy)]
	n := len(dy) &^ 7
	if haveKernel && n > 0 {
		reluMaskAVX2(&dy[0], &y[0], n)
	}
	reluMaskGo(dy[n:], y[n:])
}

// sumRows writes the column sums of the n×w matrix m into dst.
func sumRows(dst, m []float32, n, w int) {
	if !haveKernel || w%8 != 0 || n == 0 || w == 0 {
		sumRowsGo(dst, m, n, w)
		return
	}
	_, _ = dst[w-1], m[n*w-1]
	colSumsAVX2(&dst[0], &m[0], n, w)
}

// pool2Row pools windows adjacent 2×2 windows along a row (stride 2), the
// first at x[first], C channels a position, rows stride values apart, into
// y and arg.
func pool2Row(x []float32, first, C, stride, windows int, y []float32, arg []int32) {
	if !haveKernel || C%8 != 0 || windows == 0 {
		pool2RowGo(x, first, C, stride, windows, y, arg)
		return
	}
	_ = x[first+(windows-1)*2*C+stride+2*C-1]
	_, _ = y[windows*C-1], arg[windows*C-1]
	pool2AVX2(&x[0], first, C, stride, windows, &y[0], &arg[0])
}

//go:noescape
func biasActAVX2(y *float32, rows int, b *float32, w int, relu bool)

//go:noescape
func colSumsAVX2(dst *float32, m *float32, rows int, w int)

//go:noescape
func reluMaskAVX2(dy *float32, y *float32, n int)

//go:noescape
func pool2AVX2(x *float32, first int, c int, stride int, windows int, y *float32, arg *int32)
