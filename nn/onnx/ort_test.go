package onnx

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ortDir holds run.js and, once scripts/deps.sh ort has run, onnxruntime-node.
const ortDir = "../../scripts/ort"

// runORT runs model on x (dims with the batch first) in onnxruntime-node.
// make test sets HERMES_ORT=required, so that there a missing runtime fails
// the test instead of skipping it.
func runORT(t *testing.T, model []byte, dims []int, x []float32) []float32 {
	t.Helper()
	node, err := exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join(ortDir, "node_modules", "onnxruntime-node")); err != nil || statErr != nil {
		if os.Getenv("HERMES_ORT") == "required" {
			t.Fatalf("onnxruntime-node is not installed (scripts/deps.sh ort): node %v, module %v", err, statErr)
		}
		t.Skip("onnxruntime-node not installed (scripts/deps.sh ort)")
	}
	dir := t.TempDir()
	mp, ip := filepath.Join(dir, "m.onnx"), filepath.Join(dir, "x.json")
	if err := os.WriteFile(mp, model, 0o644); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(map[string]any{"dims": dims, "data": x})
	if err := os.WriteFile(ip, in, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(ortDir, "run.js"), mp, ip)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("onnxruntime: %v", err)
	}
	var y struct {
		Dims []int     `json:"dims"`
		Data []float32 `json:"data"`
	}
	if err := json.Unmarshal(out, &y); err != nil {
		t.Fatalf("onnxruntime output: %v", err)
	}
	return y.Data
}

// TestExportRunsInONNXRuntime is the check by a real runtime: the exported
// model, fed raw [0, 1] images channel first, gives what hermes gives on
// the same images normalized, within 1e-4.
func TestExportRunsInONNXRuntime(t *testing.T) {
	norm := []float64{0.3, 0.4}
	for name, c := range exportSpecs {
		t.Run(name, func(t *testing.T) {
			classes := c.spec.Layers[len(c.spec.Layers)-1].Units
			m := randomModel(t, c.spec, c.in, classes)
			b, err := Export(m, norm)
			if err != nil {
				t.Fatal(err)
			}
			const n = 4
			x := randomInput(c.in, n)
			normed := make([]float32, len(x))
			for i, v := range x {
				normed[i] = (v - float32(norm[0])) / float32(norm[1])
			}
			want := m.Forward(normed, n, false)
			got := runORT(t, b, append([]int{n}, c.in...), relayout(x, c.in, n, false))
			if len(got) != len(want) {
				t.Fatalf("onnxruntime gave %d values, want %d", len(got), len(want))
			}
			worst := 0.0
			for i := range want {
				worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
			}
			if worst > 1e-4 {
				t.Errorf("max |onnxruntime - hermes| = %.3g, want <= 1e-4", worst)
			}
			t.Logf("%s: max |onnxruntime - hermes| = %.2g", name, worst)
		})
	}
}
