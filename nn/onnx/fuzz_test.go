package onnx

import (
	"os"
	"testing"

	"github.com/hermes-go/hermes/nn"
)

// FuzzImport feeds mutated models to the importer: it must return a model
// or an error, never panic or allocate beyond what the input declares.
func FuzzImport(f *testing.F) {
	bn := mustRead(f, "testdata/bncnn.onnx")
	f.Add(bn)
	for _, name := range []string{"mlp", "conv", "gap"} { // small exports of every layer type
		c := exportSpecs[name]
		m, err := nn.Build(c.spec, c.in, c.spec.Layers[len(c.spec.Layers)-1].Units)
		if err != nil {
			f.Fatal(err)
		}
		b, err := Export(m, []float64{0.5, 0.5})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	m, err := Decode(bn)
	if err != nil {
		f.Fatal(err)
	}
	m.Graph.Initializer = nil // every weight missing
	f.Add(Encode(m))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := Import(b, "fuzz")
		if err != nil {
			return
		}
		if _, err := im.Model(im.Input, im.Classes); err != nil {
			t.Fatalf("imported, but does not build: %v", err)
		}
	})
}

func mustRead(f *testing.F, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
