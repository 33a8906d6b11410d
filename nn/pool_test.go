package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMaxPoolPicksTheFirstMaximum compares the branch-free pooling with a
// plain scan on inputs of both signs, ±0 and ties: the value must be the
// window's maximum and the recorded index the first position holding it
// (-0 and +0 tie, as in a float compare). 8 and 16 channels take the
// vector code, 3 and 11 the Go code.
func TestMaxPoolPicksTheFirstMaximum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct{ c, size, stride int }{{3, 2, 2}, {8, 2, 2}, {16, 2, 2}, {11, 2, 2}, {8, 2, 1}, {3, 3, 2}} {
		in := Shape{tc.c, 7, 7}
		l := NewMaxPool2D(in, tc.size, tc.stride)
		const n = 2
		x := make([]float32, n*in.Size())
		for i := range x {
			switch rng.IntN(6) {
			case 0:
				x[i] = float32(math.Copysign(0, -1))
			case 5:
				x[i] = 0
			case 1:
				x[i] = 1.5 // ties
			default:
				x[i] = float32(rng.NormFloat64())
			}
		}
		y := l.Forward(x, n, true)
		C, o := in[0], 0
		for s := range n {
			for oy := range l.oh {
				for ox := range l.ow {
					for ch := range C {
						at := -1
						for ky := range tc.size {
							for kx := range tc.size {
								p := s*in.Size() + ((oy*tc.stride+ky)*in[2]+ox*tc.stride+kx)*C + ch
								if at < 0 || x[p] > x[at] {
									at = p
								}
							}
						}
						if y[o] != x[at] || int(l.arg[o]) != at {
							t.Fatalf("%d channels, size %d stride %d: output %d = %v at %d, want %v at %d", tc.c, tc.size, tc.stride, o, y[o], l.arg[o], x[at], at)
						}
						o++
					}
				}
			}
		}
	}
}

// The 2×2 stride-2 backward pass (a row pair at a time) against the
// general one (clear, then add each gradient at its maximum), on images
// with an odd row and column that no window covers.
func TestMaxPool2BackwardMatchesGeneral(t *testing.T) {
	for _, in := range []Shape{{3, 7, 7}, {2, 6, 5}, {1, 4, 4}} {
		l := NewMaxPool2D(in, 2, 2)
		n := 3
		fill := randomFill()
		x := fill(n * in.Size())
		y := l.Forward(x, n, true)
		dy := fill(len(y))
		// The last step's gradient is still in dx: every value must be
		// written again.
		for i, dx := 0, l.Backward(dy, n, true); i < len(dx); i++ {
			dx[i] = float32(math.NaN())
		}
		got := l.Backward(dy, n, true)
		want := make([]float32, len(got))
		for i, a := range l.arg {
			want[a] += dy[i]
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%v: dx[%d] = %v, want %v", in, i, got[i], want[i])
			}
		}
	}
}
