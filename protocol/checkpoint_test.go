package protocol

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// checkpointedRun trains three workers for a while and returns the server's
// checkpoint, with chunks still held by the workers.
func checkpointedRun(t *testing.T, policy string) (Settings, Checkpoint) {
	t.Helper()
	s := Defaults()
	s.Policy, s.Chunk, s.MinChunk, s.MiniBatch, s.MinWorkers, s.Patience = policy, 20, 4, 4, 3, 1000
	n, err := newNetwork(s, make([]float32, 3), 500, 3)
	if err != nil {
		t.Fatal(err)
	}
	for w := range 3 {
		n.register(WorkerID(w), 0)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for step := range 40 {
		n.now += time.Second
		for _, w := range n.workerIDs() {
			if _, busy := n.pending[w]; busy {
				loss := 2 / (1 + float64(step)/5) * (0.9 + 0.2*rng.Float64())
				if err := n.trained(w, loss, time.Second, 0.1); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if n.server.Version() == 0 || n.server.Dispenser().Outstanding() == 0 {
		t.Fatalf("version %d, %d chunks held: not a mid-run checkpoint", n.server.Version(), n.server.Dispenser().Outstanding())
	}
	return s, n.server.Checkpoint()
}

// A restored server has the checkpointed state, hands the chunks the old
// workers held out first, and continues the version count.
func TestCheckpointRestoreContinues(t *testing.T) {
	for _, policy := range []string{"hermes", "bsp", "ssp"} {
		t.Run(policy, func(t *testing.T) {
			s, cp := checkpointedRun(t, policy)
			srv, err := RestoreServer(s, cp, 500, quadVal{}, rand.New(rand.NewPCG(3, 4)))
			if err != nil {
				t.Fatal(err)
			}
			if got := srv.Checkpoint(); !reflect.DeepEqual(got, cp) {
				t.Fatalf("restored state differs:\n got %+v\nwant %+v", got.Data.Queue, cp.Data.Queue)
			}
			if len(cp.Data.Queue) == 0 {
				t.Fatal("the old workers' chunks are not queued")
			}
			// The run wants 3 workers: a resumed run waits for them
			// again, as a fresh one does.
			for _, w := range []WorkerID{12, 11} {
				if err := srv.Step(cp.Now, Register{Worker: w}); err != nil {
					t.Fatal(err)
				}
				if acts := srv.Ready(); len(acts) != 0 {
					t.Fatalf("%d of 3 workers back: actions %+v, want none", len(srv.ids), acts)
				}
			}
			if err := srv.Step(cp.Now, Register{Worker: 10}); err != nil {
				t.Fatal(err)
			}
			acts := srv.Ready()
			if m, ok := acts[0].(SendModel); !ok || m.Version != cp.Version {
				t.Fatalf("first action %+v, want the model at version %d", acts[0], cp.Version)
			}
			if id := chunkOf(acts, 10); id != cp.Data.Queue[0].ID {
				t.Fatalf("first chunk %d, want the requeued %d", id, cp.Data.Queue[0].ID)
			}
			// One update from each (a round, for bsp) moves the version on
			// from the checkpoint's.
			for _, w := range []WorkerID{10, 11, 12} {
				u := Update{Report: Report{Worker: w, ChunkID: chunkOf(acts, w), Loss: 1, Decision: Decision{Major: true}},
					Grad: []float32{1, 1, 1}, Base: cp.Version}
				if err := srv.Step(cp.Now+time.Second, u); err != nil {
					t.Fatal(err)
				}
			}
			if srv.Version() <= cp.Version {
				t.Fatalf("version %d after an update from every worker, want more than %d", srv.Version(), cp.Version)
			}
		})
	}
}

// A checkpoint that does not fit the run is refused with a reason.
func TestRestoreRefusesForeignCheckpoints(t *testing.T) {
	s, cp := checkpointedRun(t, "hermes-paper") // a policy with a running aggregate
	cases := []struct {
		name string
		mod  func(*Settings, *Checkpoint) int
		want string
	}{
		{"policy", func(s *Settings, _ *Checkpoint) int { s.Policy = "asp"; return 500 }, "policy"},
		{"train size", func(*Settings, *Checkpoint) int { return 400 }, "training set has 400"},
		{"not a permutation", func(_ *Settings, c *Checkpoint) int { c.Data.Order[0] = c.Data.Order[1]; return 500 }, "permutation"},
		{"nan", func(_ *Settings, c *Checkpoint) int { c.Params[1] = float32(math.NaN()); return 500 }, "not finite"},
		{"ended", func(_ *Settings, c *Checkpoint) int { c.Stopped = true; return 500 }, "ended"},
		{"queue", func(_ *Settings, c *Checkpoint) int { c.Data.Queue[0].Indices[0] = 500; return 500 }, "sample 500"},
		{"agg", func(_ *Settings, c *Checkpoint) int { c.Agg = c.Agg[:1]; return 500 }, "aggregate"},
	}
	for _, c := range cases {
		s2, cp2 := s, deepCopy(cp)
		n := c.mod(&s2, &cp2)
		_, err := RestoreServer(s2, cp2, n, quadVal{}, rand.New(rand.NewPCG(1, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

func deepCopy(cp Checkpoint) Checkpoint {
	c := cp
	c.Params = append([]float32(nil), cp.Params...)
	c.Agg = append([]float32(nil), cp.Agg...)
	c.Data.Order = append([]int32(nil), cp.Data.Order...)
	c.Data.Queue = nil
	for _, q := range cp.Data.Queue {
		c.Data.Queue = append(c.Data.Queue, Chunk{ID: q.ID, Indices: append([]int32(nil), q.Indices...)})
	}
	return c
}

// A start signal begins training with the workers there are, short of
// MinWorkers; with none there it is refused.
func TestStartSignal(t *testing.T) {
	srv := newTestServer(t, func(s *Settings) { s.MinWorkers = 3 }, []float32{1}, quadVal{})
	if err := srv.Step(0, Start{}); err == nil {
		t.Fatal("started with no worker")
	}
	srv.Step(0, Register{Worker: 1})
	if acts := srv.Ready(); len(acts) != 0 {
		t.Fatalf("one of three workers: %v", acts)
	}
	if err := srv.Step(0, Start{}); err != nil {
		t.Fatal(err)
	}
	acts := srv.Ready()
	if _, ok := acts[0].(SendModel); !ok || chunkOf(acts, 1) < 0 {
		t.Fatalf("after the start signal: %v", acts)
	}
	srv.Step(0, Register{Worker: 2})
	if chunkOf(srv.Ready(), 2) < 0 {
		t.Fatal("a worker joining after the start got no work")
	}
}
