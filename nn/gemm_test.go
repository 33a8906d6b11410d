package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestGemmMatchesGonum checks our blocked GEMM against gonum's on shapes
// that exercise partial tiles, several k and n blocks, every transpose
// combination, beta, strides wider than the matrix, and the parallel split.
func TestGemmMatchesGonum(t *testing.T) {
	eachISA(t, testGemmMatchesGonum)
}

func testGemmMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	}
	shapes := [][3]int{{1, 1, 1}, {6, 16, 1}, {7, 17, 3}, {6, 32, 2}, {5, 31, 9}, {12, 33, 4}, {16, 128, 784}, {13, 300, 600}, {100, 33, 257}, {64, 800, 40}, {784, 10, 16}, {300, 7, 5}}
	for _, procs := range []int{1, 2} {
		old := runtime.GOMAXPROCS(procs)
		for _, sh := range shapes {
			m, n, k := sh[0], sh[1], sh[2]
			for _, ta := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				for _, tb := range []blas.Transpose{blas.NoTrans, blas.Trans} {
					for _, beta := range []float32{0, 1, 0.5} {
						name := fmt.Sprintf("p%d/%dx%dx%d/%c%c/beta%g", procs, m, n, k, ta, tb, beta)
						lda, ldb, ldc := k+2, n+1, n+3
						if ta == blas.Trans {
							lda = m + 2
						}
						if tb == blas.Trans {
							ldb = k + 1
						}
						a, b := fill(lda*max(m, k)), fill(ldb*max(n, k))
						c := fill(m * ldc)
						want := append([]float32(nil), c...)
						gemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)
						gonumGemm(ta, tb, m, n, k, a, lda, b, ldb, beta, want, ldc)
						for i := range c {
							if d := math.Abs(float64(c[i] - want[i])); d > 1e-3*(1+math.Abs(float64(want[i]))) {
								t.Fatalf("%s: c[%d] = %v, gonum %v", name, i, c[i], want[i])
							}
						}
					}
				}
			}
		}
		runtime.GOMAXPROCS(old)
	}
}

func BenchmarkGemm512(b *testing.B) {
	const n = 512
	a, bb, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	b.ReportAllocs()
	for b.Loop() {
		gemm(blas.NoTrans, blas.NoTrans, n, n, n, a, n, bb, n, 0, c, n)
	}
	b.ReportMetric(2*n*n*n*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// The Go micro-kernel (the purego and armv7 builds' path) against gonum,
// in every build: strides wider than the block, overwrite and accumulate.
func TestKernelGoMatchesGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{1, 7, 256} {
		lda, ldb, ldc := k+3, nr+5, nr+2
		a, b := make([]float32, mr*lda), make([]float32, k*ldb)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		for _, store := range []bool{true, false} {
			c := make([]float32, mr*ldc)
			for i := range c {
				c[i] = float32(rng.NormFloat64())
			}
			want := append([]float32(nil), c...)
			beta := float32(1)
			if store {
				beta = 0
			}
			kernelGo(k, a, lda, b, ldb, c, ldc, store)
			gonumGemm(blas.NoTrans, blas.NoTrans, mr, nr, k, a, lda, b, ldb, beta, want, ldc)
			for i := 0; i < mr; i++ {
				for j := 0; j < nr; j++ {
					got, w := c[i*ldc+j], want[i*ldc+j]
					if math.Abs(float64(got-w)) > 1e-4*(1+math.Abs(float64(w))) {
						t.Fatalf("k %d, store %v: c[%d][%d] = %v, gonum %v", k, store, i, j, got, w)
					}
				}
			}
			for j := nr; j < ldc; j++ { // beyond the block: untouched
				if c[j] != want[j] {
					t.Fatalf("k %d: wrote c[0][%d] outside the block", k, j)
				}
			}
		}
	}
}
