package nn

import (
	"math"
	"testing"
)

// TestBatchNormStatistics checks the layer against numbers worked by hand:
// one feature over a batch of 4, PyTorch's conventions (biased variance to
// normalize, unbiased in the running variance, momentum as the batch's
// weight), then evaluation with the running statistics.
func TestBatchNormStatistics(t *testing.T) {
	l := NewBatchNorm(Shape{1}, 1e-5, 0.1)
	params, grads := make([]float32, 4), make([]float32, 4)
	l.Bind(params, grads)
	l.Init(nil)
	x := []float32{1, 2, 3, 6}
	// mean 3, biased variance (4+1+0+9)/4 = 3.5, unbiased 14/3
	y := l.Forward(x, 4, true)
	want := []float64{-2, -1, 0, 3}
	for i := range want {
		w := want[i] / math.Sqrt(3.5+1e-5)
		if math.Abs(float64(y[i])-w) > 1e-5 {
			t.Errorf("train y[%d] = %v, want %v", i, y[i], w)
		}
	}
	if rm, rv := params[2], params[3]; math.Abs(float64(rm)-0.3) > 1e-6 || math.Abs(float64(rv)-(0.9+0.1*14.0/3)) > 1e-6 {
		t.Errorf("running mean, var = %v, %v; want 0.3, %v", rm, rv, 0.9+0.1*14.0/3)
	}
	params[0], params[1] = 2, 0.5 // γ, β
	y = l.Forward([]float32{0.3}, 1, false)
	if math.Abs(float64(y[0])-0.5) > 1e-6 {
		t.Errorf("eval y = %v, want β = 0.5 at the running mean", y[0])
	}
	// Training steps never move the running statistics through gradients.
	l.Forward(x, 4, true)
	l.Backward([]float32{1, -1, 2, 0.5}, 4, true)
	if grads[2] != 0 || grads[3] != 0 {
		t.Errorf("running statistics got gradients %v", grads[2:])
	}
}

func TestBatchNormPerChannelOfImages(t *testing.T) {
	// Channel-last: values alternate between the two channels.
	l := NewBatchNorm(Shape{2, 1, 2}, 1e-5, 0.1)
	params, grads := make([]float32, 8), make([]float32, 8)
	l.Bind(params, grads)
	l.Init(nil)
	y := l.Forward([]float32{1, 100, 3, 300}, 1, true)
	for i, w := range []float32{-1, -1, 1, 1} {
		if math.Abs(float64(y[i]-w)) > 1e-4 {
			t.Fatalf("y = %v, want each channel normalized on its own: %v", y, []float32{-1, -1, 1, 1})
		}
	}
}
