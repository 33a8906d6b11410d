package nn

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func errContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestSpecErrors(t *testing.T) {
	img := Shape{1, 28, 28}
	cases := []struct {
		name  string
		json  string
		parts []string
	}{
		{"unknown layer", `{"layers":[{"type":"flatten"},{"type":"densse","units":10}]}`, []string{"layer 1", `unknown layer type "densse"`}},
		{"dense on image", `{"layers":[{"type":"dense","units":10}]}`, []string{"layer 0 (dense)", "not flat", "flatten"}},
		{"conv on vector", `{"layers":[{"type":"flatten"},{"type":"conv2d","filters":4,"kernel":3},{"type":"dense","units":10}]}`, []string{"layer 1 (conv2d)", "not an image"}},
		{"kernel too big", `{"layers":[{"type":"conv2d","filters":4,"kernel":30},{"type":"flatten"},{"type":"dense","units":10}]}`, []string{"layer 0 (conv2d)", "does not fit"}},
		{"wrong classes", `{"layers":[{"type":"flatten"},{"type":"dense","units":12}]}`, []string{"output shape [12]", "10 classes"}},
		{"input mismatch", `{"input":[3,32,32],"layers":[{"type":"flatten"},{"type":"dense","units":10}]}`, []string{"[3 32 32]", "[1 28 28]"}},
		{"bad rate", `{"layers":[{"type":"flatten"},{"type":"dropout","rate":1.5},{"type":"dense","units":10}]}`, []string{"layer 1 (dropout)", "rate = 1.5"}},
		{"bad activation", `{"layers":[{"type":"flatten"},{"type":"dense","units":10,"activation":"gelu"}]}`, []string{"layer 1 (dense)", `"gelu"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseSpec([]byte(c.json))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Build(s, img, 10)
			errContains(t, err, c.parts...)
		})
	}
	_, err := ParseSpec([]byte(`{"layers":[{"type":"flatten","unitz":3}]}`))
	errContains(t, err, `unknown field "unitz"`)
}

func TestLoadSpecFileNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "my.json")
	os.WriteFile(p, []byte(`{"layers":[{"type":"flatten"},{"type":"pool"}]}`), 0o644)
	s, err := ResolveSpec(p, 10)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(s, Shape{1, 28, 28}, 10)
	errContains(t, err, p, `unknown layer type "pool"`)
	_, err = ResolveSpec("resnet", 10)
	errContains(t, err, `"resnet"`, "not a built-in model")
}

func TestBuiltinFLOPs(t *testing.T) {
	spec, _ := Builtin("mlp", 10)
	m, err := Build(spec, Shape{1, 28, 28}, 10)
	if err != nil {
		t.Fatal(err)
	}
	fwd, train := m.FLOPs()
	if want := int64(2 * (784*128 + 128*64 + 64*10)); fwd != want || train != 3*want {
		t.Fatalf("FLOPs %d/%d, want %d/%d", fwd, train, want, 3*want)
	}
	if len(m.Params()) != 784*128+128+128*64+64+64*10+10 {
		t.Fatalf("%d params", len(m.Params()))
	}
}

func tinyCNN(t *testing.T) *Model {
	t.Helper()
	s, err := ParseSpec([]byte(`{"name":"tiny","layers":[
		{"type":"conv2d","filters":3,"kernel":3,"padding":1},{"type":"relu"},
		{"type":"maxpool2d","size":2},{"type":"flatten"},{"type":"dense","units":4}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Build(s, Shape{2, 6, 6}, 4)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(5)
	return m
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := tinyCNN(t)
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := m.Save(p); err != nil {
		t.Fatal(err)
	}
	back, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 3*72)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range x {
		x[i] = rng.Float32()
	}
	a := append([]float32(nil), m.Forward(x, 3, false)...)
	b := back.Forward(x, 3, false)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("logit %d: %v after load, %v before", i, b[i], a[i])
		}
	}
}

func TestLoadWrongShapeLeavesModelUnchanged(t *testing.T) {
	m := tinyCNN(t)
	p := filepath.Join(t.TempDir(), "mlp.safetensors")
	spec, _ := Builtin("mlp", 10)
	other, _ := Build(spec, Shape{1, 28, 28}, 10)
	if err := other.Save(p); err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), m.Params()...)
	err := m.Load(p)
	errContains(t, err, p, "layers.0.weight")
	for i := range before {
		if m.Params()[i] != before[i] {
			t.Fatal("failed load changed the model")
		}
	}

	bad := filepath.Join(t.TempDir(), "garbage.safetensors")
	os.WriteFile(bad, []byte("\xff\xff\xff\xff\xff\xff\xff\xffjunk"), 0o644)
	errContains(t, m.Load(bad), bad, "header length")
}

// StepGEMMs lists every product of a training step, with its layer: for
// the CNN, each convolution's forward, weight-gradient and (but for the
// first) data-gradient GEMM, and each dense layer's three (but for the
// first trained layer's input gradient). Their FLOPs are the step's.
func TestStepGEMMsListsTheStep(t *testing.T) {
	spec, _ := Builtin("cnn", 10)
	m, err := Build(spec, Shape{1, 28, 28}, 10)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(1)
	calls := m.StepGEMMs(4)
	// The second convolution's weight gradient reads the input image
	// where there is an assembly kernel (conv_weights.go).
	conv := m.layers[2].(*Conv2D)
	implicit, forward, data := "", "2 conv2d forward 784×64×800 NT", "2 conv2d backward 784×800×64 NN"
	if conv.implicitWeights() {
		implicit = " implicit"
	}
	if conv.implicitForward() {
		forward += " implicit"
	}
	if conv.implicitData() {
		// dx as the transposed convolution: 32 filters over 25·64 values.
		data = "2 conv2d backward 784×32×1600 NT implicit"
	}
	var got []string
	for _, c := range calls {
		got = append(got, fmt.Sprintf("%d %s %s %v", c.Layer, c.Type, c.Pass, c))
	}
	want := []string{
		"0 conv2d forward 3136×32×25 NT",
		forward,
		"5 dense forward 4×512×3136 NN",
		"6 dense forward 4×10×512 NN",
		"6 dense backward 512×10×4 TN",
		"6 dense backward 4×512×10 NT",
		"5 dense backward 3136×512×4 TN",
		"5 dense backward 4×3136×512 NT",
		"2 conv2d backward 64×800×784 TN" + implicit,
		data,
		"0 conv2d backward 32×25×3136 TN",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("step GEMMs:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if recorder.Load() != nil {
		t.Fatal("the recorder is still on after StepGEMMs")
	}
}
