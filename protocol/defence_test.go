package protocol

import (
	"math"
	"slices"
	"testing"
)

// Defences against poisoned updates: each test shows the defence at work
// and, where it can be turned off, that the same update gets through
// without it.

// startOne registers worker 1 on a server of policy and returns the chunk
// it was given first.
func startOne(t *testing.T, srv *Server) int64 {
	t.Helper()
	if err := srv.Step(0, Register{Worker: 1}); err != nil {
		t.Fatal(err)
	}
	return chunkOf(srv.Ready(), 1)
}

// discarded returns the reasons of the Discarded actions in actions, and
// whether worker 1 was sent a model.
func discarded(actions []Action) (reasons []string, answered bool) {
	for _, a := range actions {
		switch a := a.(type) {
		case Discarded:
			reasons = append(reasons, a.Reason)
		case SendModel:
			answered = answered || a.To == 1
		}
	}
	return reasons, answered
}

// An update whose step would dwarf the model is discarded, even as the
// first update, when there is no history to compare with; its sender is
// answered and trains on. Without the bound it wrecks the model.
func TestNormBoundAgainstTheModel(t *testing.T) {
	for _, bound := range []float64{10, 0} {
		srv := newTestServer(t, func(s *Settings) { s.Policy, s.MiniBatch, s.ServerLR, s.NormBound = "asp", 2, 0.1, bound }, []float32{1, 1}, &scriptedVal{losses: []float64{1}})
		c := startOne(t, srv)
		if err := srv.Step(1, Update{Report: Report{Worker: 1, ChunkID: c}, Grad: []float32{math.MaxFloat32, 0}}); err != nil {
			t.Fatal(err)
		}
		reasons, answered := discarded(srv.Ready())
		p := srv.Params()
		if bound > 0 && (!slices.Equal(reasons, []string{DiscardNorm}) || !answered || p[0] != 1 || srv.Version() != 0) {
			t.Fatalf("bound %v: discarded %v, answered %v, params %v, version %d", bound, reasons, answered, p, srv.Version())
		}
		if bound == 0 && (reasons != nil || p[0] > -1e36) {
			t.Fatalf("without the bound: discarded %v, params %v: the test would not see a poisoning", reasons, p)
		}
	}
}

// Against recent updates: 4 of norm 1, then one of norm 20 (twice the
// bound of 10) is discarded, one of norm 5 is merged.
func TestNormBoundAgainstRecentUpdates(t *testing.T) {
	srv := newTestServer(t, func(s *Settings) { s.Policy, s.MiniBatch, s.ServerLR = "asp", 2, 0.001 }, []float32{0, 0}, &scriptedVal{losses: []float64{1}})
	c := startOne(t, srv)
	for i, g := range [][]float32{{1, 0}, {0, 1}, {1, 0}, {0, 1}, {20, 0}, {0, 5}} {
		if err := srv.Step(Time(i+1), Update{Report: Report{Worker: 1, ChunkID: c + int64(i)}, Grad: g}); err != nil {
			t.Fatal(err)
		}
		reasons, _ := discarded(srv.Ready())
		if want := i == 4; (reasons != nil) != want {
			t.Fatalf("update %d of norm %v: discarded %v", i, norm(g), reasons)
		}
	}
	if srv.Version() != 5 {
		t.Fatalf("version %d, want 5 merged updates", srv.Version())
	}
}

// An update of a model version the server never had, or older than
// MaxStaleness, is discarded.
func TestStaleUpdates(t *testing.T) {
	srv := newTestServer(t, func(s *Settings) { s.Policy, s.MiniBatch, s.MaxStaleness, s.ServerLR = "asp", 2, 2, 0.001 }, []float32{0}, &scriptedVal{losses: []float64{1}})
	c := startOne(t, srv)
	for i, base := range []int64{0, 1, 2, 7, 0, 3} {
		if err := srv.Step(Time(i+1), Update{Report: Report{Worker: 1, ChunkID: c + int64(i)}, Base: base, Grad: []float32{1}}); err != nil {
			t.Fatal(err)
		}
		reasons, _ := discarded(srv.Ready())
		// Versions before each update: 0, 1, 2, 3, 3 (7 is from the
		// future), 3 (0 is 3 behind).
		if want := base == 7 || (i == 4 && base == 0); !slices.Equal(reasons, map[bool][]string{true: {DiscardStale}}[want]) {
			t.Fatalf("update %d on version %d at server version %d: discarded %v", i, base, srv.Version(), reasons)
		}
	}
}

