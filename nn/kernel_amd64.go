//go:build amd64 && !purego

package nn

import "golang.org/x/sys/cpu"

var haveKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// wide selects the AVX-512 kernels (8×32 blocks), and with them the
// half-width kernel (kernelHalf); selectISA sets it.
var wide bool

func init() {
	if isas := kernelISAs(); len(isas) > 0 {
		selectISA(isas[0])
	}
}

// kernelISAs lists the kernels this CPU can run, fastest first.
func kernelISAs() []string {
	var isas []string
	if haveKernel && cpu.X86.HasAVX512F {
		isas = append(isas, "avx512f")
	}
	if haveKernel {
		isas = append(isas, "avx2+fma")
	}
	return isas
}

// selectISA switches to the named kernel, one of kernelISAs.
func selectISA(isa string) {
	wide = isa == "avx512f"
	mr, nr = 6, 16
	if wide {
		mr, nr = 8, 32
	}
}

// kernelBlock runs the kernel in use on one mr×nr block; stream asks it
// to prefetch B ahead (see kernel8x32).
func kernelBlock(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, store, stream bool) {
	if wide {
		kernel8x32(k, a, lda, 1, b, ldb, c, ldc, 1, store, stream)
		return
	}
	kernel6x16(k, a, lda, b, ldb, c, ldc, store)
}

//go:noescape
func kernel8x32(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, strips int, store, stream bool)

// kernelHalf computes the mr×16 block C (+)= A·B with the left half of the
// wide kernel; only when wide.
func kernelHalf(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	if k == 0 {
		return
	}
	_ = a[(mr-1)*lda+k-1]
	_ = b[(k-1)*ldb+15]
	_ = c[(mr-1)*ldc+15]
	kernel8x16(k, &a[0], lda, &b[0], ldb, &c[0], ldc, store)
}

// transposedA says whether kernelT can run: the wide kernels read a
// transposed A in place.
func transposedA() bool { return wide }

// kernelT is kernel for a transposed A read in place (element (i, p) of
// the mr×k A is at[p·ldat+i]), on the strips adjacent nr-column blocks of
// B and C in one call: a weight gradient at a mini-batch of 16 (k = 16)
// does so little per block that calling the kernel for each one cost
// about a fifth of its time. Only when transposedA.
func kernelT(k int, at []float32, ldat int, b []float32, ldb, strips int, c []float32, ldc int, store, stream bool) {
	if k == 0 || strips == 0 {
		return
	}
	_ = at[(k-1)*ldat+mr-1]
	_ = b[(k-1)*ldb+strips*nr-1]
	_ = c[(mr-1)*ldc+strips*nr-1]
	kernel8x32(k, &at[0], 1, ldat, &b[0], ldb, &c[0], ldc, strips, store, stream)
}

// kernelTNarrow is narrowKernel (into c with ldc nr) for a transposed A
// read in place, as kernelT reads it, and a B of w < nr columns. Only
// when transposedA.
func kernelTNarrow(k int, at []float32, ldat int, b []float32, ldb, w int, c []float32) {
	if k == 0 {
		return
	}
	_ = at[(k-1)*ldat+mr-1]
	_ = b[(k-1)*ldb+w-1]
	_ = c[mr*nr-1]
	kernel8x32n(k, &at[0], 1, ldat, &b[0], ldb, &c[0], 1<<w-1)
}

// segKernel says whether kernelSeg can run (the AVX-512 kernels).
func segKernel() bool { return wide }

// kernelSeg computes the mr×nr block C (+)= A·B for an A gathered from
// the segments of t, kseg columns each, segment i's rows starting at
// a[t.offs[i]], lda apart, and a packed B (nr values a row, one row per k
// step across the segments). Only when segKernel.
func kernelSeg(kseg int, a []float32, t taps, lda int, b []float32, c []float32, ldc int, store bool) {
	if len(t.offs) == 0 || kseg == 0 {
		return
	}
	_ = a[t.last+(mr-1)*lda+kseg-1]
	_ = b[len(t.offs)*kseg*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kernel8x32seg(len(t.offs), kseg, &a[0], &t.offs[0], lda, &b[0], &c[0], ldc, store)
}

//go:noescape
func kernel8x32seg(segs, kseg int, a *float32, offs *int, lda int, b *float32, c *float32, ldc int, store bool)

//go:noescape
func kernel8x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, store bool)

//go:noescape
func kernel8x32n(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, mask uint32)

//go:noescape
func kernel6x16n(k int, a *float32, lda int, b *float32, ldb int, c *float32, mask *int32)

//go:noescape
func kernel6x8n(k int, a *float32, lda int, b *float32, ldb int, c *float32, mask *int32)

// laneMasks holds 16 set lanes then 16 clear ones: &laneMasks[16-w] is the
// mask of the first w of 8 lanes.
var laneMasks = [32]int32{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}

// narrowKernel computes the mr×nr block c = A·B (ldc nr) for a k×w B read in
// place, w < nr; c's columns from w on are zero or left as they were.
// scratch is not needed here.
func narrowKernel(k int, a []float32, lda int, b []float32, ldb int, c []float32, w int, _ []float32) {
	if k == 0 {
		return
	}
	_ = a[(mr-1)*lda+k-1]
	_ = b[(k-1)*ldb+w-1]
	_ = c[mr*nr-1]
	switch {
	case wide:
		kernel8x32n(k, &a[0], lda, 1, &b[0], ldb, &c[0], 1<<w-1)
	case w > 8:
		kernel6x16n(k, &a[0], lda, &b[0], ldb, &c[0], &laneMasks[16-(w-8)])
	default:
		kernel6x8n(k, &a[0], lda, &b[0], ldb, &c[0], &laneMasks[16-w])
	}
}

//go:noescape
func fmaLoop256(n int)

//go:noescape
func fmaLoop512(n int)

// fmaLoops are the register-only FMA loops this CPU can run, widest last:
// each does n iterations of 12 FMAs of its lanes.
func fmaLoops() []fmaLoop {
	var loops []fmaLoop
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		loops = append(loops, fmaLoop{"avx2+fma", 8, fmaLoop256})
	}
	if cpu.X86.HasAVX512F {
		loops = append(loops, fmaLoop{"avx512f", 16, fmaLoop512})
	}
	return loops
}

// kernelISA names the instruction set the GEMM kernel uses.
func kernelISA() string {
	switch {
	case wide:
		return "avx512f"
	case haveKernel:
		return "avx2+fma"
	}
	return "gonum (pure Go)"
}

// kernelReadsBInPlace: the assembly kernels read a row-major B in place.
const kernelReadsBInPlace = true

const goKernelMax = 0 // unused: the assembly kernels take every size
