package train

import (
	"math/rand/v2"
	"testing"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
)

// Cost predicts exactly what Chunk does: a simulator prices a chunk with
// Cost before it trains it.
func TestCostIsWhatChunkDoes(t *testing.T) {
	d, m := fixture(t, "mlp")
	ct := &ChunkTrainer{Model: m, Data: d, LR: 0.01}
	params := append([]float32(nil), m.Params()...)
	for _, w := range []protocol.Work{
		{Chunk: protocol.Chunk{Indices: []int32{0, 1, 2, 3, 4, 5, 6}}, MiniBatch: 3, Epochs: 2},
		{Chunk: protocol.Chunk{Indices: []int32{7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}}, MiniBatch: 4, Epochs: 3, HoldOut: 0.15},
		{Chunk: protocol.Chunk{Indices: []int32{20, 21}}, MiniBatch: 64, Epochs: 1, HoldOut: 0.5},
		{Chunk: protocol.Chunk{Indices: []int32{7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}}, MiniBatch: 4, Epochs: 3, HoldOut: 0.15, TestFirst: true},
	} {
		samples, steps, flops := ct.Cost(w)
		res := ct.Chunk(params, w, rand.New(rand.NewPCG(1, 1)), nil)
		if samples != res.Samples || steps != res.Steps || flops != res.FLOPs {
			t.Errorf("work %+v: Cost says %d samples, %d steps, %d FLOPs; Chunk did %d, %d, %d",
				w, samples, steps, flops, res.Samples, res.Steps, res.FLOPs)
		}
	}
}

// A chunk drawn from a large shared set is copied together before its
// epochs (the simulator's case); training it must give exactly what
// training the same samples held alone gives.
func TestStagedChunkTrainsTheSameSamples(t *testing.T) {
	d, m := fixture(t, "logreg")
	params := append([]float32(nil), m.Params()...)
	rng := rand.New(rand.NewPCG(3, 4))
	picked := rng.Perm(d.Len())[:100] // 85 trained: a small part, staged
	var shared, alone protocol.Work
	for k, i := range picked {
		shared.Chunk.Indices = append(shared.Chunk.Indices, int32(i))
		alone.Chunk.Indices = append(alone.Chunk.Indices, int32(k))
	}
	for _, w := range []*protocol.Work{&shared, &alone} {
		w.MiniBatch, w.Epochs, w.HoldOut = 8, 3, 0.15
	}
	train := func(set *data.Dataset, w protocol.Work) (ChunkResult, []float32) {
		p := append([]float32(nil), params...)
		ct := &ChunkTrainer{Model: m, Data: set, LR: 0.05}
		return ct.Chunk(p, w, rand.New(rand.NewPCG(5, 6)), nil), p
	}
	got, gotP := train(d, shared)
	want, wantP := train(d.Subset(picked), alone)
	if got.Loss != want.Loss || got.Steps != want.Steps {
		t.Fatalf("staged chunk: loss %v after %d steps, alone %v after %d", got.Loss, got.Steps, want.Loss, want.Steps)
	}
	for i := range gotP {
		if gotP[i] != wantP[i] || got.Grad[i] != want.Grad[i] {
			t.Fatalf("parameter %d: staged %v (gradient %v), alone %v (%v)", i, gotP[i], got.Grad[i], wantP[i], want.Grad[i])
		}
	}
}

// Tested first, a chunk's test loss is the loss of the model it arrived
// with on the test part, and every sample, the test part too, is trained.
func TestTestFirstTestsBeforeTrainingOnAll(t *testing.T) {
	d, m := fixture(t, "logreg")
	ct := &ChunkTrainer{Model: m, Data: d, LR: 0.05}
	w := protocol.Work{MiniBatch: 10, Epochs: 2, HoldOut: 0.2, TestFirst: true}
	for i := range 50 {
		w.Chunk.Indices = append(w.Chunk.Indices, int32(i))
	}
	params := append([]float32(nil), m.Params()...)
	before := ct.HeldOutLoss(params, w) // the same 10 samples, untrained model
	res := ct.Chunk(params, w, rand.New(rand.NewPCG(1, 2)), nil)
	if res.Loss != before || res.Samples != 100 || res.Steps != 10 {
		t.Fatalf("loss %v (untrained model on the test part: %v), %d samples in %d steps; want 100 in 10", res.Loss, before, res.Samples, res.Steps)
	}
	heldOut := w
	heldOut.TestFirst = false
	if r := ct.Chunk(append([]float32(nil), m.Params()...), heldOut, rand.New(rand.NewPCG(1, 2)), nil); r.Samples != 80 {
		t.Fatalf("held out: %d samples trained, want 80", r.Samples)
	}
}

// fixture returns the 1,000-image fixture and the built-in model name,
// initialized with seed 1.
func fixture(t *testing.T, name string) (*data.Dataset, *nn.Model) {
	t.Helper()
	d, err := data.Load("../testdata/fmnist-1k-images-idx3-ubyte.gz", 0)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := nn.Builtin(name, d.Classes)
	m, err := nn.Build(spec, d.Shape, d.Classes)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(1)
	return d, m
}
