package protocol

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// randomRun drives every policy with seeded random losses and times,
// workers leaving and joining, until the server stops or 2,000 steps pass.
func randomRun(t *testing.T, policy string, seed uint64) (log string, n *network) {
	t.Helper()
	s := Defaults()
	s.Policy, s.Chunk, s.MinChunk, s.MiniBatch, s.MinWorkers = policy, 20, 4, 4, 3
	s.Patience = 40
	n, err := newNetwork(s, make([]float32, 3), 500, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	for w := range 4 {
		if err := n.register(WorkerID(w), int64(rng.IntN(4))<<20); err != nil {
			t.Fatal(err)
		}
	}
	next := WorkerID(4)
	for step := 0; step < 2000 && !n.server.Stopped(); step++ {
		n.now += Time(rng.IntN(1000)) * time.Millisecond
		switch r := rng.IntN(100); {
		case r < 2 && len(n.workers) > 1:
			ids := n.workerIDs()
			n.leave(ids[rng.IntN(len(ids))])
		case r < 4:
			n.register(next, 0)
			next++
		default:
			var busy []WorkerID
			for id := range n.pending {
				busy = append(busy, id)
			}
			if len(busy) == 0 {
				continue
			}
			slices.Sort(busy)
			w := busy[rng.IntN(len(busy))]
			loss := 2 / (1 + float64(step)/50) * (0.8 + 0.4*rng.Float64())
			if err := n.trained(w, loss, Time(1+rng.IntN(5*int(w)+1))*time.Second, float32(rng.NormFloat64()*0.1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n.flush(), n
}

func TestRunsAreDeterministicAndLoseNoChunk(t *testing.T) {
	for _, p := range PolicyNames() {
		t.Run(p, func(t *testing.T) {
			a, n := randomRun(t, p, 7)
			b, _ := randomRun(t, p, 7)
			if a != b {
				t.Fatal("same seed, different traces")
			}
			if !strings.Contains(a, "applied v1 ") {
				t.Fatalf("no global-model change in the run:\n%.2000s", a)
			}
			// Every chunk handed out is either acknowledged or still
			// held by a live worker: a departed worker's chunks were
			// handed to someone else.
			live := map[WorkerID]bool{}
			for id := range n.workers {
				live[id] = true
			}
			for id, as := range n.server.Dispenser().out {
				if !live[as.worker] {
					t.Errorf("chunk %d is held by departed worker %d", id, as.worker)
				}
			}
			if st := n.server.Dispenser().Stats(); st.Cut != st.Acked+st.Outstanding+st.Queued || st.Acked == 0 {
				t.Errorf("chunk accounting does not add up: %+v", st)
			}
		})
	}
}

func TestDispenserCoversEveryPass(t *testing.T) {
	d := NewDispenser(10, rand.New(rand.NewPCG(1, 2)))
	seen := map[int32]int{}
	for d.Pass() < 2 {
		c := d.Next(1, 3)
		for _, i := range c.Indices {
			seen[i]++
		}
		if err := d.Ack(1, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	for i := range int32(10) {
		if seen[i] != 2 {
			t.Fatalf("sample %d used %d times in 2 passes", i, seen[i])
		}
	}
	if err := d.Ack(1, 0); err == nil {
		t.Fatal("acknowledging a chunk twice should fail")
	}
	c := d.Next(1, 3)
	if err := d.Ack(2, c.ID); err == nil {
		t.Fatal("another worker acknowledged w1's chunk")
	}
	c2 := d.Next(1, 3)
	if n := d.Release(1); n != 2 || d.Outstanding() != 0 {
		t.Fatalf("released %d, outstanding %d", n, d.Outstanding())
	}
	if r := d.Next(3, 100); r.ID != c.ID || !slices.Equal(r.Indices, c.Indices) {
		t.Fatalf("first requeued chunk is %d, want %d", r.ID, c.ID)
	}
	if r := d.Next(3, 100); r.ID != c2.ID {
		t.Fatalf("second requeued chunk is %d, want %d", r.ID, c2.ID)
	}
}

func TestWorkerAccumulatesUntilMajor(t *testing.T) {
	s := Defaults()
	s.Policy, s.Alpha = "hermes-paper", -1 // the z-score gate
	w, err := NewWorker(1, s)
	if err != nil {
		t.Fatal(err)
	}
	work := func(id int64) Work { return Work{Chunk: Chunk{ID: id}, MiniBatch: 2, Epochs: 1} }
	w.Step(WorkArrived{Work: work(0)})
	if len(w.Ready()) != 0 {
		t.Fatal("trained before it had a model")
	}
	w.Step(ModelArrived{Version: 0})
	if a := w.Ready(); len(a) != 1 || a[0].(Train).Work.Chunk.ID != 0 {
		t.Fatalf("actions %v, want train chunk 0", a)
	}
	w.Step(WorkArrived{Work: work(1)})
	w.Step(Trained{ChunkID: 0, Grad: []float32{1, 2}, Loss: 2})
	a := w.Ready()
	if _, ok := a[0].(SendReport); !ok || a[1].(Train).Work.Chunk.ID != 1 {
		t.Fatalf("actions %#v, want a minor report and the next chunk", a)
	}
	w.Step(WorkArrived{Work: work(2)})
	w.Step(Trained{ChunkID: 1, Grad: []float32{1, 1}, Loss: 1})
	a = w.Ready()
	up, ok := a[0].(SendUpdate)
	if !ok || len(a) != 1 {
		t.Fatalf("actions %#v, want only an update", a)
	}
	if !slices.Equal(up.Update.Grad, []float32{2, 3}) {
		t.Fatalf("update %v, want the sum [2 3]", up.Update.Grad)
	}
	// Waiting for the model: no training until it arrives.
	w.Step(WorkArrived{Work: work(3)})
	if len(w.Ready()) != 0 {
		t.Fatal("trained while waiting for the model")
	}
	w.Step(ModelArrived{Version: 1})
	w.Ready()
	w.Step(Trained{ChunkID: 2, Grad: []float32{5, 5}, Loss: 9})
	w.Step(Trained{ChunkID: 3, Grad: []float32{1, 1}, Loss: 0.5})
	for _, a := range w.Ready() {
		if up, ok := a.(SendUpdate); ok && !slices.Equal(up.Update.Grad, []float32{6, 6}) {
			t.Fatalf("second update %v: the sum was not cleared after the first", up.Update.Grad)
		}
	}
}

func TestWorkerRejectsInconsistentEvents(t *testing.T) {
	w, _ := NewWorker(1, Defaults())
	if err := w.Step(Trained{ChunkID: 5}); err == nil {
		t.Fatal("result for a chunk never assigned")
	}
	w.Step(ModelArrived{Version: 3})
	if err := w.Step(ModelArrived{Version: 2}); err == nil {
		t.Fatal("an older model replaced a newer one")
	}
	w.Step(WorkArrived{Work: Work{Chunk: Chunk{ID: 1}}})
	w.Step(Trained{ChunkID: 1, Grad: []float32{1}, Loss: 1})
	w.Step(WorkArrived{Work: Work{Chunk: Chunk{ID: 2}}})
	if err := w.Step(Trained{ChunkID: 2, Grad: []float32{1, 2}, Loss: 1}); err == nil {
		t.Fatal("gradient of a different length accepted")
	}
	if err := w.Step("hello"); err == nil {
		t.Fatal("unknown event accepted")
	}
}

func TestSettingsValidateAndLoad(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Settings){
		`policy = "raft"`: func(s *Settings) { s.Policy = "raft" },
		"alpha = 0.5":     func(s *Settings) { s.Alpha = 0.5 },
		"beta = 1":        func(s *Settings) { s.Beta = 1 },
		"window = 1":      func(s *Settings) { s.Window = 1 },
		"chunk = 1":       func(s *Settings) { s.Chunk = 1 },
		"server_lr = 0":   func(s *Settings) { s.ServerLR = 0 },
		"mini_batches":    func(s *Settings) { s.MiniBatches = []int{4, 0} },
		"patience = 0":    func(s *Settings) { s.Patience = 0 },
	}
	for want, mod := range cases {
		s := Defaults()
		mod(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	s, err := ParseSettings([]byte("policy: ssp\nstaleness: 2\nmax_time: 90m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Policy != "ssp" || s.Staleness != 2 || s.MaxTime != 90*time.Minute || s.Window != 10 {
		t.Fatalf("parsed %+v", s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ParseSettings(b); err != nil || back.MaxTime != s.MaxTime || back.Policy != "ssp" {
		t.Fatalf("settings through JSON: %+v, %v", back, err)
	}
	if _, err := ParseSettings([]byte(`{"alpha": -1, "windw": 3}`)); err == nil || !strings.Contains(err.Error(), `"windw"`) {
		t.Fatalf("unknown field: %v", err)
	}
	if _, err := ParseSettings([]byte(`{"lambda": 0}`)); err == nil || !strings.Contains(err.Error(), "lambda = 0") {
		t.Fatalf("invalid value: %v", err)
	}
	if _, err := ParseSettings([]byte(`{"max_time": "soon"}`)); err == nil || !strings.Contains(err.Error(), "max_time") {
		t.Fatalf("bad duration: %v", err)
	}
}

// The protocol is pure: no network, no OS, no clock, no goroutines, no
// engine. Drivers bring all of those.
func TestPackageIsPure(t *testing.T) {
	allowed := map[string]bool{"bytes": true, "cmp": true, "encoding/json": true, "flag": true, "fmt": true,
		"math": true, "math/rand/v2": true, "slices": true, "sort": true, "strings": true, "time": true,
		"sigs.k8s.io/yaml": true}
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); !allowed[p] {
				t.Errorf("%s imports %s", f, p)
			}
		}
		for _, bad := range []string{"time.Now", "time.Since", "time.Sleep", "time.After", "go func", "rand.Int", "rand.Float"} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
}

// An update with a NaN or an infinity anywhere is refused, naming where.
func TestUpdateWithNonFiniteValueIsRefused(t *testing.T) {
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		srv := newTestServer(t, func(s *Settings) { s.MinWorkers = 1 }, []float32{1, 2, 3, 4}, quadVal{})
		srv.Step(0, Register{Worker: 1})
		chunk := chunkOf(srv.Ready(), 1)
		u := Update{Report: Report{Worker: 1, ChunkID: chunk, Loss: 1, Decision: Decision{Major: true}},
			Grad: []float32{0.1, 0.2, float32(bad), 0.4}}
		if err := srv.Step(time.Second, u); err == nil || !strings.Contains(err.Error(), "non-finite value at 2") {
			t.Fatalf("%v in an update: %v", bad, err)
		}
		if srv.Version() != 0 || srv.Params()[2] != 3 {
			t.Fatalf("the refused update changed the model: %v", srv.Params())
		}
	}
}
