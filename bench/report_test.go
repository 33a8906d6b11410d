package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
)

func reached(policy string, t float64, b int64) Run {
	u := int64(1)
	return Run{Result: sim.Result{Policy: policy, ReachedTarget: true, TimeToTargetS: &t, BytesToTarget: &b, UpdatesToTarget: &u}}
}

func policyRuns(policy string, runs ...Run) PolicyRuns {
	return PolicyRuns{Policy: policy, Runs: runs, Stats: Summarize(runs)}
}

func TestRatiosAgainstHermes(t *testing.T) {
	prs := []PolicyRuns{
		policyRuns("hermes", reached("hermes", 10, 100)),
		policyRuns("bsp", reached("bsp", 130, 262_000_000)),
		policyRuns("asp", Run{Result: sim.Result{Policy: "asp"}}),
	}
	prs[0].Runs[0].Result.BytesToTarget = new(int64(100_000_000))
	prs[0].Stats = Summarize(prs[0].Runs)
	r := Ratios(prs, "hermes")
	if *r[0].Time != 1 || *r[1].Time != 13 || *r[1].Bytes != 2.62 {
		t.Fatalf("ratios %v %v", *r[1].Time, *r[1].Bytes)
	}
	if r[2].Time != nil {
		t.Fatal("a policy whose median missed the target has no ratio")
	}
	var b bytes.Buffer
	Table(&b, prs)
	if !strings.Contains(b.String(), "| bsp | 1/1 | 130.0 | 262.0 | 1 |") || !strings.Contains(b.String(), "13.00x") ||
		!strings.Contains(b.String(), "| asp | 0/1 | miss | miss | miss |") {
		t.Fatalf("table:\n%s", b.String())
	}
	// Without a Hermes median that reached the target there is nothing
	// to divide by.
	if r := Ratios(prs[1:], "hermes"); r[0].Time != nil {
		t.Fatal("ratio without a reference")
	}
}

// A miss counts as infinitely slow: the median of 3 runs with one miss is
// the slower of the two that reached; with two misses it is a miss, written
// as null in JSON.
func TestMedianCountsMissesAsSlowest(t *testing.T) {
	miss := Run{Result: sim.Result{Policy: "p"}}
	st := Summarize([]Run{reached("p", 5, 1), miss, reached("p", 7, 3)})
	if st.Runs != 3 || st.Reached != 2 || st.Time.Median != 7 || st.Bytes.Median != 3 {
		t.Fatalf("%+v", st)
	}
	if !math.IsInf(st.Time.Hi, 1) || st.Time.Lo != 5 {
		t.Fatalf("interval [%v, %v], want [5, +Inf]", st.Time.Lo, st.Time.Hi)
	}
	st = Summarize([]Run{reached("p", 5, 1), miss, miss})
	s := SummarizeAll("x", nil, []PolicyRuns{{Policy: "p", Runs: []Run{reached("p", 5, 1), miss, miss}, Stats: st}})
	b, _ := json.Marshal(s.Results[0])
	if !strings.Contains(string(b), `"time_to_target_s":null`) || !strings.Contains(string(b), `"reached":1`) ||
		!strings.Contains(string(b), `"reached_target":false`) || !strings.Contains(string(b), `"time_to_target_ci":[5,null]`) {
		t.Fatalf("%s", b)
	}
}

// The bootstrap interval holds the median, narrows as runs agree, and is
// the same every time for the same values.
func TestBootstrap(t *testing.T) {
	v := []float64{9, 10, 11, 10.5, 9.5}
	a, b := Bootstrap(v, 1), Bootstrap(v, 1)
	if a != b {
		t.Fatalf("%+v then %+v", a, b)
	}
	if !(a.Lo <= a.Median && a.Median <= a.Hi) || a.Median != 10 || a.Lo < 9 || a.Hi > 11 || a.Lo == a.Hi {
		t.Fatalf("%+v", a)
	}
	same := Bootstrap([]float64{4, 4, 4}, 1)
	if same.Lo != 4 || same.Hi != 4 {
		t.Fatalf("%+v", same)
	}
	if Median([]float64{1, 3}) != 2 || !math.IsInf(Median([]float64{1, math.Inf(1)}), 1) {
		t.Fatal("even medians")
	}
}

