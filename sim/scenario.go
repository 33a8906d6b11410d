package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Scenario fixes everything a simulated run depends on (see
// shared/scenarios/README.md): data, model, target, seed, budget, and the
// devices of the parameter server and the workers.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Dataset is a named data set ("fashion-mnist") or "TRAIN;TEST", two
	// file specs as --train and --test take them.
	Dataset        string        `json:"dataset"`
	Model          string        `json:"model"`
	TargetAccuracy float64       `json:"target_accuracy"`
	TimeBudgetS    float64       `json:"time_budget_s"`
	Seed           uint64        `json:"seed"`
	PS             Device        `json:"ps"`
	Workers        []WorkerGroup `json:"workers"`
	// HostCores puts the server and every device on one machine with this
	// many cores (0: every device has a CPU of its own): their CPU work,
	// training and messages, queues for the cores. It is how `hermes demo`
	// runs.
	HostCores int `json:"host_cores,omitempty"`
	// MeasureEveryS is how often, in virtual seconds, the harness
	// measures test accuracy when the model changes without the server
	// validating it (the one-step policies, dozens of changes a second);
	// their time to target is at most this late. 0: 0.5 s. A test pass of
	// the CNN costs seconds of wall time, so a run of thousands of
	// virtual seconds at 0.5 s took hours; the chunk policies are measured
	// at every validated change whatever this says.
	MeasureEveryS float64 `json:"measure_every_s,omitempty"`
}

// measureEvery is the harness's test-accuracy cadence for the policies
// whose model changes many times a second (MeasureEveryS).
func (sc *Scenario) measureEvery() Time {
	if sc.MeasureEveryS > 0 {
		return Time(sc.MeasureEveryS * float64(time.Second))
	}
	return Time(500 * time.Millisecond)
}

// Device is a machine's compute speed, its fixed costs and its network
// link. FLOPs alone price a 64-sample step like four 16-sample ones; the
// step overhead is what makes small mini-batches slow, and the message
// costs are the CPU a transport spends per message (encoding, the client
// library, decoding) whatever the link. `hermes calibrate` measures all
// three on the machine it runs on.
type Device struct {
	GFLOPS        float64 `json:"gflops"`
	BandwidthMbps float64 `json:"bandwidth_mbps"`
	LatencyMs     float64 `json:"latency_ms"`
	// StepOverheadMs is the fixed cost of one optimizer step.
	StepOverheadMs float64 `json:"step_overhead_ms,omitempty"`
	// StepTimes, when given, are the measured times of one optimizer
	// step of the scenario's model at some mini-batch sizes, ascending;
	// they price training instead of gflops and step_overhead_ms. A
	// step's time is not linear in its mini-batch (caches, the kernel's
	// blocking), and a two-parameter fit of it was off by 17% at the
	// demo's mini-batch of 16.
	StepTimes []StepTime `json:"step_times,omitempty"`
	// MsgCPUMs and MsgCPUNsPerByte price handling one message, sent or
	// received: a fixed part plus a part per byte.
	MsgCPUMs        float64 `json:"msg_cpu_ms,omitempty"`
	MsgCPUNsPerByte float64 `json:"msg_cpu_ns_per_byte,omitempty"`
	// Slowdown says the device is a faster one slowed down by sleeping,
	// as `hermes worker --slowdown` is: of its training time only
	// 1/Slowdown holds a core of a shared host (Scenario.HostCores), and
	// it sleeps Slowdown-1 times as long as that computing, not its wait
	// for the core. 0 or 1: it computes all the time.
	Slowdown float64 `json:"slowdown,omitempty"`
}

// StepTime is the measured time of one optimizer step at a mini-batch.
type StepTime struct {
	Batch int     `json:"batch"`
	Ms    float64 `json:"ms"`
}

// msgCPU is the CPU time the device spends sending or receiving a message
// of n bytes.
func (d Device) msgCPU(n int64) Time {
	return Time((d.MsgCPUMs*1e6 + d.MsgCPUNsPerByte*float64(n)))
}

// computeTime is how long the device takes for flops of work in steps
// optimizer steps.
func (d Device) computeTime(flops float64, steps int) Time {
	return Time(flops/(d.GFLOPS*1e9)*float64(time.Second) + float64(steps)*d.StepOverheadMs*float64(time.Millisecond))
}

// trainTime is how long the device takes for epochs passes over n
// samples in mini-batches of batch (the last one of each pass holds what
// is left), each sample costing flops: from the measured step times when
// the device has them, else FLOPs at its rate plus a fixed cost a step.
func (d Device) trainTime(n, batch, epochs int, flops int64) Time {
	if n <= 0 || epochs <= 0 {
		return 0
	}
	batch = max(1, min(batch, n))
	if len(d.StepTimes) == 0 {
		return d.computeTime(float64(epochs)*float64(n)*float64(flops), epochs*((n+batch-1)/batch))
	}
	ms := float64(n/batch) * d.stepMs(batch)
	if r := n % batch; r > 0 {
		ms += d.stepMs(r)
	}
	return Time(float64(epochs) * ms * float64(time.Millisecond))
}

// stepMs interpolates the measured step times linearly in the mini-batch,
// extending the end segments beyond the measured range (never below a
// tenth of the nearest measurement: a step is never free). A single
// measurement is taken as a time per sample.
func (d Device) stepMs(b int) float64 {
	p := d.StepTimes
	if len(p) == 1 {
		return p[0].Ms * float64(b) / float64(p[0].Batch)
	}
	i := 1
	for i < len(p)-1 && p[i].Batch < b {
		i++
	}
	lo, hi := p[i-1], p[i]
	ms := lo.Ms + (hi.Ms-lo.Ms)*float64(b-lo.Batch)/float64(hi.Batch-lo.Batch)
	return max(ms, min(lo.Ms, hi.Ms)/10)
}

