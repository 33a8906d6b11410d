package nn

import "math"

// SoftmaxCrossEntropy computes the mean cross-entropy of n rows of k logits
// against integer labels, and, when grad is not nil, writes its gradient
// with respect to the logits, (softmax - onehot)/n, into grad. It also
// returns how many rows have their label as the arg-max.
//
// The softmax is fused into the loss and shifted by the row maximum, so large
// logits neither overflow nor lose the gradient.
func SoftmaxCrossEntropy(logits []float32, labels []int32, n, k int, grad []float32) (loss float64, correct int) {
	inv := 1 / float32(n)
	for r := 0; r < n; r++ {
		row := logits[r*k : r*k+k]
		y := int(labels[r])
		mx, arg := row[0], 0
		for j, v := range row {
			if v > mx {
				mx, arg = v, j
			}
		}
		if arg == y {
			correct++
		}
		// Each exponential once: the gradient is the softmax, exp / sum.
		var g []float32
		if grad != nil {
			g = grad[r*k : r*k+k]
		}
		var sum float64
		for j, v := range row {
			e := math.Exp(float64(v - mx))
			sum += e
			if g != nil {
				g[j] = float32(e)
			}
		}
		loss += math.Log(sum) - float64(row[y]-mx)
		if g != nil {
			scale := float32(1/sum) * inv
			for j := range g {
				g[j] *= scale
			}
			g[y] -= inv
		}
	}
	return loss / float64(n), correct
}
