package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestImplicitWeightsMatchLowered compares the weight gradient computed
// from the shifted input images with dyᵀ·cols computed by gonum, and the
// output (computed from the shifted images by the segmented kernel, or a
// chunk of samples at a time) with cols·Wᵀ + b, and the input gradient
// (the transposed convolution where implicitData) with col2im(dy·W), for
// geometries that exercise partial slivers of filters, several k-blocks of
// output rows, taps that fall wholly in the padding and a 1×1 kernel.
func TestImplicitWeightsMatchLowered(t *testing.T) {
	geoms := []struct{ c, h, w, filters, k, pad, n int }{
		{32, 14, 14, 64, 5, 2, 3}, // the CNN's second convolution
		{32, 9, 7, 13, 3, 0, 2},
		{64, 30, 30, 10, 3, 1, 1}, // 30 output rows in k-blocks of 8
		{32, 5, 5, 7, 3, 2, 2},    // corner windows wholly in the padding
		{32, 6, 8, 9, 1, 0, 2},
		{64, 4, 11, 17, 5, 3, 1},
		{32, 7, 9, 32, 3, 0, 2}, // dx with padding 2
		{32, 6, 6, 64, 5, 4, 1}, // dx with padding 0
	}
	if !kernelReadsBInPlace {
		t.Skip("the Go kernel does not read B in place: convolutions keep the lowered input")
	}
	eachISA(t, func(t *testing.T) {
		for _, g := range geoms {
			t.Run(fmt.Sprintf("%dx%dx%d_f%d_k%d_p%d_n%d", g.c, g.h, g.w, g.filters, g.k, g.pad, g.n), func(t *testing.T) {
				l := NewConv2D(Shape{g.c, g.h, g.w}, g.filters, g.k, 1, g.pad, false)
				if !l.implicitWeights() {
					t.Fatalf("geometry not on the implicit path (nr %d)", nr)
				}
				rng := rand.New(rand.NewPCG(5, uint64(g.h)))
				np := l.NumParams()
				params := make([]float32, np)
				for i := range params {
					params[i] = float32(rng.NormFloat64())
				}
				l.Bind(params, make([]float32, np))
				x := make([]float32, g.n*g.c*g.h*g.w)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				y := l.Forward(x, g.n, true)
				if !l.chunked() {
					t.Fatal("forward keeps the lowered input")
				}
				P, K := l.oh*l.ow, l.patch()
				dy := make([]float32, g.n*P*g.filters)
				for i := range dy {
					dy[i] = float32(rng.NormFloat64())
				}
				cols := make([]float32, g.n*P*K)
				l.im2col(x, cols, 0, g.n)
				wantY := make([]float32, g.n*P*g.filters)
				gonumGemm(blas.NoTrans, blas.Trans, g.n*P, g.filters, K, cols, K, l.wt, K, 0, wantY, g.filters)
				for i, w := range wantY {
					w += l.b[i%g.filters]
					if d := math.Abs(float64(y[i] - w)); !(d <= 1e-3*(1+math.Abs(float64(w)))) {
						t.Fatalf("y[%d] (position %d, filter %d) = %v, want %v", i, i/g.filters, i%g.filters, y[i], w)
					}
				}
				want := make([]float32, g.filters*K)
				gonumGemm(blas.Trans, blas.NoTrans, g.filters, K, g.n*P, dy, g.filters, cols, K, 0, want, K)
				for i := range l.dwt {
					l.dwt[i] = float32(math.NaN()) // Backward must overwrite every value
				}
				dx := l.Backward(dy, g.n, true)
				if g.filters%nr == 0 && segKernel() && !l.implicitData() {
					t.Fatal("input gradient not computed as a convolution")
				}
				dcols := make([]float32, g.n*P*K)
				gonumGemm(blas.NoTrans, blas.NoTrans, g.n*P, K, g.filters, dy, g.filters, l.wt, K, 0, dcols, K)
				wantDx := make([]float32, len(x))
				l.col2im(wantDx, dcols, 0, g.n)
				for i, w := range wantDx {
					if d := math.Abs(float64(dx[i] - w)); !(d <= 1e-3*(1+math.Abs(float64(w)))) {
						t.Fatalf("dx[%d] = %v, want %v", i, dx[i], w)
					}
				}
				for i, w := range want {
					if d := math.Abs(float64(l.dwt[i] - w)); !(d <= 1e-3*(1+math.Abs(float64(w)))) {
						t.Fatalf("dW[%d] (filter %d, patch %d) = %v, want %v", i, i/K, i%K, l.dwt[i], w)
					}
				}
			})
		}
	})
}

// The one-channel lowering (loops, a row of taps at a time) against the
// general one, with windows that leave the image on every side.
func TestIm2colOneMatchesGeneral(t *testing.T) {
	fill := randomFill()
	for _, g := range []struct{ h, w, k, stride, pad int }{
		{28, 28, 5, 1, 2}, {7, 9, 3, 2, 1}, {6, 5, 3, 1, 0}, {5, 5, 5, 1, 4}, {8, 6, 2, 3, 1},
	} {
		l := NewConv2D(Shape{1, g.h, g.w}, 4, g.k, g.stride, g.pad, false)
		n := 2
		x := fill(n * g.h * g.w)
		size := n * l.oh * l.ow * l.patch()
		got, want := fill(size), fill(size) // stale values: every one must be written
		l.im2colOne(x, got, 0, n)
		l.im2colAny(x, want, 0, n)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%+v: cols[%d] = %v, want %v", g, i, got[i], want[i])
			}
		}
	}
}
