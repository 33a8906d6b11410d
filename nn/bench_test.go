package nn

import (
	"math/rand/v2"
	"testing"
)

// benchStep measures one SGD training step of a built-in model on random
// inputs, the same work as the PyTorch peer's step.
func benchStep(b *testing.B, model string, batch int) {
	spec, ok := Builtin(model, 10)
	if !ok && model == "bncnn" {
		spec = bnCNN
	}
	m, err := Build(spec, Shape{1, 28, 28}, 10)
	if err != nil {
		b.Fatal(err)
	}
	m.Init(1)
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, batch*784)
	for i := range x {
		x[i] = rng.Float32()
	}
	y := make([]int32, batch)
	for i := range y {
		y[i] = int32(rng.IntN(10))
	}
	opt := &SGD{Rate: 0.01}
	step := func() {
		m.Backprop(x, y, batch)
		opt.Step(m.Params(), m.Grads())
	}
	step() // buffers are sized on the first step
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkTrainStepLogreg16(b *testing.B) { benchStep(b, "logreg", 16) }
func BenchmarkTrainStepMLP16(b *testing.B)    { benchStep(b, "mlp", 16) }
func BenchmarkTrainStepMLP64(b *testing.B)    { benchStep(b, "mlp", 64) }
func BenchmarkTrainStepCNN16(b *testing.B)    { benchStep(b, "cnn", 16) }
func BenchmarkTrainStepCNN64(b *testing.B)    { benchStep(b, "cnn", 64) }

// benchLayer measures forward + backward of one layer.
func benchLayer(b *testing.B, l Layer, in Shape, batch int) {
	params := make([]float32, l.NumParams())
	grads := make([]float32, l.NumParams())
	l.Bind(params, grads)
	l.Init(rand.New(rand.NewPCG(1, 1)))
	x := make([]float32, batch*in.Size())
	dy := make([]float32, batch*l.OutShape().Size())
	for i := range dy {
		dy[i] = 0.01
	}
	l.Forward(x, batch, true)
	l.Backward(dy, batch, true)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l.Forward(x, batch, true)
		l.Backward(dy, batch, true)
	}
	b.ReportMetric(float64(3*l.FLOPs()*int64(batch*b.N))/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkDense784x128(b *testing.B) {
	benchLayer(b, NewDense(784, 128, true), Shape{784}, 16)
}

// BenchmarkDense3136x512 is the CNN's first dense layer: its weights (6.4
// MB) stream from L3 or memory in each pass.
func BenchmarkDense3136x512(b *testing.B) {
	benchLayer(b, NewDense(3136, 512, true), Shape{3136}, 16)
}

func BenchmarkConv2D5x5x32to64(b *testing.B) {
	in := Shape{32, 14, 14}
	benchLayer(b, NewConv2D(in, 64, 5, 1, 2, true), in, 16)
}

// BenchmarkTrainStepBNCNN16 is a model with the layers ONNX imports bring:
// batch normalization, leaky ReLU, average and global average pooling.
func BenchmarkTrainStepBNCNN16(b *testing.B) { benchStep(b, "bncnn", 16) }

// bnCNN is the third model of the ONNX fixtures (scripts/onnx-fixtures.py).
var bnCNN = Spec{Name: "bncnn", Layers: []LayerSpec{
	{Type: "conv2d", Filters: 16, Kernel: 3, Padding: 1},
	{Type: "batchnorm"},
	{Type: "leakyrelu", Alpha: 0.1},
	{Type: "avgpool2d", Size: 2},
	{Type: "conv2d", Filters: 32, Kernel: 3, Padding: 1},
	{Type: "batchnorm"},
	{Type: "relu"},
	{Type: "globalavgpool"},
	{Type: "flatten"},
	{Type: "dense", Units: 10}}}

func BenchmarkBatchNorm16x14x14(b *testing.B) {
	in := Shape{16, 14, 14}
	benchLayer(b, NewBatchNorm(in, 1e-5, 0.1), in, 16)
}

func BenchmarkAvgPool16x28x28(b *testing.B) {
	in := Shape{16, 28, 28}
	benchLayer(b, NewAvgPool2D(in, 2, 2, 2), in, 16)
}

func BenchmarkLeakyReLU16x28x28(b *testing.B) {
	in := Shape{16, 28, 28}
	benchLayer(b, &Activation{kind: "leakyrelu", alpha: 0.1, shape: in}, in, 16)
}

// TestTrainStepDoesNotAllocate: after the first step has sized every
// buffer, a training step allocates nothing (the layers hand parallel
// functions made once, not closures made per call). In the Go kernel's
// builds, a model with products that go to gonum (which allocates) is
// left out.
func TestTrainStepDoesNotAllocate(t *testing.T) {
models:
	for _, model := range []string{"mlp", "cnn", "bncnn"} {
		spec, ok := Builtin(model, 10)
		if !ok {
			spec = bnCNN
		}
		m, err := Build(spec, Shape{1, 28, 28}, 10)
		if err != nil {
			t.Fatal(err)
		}
		m.Init(1)
		if goKernelMax > 0 {
			for _, g := range m.StepGEMMs(4) {
				if g.M*g.N*g.K >= goKernelMax {
					t.Logf("%s: the %v product runs on gonum in this build", model, g)
					continue models
				}
			}
		}
		x, y := make([]float32, 4*784), []int32{1, 2, 3, 4}
		opt := &SGD{Rate: 0.01}
		step := func() {
			m.Backprop(x, y, 4)
			opt.Step(m.Params(), m.Grads())
		}
		step()
		if n := testing.AllocsPerRun(5, step); n != 0 {
			t.Errorf("%s: %v allocations per step, want 0", model, n)
		}
	}
}
