//go:build amd64 && !purego

package nn

import "golang.org/x/sys/cpu"

var haveKernel = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func kernel6x16n(k int, a *float32, lda int, b *float32, ldb int, c *float32, mask *int32)

//go:noescape
func kernel6x8n(k int, a *float32, lda int, b *float32, ldb int, c *float32, mask *int32)

// laneMasks holds 16 set lanes then 16 clear ones: &laneMasks[16-w] is the
// mask of the first w of 8 lanes.
var laneMasks = [32]int32{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}

// narrowKernel computes the 6×16 block c = A·B (ldc 16) for a k×w B read in
// place, w < 16; c's columns from w on are zero or left as they were.
// scratch is not needed here.
func narrowKernel(k int, a []float32, lda int, b []float32, ldb int, c []float32, w int, _ []float32) {
	if k == 0 {
		return
	}
	_ = a[5*lda+k-1]
	_ = b[(k-1)*ldb+w-1]
	_ = c[mr*nr-1]
	if w > 8 {
		kernel6x16n(k, &a[0], lda, &b[0], ldb, &c[0], &laneMasks[16-(w-8)])
		return
	}
	kernel6x8n(k, &a[0], lda, &b[0], ldb, &c[0], &laneMasks[16-w])
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
	if haveKernel {
		return "avx2+fma"
	}
	return "gonum (pure Go)"
}

// kernelReadsBInPlace: the assembly kernels read a row-major B in place.
const kernelReadsBInPlace = true

const goKernelMax = 0 // unused: the assembly kernels take every size
