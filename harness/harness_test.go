package harness

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/protocol"
)

func ExampleTarget() {
	t := Target{Accuracy: 0.85}
	for _, acc := range []float64{0.80, 0.86, 0.87} {
		fmt.Println(acc, t.Reached(acc))
	}
	// Output:
	// 0.8 false
	// 0.86 true
	// 0.87 false
}

// A target of 0 is never reached: a run without one goes on.
func TestTargetZeroIsNever(t *testing.T) {
	var tg Target
	if tg.Reached(1) {
		t.Fatal("a zero target was reached")
	}
}

// The validation split is the seed's: the same seed carves the same
// samples in every driver, another seed others.
func TestSplitValidation(t *testing.T) {
	d := &data.Dataset{Shape: []int{1}, Classes: 2}
	for i := range 100 {
		d.X = append(d.X, float32(i))
		d.Y = append(d.Y, int32(i%2))
	}
	a, restA, err := SplitValidation(d, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := SplitValidation(d, 10, 1)
	c, _, _ := SplitValidation(d, 10, 2)
	if a.Len() != 10 || restA.Len() != 90 {
		t.Fatalf("split %d + %d of 100", a.Len(), restA.Len())
	}
	if !slices.Equal(a.X, b.X) || slices.Equal(a.X, c.X) {
		t.Fatalf("seed 1: %v and %v; seed 2: %v", a.X, b.X, c.X)
	}
}

// Every policy has tuned rates.
func TestTunedRates(t *testing.T) {
	for _, p := range protocol.PolicyNames() {
		if h, ok := Tuned[p]; !ok || !(h.LocalLR > 0 && h.ServerLR > 0) {
			t.Errorf("%s: %+v, %v", p, h, ok)
		}
	}
}
