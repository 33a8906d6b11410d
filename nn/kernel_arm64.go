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
