package sim

import (
	"testing"

	"github.com/hermes-go/hermes/harness"
)

// TestScenarioTrainsAnONNXModel: a scenario names an ONNX file relative to
// itself; the run starts from the file's weights on data in [0, 1] (the
// ONNX input convention) and learns.
func TestScenarioTrainsAnONNXModel(t *testing.T) {
	sc, err := LoadScenario("testdata/tiny-onnx.json")
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(sc, 200)
	if err != nil {
		t.Fatal(err)
	}
	if env.Params == nil || len(env.Spec.Norm) != 2 || env.Spec.Norm[0] != 0 || env.Spec.Norm[1] != 1 {
		t.Fatalf("env params %d, norm %v: want the file's weights and [0 1]", len(env.Params), env.Spec.Norm)
	}
	lo, hi := env.Train.X[0], env.Train.X[0]
	for _, v := range env.Train.X {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo < 0 || hi > 1 || hi < 0.9 {
		t.Fatalf("training values in [%v, %v], want bytes / 255", lo, hi)
	}
	res, _, err := Run(env, Options{Settings: tinySettings("hermes"), Hyper: harness.Hyper{LocalLR: 0.05, ServerLR: 0.01}})
	if err != nil {
		t.Fatal(err)
	}
	if res.BestAccuracy < 0.6 {
		t.Fatalf("best accuracy %v", res.BestAccuracy)
	}
}