// Every tuned policy gets the same number of grid points, and every axis
// has an interior.
func TestGridsAreEqual(t *testing.T) {
	for p, axes := range Grids {
		g, err := GridFor(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(g) != 27 {
			t.Errorf("%s: %d grid points, want 27", p, len(g))
		}
		for _, a := range axes {
			if len(a.Values) < 3 {
				t.Errorf("%s.%s: %v has no interior", p, a.Name, a.Values)
			}
			if a.Max != 0 && slices.Max(a.Values) > a.Max {
				t.Errorf("%s.%s: %v passes its limit %v", p, a.Name, a.Values, a.Max)
			}
		}
	}
	// The mini-batch limit is the one the Hermes allocator has.
	if maxMiniBatch != slices.Max(protocol.Defaults().MiniBatches) {
		t.Errorf("mini-batch limit %d, allocator's largest %d", maxMiniBatch, slices.Max(protocol.Defaults().MiniBatches))
	}
	if _, err := GridFor("hermes-mean"); err == nil {
		t.Error("an ablation has a grid of its own")
	}
}

// The table the binary embeds comes from the grids: every tuned value is a
// grid point and lies inside its axis, not on an edge (where a wider grid
// might find better).
func TestTunedInterior(t *testing.T) {
	for p := range Grids {
		h, ok := harness.Tuned[p]
		if !ok {
			t.Errorf("%s: not in tuned.json", p)
			continue
		}
		if !InGrid(p, h) {
			t.Errorf("%s: %+v is not a point of its grid", p, h)
		}
		if e := OnEdge(p, h); len(e) > 0 {
			t.Errorf("%s: %+v is on the edge of %v: widen the grid and tune again", p, h, e)
		}
	}
}

func TestBetter(t *testing.T) {
	a, b := Summarize([]Run{reached("a", 5, 1)}), Summarize([]Run{reached("b", 6, 1)})
	if !Better(a, b) || Better(b, a) {
		t.Fatal("sooner is better")
	}
	miss := Summarize([]Run{{Result: sim.Result{BestAccuracy: 0.9}}})
	if Better(miss, b) || !Better(b, miss) {
		t.Fatal("reaching the target beats any accuracy")
	}
	worse := Summarize([]Run{{Result: sim.Result{BestAccuracy: 0.8}}})
	if !Better(miss, worse) {
		t.Fatal("between misses, higher accuracy wins")
	}
}

// Tuning one policy again keeps the others' values; a table from other
// seeds is not merged into.
func TestWriteTunedMerges(t *testing.T) {
	path := t.TempDir() + "/tuned.json"
	base := harness.TunedTable{Commands: []string{"a"}, Scenarios: []string{"edge-8"}, Seeds: []uint64{1001},
		Policies: map[string]harness.Hyper{"hermes": {LocalLR: 0.02, ServerLR: 0.005, Epochs: 5}, "bsp": {LocalLR: 0.02, ServerLR: 0.2, MiniBatch: 16}}}
	if err := WriteTuned(path, base); err != nil {
		t.Fatal(err)
	}
	again := harness.TunedTable{Commands: []string{"b"}, Scenarios: []string{"edge-8"}, Seeds: []uint64{1001},
		Policies: map[string]harness.Hyper{"hermes": {LocalLR: 0.05, ServerLR: 0.01, Epochs: 5}}}
	if err := WriteTuned(path, again); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got, err := harness.ParseTuned(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Policies["hermes"].LocalLR != 0.05 || got.Policies["bsp"].ServerLR != 0.2 || strings.Join(got.Commands, ",") != "a,b" {
		t.Fatalf("%+v", got)
	}
	other := again
	other.Seeds = []uint64{7}
	if err := WriteTuned(path, other); err == nil || !strings.Contains(err.Error(), "write a new file") {
		t.Fatalf("merged a table from other seeds: %v", err)
	}
}
