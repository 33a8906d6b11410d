package nn

import "testing"

// BenchmarkKernel is the micro-kernel alone on packed operands in L1: the
// ceiling of every GEMM built on it.
func BenchmarkKernel(b *testing.B) {
	if !haveKernel {
		b.Skip("no assembly kernel")
	}
	const k = 256
	a, bb, c := make([]float32, mr*k), make([]float32, k*nr), make([]float32, mr*nr)
	for b.Loop() {
		kernel(k, a, k, bb, nr, c, nr, true)
	}
	b.ReportMetric(2*mr*nr*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkKernelPanel runs the kernel over the 16 strips of a packed
// 256×256 panel of B (in L2) with one sliver of A, as the GEMM driver does.
func BenchmarkKernelPanel(b *testing.B) {
	if !haveKernel {
		b.Skip("no assembly kernel")
	}
	const k, n = 256, 256
	a, bb, c := make([]float32, mr*k), make([]float32, k*n), make([]float32, mr*n)
	for b.Loop() {
		for jr := 0; jr < n; jr += nr {
			kernel(k, a, k, bb[jr*k:], nr, c[jr:], n, false)
		}
	}
	b.ReportMetric(2*mr*n*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
