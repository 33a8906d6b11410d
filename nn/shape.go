package nn

import "fmt"

// Shape is the shape of one sample, without the batch dimension. Images are
// [C, H, W]; flat vectors are [N].
type Shape []int

// Size returns the number of values in one sample of this shape.
func (s Shape) Size() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// String formats the shape as [a b c].
func (s Shape) String() string { return fmt.Sprint([]int(s)) }

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// grow returns buf with length n, reusing its storage when it is large enough.
// Layers call it on every forward pass; it allocates only when the batch
// grows beyond what was seen before.
func grow(buf []float32, n int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]float32, n)
}
