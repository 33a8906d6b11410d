//go:build linux && (amd64 || arm64)

package nn

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"

	"gonum.org/v1/gonum/blas"
)

// guarded returns n float32s that end exactly where an inaccessible page
// begins: a kernel that reads one value past them faults.
func guarded(t *testing.T, n int) []float32 {
	page := syscall.Getpagesize()
	size := (n*4 + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, size+page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[size:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	all := unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), size/4)
	return all[size/4-n:]
}

// TestNarrowKernelReadsOnlyItsColumns runs the kernels for a B narrower
// than a strip on a B whose last row ends at a guard page: the masked
// loads must not touch the columns that do not exist (a fault here is the
// failure), and the columns that do must match gonum.
func TestNarrowKernelReadsOnlyItsColumns(t *testing.T) {
	eachISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		const k = 9
		a := make([]float32, mr*k)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for w := 1; w < nr; w++ {
			b := guarded(t, k*w)
			for i := range b {
				b[i] = float32(rng.NormFloat64())
			}
			c := make([]float32, mr*nr)
			narrowKernel(k, a, k, b, w, c, w, make([]float32, k*nr))
			want := make([]float32, mr*w)
			gonumGemm(blas.NoTrans, blas.NoTrans, mr, w, k, a, k, b, w, 0, want, w)
			for i := range mr {
				for j := range w {
					if d := math.Abs(float64(c[i*nr+j] - want[i*w+j])); d > 1e-4 {
						t.Fatalf("w %d: c[%d][%d] = %v, gonum %v", w, i, j, c[i*nr+j], want[i*w+j])
					}
				}
			}
		}
	})
}
