package protocol

import (
	"math"
	"testing"
)

// Each ablation differs from hermes in one mechanism. These tests pin the
// mechanism each one removes, and that it keeps the rest.

// hermes sends every chunk as an update; hermes-gup, on the same held-out
// split, gates them: the gate is the only difference.
func TestHermesSendsEveryChunkOnTheSameHoldOut(t *testing.T) {
	holdOut := map[string]float64{}
	for _, p := range []string{"hermes", "hermes-gup"} {
		srv := newTestServer(t, func(s *Settings) { s.Policy = p }, []float32{0}, &scriptedVal{losses: []float64{1}})
		srv.Step(0, Register{Worker: 1})
		for _, a := range srv.Ready() {
			if as, ok := a.(Assign); ok {
				holdOut[p] = as.Work.HoldOut
			}
		}
	}
	if holdOut["hermes"] != Defaults().HoldOut || holdOut["hermes-gup"] != holdOut["hermes"] {
		t.Fatalf("held-out fractions %v, want both %v", holdOut, Defaults().HoldOut)
	}
	sent := map[string]int{}
	for _, p := range []string{"hermes", "hermes-gup"} {
		s := Defaults()
		s.Policy = p
		w, _ := NewWorker(1, s)
		w.Step(ModelArrived{Version: 0})
		// A flat loss: the gate never sees a significant drop.
		for i := range 20 {
			w.Step(WorkArrived{Work: Work{Chunk: Chunk{ID: int64(i)}, MiniBatch: 1, Epochs: 1}})
			w.Ready()
			w.Step(Trained{ChunkID: int64(i), Grad: []float32{1}, Loss: 1, BaseLoss: 1})
			for _, a := range w.Ready() {
				if _, ok := a.(SendUpdate); ok {
					sent[p]++
					w.Step(ModelArrived{Version: int64(sent[p])})
					w.Ready()
				}
			}
		}
	}
	if sent["hermes"] != 20 || sent["hermes-gup"] >= 20 {
		t.Fatalf("updates sent of 20 chunks: %v; want hermes 20 and hermes-gup fewer", sent)
	}
}

// hermes-noalloc keeps every worker's chunk and mini-batch however unequal
// their times; hermes resizes the straggler.
func TestNoAllocNeverResizes(t *testing.T) {
	for _, p := range []string{"hermes", "hermes-noalloc"} {
		srv := newTestServer(t, func(s *Settings) { s.Policy = p; s.Chunk, s.MinChunk = 10, 2 }, []float32{0}, &scriptedVal{losses: []float64{1}})
		srv.s.SampleBytes = 1
		ids := []WorkerID{1, 2, 3, 4, 5}
		pending := map[WorkerID][]int64{}
		for _, id := range ids {
			srv.Step(0, Register{Worker: id})
		}
		resized := 0
		collect := func() {
			for _, a := range srv.Ready() {
				switch a := a.(type) {
				case Assign:
					pending[a.To] = append(pending[a.To], a.Work.Chunk.ID)
				case Resized:
					resized++
				}
			}
		}
		collect()
		for round := range 4 {
			for _, id := range ids {
				secs := Time(1e9)
				if id == 5 {
					secs *= 20 // the straggler
				}
				c := pending[id][0]
				pending[id] = pending[id][1:]
				train, _ := SplitChunk(10, Defaults().HoldOut) // a fifth of 100 samples, in two chunks
				if err := srv.Step(Time(round+1)*1e9, Report{Worker: id, ChunkID: c, TrainTime: secs, Samples: 5 * train, Steps: 5 * train / 16}); err != nil {
					t.Fatal(err)
				}
				collect()
			}
		}
		if p == "hermes" && resized == 0 {
			t.Fatal("hermes never resized a straggler 20 times slower")
		}
		if p == "hermes-noalloc" && resized != 0 {
			t.Fatalf("hermes-noalloc resized %d times", resized)
		}
	}
}

// hermes-mean weighs every update equally where hermes-lossaware (the
// paper's merge) weighs by the loss each would give.
func TestMeanWeighsEqually(t *testing.T) {
	// Validation losses in call order: start 2; first update: after 1;
	// second: candidate 0.5, after 0.8.
	final := map[string][]float32{}
	for _, p := range []string{"hermes-lossaware", "hermes-mean"} {
		srv := newTestServer(t, func(s *Settings) { s.Policy = p; s.ServerLR = 0.5 }, []float32{1, 1}, &scriptedVal{losses: []float64{2, 1, 0.5, 0.8}})
		srv.Step(0, Register{Worker: 1})
		c0 := chunkOf(srv.Ready(), 1)
		srv.Step(1, Update{Report: Report{Worker: 1, ChunkID: c0}, Grad: []float32{2, 0}})
		srv.Step(2, Update{Report: Report{Worker: 1, ChunkID: c0 + 1}, Grad: []float32{0, 2}, Base: 1}) // fresh: no staleness weight
		final[p] = append([]float32(nil), srv.Params()...)
	}
	// mean: aggregate = ([2,0] + [0,2]) / 2 = [1, 1]; params = [0, 1] - 0.5*[1, 1].
	if m := final["hermes-mean"]; m[0] != -0.5 || m[1] != 0.5 {
		t.Fatalf("hermes-mean: %v, want [-0.5 0.5]", m)
	}
	// loss-aware: weights 1/1 and 1/0.5 give [-1/3, 1/3] (TestLossAwareMergeKnownNumbers).
	if h := final["hermes-lossaware"]; math.Abs(float64(h[0])+1.0/3) > 1e-6 {
		t.Fatalf("hermes-lossaware: %v, want [-1/3 1/3]", h)
	}
}

// hermes-whole hands out chunks with nothing held out; hermes holds out
// Settings.HoldOut of each.
func TestWholeHoldsNothingOut(t *testing.T) {
	for p, want := range map[string]float64{"hermes": Defaults().HoldOut, "hermes-whole": 0} {
		srv := newTestServer(t, func(s *Settings) { s.Policy = p }, []float32{0}, &scriptedVal{losses: []float64{1}})
		srv.Step(0, Register{Worker: 1})
		n := 0
		for _, a := range srv.Ready() {
			if as, ok := a.(Assign); ok {
				n++
				if as.Work.HoldOut != want {
					t.Fatalf("%s: chunk %d holds out %v, want %v", p, as.Work.Chunk.ID, as.Work.HoldOut, want)
				}
			}
		}
		if n == 0 {
			t.Fatalf("%s: no chunk assigned", p)
		}
	}
}
