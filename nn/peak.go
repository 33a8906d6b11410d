package nn

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"gonum.org/v1/gonum/blas"
)

// Peak is a core's measured FMA throughput for one instruction set.
type Peak struct {
	ISA    string  `json:"isa"`
	Lanes  int     `json:"lanes"` // float32 values per register
	GFLOPS float64 `json:"gflops"`
}

type fmaLoop struct {
	isa   string
	lanes int
	run   func(n int)
}

// FMAPeaks measures, on the calling goroutine's core, the FMA throughput
// of every instruction set the CPU has that the engine has a loop for
// (none on machines without assembly): the best of several timed runs of
// a loop of independent FMAs on registers, which no real kernel exceeds.
func FMAPeaks() []Peak {
	var peaks []Peak
	for _, l := range fmaLoops() {
		const n = 1 << 22
		l.run(n / 16) // wake the wide units up
		var best float64
		for range 5 {
			t0 := time.Now()
			l.run(n)
			best = max(best, float64(n)*12*float64(l.lanes)*2/time.Since(t0).Seconds()/1e9)
		}
		peaks = append(peaks, Peak{ISA: l.isa, Lanes: l.lanes, GFLOPS: best})
	}
	return peaks
}

// KernelISA names the instruction set of the GEMM kernel in use.
func KernelISA() string { return kernelISA() }

// KernelISAs lists the GEMM kernels this CPU and build can run, fastest
// first; the fastest is in use unless UseKernelISA chose another.
func KernelISAs() []string { return kernelISAs() }

// UseKernelISA makes every GEMM run the named kernel (one of KernelISAs),
// to compare kernels on one machine. Nothing may train meanwhile.
func UseKernelISA(isa string) error { return useISA(isa) }

// useISA makes the GEMM run the named kernel. Nothing may multiply
// meanwhile: the kernel and its block size are package state.
func useISA(isa string) error {
	if !slices.Contains(kernelISAs(), isa) {
		return fmt.Errorf("GEMM kernel %q: this CPU runs %v", isa, kernelISAs())
	}
	selectISA(isa)
	return nil
}

// GEMMShape is one matrix product of a training step as the engine runs it:
// C (M×N) = op(A) (M×K) · op(B) (K×N).
type GEMMShape struct {
	Layer  int    `json:"layer"` // index in the model
	Type   string `json:"type"`  // the layer's spec type
	Pass   string `json:"pass"`  // forward or backward
	TA, TB bool   `json:"-"`
	M      int    `json:"m"`
	N      int    `json:"n"`
	K      int    `json:"k"`
	// Implicit marks a product computed without materialising its B (a
	// convolution's weight gradient read from the input image); run
	// makes it on operands of its own.
	Implicit bool `json:"implicit,omitempty"`
	run      func() func()
}

// FLOPs is the product's arithmetic, 2·M·N·K.
func (s GEMMShape) FLOPs() float64 { return 2 * float64(s.M) * float64(s.N) * float64(s.K) }

func (s GEMMShape) String() string {
	op := func(t bool) byte {
		if t {
			return 'T'
		}
		return 'N'
	}
	if s.Implicit {
		return fmt.Sprintf("%d×%d×%d %c%c implicit", s.M, s.N, s.K, op(s.TA), op(s.TB))
	}
	return fmt.Sprintf("%d×%d×%d %c%c", s.M, s.N, s.K, op(s.TA), op(s.TB))
}

// Run returns a function that computes the product once, on operands of
// its shape made here (random values; speed does not depend on them).
func (s GEMMShape) Run() func() {
	if s.run != nil {
		return s.run()
	}
	fill := randomFill()
	ta, tb := blas.NoTrans, blas.NoTrans
	lda, ldb := s.K, s.N
	if s.TA {
		ta, lda = blas.Trans, s.M
	}
	if s.TB {
		tb, ldb = blas.Trans, s.K
	}
	a, b, c := fill(s.M*s.K), fill(s.K*s.N), make([]float32, s.M*s.N)
	return func() { gemm(ta, tb, s.M, s.N, s.K, a, lda, b, ldb, 0, c, s.N) }
}

// randomFill returns a function that makes slices of seeded random values.
func randomFill() func(n int) []float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	return func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rng.Float32()
		}
		return v
	}
}

// recorder, when set, receives every GEMM the engine runs (StepGEMMs).
var recorder atomic.Pointer[gemmRecorder]

type gemmRecorder struct {
	layer int
	pass  string
	calls []GEMMShape
}

func record(ta, tb blas.Transpose, m, n, k int) {
	r := recorder.Load()
	if r == nil {
		return
	}
	recordShape(GEMMShape{TA: ta == blas.Trans, TB: tb == blas.Trans, M: m, N: n, K: k})
}

// recordShape records s, labelled with the layer and pass running.
func recordShape(s GEMMShape) {
	r := recorder.Load()
	if r == nil {
		return
	}
	s.Layer, s.Pass = r.layer, r.pass
	r.calls = append(r.calls, s)
}

// StepGEMMs returns the GEMMs of one training step of m on n samples, in
// the order they run. It records every GEMM of the process while it runs,
// so nothing else may train beside it (it is for benchmarks).
func (m *Model) StepGEMMs(n int) []GEMMShape {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*m.in.Size())
	for i := range x {
		x[i] = rng.Float32()
	}
	r := &gemmRecorder{}
	recorder.Store(r)
	defer recorder.Store(nil)
	m.backprop(x, make([]int32, n), n, func(layer int, pass string) { r.layer, r.pass = layer, pass })
	for i := range r.calls {
		r.calls[i].Type = m.built[r.calls[i].Layer].Type
	}
	return r.calls
}