// A merge that leaves the model non-finite is rolled back: the model and
// version are those before it.
func TestNonFiniteMergeIsRolledBack(t *testing.T) {
	srv := newTestServer(t, func(s *Settings) { s.Policy, s.MiniBatch, s.ServerLR, s.NormBound = "asp", 2, 1, 0 }, []float32{3e38, 1}, &scriptedVal{losses: []float64{1}})
	c := startOne(t, srv)
	if err := srv.Step(1, Update{Report: Report{Worker: 1, ChunkID: c}, Grad: []float32{-2e38, 1}}); err != nil {
		t.Fatal(err)
	}
	reasons, answered := discarded(srv.Ready())
	if p := srv.Params(); !slices.Equal(reasons, []string{DiscardNonFinite}) || !answered || p[0] != 3e38 || p[1] != 1 || srv.Version() != 0 {
		t.Fatalf("discarded %v, answered %v, params %v, version %d", reasons, answered, p, srv.Version())
	}
}

// Loss-aware merging discards an update whose candidate model would more
// than double the validation loss (RejectWorse 1), and rolls the
// aggregate back; with the check off, the same update is merged.
func TestLossAwareRejectsMuchWorse(t *testing.T) {
	for _, worse := range []float64{1, 0} {
		// Losses: start 1; first update: after 0.9; second: candidate 2.5.
		val := &scriptedVal{losses: []float64{1, 0.9, 2.5, 2.5}}
		srv := newTestServer(t, func(s *Settings) { s.ServerLR, s.RejectWorse, s.NormBound = 0.5, worse, 0 }, []float32{1, 1}, val)
		c := startOne(t, srv)
		srv.Step(1, Update{Report: Report{Worker: 1, ChunkID: c}, Grad: []float32{2, 0}})
		srv.Ready()
		srv.Step(2, Update{Report: Report{Worker: 1, ChunkID: c + 1}, Grad: []float32{0, 50}})
		reasons, _ := discarded(srv.Ready())
		p := srv.Params()
		if worse > 0 && (!slices.Equal(reasons, []string{DiscardWorse}) || p[0] != 0 || p[1] != 1 || !slices.Equal(srv.agg, []float32{2, 0})) {
			t.Fatalf("discarded %v, params %v, aggregate %v", reasons, p, srv.agg)
		}
		if worse == 0 && (reasons != nil || p[1] == 1) {
			t.Fatalf("without the check: discarded %v, params %v", reasons, p)
		}
	}
}

// A round of BSP combines its updates by Aggregate: the mean follows the
// outlier, the coordinate-wise median and trimmed mean do not.
func TestRobustRoundAggregation(t *testing.T) {
	for agg, want := range map[string]float32{"mean": 103.0 / 3, "median": 2, "trimmed-mean": 2} {
		srv := newTestServer(t, func(s *Settings) {
			s.Policy, s.MiniBatch, s.MinWorkers, s.ServerLR, s.NormBound, s.Aggregate, s.Trim = "bsp", 2, 3, 1, 0, agg, 0.34
		}, []float32{0}, &scriptedVal{losses: []float64{1}})
		for w := range WorkerID(3) {
			srv.Step(0, Register{Worker: w + 1})
		}
		first := srv.Ready()
		for w, g := range []float32{1, 2, 100} {
			id := WorkerID(w + 1)
			if err := srv.Step(1, Update{Report: Report{Worker: id, ChunkID: chunkOf(first, id)}, Grad: []float32{g}}); err != nil {
				t.Fatal(err)
			}
		}
		if p := srv.Params()[0]; math.Abs(float64(p+want)) > 1e-5 || srv.Version() != 1 {
			t.Errorf("%s: params %v, want %v after one round", agg, p, -want)
		}
	}
}

// A worker that sent its round's update and then left still counts in that
// round: the round ends without waiting for it, and the mean is over the
// updates it holds (its sum once counted the leaver's gradient but divided
// by one update fewer).
func TestRoundKeepsTheUpdateOfAWorkerThatLeft(t *testing.T) {
	for agg, want := range map[string]float32{"mean": 6.0 / 3, "median": 2} {
		srv := newTestServer(t, func(s *Settings) {
			s.Policy, s.MiniBatch, s.MinWorkers, s.ServerLR, s.NormBound, s.Aggregate = "bsp", 2, 3, 1, 0, agg
		}, []float32{0}, &scriptedVal{losses: []float64{1}})
		for w := range WorkerID(3) {
			srv.Step(0, Register{Worker: w + 1})
		}
		first := srv.Ready()
		if err := srv.Step(1, Update{Report: Report{Worker: 1, ChunkID: chunkOf(first, 1)}, Grad: []float32{1}}); err != nil {
			t.Fatal(err)
		}
		if err := srv.Step(2, Leave{Worker: 1}); err != nil {
			t.Fatal(err)
		}
		for _, w := range []WorkerID{2, 3} {
			if err := srv.Step(3, Update{Report: Report{Worker: w, ChunkID: chunkOf(first, w)}, Grad: []float32{float32(w)}}); err != nil {
				t.Fatal(err)
			}
		}
		if p := srv.Params()[0]; math.Abs(float64(p+want)) > 1e-5 || srv.Version() != 1 {
			t.Errorf("%s: params %v (version %d), want %v after one round of updates 1, 2, 3", agg, p, srv.Version(), -want)
		}
	}
}
