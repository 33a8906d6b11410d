//go:build !amd64 || purego

package nn

// The kernel variants only the AVX-512 build has (kernel_amd64.go): every
// other build reports them absent, and the callers check first.

// wide: no 8×32 kernel, so no half-width variant of it.
const wide = false

func kernelHalf(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	panic("nn: no half-width kernel in this build")
}

// transposedA: no kernel here reads a transposed A in place.
func transposedA() bool { return false }

func kernelT(k int, at []float32, ldat int, b []float32, ldb, strips int, c []float32, ldc int, store, stream bool) {
	panic("nn: kernelT without transposedA")
}

func kernelTNarrow(k int, at []float32, ldat int, b []float32, ldb, w int, c []float32) {
	panic("nn: kernelTNarrow without transposedA")
}

// segKernel: no kernel here gathers A from segments.
func segKernel() bool { return false }

func kernelSeg(kseg int, a []float32, t taps, lda int, b []float32, c []float32, ldc int, store bool) {
	panic("nn: kernelSeg without segKernel")
}
