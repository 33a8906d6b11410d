//go:build !(amd64 || arm64) || purego

package nn

// Without assembly the blocked driver runs the Go micro-kernel.
const haveKernel = true

func kernel(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	kernelGo(k, a, lda, b, ldb, c, ldc, store)
}

// kernelStream: the Go kernel has no prefetch.
func kernelStream(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	kernelGo(k, a, lda, b, ldb, c, ldc, store)
}

// narrowKernel pads B's few columns into scratch, as the Go kernel reads
// whole strips.
func narrowKernel(k int, a []float32, lda int, b []float32, ldb int, c []float32, w int, scratch []float32) {
	if k == 0 {
		return
	}
	packNarrow(k, b, ldb, w, scratch)
	kernelGo(k, a, lda, scratch, nr, c, nr, true)
}

func fmaLoops() []fmaLoop { return nil }

// kernelISAs: the Go kernel, on every CPU.
func kernelISAs() []string { return []string{"go"} }

// selectISA: there is one kernel.
func selectISA(string) {}

func kernelISA() string { return "go" }

// kernelReadsBInPlace: the Go kernel reads each row of a strip several
// times, so B is always packed into contiguous strips for it.
const kernelReadsBInPlace = false

// goKernelMax is the product size (m·n·k) from which gonum's GEMM beats
// the Go kernel; measured on the CNN's and the MLP's steps (purego,noasm
// on amd64): the MLP's products (at most 1.6M) ran 90% faster with the
// kernel, the CNN's (20M and more) 15% slower.
var goKernelMax = 1 << 22
