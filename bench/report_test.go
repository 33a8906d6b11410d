package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
)

func reached(policy string, t float64, b int64) Run {
	u := int64(1)
	return Run{Result: sim.Result{Policy: policy, ReachedTarget: true, TimeToTargetS: &t, BytesToTarget: &b, UpdatesToTarget: &u}}
}

func TestRatiosAgainstHermes(t *testing.T) {
	runs := []Run{reached("hermes", 10, 100), reached("bsp", 130, 262), {Result: sim.Result{Policy: "asp"}}}
	r := Ratios(runs, "hermes")
	if *r[0].Time != 1 || *r[1].Time != 13 || *r[1].Bytes != 2.62 {
		t.Fatalf("ratios %v %v", *r[1].Time, *r[1].Bytes)
	}
	if r[2].Time != nil {
		t.Fatal("a run that missed the target has no ratio")
	}
	var b bytes.Buffer
	Table(&b, runs)
	if !strings.Contains(b.String(), "| bsp | true | 130.0 | 262 | 1 |") || !strings.Contains(b.String(), "13.00x") {
		t.Fatalf("table:\n%s", b.String())
	}
	// Without a Hermes run that reached the target there is nothing to
	// divide by.
	if r := Ratios(runs[1:], "hermes"); r[0].Time != nil {
		t.Fatal("ratio without a reference")
	}
}

func TestGridFor(t *testing.T) {
	for _, name := range protocol.PolicyNames() {
		p, _ := protocol.PolicyNamed(name)
		g := GridFor(p)
		locals := map[float64]bool{}
		for _, h := range g {
			locals[h.LocalLR] = true
		}
		if p.MiniBatchUnit && len(locals) != 1 {
			t.Errorf("%s: %d local rates searched; its local step is discarded", name, len(locals))
		}
		if !p.MiniBatchUnit && len(locals) != len(TuneGrid.Local) {
			t.Errorf("%s: %d local rates searched", name, len(locals))
		}
	}
	a, b := reached("a", 5, 1), reached("b", 6, 1)
	if !Better(a.Result, b.Result) || Better(b.Result, a.Result) {
		t.Fatal("sooner is better")
	}
	miss := sim.Result{BestAccuracy: 0.9}
	if Better(miss, b.Result) || !Better(b.Result, miss) {
		t.Fatal("reaching the target beats any accuracy")
	}
}
