package harness

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/nn/onnx"
)

// Model is what a --model argument names: a spec, and for an ONNX file
// the weights it was exported with.
type Model struct {
	Spec nn.Spec
	// Params are the imported weights in nn.Model.Params order; nil means
	// a seeded initialization.
	Params []float32
}

// ResolveModel turns a --model argument into a model: a built-in name, a
// JSON spec file, or an ONNX file (*.onnx, see onnx.Import). inputNorm,
// when not nil, replaces the model's input normalization ([mean, std]).
func ResolveModel(arg string, classes int, inputNorm []float64) (Model, error) {
	var mm Model
	if strings.HasSuffix(strings.ToLower(arg), ".onnx") {
		im, err := onnx.ReadFile(arg)
		if err != nil {
			return Model{}, err
		}
		mm = Model{Spec: im.Spec, Params: im.Params}
	} else {
		spec, err := nn.ResolveSpec(arg, classes)
		if err != nil {
			return Model{}, err
		}
		mm.Spec = spec
	}
	if inputNorm != nil {
		mm.Spec.Norm = inputNorm
	}
	return mm, nil
}

// New builds the model for samples of shape in, with the imported weights
// or initialized from seed.
func (mm Model) New(in nn.Shape, classes int, seed uint64) (*nn.Model, error) {
	m, err := nn.Build(mm.Spec, in, classes)
	if err != nil {
		return nil, err
	}
	m.Init(seed)
	if mm.Params != nil {
		if len(mm.Params) != len(m.Params()) {
			return nil, fmt.Errorf("model %s: %d weights for %d parameters", mm.Spec.Name, len(mm.Params), len(m.Params()))
		}
		copy(m.Params(), mm.Params)
	}
	return m, nil
}

// Norm returns the input normalization the model asks for, if it asks.
func (mm Model) Norm() (data.Norm, bool) {
	if len(mm.Spec.Norm) != 2 {
		return data.Norm{}, false
	}
	return data.Norm{Mean: mm.Spec.Norm[0], Std: mm.Spec.Norm[1]}, true
}

// UseNorm re-normalizes the data sets for a model that asks for its own
// input normalization (an ONNX model, or --input-norm), instead of the
// training set's statistics.
func (d *Data) UseNorm(mm Model) {
	n, ok := mm.Norm()
	if !ok || n == d.Norm {
		return
	}
	done := map[*float32]bool{} // a set given twice is changed once
	for _, s := range []*data.Dataset{d.Train, d.Val, d.Test} {
		if s != nil && len(s.X) > 0 && !done[&s.X[0]] {
			done[&s.X[0]] = true
			d.Norm.Renormalize(s, n)
		}
	}
	d.Norm = n
}

// ParseNorm reads an --input-norm value, "MEAN,STD"; "" is none.
func ParseNorm(s string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	a, b, ok := strings.Cut(s, ",")
	mean, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	std, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if !ok || err1 != nil || err2 != nil || math.IsNaN(mean) || math.IsInf(mean, 0) || !(std > 0) || math.IsInf(std, 0) {
		return nil, fmt.Errorf("--input-norm %q: want MEAN,STD with STD > 0 (such as 0.2860,0.3530)", s)
	}
	return []float64{mean, std}, nil
}
