//go:build !(amd64 || arm64) || purego

package nn

import "testing"

// BenchmarkPureGoPath compares, in the builds without assembly (armv7's;
// run it on amd64 with -tags purego,noasm), the training step with every
// product on gonum's GEMM, what these builds ran before the Go kernel, and
// with the Go kernel below goKernelMax.
func BenchmarkPureGoPath(b *testing.B) {
	for _, model := range []string{"mlp", "cnn"} {
		for _, path := range []struct {
			name string
			max  int
		}{{"gonum", 0}, {"kernel", goKernelMax}} {
			b.Run(model+"/"+path.name, func(b *testing.B) {
				old := goKernelMax
				goKernelMax = path.max
				defer func() { goKernelMax = old }()
				benchStep(b, model, 16)
			})
		}
	}
}
