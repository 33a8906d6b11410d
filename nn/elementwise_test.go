package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestElementwiseMatchesGo checks the element-wise passes this build runs
// (vector code on amd64 for widths that are multiples of 8) against the
// plain Go ones, bit for bit, on widths with and without a remainder and
// values of both signs.
func TestElementwiseMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	same := func(t *testing.T, what string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: [%d] = %v, Go %v", what, i, got[i], want[i])
			}
		}
	}
	for _, w := range []int{8, 10, 32, 40, 64, 512} {
		for _, rows := range []int{1, 3, 100} {
			t.Run(fmt.Sprintf("%dx%d", rows, w), func(t *testing.T) {
				y, b := fill(rows*w), fill(w)
				for _, relu := range []bool{false, true} {
					got, want := slices.Clone(y), slices.Clone(y)
					addBiasAct(got, b, relu)
					addBiasActGo(want, b, relu)
					same(t, fmt.Sprintf("addBiasAct relu=%v", relu), got, want)
				}
				act := slices.Clone(y)
				addBiasActGo(act, b, true)
				dy := fill(rows * w)
				got, want := slices.Clone(dy), slices.Clone(dy)
				reluMask(got, act)
				reluMaskGo(want, act)
				same(t, "reluMask", got, want)
				sums, wantSums := fill(w), fill(w)
				sumRows(sums, y, rows, w)
				sumRowsGo(wantSums, y, rows, w)
				same(t, "sumRows", sums, wantSums)
			})
		}
	}
}
