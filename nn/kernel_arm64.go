//go:build arm64 && !purego

package nn

// Every arm64 core the Go port runs on has NEON (Advanced SIMD).
const haveKernel = true

// kernel6x16 computes the 6×16 block C = A·B (or C += A·B unless store) for
// a 6×k A, a k×16 B and the block of C, all row-major with the given row
// strides.
//
//go:noescape
func kernel6x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, store bool)

//go:noescape
func fmaLoopNEON(n int)

func kernel(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	if k == 0 {
		return
	}
	_ = a[5*lda+k-1]
	_ = b[(k-1)*ldb+nr-1]
	_ = c[5*ldc+nr-1]
	kernel6x16(k, &a[0], lda, &b[0], ldb, &c[0], ldc, store)
}

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