// Validate names the first field of the device that cannot work.
func (d Device) Validate() error { return d.check("device") }

// check names the first field of the device that cannot work, under name.
func (d Device) check(name string) error {
	for _, c := range []struct {
		field string
		v     float64
		pos   bool
	}{
		{"gflops", d.GFLOPS, true}, {"bandwidth_mbps", d.BandwidthMbps, true}, {"latency_ms", d.LatencyMs, false},
		{"step_overhead_ms", d.StepOverheadMs, false}, {"msg_cpu_ms", d.MsgCPUMs, false}, {"msg_cpu_ns_per_byte", d.MsgCPUNsPerByte, false},
	} {
		if err := checkField(name+"."+c.field, c.v, c.pos); err != nil {
			return err
		}
	}
	if err := checkField(name+".slowdown", d.Slowdown, false); err != nil {
		return err
	}
	if d.Slowdown > 0 && d.Slowdown < 1 {
		return fmt.Errorf("%s.slowdown = %v, want 0 or >= 1", name, d.Slowdown)
	}
	for i, p := range d.StepTimes {
		f := fmt.Sprintf("%s.step_times[%d]", name, i)
		if p.Batch < 1 || (i > 0 && p.Batch <= d.StepTimes[i-1].Batch) {
			return fmt.Errorf("%s.batch = %d, want >= 1 and above the previous entry's", f, p.Batch)
		}
		if err := checkField(f+".ms", p.Ms, true); err != nil {
			return err
		}
	}
	return nil
}

func checkField(field string, v float64, positive bool) error {
	switch {
	case math.IsInf(v, 0) || math.IsNaN(v):
		return fmt.Errorf("%s = %v, want a finite number", field, v)
	case positive && !(v > 0):
		return fmt.Errorf("%s = %v, want > 0", field, v)
	case !positive && v < 0:
		return fmt.Errorf("%s = %v, want >= 0", field, v)
	}
	return nil
}

// WorkerGroup is Count identical worker devices and their faults.
type WorkerGroup struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Device
	MemoryMB float64 `json:"memory_mb"`
	// Faults: leave_at_s (disconnect then), join_at_s (arrive only then),
	// crash_mtbf_s (mean time between crashes; a crash loses the local
	// state and the device rejoins after restart_s).
	LeaveAtS   float64 `json:"leave_at_s,omitempty"`
	JoinAtS    float64 `json:"join_at_s,omitempty"`
	CrashMTBFS float64 `json:"crash_mtbf_s,omitempty"`
	RestartS   float64 `json:"restart_s,omitempty"`
}

// LoadScenario reads and validates a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	// Data files are named relative to the scenario file, so a scenario
	// and its data can move together.
	if tr, te, ok := strings.Cut(sc.Dataset, ";"); ok {
		sc.Dataset = relTo(path, tr) + ";" + relTo(path, te)
	}
	// So are ONNX model files; a JSON spec stays relative to the working
	// directory, as it always was.
	if strings.HasSuffix(strings.ToLower(sc.Model), ".onnx") {
		sc.Model = relTo(path, sc.Model)
	}
	return sc, nil
}

func relTo(scenario, spec string) string {
	var parts []string
	for _, p := range strings.Split(spec, ",") {
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(scenario), p)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}

// ParseScenario decodes a scenario; unknown fields are errors.
func ParseScenario(b []byte) (*Scenario, error) {
	var sc Scenario
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, err
	}
	return &sc, sc.Validate()
}

// Validate names the first field that cannot work.
func (sc *Scenario) Validate() error {
	switch {
	case sc.Dataset == "":
		return fmt.Errorf("dataset is missing")
	case sc.Model == "":
		return fmt.Errorf("model is missing")
	case !(sc.TargetAccuracy > 0 && sc.TargetAccuracy <= 1):
		return fmt.Errorf("target_accuracy = %v, want in (0, 1]", sc.TargetAccuracy)
	case len(sc.Workers) == 0:
		return fmt.Errorf("workers is empty")
	}
	if err := checkField("time_budget_s", sc.TimeBudgetS, true); err != nil {
		return err
	}
	if err := checkField("measure_every_s", sc.MeasureEveryS, false); err != nil {
		return err
	}
	if sc.HostCores < 0 {
		return fmt.Errorf("host_cores = %d, want >= 0", sc.HostCores)
	}
	if err := sc.PS.check("ps"); err != nil {
		return err
	}
	for i, g := range sc.Workers {
		f := fmt.Sprintf("workers[%d]", i)
		if g.Name != "" {
			f = fmt.Sprintf("workers[%d] (%s)", i, g.Name)
		}
		if g.Count < 1 {
			return fmt.Errorf("%s.count = %d, want >= 1", f, g.Count)
		}
		if err := g.Device.check(f); err != nil {
			return err
		}
		for _, c := range []struct {
			field string
			v     float64
		}{{"memory_mb", g.MemoryMB}, {"leave_at_s", g.LeaveAtS}, {"join_at_s", g.JoinAtS}, {"crash_mtbf_s", g.CrashMTBFS}, {"restart_s", g.RestartS}} {
			if err := checkField(f+"."+c.field, c.v, false); err != nil {
				return err
			}
		}
		if g.LeaveAtS > 0 && g.LeaveAtS <= g.JoinAtS {
			return fmt.Errorf("%s.leave_at_s = %v is not after join_at_s = %v", f, g.LeaveAtS, g.JoinAtS)
		}
	}
	return nil
}

// NumWorkers returns the number of worker devices.
func (sc *Scenario) NumWorkers() int {
	n := 0
	for _, g := range sc.Workers {
		n += g.Count
	}
	return n
}
