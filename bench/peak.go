package bench

import (
	"fmt"
	"time"

	"github.com/hermes-go/hermes/nn"
)

// PeakResult is what `hermes bench engine --peak --json` prints: the
// core's FMA peak, each GEMM of the model's training step at its rate, and
// the step as a whole, each as a fraction of the peak of the cores used.
type PeakResult struct {
	Model     string    `json:"model"`
	Batch     int       `json:"batch"`
	Threads   int       `json:"threads"`
	KernelISA string    `json:"kernel_isa"`
	Peaks     []nn.Peak `json:"peaks"` // per core, for each instruction set
	// PeakGFLOPS is the best per-core peak times Threads: what the
	// fractions are of.
	PeakGFLOPS float64   `json:"peak_gflops"`
	GEMMs      []GEMMRun `json:"gemms"`
	// StepGFLOPS is the step's GEMM arithmetic over its whole time
	// (GEMMs and everything between them).
	StepGFLOPS       float64 `json:"step_gflops"`
	StepOfPeak       float64 `json:"step_of_peak"`
	SamplesPerSecond float64 `json:"samples_per_second"`
}

// GEMMRun is one GEMM of the step, timed alone.
type GEMMRun struct {
	nn.GEMMShape
	Shape  string  `json:"shape"`
	GFLOPS float64 `json:"gflops"`
	OfPeak float64 `json:"of_peak"`
}

// EnginePeak measures c's model against the hardware's limit. The caller
// sets GOMAXPROCS to c.Threads.
func EnginePeak(c EngineConfig) (PeakResult, error) {
	m, err := engineModel(c)
	if err != nil {
		return PeakResult{}, err
	}
	res := PeakResult{Model: c.Model, Batch: c.Batch, Threads: c.Threads, KernelISA: nn.KernelISA(), Peaks: nn.FMAPeaks()}
	for _, p := range res.Peaks {
		res.PeakGFLOPS = max(res.PeakGFLOPS, p.GFLOPS*float64(c.Threads))
	}
	if res.PeakGFLOPS == 0 {
		return res, fmt.Errorf("bench engine --peak: no FMA loop for this CPU (kernel %s): nothing to measure the peak with", res.KernelISA)
	}
	calls := m.StepGEMMs(c.Batch)
	var stepFLOPs float64
	for _, s := range calls {
		stepFLOPs += s.FLOPs()
		g := s.FLOPs() / bestRate(s.Run(), 300*time.Millisecond) / 1e9
		res.GEMMs = append(res.GEMMs, GEMMRun{GEMMShape: s, Shape: s.String(), GFLOPS: g, OfPeak: g / res.PeakGFLOPS})
	}
	e, err := Engine(EngineConfig{Model: c.Model, Batch: c.Batch, Steps: c.Steps, Threads: c.Threads, Rounds: c.Rounds})
	if err != nil {
		return res, err
	}
	res.SamplesPerSecond = e.SamplesPerSecond
	res.StepGFLOPS = stepFLOPs * e.SamplesPerSecond / float64(c.Batch) / 1e9
	res.StepOfPeak = res.StepGFLOPS / res.PeakGFLOPS
	return res, nil
}
