package onnx

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/hermes-go/hermes/nn"
)

// exportSpecs cover every layer type Export writes, with images of several
// channels so that the channel-first reordering is exercised.
var exportSpecs = map[string]struct {
	spec nn.Spec
	in   nn.Shape
}{
	"mlp": {nn.Spec{Name: "mlp", Layers: []nn.LayerSpec{{Type: "flatten"}, {Type: "dense", Units: 16, Activation: "relu"},
		{Type: "dropout", Rate: 0.3}, {Type: "dense", Units: 10}}}, nn.Shape{1, 6, 6}},
	"conv": {nn.Spec{Name: "conv", Layers: []nn.LayerSpec{
		{Type: "conv2d", Filters: 4, Kernel: 3, Padding: 1, Activation: "relu"},
		{Type: "maxpool2d", Size: 2},
		{Type: "conv2d", Filters: 5, Kernel: 3, Stride: 2},
		{Type: "leakyrelu", Alpha: 0.2},
		{Type: "batchnorm", Momentum: 0.3},
		{Type: "flatten"},
		{Type: "batchnorm"},
		{Type: "sigmoid"},
		{Type: "dense", Units: 3}}}, nn.Shape{3, 10, 10}},
	"gap": {nn.Spec{Name: "gap", Layers: []nn.LayerSpec{
		{Type: "conv2d", Filters: 6, Kernel: 2},
		{Type: "tanh"},
		{Type: "avgpool2d", Size: 2, Stride: 1},
		{Type: "globalavgpool"},
		{Type: "flatten"},
		{Type: "dense", Units: 4}}}, nn.Shape{2, 5, 7}},
}

// randomModel builds spec with random weights and running statistics away
// from their initial values.
func randomModel(t *testing.T, spec nn.Spec, in nn.Shape, classes int) *nn.Model {
	t.Helper()
	m, err := nn.Build(spec, in, classes)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(5)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range m.Params() {
		m.Params()[i] += float32(rng.Float64()*0.2 + 0.05) // keeps variances positive
	}
	return m
}

func randomInput(in nn.Shape, n int) []float32 {
	rng := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, n*in.Size())
	for i := range x {
		x[i] = rng.Float32()
	}
	return x
}

// TestExportImportRoundTrip exports models and imports them again: the
// same outputs on the same images, the input normalization carried as a
// Sub and a Div.
func TestExportImportRoundTrip(t *testing.T) {
	for name, c := range exportSpecs {
		t.Run(name, func(t *testing.T) {
			classes := c.spec.Layers[len(c.spec.Layers)-1].Units
			m := randomModel(t, c.spec, c.in, classes)
			b, err := Export(m, []float64{0.25, 0.5})
			if err != nil {
				t.Fatal(err)
			}
			im, err := Import(b, name)
			if err != nil {
				t.Fatal(err)
			}
			if im.Spec.Norm[0] != 0.25 || im.Spec.Norm[1] != 0.5 {
				t.Errorf("norm %v, want [0.25 0.5]", im.Spec.Norm)
			}
			back, err := im.Model(c.in, classes)
			if err != nil {
				t.Fatal(err)
			}
			const n = 3
			x := randomInput(c.in, n)
			want := append([]float32(nil), m.Forward(x, n, false)...)
			got := back.Forward(x, n, false)
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > 1e-5 {
					t.Fatalf("output %d: %v after the round trip, %v before", i, got[i], want[i])
				}
			}
		})
	}
}

func TestTorchStateDictNames(t *testing.T) {
	c := exportSpecs["conv"]
	m := randomModel(t, c.spec, c.in, 3)
	ts, err := TorchStateDict(m)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, t := range ts {
		names = append(names, t.Name)
	}
	// Conv2d, ReLU, MaxPool2d, Conv2d, LeakyReLU, BatchNorm2d, Flatten,
	// BatchNorm1d, Sigmoid, Linear.
	want := []string{"0.weight", "0.bias", "3.weight", "3.bias",
		"5.weight", "5.bias", "5.running_mean", "5.running_var", "5.num_batches_tracked",
		"7.weight", "7.bias", "7.running_mean", "7.running_var", "7.num_batches_tracked",
		"9.weight", "9.bias"}
	if len(names) != len(want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("names %v, want %v", names, want)
		}
	}
	if s := ts[0].Shape; len(s) != 4 || s[0] != 4 || s[1] != 3 || s[2] != 3 || s[3] != 3 {
		t.Errorf("conv weight shape %v, want PyTorch's [4 3 3 3]", s)
	}
}
