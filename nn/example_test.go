package nn_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/hermes-go/hermes/nn"
)

// A model from a spec, trained with Adam on a toy problem: is the first
// feature larger than the second?
func ExampleBuild() {
	spec, err := nn.ParseSpec([]byte(`{"name": "toy", "layers": [
		{"type": "dense", "units": 16, "activation": "relu"},
		{"type": "dense", "units": 2}]}`))
	if err != nil {
		panic(err)
	}
	m, err := nn.Build(spec, nn.Shape{2}, 2)
	if err != nil {
		panic(err)
	}
	m.Init(1)
	rng := rand.New(rand.NewPCG(1, 1))
	x, y := make([]float32, 2*256), make([]int32, 256)
	for i := range y {
		a, b := rng.Float32(), rng.Float32()
		x[2*i], x[2*i+1] = a, b
		if a > b {
			y[i] = 1
		}
	}
	opt := nn.NewAdam(0.01)
	for range 300 {
		m.Backprop(x, y, 256)
		opt.Step(m.Params(), m.Grads())
	}
	_, acc := m.Evaluate(x, y, 256, 64)
	fmt.Printf("params %d, accuracy above 0.95: %v\n", len(m.Params()), acc > 0.95)
	// Output: params 82, accuracy above 0.95: true
}
