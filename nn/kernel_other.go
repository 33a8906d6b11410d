//go:build !(amd64 || arm64) || purego

package nn

const haveKernel = false

func kernel(k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, store bool) {
	panic("nn: no GEMM kernel on this architecture")
}

func narrowKernel(k int, a []float32, lda int, b []float32, ldb int, c []float32, w int, scratch []float32) {
	panic("nn: no GEMM kernel on this architecture")
}

func fmaLoops() []fmaLoop { return nil }

func kernelISA() string { return "gonum (pure Go)" }
