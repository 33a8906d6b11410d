package nn

import "testing"

// eachISA runs f once with each kernel this CPU has, named after it, and
// leaves the fastest in use.
func eachISA[T interface {
	Run(string, func(T)) bool
	Cleanup(func())
	Skip(...any)
}](t T, f func(T)) {
	isas := kernelISAs()
	if len(isas) == 0 {
		t.Skip("no kernel: gemm is gonum's")
	}
	t.Cleanup(func() { useISA(isas[0]) })
	for _, isa := range isas {
		if err := useISA(isa); err != nil {
			panic(err)
		}
		t.Run(isa, f)
	}
}

// BenchmarkKernel is the micro-kernel alone on packed operands in L1: the
// ceiling of every GEMM built on it.
func BenchmarkKernel(b *testing.B) {
	eachISA(b, func(b *testing.B) {
		const k = 256
		a, bb, c := make([]float32, mr*k), make([]float32, k*nr), make([]float32, mr*nr)
		for b.Loop() {
			kernel(k, a, k, bb, nr, c, nr, true)
		}
		b.ReportMetric(float64(2*mr*nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

// BenchmarkKernelPanel runs the kernel over the strips of a packed 256×256
// panel of B (in L2) with one sliver of A, as the GEMM driver does.
func BenchmarkKernelPanel(b *testing.B) {
	eachISA(b, func(b *testing.B) {
		const k, n = 256, 256
		a, bb, c := make([]float32, mr*k), make([]float32, k*n), make([]float32, mr*n)
		for b.Loop() {
			for jr := 0; jr < n; jr += nr {
				kernel(k, a, k, bb[jr*k:], nr, c[jr:], n, false)
			}
		}
		b.ReportMetric(float64(2*mr*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}

// BenchmarkKernelHalf is the 8×16 AVX-512 kernel alone, A read in place and
// B packed, all in L1: the ceiling of a dense layer's input gradient at a
// mini-batch of 16 (computed as Cᵀ, 16 columns).
func BenchmarkKernelHalf(b *testing.B) {
	if !wide {
		b.Skip("the half-width kernel is AVX-512's")
	}
	const k = 256
	a, bb, c := make([]float32, mr*k), make([]float32, k*nr), make([]float32, mr*nr)
	for b.Loop() {
		kernelHalf(k, a, k, bb, nr, c, nr, true)
	}
	b.ReportMetric(float64(2*mr*nr/2*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
