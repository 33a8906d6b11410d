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
	d, err := data.Load("../testdata/fmnist-1k-images-idx3-ubyte.gz", 0)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := nn.Builtin("mlp", d.Classes)
	m, err := nn.Build(spec, d.Shape, d.Classes)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(1)
	ct := &ChunkTrainer{Model: m, Data: d, LR: 0.01}
	params := append([]float32(nil), m.Params()...)
	for _, w := range []protocol.Work{
		{Chunk: protocol.Chunk{Indices: []int32{0, 1, 2, 3, 4, 5, 6}}, MiniBatch: 3, Epochs: 2},
		{Chunk: protocol.Chunk{Indices: []int32{7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}}, MiniBatch: 4, Epochs: 3, HoldOut: 0.15},
		{Chunk: protocol.Chunk{Indices: []int32{20, 21}}, MiniBatch: 64, Epochs: 1, HoldOut: 0.5},
	} {
		samples, steps, flops := ct.Cost(w)
		res := ct.Chunk(params, w, rand.New(rand.NewPCG(1, 1)), nil)
		if samples != res.Samples || steps != res.Steps || flops != res.FLOPs {
			t.Errorf("work %+v: Cost says %d samples, %d steps, %d FLOPs; Chunk did %d, %d, %d",
				w, samples, steps, flops, res.Samples, res.Steps, res.FLOPs)
		}
	}
}
