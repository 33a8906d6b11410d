package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
	"github.com/hermes-go/hermes/train"
	"github.com/hermes-go/hermes/wire"
)

// CalibrateConfig is what `hermes calibrate` measures.
type CalibrateConfig struct {
	Model   string        // built-in model name, on Fashion-MNIST's shape
	Batches []int         // mini-batch sizes the step time is measured at
	Sizes   []int         // message payloads (bytes) the message cost is measured at
	PerSize int           // round trips per message size
	Budget  time.Duration // measuring time per mini-batch size
	// RoundTrip, when set, sends a request of the given bytes through the
	// transport and waits for a small reply; it returns the time taken. The
	// request is a wire-encoded update, decoded by the receiver.
	RoundTrip func(payload []byte) (time.Duration, error)
}

// StepPoint is the measured time of one optimizer step at a mini-batch.
type StepPoint struct {
	Batch   int     `json:"batch"`
	Seconds float64 `json:"seconds"`
}

// MsgPoint is the measured one-way cost of a message of Bytes.
type MsgPoint struct {
	Bytes   int     `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// Calibration is the measured device and what it was fitted to.
type Calibration struct {
	Model           string      `json:"model"`
	TrainFLOPs      int64       `json:"train_flops_per_sample"`
	Steps           []StepPoint `json:"steps"`
	Messages        []MsgPoint  `json:"messages"`
	Device          sim.Device  `json:"device"`
	TransportProbed bool        `json:"transport_probed"`
}

// Calibrate measures this machine as a scenario device: the engine's step
// time across mini-batch sizes (kept as the device's step times, and
// fitted as a fixed cost per step plus FLOPs at a rate for other work),
// and the CPU cost of a message, fitted as a fixed part plus a part per
// byte and split evenly between the sender and the receiver. The
// link fields (bandwidth, latency) are the network's, not the machine's:
// they are left for the user.
func Calibrate(c CalibrateConfig) (Calibration, error) {
	spec, ok := nn.Builtin(c.Model, 10)
	if !ok {
		return Calibration{}, fmt.Errorf("calibrate: --model %q is not a built-in model (logreg, mlp, cnn)", c.Model)
	}
	m, err := nn.Build(spec, nn.Shape{1, 28, 28}, 10)
	if err != nil {
		return Calibration{}, err
	}
	m.Init(1)
	_, trainFLOPs := m.FLOPs()
	cal := Calibration{Model: c.Model, TrainFLOPs: trainFLOPs, TransportProbed: c.RoundTrip != nil}
	// A step is timed as a worker takes it: a chunk trained by the chunk
	// trainer, each mini-batch gathered from the chunk, the gradient
	// summed for the update. A step on one batch held in cache, the
	// engine's benchmark, took half the time a demo worker's did. The
	// median run, not the best: the simulated devices run on the same
	// shared machine as the demo's, in its typical state.
	const chunk = 1024
	x, y := randomBatch(chunk)
	ct := &train.ChunkTrainer{Model: m, Data: &data.Dataset{X: x, Y: y, Shape: []int{1, 28, 28}, Classes: 10}, LR: 0.01}
	idx := make([]int32, chunk)
	for i := range idx {
		idx[i] = int32(i)
	}
	params, grad := slices.Clone(m.Params()), make([]float32, len(m.Params()))
	rng := rand.New(rand.NewPCG(1, 2))
	for _, b := range c.Batches {
		w := protocol.Work{Chunk: protocol.Chunk{Indices: idx}, MiniBatch: b, Epochs: 1}
		steps := float64((chunk + b - 1) / b)
		secs := medianRate(func() { ct.Chunk(params, w, rng, grad) }, c.Budget)
		cal.Steps = append(cal.Steps, StepPoint{Batch: b, Seconds: secs / steps})
	}
	// t(b) = overhead + b·flops/rate, by least squares.
	var xs, ts []float64
	for _, p := range cal.Steps {
		xs, ts = append(xs, float64(p.Batch)*float64(trainFLOPs)), append(ts, p.Seconds)
	}
	slope, icpt := fitLine(xs, ts)
	if !(slope > 0) {
		return cal, fmt.Errorf("calibrate: step time does not grow with the mini-batch (%+v): the machine is too noisy to measure", cal.Steps)
	}
	cal.Device.GFLOPS = sig3(1 / slope / 1e9)
	cal.Device.StepOverheadMs = sig3(max(icpt, 0) * 1e3)
	// The fit prices the server's validation passes and other models;
	// this model's training is priced by what was measured.
	for _, p := range cal.Steps {
		cal.Device.StepTimes = append(cal.Device.StepTimes, sim.StepTime{Batch: p.Batch, Ms: sig3(p.Seconds * 1e3)})
	}

	for _, n := range c.Sizes {
		secs, err := messageCost(c, n)
		if err != nil {
			return cal, err
		}
		cal.Messages = append(cal.Messages, MsgPoint{Bytes: n, Seconds: secs})
	}
	if len(cal.Messages) >= 2 {
		var bs, ss []float64
		for _, p := range cal.Messages {
			bs, ss = append(bs, float64(p.Bytes)), append(ss, p.Seconds)
		}
		perByte, fixed := fitLine(bs, ss)
		// One message costs its sender and its receiver half each.
		cal.Device.MsgCPUMs = sig3(max(fixed, 0) / 2 * 1e3)
		cal.Device.MsgCPUNsPerByte = sig3(max(perByte, 0) / 2 * 1e9)
	}
	return cal, nil
}

// messageCost returns the one-way cost of a message carrying an update of
// about n bytes: wire encoding and decoding and, with a transport, the
// round trip (the receiver decodes) less half of an empty one's, the
// reply's share.
func messageCost(c CalibrateConfig, n int) (float64, error) {
	grad := make([]float32, max(n/4, 1))
	for i := range grad {
		grad[i] = float32(i%7) * 0.1
	}
	u := protocol.Update{Report: protocol.Report{Worker: 1, ChunkID: 2}, Grad: grad}
	if c.RoundTrip == nil {
		var buf []byte
		var err error
		secs := bestRate(func() {
			if buf, err = wire.Encode(buf[:0], u, wire.FP32); err == nil {
				_, err = wire.Decode(buf)
			}
		}, c.Budget/4)
		return secs, err
	}
	empty, err := roundTrips(c, nil)
	if err != nil {
		return 0, err
	}
	var times []float64
	for range c.PerSize {
		t0 := time.Now()
		b, err := wire.Encode(nil, u, wire.FP32)
		if err != nil {
			return 0, err
		}
		if _, err := c.RoundTrip(b); err != nil {
			return 0, err
		}
		times = append(times, time.Since(t0).Seconds())
	}
	return Median(times) - empty/2, nil
}

// roundTrips returns the median round trip of an empty request.
func roundTrips(c CalibrateConfig, payload []byte) (float64, error) {
	var times []float64
	for range c.PerSize {
		rt, err := c.RoundTrip(payload)
		if err != nil {
			return 0, err
		}
		times = append(times, rt.Seconds())
	}
	return Median(times), nil
}

// medianRate returns the time of one call of f, the median of five runs
// of about budget/5 each.
func medianRate(f func(), budget time.Duration) float64 {
	return Median(runTimes(f, 5, budget, 2))
}

// bestRate returns the time of one call of f, the best of three runs of
// about budget/3 each: the least disturbed by other work on the machine.
func bestRate(f func(), budget time.Duration) float64 {
	return slices.Min(runTimes(f, 3, budget, 3))
}

// runTimes warms f up, then returns the time of one call in each of runs
// runs of about budget/runs and at least atLeast calls.
func runTimes(f func(), runs int, budget time.Duration, atLeast int) []float64 {
	for range atLeast {
		f()
	}
	per := make([]float64, runs)
	for r := range per {
		n := 0
		t0 := time.Now()
		for time.Since(t0) < budget/time.Duration(runs) || n < atLeast {
			f()
			n++
		}
		per[r] = time.Since(t0).Seconds() / float64(n)
	}
	return per
}

// fitLine returns the least-squares slope and intercept of y over x.
func fitLine(x, y []float64) (slope, intercept float64) {
	n := float64(len(x))
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx, sy, sxx, sxy = sx+x[i], sy+y[i], sxx+x[i]*x[i], sxy+x[i]*y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, sy / n
	}
	slope = (n*sxy - sx*sy) / d
	return slope, (sy - slope*sx) / n
}

// sig3 rounds to three significant digits: more than the measurement
// resolves on a shared machine.
func sig3(v float64) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, 2-math.Floor(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}
