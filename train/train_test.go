package train

import (
	"math"
	"strings"
	"testing"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
)

func TestScheduleWarmsUpThenDecaysToZero(t *testing.T) {
	tr := &Trainer{cfg: Config{LR: 0.1, Schedule: "cosine"}, total: 1000}
	at := func(step int) float64 { tr.step = step; return tr.lr() }
	// 2% warm-up: 20 steps rising linearly to the peak.
	if got := at(0); math.Abs(got-0.1/20) > 1e-12 {
		t.Errorf("step 0: %v, want %v", got, 0.1/20)
	}
	if got := at(19); got != 0.1 {
		t.Errorf("end of warm-up: %v, want 0.1", got)
	}
	if got := at(20 + 490); math.Abs(got-0.05) > 1e-12 {
		t.Errorf("half-way through the decay: %v, want 0.05", got)
	}
	if got := at(1000); got != 0 {
		t.Errorf("last step: %v, want 0", got)
	}
	tr.cfg.Schedule = "constant"
	if got := at(700); got != 0.1 {
		t.Errorf("constant: %v", got)
	}
}

func TestConfigValidateNamesField(t *testing.T) {
	cases := map[string]Config{
		"epochs = 0":                  {Epochs: 0, Batch: 1, LR: 1, Schedule: "cosine", Optimizer: "sgd"},
		"batch = -2":                  {Epochs: 1, Batch: -2, LR: 1, Schedule: "cosine", Optimizer: "sgd"},
		"lr = NaN":                    {Epochs: 1, Batch: 1, LR: math.NaN(), Schedule: "cosine", Optimizer: "sgd"},
		`schedule = "step"`:           {Epochs: 1, Batch: 1, LR: 1, Schedule: "step", Optimizer: "sgd"},
		`unknown optimizer "rmsprop"`: {Epochs: 1, Batch: 1, LR: 1, Schedule: "cosine", Optimizer: "rmsprop"},
	}
	for want, c := range cases {
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want it to mention %s", c, err, want)
		}
	}
	if err := Defaults.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func TestEpochLearnsAndIsSeeded(t *testing.T) {
	d, err := data.Load("../testdata/fmnist-1k-images-idx3-ubyte.gz", 0)
	if err != nil {
		t.Fatal(err)
	}
	data.Stats(d).Apply(d)
	run := func() (first, last float64, params []float32) {
		spec, _ := nn.Builtin("logreg", d.Classes)
		m, err := nn.Build(spec, d.Shape, d.Classes)
		if err != nil {
			t.Fatal(err)
		}
		m.Init(1)
		cfg := Defaults
		cfg.Epochs = 3
		tr, err := New(m, cfg, d.Len())
		if err != nil {
			t.Fatal(err)
		}
		first = tr.Epoch(d, nil)
		tr.Epoch(d, nil)
		last = tr.Epoch(d, nil)
		return first, last, m.Params()
	}
	f1, l1, p1 := run()
	if !(l1 < f1*0.8) {
		t.Fatalf("training loss %v after 3 epochs, %v after 1", l1, f1)
	}
	_, l2, p2 := run()
	if l1 != l2 {
		t.Fatalf("same seed, final losses %v and %v", l1, l2)
	}
	for i := range p1 {
		if p1[i] != p2[i] {
			t.Fatalf("same seed, parameter %d differs", i)
		}
	}
}

// Run trains epoch by epoch, reports each, and ends with the evaluation
// of the trained model.
func TestRunReportsEveryEpoch(t *testing.T) {
	d, err := data.Load("../testdata/fmnist-1k-images-idx3-ubyte.gz", 0)
	if err != nil {
		t.Fatal(err)
	}
	data.Stats(d).Apply(d)
	spec, _ := nn.Builtin("logreg", d.Classes)
	m, _ := nn.Build(spec, d.Shape, d.Classes)
	m.Init(1)
	cfg := Defaults
	cfg.Epochs = 3
	var epochs []int
	batches := 0
	res, err := Run(m, cfg, d, d, Progress{
		Batch: func(e, done, total int, loss float64) {
			batches++
			if done > total || total != d.Len() || e != len(epochs)+1 {
				t.Fatalf("epoch %d: batch %d of %d", e, done, total)
			}
		},
		Epoch: func(e int, trainLoss, loss, acc float64) { epochs = append(epochs, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * ((d.Len() + cfg.Batch - 1) / cfg.Batch); batches != want || len(epochs) != 3 {
		t.Fatalf("%d batches, epochs %v; want %d batches in 3 epochs", batches, epochs, want)
	}
	if loss, acc := Evaluate(m, d); res.Loss != loss || res.Accuracy != acc || !(res.SamplesPerSecond > 0) {
		t.Fatalf("result %+v, the model evaluates to %v, %v", res, loss, acc)
	}
}
