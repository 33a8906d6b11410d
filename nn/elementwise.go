package nn

import "math"

// The element-wise passes of a layer in plain Go: every build's fallback,
// and the amd64 build's for widths its vector code does not take (see
// elementwise_amd64.go).

// addBiasActGo adds b to every row of y and applies ReLU when relu is set, in
// one pass over y.
func addBiasActGo(y, b []float32, relu bool) {
	w := len(b)
	for r := 0; r+w <= len(y); r += w {
		row := y[r : r+w]
		if relu {
			for j, v := range row {
				row[j] = max(v+b[j], 0)
			}
		} else {
			for j := range row {
				row[j] += b[j]
			}
		}
	}
}

// reluMaskGo zeroes the gradient where the ReLU output was zero. The signs of
// y are random, so it masks bits instead of branching: a ReLU output is +0
// or positive, and a positive float's bits as int32 are > 0.
func reluMaskGo(dy, y []float32) {
	y = y[:len(dy)]
	for i, v := range y {
		keep := uint32(-int32(math.Float32bits(v)) >> 31)
		dy[i] = math.Float32frombits(math.Float32bits(dy[i]) & keep)
	}
}

// sumRowsGo writes the column sums of the n×w matrix m into dst.
func sumRowsGo(dst, m []float32, n, w int) {
	clear(dst)
	for r := 0; r < n; r++ {
		row := m[r*w : r*w+w]
		for j, v := range row {
			dst[j] += v
		}
	}
}

// pool2Go is one 2×2 window, C channels from x[first], rows stride apart.
func pool2Go(x []float32, first, C, stride int, y []float32, arg []int32) {
	x0 := x[first : first+C]
	x1 := x[first+C : first+2*C]
	x2 := x[first+stride : first+stride+C]
	x3 := x[first+stride+C : first+stride+2*C]
	x1, x2, x3 = x1[:len(x0)], x2[:len(x0)], x3[:len(x0)]
	arg = arg[:len(y)]
	for ch := range y {
		best, off := int64(orderKey(x0[ch])), 0
		best, off = larger(best, off, int64(orderKey(x1[ch])), C)
		best, off = larger(best, off, int64(orderKey(x2[ch])), stride)
		_, off = larger(best, off, int64(orderKey(x3[ch])), stride+C)
		at := first + off + ch
		y[ch], arg[ch] = x[at], int32(at)
	}
}

// pool2RowGo pools windows adjacent 2×2 windows along a row (stride 2),
// the first at x[first], into y and arg.
func pool2RowGo(x []float32, first, C, stride, windows int, y []float32, arg []int32) {
	for w := range windows {
		pool2Go(x, first+2*w*C, C, stride, y[w*C:w*C+C], arg[w*C:w*C+C])
	}
}
