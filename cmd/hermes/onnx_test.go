package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hermes-go/hermes/nn/onnx"
)

const fixMLP = "../../nn/onnx/testdata/mlp.onnx"

// TestONNXTrainSaveEvalExport: an MLP exported by PyTorch trains in hermes,
// is saved as ONNX and evaluates to the accuracy training reported; a model
// saved as safetensors exports to ONNX with its normalization in the graph,
// so the ONNX file evaluates the same on raw images.
func TestONNXTrainSaveEvalExport(t *testing.T) {
	dir := t.TempDir()
	saved := filepath.Join(dir, "m.onnx")
	var out bytes.Buffer
	err := run([]string{"train", "--train", fixImages, "--test", fixImages, "--model", fixMLP,
		"--epochs", "3", "--batch", "16", "--lr", "0.01", "--threads", "1", "--save", saved, "--json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	acc := lastJSON(t, out.String())["test_accuracy"].(float64)
	if acc < 0.75 {
		t.Fatalf("the imported MLP reached %v on its own training data", acc)
	}
	out.Reset()
	if err := run([]string{"eval", "--model-file", saved, "--test", fixImages, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	if got := lastJSON(t, out.String())["test_accuracy"]; got != acc {
		t.Fatalf("eval of the saved ONNX model: %v, train reported %v", got, acc)
	}

	st := filepath.Join(dir, "m.safetensors")
	out.Reset()
	if err := run([]string{"train", "--train", fixImages, "--test", fixImages, "--model", "mlp",
		"--epochs", "2", "--threads", "1", "--save", st, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	stAcc := lastJSON(t, out.String())["test_accuracy"]
	exported, torch := filepath.Join(dir, "x.onnx"), filepath.Join(dir, "torch.safetensors")
	if err := run([]string{"export", "--model-file", st, "--onnx", exported, "--torch-names", torch}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"eval", "--model-file", exported, "--test", fixImages, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	if got := lastJSON(t, out.String())["test_accuracy"]; got != stAcc {
		t.Fatalf("eval of the exported ONNX model: %v, of the safetensors it came from %v", got, stAcc)
	}
	if _, err := os.Stat(torch); err != nil {
		t.Fatalf("--torch-names wrote nothing: %v", err)
	}
}

// TestBadONNXFiles: each broken file gives one line naming the file, the
// node where there is one, and what is wrong, and exit 1.
func TestBadONNXFiles(t *testing.T) {
	bin := hermesBinary(t)
	dir := t.TempDir()
	good, err := os.ReadFile(fixMLP)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(name string, change func(m *onnx.Model)) string {
		m, err := onnx.Decode(good)
		if err != nil {
			t.Fatal(err)
		}
		change(m)
		p := filepath.Join(dir, name+".onnx")
		if err := os.WriteFile(p, onnx.Encode(m), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trunc := filepath.Join(dir, "trunc.onnx")
	os.WriteFile(trunc, good[:len(good)/2], 0o644)
	flat := filepath.Join(dir, "flat.csv")
	os.WriteFile(flat, []byte("1,2,3\n0,1,1\n"), 0o644)
	notONNX := filepath.Join(dir, "text.onnx")
	os.WriteFile(notONNX, []byte("this is not a model\n"), 0o644)
	unsupported := variant("einsum", func(m *onnx.Model) { m.Graph.Nodes[1].Op = "Einsum" })
	rank := variant("rank", func(m *onnx.Model) { m.Graph.Inputs[0].Dims = []int64{-1, 28, 28} })
	missing := variant("missing", func(m *onnx.Model) {
		m.Graph.Initializer = m.Graph.Initializer[:2] // keeps 0.weight and 0.bias only
	})
	nonFinite := variant("nan", func(m *onnx.Model) { m.Graph.Initializer[2].F[7] = float32(nanValue()) })
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"truncated", []string{"eval", "--model-file", trunc, "--test", fixImages}, []string{trunc, "truncated"}},
		{"not ONNX", []string{"eval", "--model-file", notONNX, "--test", fixImages}, []string{notONNX}},
		{"unsupported op", []string{"train", "--model", unsupported, "--train", fixImages, "--test", fixImages}, []string{unsupported, "node /1/Relu (Einsum)", "unsupported op"}},
		{"wrong input rank", []string{"eval", "--model-file", rank, "--test", fixImages}, []string{rank, "rank 3", "want [N, C, H, W] or [N, features]"}},
		{"missing initializer", []string{"ps", "--model", missing, "--train", fixImages, "--test", fixImages, "--val", "200"}, []string{missing, "node /2/Gemm (Gemm)", `"2.weight"`, "missing initializer"}},
		{"non-finite weight", []string{"eval", "--model-file", nonFinite, "--test", fixImages}, []string{nonFinite, `"2.weight"`, "non-finite"}},
		{"bad input norm", []string{"train", "--model", fixMLP, "--input-norm", "0.5", "--train", fixImages, "--test", fixImages}, []string{"--input-norm", "MEAN,STD"}},
		{"image model on other images", []string{"eval", "--model-file", "../../nn/onnx/testdata/cnn.onnx", "--test", flat}, []string{"cnn.onnx", "input [1 28 28] does not match data shape [2]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { expectErrorLine(t, bin, c.args, true, c.want...) })
	}
}

func nanValue() float64 { z := 0.0; return z / z }
