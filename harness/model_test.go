package harness

import (
	"math"
	"testing"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/nn/onnx"
)

const fixMLP = "../nn/onnx/testdata/mlp.onnx"

// TestResolveModelStartsFromONNXWeights: an ONNX model starts from its
// weights whatever the seed, and asks for inputs in [0, 1].
func TestResolveModelStartsFromONNXWeights(t *testing.T) {
	mm, err := ResolveModel(fixMLP, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	im, err := onnx.ReadFile(fixMLP)
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{1, 2} {
		m, err := mm.New(nn.Shape{1, 28, 28}, 10, seed)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range m.Params() {
			if v != im.Params[i] {
				t.Fatalf("seed %d: param %d = %v, the file has %v", seed, i, v, im.Params[i])
			}
		}
	}
	if n, ok := mm.Norm(); !ok || n != (data.Norm{Mean: 0, Std: 1}) {
		t.Errorf("norm %v %v, want [0, 1]", n, ok)
	}
	mm, err = ResolveModel(fixMLP, 10, []float64{0.5, 0.25})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := mm.Norm(); n != (data.Norm{Mean: 0.5, Std: 0.25}) {
		t.Errorf("--input-norm gave %v, want 0.5, 0.25", n)
	}
}

func TestUseNormRenormalizes(t *testing.T) {
	raw := []float32{0, 0.5, 1}
	from := data.Norm{Mean: 0.3, Std: 0.2}
	d := &data.Dataset{X: append([]float32(nil), raw...), Y: []int32{0, 0, 0}, Shape: []int{1}, Classes: 1}
	from.Apply(d)
	h := &Data{Train: d, Test: d, Norm: from} // the same set twice is changed once
	h.UseNorm(Model{Spec: nn.Spec{Norm: []float64{0.5, 0.5}}})
	for i, v := range raw {
		if want := (v - 0.5) / 0.5; math.Abs(float64(d.X[i]-want)) > 1e-6 {
			t.Fatalf("x[%d] = %v, want %v", i, d.X[i], want)
		}
	}
	if h.Norm != (data.Norm{Mean: 0.5, Std: 0.5}) {
		t.Errorf("norm %v after UseNorm", h.Norm)
	}
}
