package onnx

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/hermes-go/hermes/nn"
)

// fixture is what scripts/onnx-fixtures.py writes next to each model:
// inputs as PyTorch saw them (NCHW) and PyTorch's outputs.
type fixture struct {
	Opset  int64     `json:"opset"`
	Shape  []int     `json:"shape"`
	Input  []float32 `json:"input"`
	Output []float32 `json:"output"`
}

func readFixture(t *testing.T, name string) (*Imported, fixture) {
	t.Helper()
	im, err := ReadFile(filepath.Join("testdata", name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return im, f
}

// relayout reorders n images of shape [C H W] between channel-first (ONNX,
// PyTorch) and channel-last (the engine): to channel-last when toLast.
func relayout(x []float32, shape []int, n int, toLast bool) []float32 {
	if len(shape) != 3 {
		return x
	}
	C, HW := shape[0], shape[1]*shape[2]
	out := make([]float32, len(x))
	for s := range n {
		for ch := range C {
			for i := range HW {
				first, last := s*C*HW+ch*HW+i, s*C*HW+i*C+ch
				if toLast {
					out[last] = x[first]
				} else {
					out[first] = x[last]
				}
			}
		}
	}
	return out
}

// TestImportMatchesPyTorch runs each fixture through the imported model and
// compares with PyTorch's outputs: the acceptance bound is 1e-4.
func TestImportMatchesPyTorch(t *testing.T) {
	for _, name := range []string{"mlp", "cnn", "bncnn"} {
		t.Run(name, func(t *testing.T) {
			im, f := readFixture(t, name)
			if im.Opset != f.Opset {
				t.Errorf("opset %d, fixture says %d", im.Opset, f.Opset)
			}
			m, err := im.Model(im.Input, im.Classes)
			if err != nil {
				t.Fatal(err)
			}
			n := len(f.Output) / im.Classes
			y := m.Forward(relayout(f.Input, f.Shape, n, true), n, false)
			if name == "bncnn" { // the export ends in LogSoftmax, which import drops
				y = logSoftmax(y, im.Classes)
			}
			worst := 0.0
			for i := range f.Output {
				worst = math.Max(worst, math.Abs(float64(y[i]-f.Output[i])))
			}
			if worst > 1e-4 {
				t.Errorf("max |hermes - pytorch| = %.3g, want <= 1e-4", worst)
			}
			t.Logf("%s: opset %d, %d layers, max abs difference %.2g", name, im.Opset, len(im.Spec.Layers), worst)
		})
	}
}

func logSoftmax(y []float32, classes int) []float32 {
	out := make([]float32, len(y))
	for r := 0; r < len(y); r += classes {
		row := y[r : r+classes]
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - mx))
		}
		for i, v := range row {
			out[r+i] = v - mx - float32(math.Log(sum))
		}
	}
	return out
}

// TestImportedBatchNormIsTrained checks that batch normalization comes in
// as the layer, with its running statistics, and not folded away.
func TestImportedBatchNormIsTrained(t *testing.T) {
	im, _ := readFixture(t, "bncnn")
	var kinds []string
	for _, l := range im.Spec.Layers {
		kinds = append(kinds, l.Type)
	}
	want := []string{"conv2d", "leakyrelu", "batchnorm", "avgpool2d", "conv2d", "relu", "batchnorm",
		"globalavgpool", "flatten", "dense", "batchnorm", "tanh", "dense"}
	if len(kinds) != len(want) {
		t.Fatalf("layers %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("layers %v, want %v", kinds, want)
		}
	}
	if bn := im.Spec.Layers[2]; math.Abs(bn.Momentum-0.1) > 1e-6 || math.Abs(bn.Eps-1e-5) > 1e-9 {
		t.Errorf("batchnorm momentum %v eps %v, want PyTorch's 0.1 and 1e-5", bn.Momentum, bn.Eps)
	}
	m, err := im.Model(im.Input, im.Classes)
	if err != nil {
		t.Fatal(err)
	}
	var _ *nn.Model = m
}
