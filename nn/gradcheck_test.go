package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gradCheck compares the analytic gradient of the mean loss with central
// finite differences for every parameter of m (or a seeded sample of them),
// within a relative error bound that float32 arithmetic can meet.
func gradCheck(t *testing.T, m *Model, n int, reset func()) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	x := make([]float32, n*m.Input().Size())
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(rng.IntN(m.Classes()))
	}
	loss := func() float64 {
		if reset != nil {
			reset()
		}
		logits := m.Forward(x, n, true)
		l, _ := SoftmaxCrossEntropy(logits, y, n, m.Classes(), nil)
		return l
	}
	if reset != nil {
		reset()
	}
	m.Backprop(x, y, n)
	analytic := append([]float32(nil), m.Grads()...)
	p := m.Params()
	checked := 0
	for i := range p {
		if len(p) > 400 && rng.IntN(len(p)) > 400 {
			continue
		}
		// A ReLU or max-pool switch inside [p-eps, p+eps] spoils a finite
		// difference; with hundreds of units that happens for some
		// parameter at any fixed eps, so a parameter passes if the
		// difference agrees at either of two step sizes. A real error in a
		// gradient disagrees at both.
		a := float64(analytic[i])
		ok := false
		var num float64
		for _, eps := range []float32{1e-3, 1e-4} {
			orig := p[i]
			p[i] = orig + eps
			lp := loss()
			p[i] = orig - eps
			lm := loss()
			p[i] = orig
			num = (lp - lm) / (2 * float64(eps))
			if math.Abs(a-num) <= 2e-3+2e-2*math.Max(math.Abs(a), math.Abs(num)) {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("param %d: analytic %.6g, numeric %.6g", i, a, num)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d parameters checked", checked)
	}
}

func buildT(t *testing.T, in Shape, classes int, layers ...LayerSpec) *Model {
	t.Helper()
	m, err := Build(Spec{Name: "t", Layers: layers}, in, classes)
	if err != nil {
		t.Fatal(err)
	}
	m.Init(3)
	return m
}

func TestGradDense(t *testing.T) {
	m := buildT(t, Shape{6}, 3,
		LayerSpec{Type: "dense", Units: 5, Activation: "relu"},
		LayerSpec{Type: "dense", Units: 4},
		LayerSpec{Type: "dense", Units: 3})
	gradCheck(t, m, 4, nil)
}

func TestGradConv2D(t *testing.T) {
	m := buildT(t, Shape{2, 7, 6}, 3,
		LayerSpec{Type: "conv2d", Filters: 3, Kernel: 3, Padding: 1, Activation: "relu"},
		LayerSpec{Type: "conv2d", Filters: 2, Kernel: 3, Stride: 2},
		LayerSpec{Type: "flatten"},
		LayerSpec{Type: "dense", Units: 3})
	gradCheck(t, m, 3, nil)
}

func TestGradConv2DPaddingWiderThanKernelReach(t *testing.T) {
	// padding 2 with a 3x3 kernel makes windows that lie wholly in the
	// padding at the corners.
	m := buildT(t, Shape{1, 4, 4}, 2,
		LayerSpec{Type: "conv2d", Filters: 2, Kernel: 3, Padding: 2},
		LayerSpec{Type: "conv2d", Filters: 2, Kernel: 2},
		LayerSpec{Type: "flatten"},
		LayerSpec{Type: "dense", Units: 2})
	gradCheck(t, m, 2, nil)
}

func TestGradMaxPool2D(t *testing.T) {
	m := buildT(t, Shape{1, 6, 6}, 3,
		LayerSpec{Type: "conv2d", Filters: 2, Kernel: 3, Padding: 1},
		LayerSpec{Type: "maxpool2d", Size: 2},
		LayerSpec{Type: "conv2d", Filters: 2, Kernel: 2},
		LayerSpec{Type: "maxpool2d", Size: 2, Stride: 1},
		LayerSpec{Type: "flatten"},
		LayerSpec{Type: "dense", Units: 3})
	gradCheck(t, m, 3, nil)
}

func TestGradActivations(t *testing.T) {
	for _, act := range []string{"relu", "tanh", "sigmoid"} {
		t.Run(act, func(t *testing.T) {
			m := buildT(t, Shape{5}, 3,
				LayerSpec{Type: "dense", Units: 6},
				LayerSpec{Type: act},
				LayerSpec{Type: "dense", Units: 3})
			if act == "relu" && len(m.Layers()) != 2 {
				t.Fatalf("dense+relu not fused: %d layers", len(m.Layers()))
			}
			gradCheck(t, m, 4, nil)
		})
	}
}

func TestGradDropout(t *testing.T) {
	m := buildT(t, Shape{5}, 3,
		LayerSpec{Type: "dense", Units: 8},
		LayerSpec{Type: "dropout", Rate: 0.5},
		LayerSpec{Type: "dense", Units: 3})
	d := m.Layers()[1].(*Dropout)
	// The same mask on every pass, so the finite differences see the
	// function that the analytic gradient is of.
	gradCheck(t, m, 4, func() { d.rng = rand.New(rand.NewPCG(1, 1)) })
	dropped := 0
	for _, v := range d.mask {
		if v == 0 {
			dropped++
		}
	}
	if dropped == 0 || dropped == len(d.mask) {
		t.Fatalf("dropout 0.5 dropped %d of %d", dropped, len(d.mask))
	}
}

func TestSoftmaxCrossEntropyGradient(t *testing.T) {
	logits := []float32{1, -2, 0.5, 3, 0, 0, 0, 0}
	labels := []int32{2, 3}
	grad := make([]float32, len(logits))
	SoftmaxCrossEntropy(logits, labels, 2, 4, grad)
	for i := range logits {
		const eps = 1e-2
		orig := logits[i]
		logits[i] = orig + eps
		lp, _ := SoftmaxCrossEntropy(logits, labels, 2, 4, nil)
		logits[i] = orig - eps
		lm, _ := SoftmaxCrossEntropy(logits, labels, 2, 4, nil)
		logits[i] = orig
		num := (lp - lm) / (2 * eps)
		if math.Abs(num-float64(grad[i])) > 1e-4 {
			t.Errorf("logit %d: analytic %v numeric %v", i, grad[i], num)
		}
	}
}

func TestSoftmaxCrossEntropyStable(t *testing.T) {
	// exp(1e4) overflows; the shifted softmax must not.
	logits := []float32{1e4, 0, -1e4}
	grad := make([]float32, 3)
	loss, correct := SoftmaxCrossEntropy(logits, []int32{1}, 1, 3, grad)
	if loss != 1e4 || correct != 0 {
		t.Fatalf("loss %v correct %d, want 1e4 and 0", loss, correct)
	}
	if grad[0] != 1 || grad[1] != -1 || grad[2] != 0 {
		t.Fatalf("grad %v, want [1 -1 0]", grad)
	}
}

// TestGradBatchNorm keeps kinks away from the batch-normalized layers: a
// change of any first-layer weight moves every normalized value, so a
// piecewise-linear activation behind it would put some value across its
// kink at any finite-difference step.
func TestGradBatchNorm(t *testing.T) {
	m := buildT(t, Shape{2, 6, 6}, 3,
		LayerSpec{Type: "conv2d", Filters: 3, Kernel: 3, Padding: 1},
		LayerSpec{Type: "batchnorm"},
		LayerSpec{Type: "tanh"},
		LayerSpec{Type: "avgpool2d", Size: 2},
		LayerSpec{Type: "conv2d", Filters: 4, Kernel: 2},
		LayerSpec{Type: "batchnorm", Momentum: 0.5},
		LayerSpec{Type: "globalavgpool"},
		LayerSpec{Type: "flatten"},
		LayerSpec{Type: "batchnorm"},
		LayerSpec{Type: "dense", Units: 3})
	gradCheck(t, m, 4, nil)
}

func TestGradLeakyReLUAvgPool(t *testing.T) {
	m := buildT(t, Shape{2, 6, 6}, 3,
		LayerSpec{Type: "conv2d", Filters: 3, Kernel: 3, Padding: 1},
		LayerSpec{Type: "leakyrelu", Alpha: 0.1},
		LayerSpec{Type: "avgpool2d", Size: 2, Stride: 1},
		LayerSpec{Type: "conv2d", Filters: 2, Kernel: 2},
		LayerSpec{Type: "globalavgpool"},
		LayerSpec{Type: "flatten"},
		LayerSpec{Type: "dense", Units: 3})
	gradCheck(t, m, 4, nil)
}
