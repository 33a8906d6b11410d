//go:build (amd64 || arm64) && !purego

package nn

// kernel6x16 computes the 6×16 block C = A·B (or C += A·B unless store) for
// a 6×k A, a k×16 B and the block of C, all row-major with the given row
// strides.
//
//go:noescape
func kernel6x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, store bool)

// kernel checks the operands' extent, which the assembly cannot, and runs
// the kernel chosen for this CPU on the mr×nr block.
func kernel(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	kernelB(k, a, lda, b, ldb, c, ldc, store, false)
}

// kernelStream is kernel for a B that comes from memory rather than cache:
// the kernel prefetches its rows ahead where it can.
func kernelStream(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	kernelB(k, a, lda, b, ldb, c, ldc, store, true)
}

func kernelB(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store, stream bool) {
	if k == 0 {
		return
	}
	_ = a[(mr-1)*lda+k-1]
	_ = b[(k-1)*ldb+nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernelBlock(k, &a[0], lda, &b[0], ldb, &c[0], ldc, store, stream)
}
