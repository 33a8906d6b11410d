package bench

import (
	"fmt"
	"io"
	"math"

	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/sim"
)

// Bound is a scenario's physical floor on time and bytes to target, for
// a method that needs one pass over the training set: every sample
// shipped once through the narrowest cut between the server and the
// fleet (the server's link, or all devices' links together) and trained
// once on the fleet's combined arithmetic, with shipping and training
// overlapped perfectly and no model ever exchanged. (A single Adam learner
// reaches 0.85 on Fashion-MNIST after about one pass.) No policy can beat
// it; the distance from it is what a better method could still win.
type Bound struct {
	Samples        int     `json:"samples"`
	Bytes          int64   `json:"bytes"`
	LinkSeconds    float64 `json:"link_s"`
	ComputeSeconds float64 `json:"compute_s"`
	Seconds        float64 `json:"seconds"` // the larger of the two
}

// BoundOf returns env's bound.
func BoundOf(env *sim.Env) (Bound, error) {
	m, err := nn.Build(env.Spec, env.Train.Shape, env.Train.Classes)
	if err != nil {
		return Bound{}, fmt.Errorf("bound: %w", err)
	}
	_, trainFLOPs := m.FLOPs()
	sc := env.Scenario
	var mbps, gflops float64
	for _, g := range sc.Workers {
		mbps += float64(g.Count) * g.BandwidthMbps
		gflops += float64(g.Count) * g.GFLOPS
	}
	mbps = math.Min(mbps, sc.PS.BandwidthMbps)
	b := Bound{Samples: env.Train.Len()}
	b.Bytes = int64(b.Samples) * env.Train.WireBytes()
	b.LinkSeconds = float64(b.Bytes) * 8 / (mbps * 1e6)
	b.ComputeSeconds = float64(b.Samples) * float64(trainFLOPs) / (gflops * 1e9)
	b.Seconds = math.Max(b.LinkSeconds, b.ComputeSeconds)
	return b, nil
}

// WriteBound writes the bound and every policy's median distance from it.
func WriteBound(w io.Writer, b Bound, prs []PolicyRuns) {
	fmt.Fprintf(w, "Physical bound (one pass, %d samples, %.1f MB, through the narrowest link in %.2f s and trained on the fleet's arithmetic in %.2f s): **%.2f s, %.1f MB**.\n\n",
		b.Samples, float64(b.Bytes)/1e6, b.LinkSeconds, b.ComputeSeconds, b.Seconds, float64(b.Bytes)/1e6)
	fmt.Fprintln(w, "| policy | time / bound | bytes / bound |")
	fmt.Fprintln(w, "| --- | ---: | ---: |")
	for _, pr := range prs {
		t, by := "miss", "miss"
		if st := pr.Stats; !math.IsInf(st.Time.Median, 0) {
			t = fmt.Sprintf("%.2fx", st.Time.Median/b.Seconds)
			by = fmt.Sprintf("%.2fx", st.Bytes.Median/float64(b.Bytes))
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", pr.Policy, t, by)
	}
}
