//go:build arm64 && !purego

package nn

// Every arm64 core the Go port runs on has NEON (Advanced SIMD).
const haveKernel = true

func kernelBlock(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, store, _ bool) {
	kernel6x16(k, a, lda, b, ldb, c, ldc, store)
}

func kernelISAs() []string { return []string{"neon"} }

// selectISA: there is one kernel.
func selectISA(string) {}

//go:noescape
func fmaLoopNEON(n int)

// narrowKernel computes the 6×16 block c = A·B (ldc 16) for a k×w B, w <
// 16, through scratch: NEON has no masked loads, so B's columns are copied
// side by side, padded with zeros, as the whole strip the kernel reads.
func narrowKernel(k int, a []float32, lda int, b []float32, ldb int, c []float32, w int, scratch []float32) {
	if k == 0 {
		return
	}
	packNarrow(k, b, ldb, w, scratch)
	kernel(k, a, lda, scratch, nr, c, nr, true)
}

func fmaLoops() []fmaLoop { return []fmaLoop{{"neon", 4, fmaLoopNEON}} }

func kernelISA() string { return "neon" }

// kernelReadsBInPlace: the assembly kernels read a row-major B in place.
const kernelReadsBInPlace = true

const goKernelMax = 0 // unused: the assembly kernels take every size

// wide: arm64 has no half-width kernel.
const wide = false

func kernelHalf(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	panic("nn: no half-width kernel in this build")
}

// transposedA: no kernel here reads a transposed A in place.
func transposedA() bool { return false }

func kernelT(k int, at []float32, ldat int, b []float32, ldb, w int, c []float32, ldc int, store, stream bool) {
	panic("nn: kernelT without transposedA")
}

// segKernel: no kernel here gathers A from segments.
func segKernel() bool { return false }

func kernelSeg(kseg int, a []float32, offs []int, lda int, b []float32, c []float32, ldc int, store bool) {
	panic("nn: kernelSeg without segKernel")
}
