package nn

// kernelGo is the micro-kernel in plain Go, for the builds without
// assembly (purego, armv7 and other architectures): C[0:6, 0:16] (+)=
// A[0:6, 0:k] · B[0:k, 0:16], row-major with the given strides, like the
// assembly kernels and summed in the same order. It works on 2×4 blocks:
// each k step loads 6 values for 8 multiply-adds (gonum's column loop loads
// 2 per 1), and eight accumulators with their operands stay in registers
// even on amd64's sixteen (3×4 and 2×8 blocks spilled and were slower
// there: MLP step 4,800 and 4,100 samples/s against 6,100). On large
// products gonum's loop is faster (see gemmOn).
func kernelGo(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	if k == 0 {
		return
	}
	_ = b[(k-1)*ldb+nr-1]
	for i0 := 0; i0 < mr; i0 += 2 {
		a0 := a[(i0+0)*lda : (i0+0)*lda+k]
		a1 := a[(i0+1)*lda : (i0+1)*lda+k]
		a1 = a1[:len(a0)]
		for j0 := 0; j0 < nr; j0 += 4 {
			var c0_0, c0_1, c0_2, c0_3, c1_0, c1_1, c1_2, c1_3 float32
			for p, x0 := range a0 {
				bb := b[p*ldb+j0 : p*ldb+j0+4 : p*ldb+j0+4]
				b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
				x1 := a1[p]
				c0_0 += x0 * b0
				c0_1 += x0 * b1
				c0_2 += x0 * b2
				c0_3 += x0 * b3
				c1_0 += x1 * b0
				c1_1 += x1 * b1
				c1_2 += x1 * b2
				c1_3 += x1 * b3
			}
			r0 := c[(i0+0)*ldc+j0 : (i0+0)*ldc+j0+4 : (i0+0)*ldc+j0+4]
			r1 := c[(i0+1)*ldc+j0 : (i0+1)*ldc+j0+4 : (i0+1)*ldc+j0+4]
			if store {
				r0[0] = c0_0
				r0[1] = c0_1
				r0[2] = c0_2
				r0[3] = c0_3
				r1[0] = c1_0
				r1[1] = c1_1
				r1[2] = c1_2
				r1[3] = c1_3
				continue
			}
			r0[0] += c0_0
			r0[1] += c0_1
			r0[2] += c0_2
			r0[3] += c0_3
			r1[0] += c1_0
			r1[1] += c1_1
			r1[2] += c1_2
			r1[3] += c1_3
		}
	}
}
