package sim

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/protocol"
)

func tinyEnv(t *testing.T) *Env {
	t.Helper()
	sc, err := LoadScenario("testdata/tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(sc, 200)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func tinySettings(policy string) protocol.Settings {
	s := protocol.Defaults()
	s.Policy, s.Chunk, s.MinChunk, s.Epochs = policy, 100, 10, 2
	return s
}

func TestRunIsDeterministicAndLearns(t *testing.T) {
	env := tinyEnv(t)
	for _, p := range []string{"hermes", "bsp", "localsgd"} {
		t.Run(p, func(t *testing.T) {
			h := harness.Hyper{LocalLR: 0.05, ServerLR: 0.01}
			if p == "bsp" {
				h.ServerLR = 0.2
			}
			opts := Options{Settings: tinySettings(p), Hyper: h}
			a, ta, err := Run(env, opts)
			if err != nil {
				t.Fatal(err)
			}
			// The same run on one core and on four: chunks train on any core
			// in any order, and nothing changes.
			opts.Threads = 1
			b, tb, _ := Run(env, opts)
			opts.Threads = 4
			c, _, _ := Run(env, opts)
			a.WallSeconds, b.WallSeconds, c.WallSeconds = 0, 0, 0
			if jc, _ := json.Marshal(c); string(jc) != mustJSON(a) {
				t.Fatalf("1 thread and 4 threads differ:\n%s\n%s", mustJSON(a), jc)
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) || len(ta.Points) != len(tb.Points) {
				t.Fatalf("same scenario, different results:\n%s\n%s", ja, jb)
			}
			// Logistic regression on these 800 images gets well past
			// chance (0.1) whatever the policy.
			if a.BestAccuracy < 0.6 || a.BytesTotal == 0 || a.UpdatesTotal == 0 {
				t.Fatalf("result %s", ja)
			}
			if a.ReachedTarget != (a.TimeToTargetS != nil) || (a.ReachedTarget && *a.TimeToTargetS > a.VirtualSeconds) {
				t.Fatalf("inconsistent target fields: %s", ja)
			}
		})
	}
}

func TestTransferPhysics(t *testing.T) {
	sc := &Scenario{PS: Device{GFLOPS: 1, BandwidthMbps: 80, LatencyMs: 1}}
	s := &simulation{sc: sc}
	w1 := &simWorker{dev: Device{BandwidthMbps: 8, LatencyMs: 9}}
	w2 := &simWorker{dev: Device{BandwidthMbps: 800, LatencyMs: 0}}
	// 1 MB to w1: the server's link carries it in 0.1 s, w1's 8 Mbit/s
	// link in 1 s; plus 10 ms of latency.
	if got := s.transfer(w1, false, 1_000_000); got != 1010*time.Millisecond {
		t.Fatalf("to w1: %v", got)
	}
	// 1 MB to w2 at the same instant waits for the server's link (free at
	// 0.1 s), takes it until 0.2 s; w2's own link needs only 10 ms.
	if got := s.transfer(w2, false, 1_000_000); got != 201*time.Millisecond {
		t.Fatalf("to w2: %v", got)
	}
	// A second message to w1 queues on w1's link (free at 1 s).
	if got := s.transfer(w1, false, 1_000_000); got != 2010*time.Millisecond {
		t.Fatalf("second to w1: %v", got)
	}
	// The other direction has its own queues.
	if got := s.transfer(w2, true, 1_000_000); got != 101*time.Millisecond {
		t.Fatalf("from w2: %v", got)
	}
	if s.res.BytesTotal != 4_000_000 {
		t.Fatalf("bytes %d", s.res.BytesTotal)
	}
}

// "Virtual compute time is the model's FLOPs for the work done divided by
// the device speed."
func TestComputeTimeIsFLOPsOverSpeed(t *testing.T) {
	env := tinyEnv(t)
	_, tr, err := Run(env, Options{Settings: tinySettings("hermes"), Hyper: harness.Hyper{LocalLR: 0.05, ServerLR: 0.01}})
	if err != nil {
		t.Fatal(err)
	}
	fwd := float64(2*784*10 + 10*0) // logistic regression: one dense layer
	speed := map[int]float64{0: 0.05e9, 1: 1e9, 2: 1e9}
	if len(tr.Chunks) < 3 {
		t.Fatalf("%d chunks trained", len(tr.Chunks))
	}
	for _, c := range tr.Chunks {
		want := (float64(c.Samples)*3*fwd + float64(c.Tested)*fwd) / speed[c.Worker]
		if math.Abs(c.Seconds-want) > 1e-6*want {
			t.Fatalf("worker %d trained %d samples and tested %d in %v s, want %v s", c.Worker, c.Samples, c.Tested, c.Seconds, want)
		}
	}
}

func TestScenarioErrorsNameTheField(t *testing.T) {
	base := `{"name":"x","dataset":"fashion-mnist","model":"mlp","target_accuracy":0.8,"time_budget_s":10,"seed":1,
	"ps":{"gflops":1,"bandwidth_mbps":1,"latency_ms":1},
	"workers":[{"name":"pi","count":1,"gflops":1,"bandwidth_mbps":1,"latency_ms":1,"memory_mb":1}]}`
	cases := map[string]string{
		`unknown field "gflop"`:      strings.Replace(base, `"ps":{"gflops"`, `"ps":{"gflop"`, 1),
		"workers[0] (pi).gflops = 0": strings.Replace(base, `"count":1,"gflops":1`, `"count":1,"gflops":0`, 1),
		"workers[0] (pi).count = 0":  strings.Replace(base, `"count":1`, `"count":0`, 1),
		"target_accuracy = 1.5":      strings.Replace(base, `0.8`, `1.5`, 1),
		"ps.bandwidth_mbps = -1":     strings.Replace(base, `"ps":{"gflops":1,"bandwidth_mbps":1`, `"ps":{"gflops":1,"bandwidth_mbps":-1`, 1),
		"dataset is missing":         strings.Replace(base, `"dataset":"fashion-mnist",`, ``, 1),
	}
	for want, js := range cases {
		_, err := ParseScenario([]byte(js))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
	if _, err := ParseScenario([]byte(base)); err != nil {
		t.Fatalf("valid scenario: %v", err)
	}
	sc, _ := ParseScenario([]byte(strings.Replace(base, "fashion-mnist", "/nonexistent/a.csv;/nonexistent/b.csv", 1)))
	if _, err := NewEnv(sc, 10); err == nil || !strings.Contains(err.Error(), "/nonexistent/a.csv") {
		t.Fatalf("missing dataset: %v", err)
	}
}

// Faults from the scenario: crashes lose local state and rejoin, a device
// leaves, another arrives late. The run goes on, stays deterministic, and
// no chunk stays with a device that is gone.
func TestFaults(t *testing.T) {
	sc, err := LoadScenario("testdata/tiny-faults.json")
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(sc, 200)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"hermes", "bsp", "ssp"} {
		t.Run(p, func(t *testing.T) {
			run := func() (*simulation, string) {
				st := tinySettings(p)
				st.Patience = 1 << 20 // run to the budget, through every fault
				st.MaxTime = 32 * time.Second
				s, err := newSimulation(env, Options{Settings: st, Hyper: harness.Hyper{LocalLR: 0.05, ServerLR: 0.01}})
				if err != nil {
					t.Fatal(err)
				}
				s.run()
				s.res.WallSeconds = 0
				b, _ := json.Marshal(s.res)
				return s, string(b)
			}
			s, a := run()
			_, b := run()
			if a != b {
				t.Fatalf("same scenario, different results:\n%s\n%s", a, b)
			}
			if s.res.StopReason != "time budget" || s.res.UpdatesTotal == 0 {
				t.Fatalf("result %s", a)
			}
			crashes := 0
			for _, w := range s.workers {
				if w.incarnation > 1 {
					crashes++
				}
			}
			if crashes == 0 {
				t.Fatal("no device crashed and rejoined")
			}
			if s.workers[1].alive {
				t.Fatal("the leaving device is still there")
			}
			alive := map[protocol.WorkerID]bool{}
			for _, w := range s.workers {
				if w.alive {
					alive[w.id] = true
				}
			}
			for id, held := range s.server.Dispenser().Holders() {
				if !alive[held] {
					t.Errorf("chunk %d is held by worker %d, which is gone", id, held)
				}
			}
		})
	}
}

// A step costs its fixed overhead on top of its FLOPs, so a chunk in small
// mini-batches takes longer than the same chunk in large ones; messages
// cost CPU on both ends.
func TestDeviceCosts(t *testing.T) {
	d := Device{GFLOPS: 1, StepOverheadMs: 2, MsgCPUMs: 0.5, MsgCPUNsPerByte: 10}
	if got := d.computeTime(1e9, 0); got != time.Second {
		t.Fatalf("1 GFLOP at 1 GFLOP/s: %v", got)
	}
	small, large := d.computeTime(1e9, 64), d.computeTime(1e9, 4)
	if small != time.Second+128*time.Millisecond || large != time.Second+8*time.Millisecond {
		t.Fatalf("64 steps %v, 4 steps %v", small, large)
	}
	if got := d.msgCPU(100_000); got != 1500*time.Microsecond {
		t.Fatalf("100 kB message: %v", got)
	}
	if got := (Device{GFLOPS: 1}).msgCPU(1 << 20); got != 0 {
		t.Fatalf("a device without message costs: %v", got)
	}
}

// Measured step times price training instead of FLOPs: interpolated
// between the measured mini-batches, extended beyond them, and the last,
// partial mini-batch of a pass priced at its own size.
func TestDeviceStepTimes(t *testing.T) {
	d := Device{GFLOPS: 1, StepOverheadMs: 100, StepTimes: []StepTime{{1, 0.5}, {16, 2}, {64, 8}}}
	ms := func(v Time) float64 { return float64(v) / float64(time.Millisecond) }
	for _, c := range []struct {
		n, batch, epochs int
		want             float64
	}{
		{16, 16, 1, 2},          // one measured step, FLOPs and overhead ignored
		{64, 16, 3, 3 * 4 * 2},  // four steps a pass, three passes
		{40, 32, 1, 4 + 1.2},    // 32 a third of the way from 16 to 64, then a step of 8 between 1 and 16
		{128, 128, 1, 8 + 64/8}, // beyond the last point, along the last segment
		{10, 64, 1, 0.5 + 1.5*9/15},
	} {
		if got := ms(d.trainTime(c.n, c.batch, c.epochs, 1e9)); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%d samples in mini-batches of %d, %d epochs: %v ms, want %v", c.n, c.batch, c.epochs, got, c.want)
		}
	}
	// Without step times the device is priced by FLOPs and overhead.
	d.StepTimes = nil
	if got, want := d.trainTime(64, 16, 1, 1e7), d.computeTime(64e7, 4); got != want {
		t.Fatalf("without step times: %v, want %v", got, want)
	}
}

// The costs reach the run: the same scenario with a step overhead and
// message costs, or with slow measured step times, takes more virtual time
// to the same number of updates.
func TestDeviceCostsSlowTheRun(t *testing.T) {
	env := tinyEnv(t)
	opts := Options{Settings: tinySettings("localsgd"), Hyper: harness.Hyper{LocalLR: 0.05, ServerLR: 0.05}}
	opts.Settings.MaxTime = 0
	free, _, err := Run(env, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The devices' costs only: the server's would delay chunks on its
	// packer and let models overtake them on its link, which can end a
	// round sooner (a real effect, not the one under test).
	costly := *env
	sc := *env.Scenario
	sc.Workers = append([]WorkerGroup(nil), sc.Workers...)
	for i := range sc.Workers {
		sc.Workers[i].StepOverheadMs, sc.Workers[i].MsgCPUMs = 1, 1
	}
	costly.Scenario = &sc
	slow, _, err := Run(&costly, opts)
	if err != nil {
		t.Fatal(err)
	}
	if free.ReachedTarget != slow.ReachedTarget || !free.ReachedTarget {
		t.Fatalf("free %+v\ncostly %+v", free, slow)
	}
	// Accuracy is real and does not depend on time; only time grows.
	if *slow.UpdatesToTarget != *free.UpdatesToTarget || !(*slow.TimeToTargetS > *free.TimeToTargetS) {
		t.Fatalf("free: %d updates in %.3f s; costly: %d in %.3f s", *free.UpdatesToTarget, *free.TimeToTargetS, *slow.UpdatesToTarget, *slow.TimeToTargetS)
	}
	// Measured step times replace the FLOP rate: 10 ms a sample is far
	// slower than the tiny scenario's devices.
	timed := *env
	sc = *env.Scenario
	sc.Workers = append([]WorkerGroup(nil), sc.Workers...)
	for i := range sc.Workers {
		sc.Workers[i].StepTimes = []StepTime{{Batch: 1, Ms: 10}, {Batch: 2, Ms: 20}}
	}
	timed.Scenario = &sc
	stepped, _, err := Run(&timed, opts)
	if err != nil {
		t.Fatal(err)
	}
	if *stepped.UpdatesToTarget != *free.UpdatesToTarget || !(*stepped.TimeToTargetS > 2**free.TimeToTargetS) {
		t.Fatalf("free: %d updates in %.3f s; step times: %d in %.3f s", *free.UpdatesToTarget, *free.TimeToTargetS, *stepped.UpdatesToTarget, *stepped.TimeToTargetS)
	}
}

func TestScenarioNamesBadCost(t *testing.T) {
	b := []byte(`{"dataset":"x","model":"mlp","target_accuracy":0.8,"time_budget_s":10,"ps":{"gflops":1,"bandwidth_mbps":1},
		"workers":[{"name":"pi","count":1,"gflops":1,"bandwidth_mbps":1,"msg_cpu_ms":-1}]}`)
	_, err := ParseScenario(b)
	if err == nil || err.Error() != "workers[0] (pi).msg_cpu_ms = -1, want >= 0" {
		t.Fatalf("%v", err)
	}
}

func TestScenarioNamesBadStepTimes(t *testing.T) {
	for _, c := range []struct{ steps, want string }{
		{`[{"batch":16,"ms":0.1},{"batch":8,"ms":0.05}]`, "workers[0] (pi).step_times[1].batch = 8, want >= 1 and above the previous entry's"},
		{`[{"batch":0,"ms":0.1}]`, "workers[0] (pi).step_times[0].batch = 0, want >= 1 and above the previous entry's"},
		{`[{"batch":16,"ms":0}]`, "workers[0] (pi).step_times[0].ms = 0, want > 0"},
	} {
		b := []byte(`{"dataset":"x","model":"mlp","target_accuracy":0.8,"time_budget_s":10,"ps":{"gflops":1,"bandwidth_mbps":1},
			"workers":[{"name":"pi","count":1,"gflops":1,"bandwidth_mbps":1,"step_times":` + c.steps + `}]}`)
		if _, err := ParseScenario(b); err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %s", c.steps, err, c.want)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// A scenario's measure_every_s sets how often the harness measures a
// model that changes without validation (the one-step policies; validation
// is made rare here): the run itself is the same, measured that often,
// and its time to target is at most that much later.
func TestMeasureEveryIsTheHarnessCadence(t *testing.T) {
	env := tinyEnv(t)
	opts := Options{Settings: tinySettings("asp"), Hyper: harness.Hyper{LocalLR: 0.05, ServerLR: 0.05}}
	opts.Settings.EvalEvery = 1000
	run := func(every float64) (Result, Trace) {
		e, sc := *env, *env.Scenario
		sc.MeasureEveryS = every
		e.Scenario = &sc
		res, tr, err := Run(&e, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !res.ReachedTarget {
			t.Fatalf("every %g s: target not reached: %+v", every, res)
		}
		return res, tr
	}
	fine, ft := run(0.05)
	coarse, ct := run(0.25)
	if len(ct.Points) >= len(ft.Points) {
		t.Fatalf("measured %d times every 0.25 s, %d times every 0.05 s", len(ct.Points), len(ft.Points))
	}
	for i := 1; i < len(ct.Points); i++ {
		if gap := ct.Points[i].T - ct.Points[i-1].T; gap < 0.25 {
			t.Fatalf("measured %.3f s after the last one, cadence 0.25 s: %+v", gap, ct.Points)
		}
	}
	if late := *coarse.TimeToTargetS - *fine.TimeToTargetS; late < 0 || late > 0.25+0.1 {
		t.Fatalf("time to target %.3f s every 0.05 s, %.3f s every 0.25 s", *fine.TimeToTargetS, *coarse.TimeToTargetS)
	}
	sc := *env.Scenario
	sc.MeasureEveryS = -1
	if err := sc.Validate(); err == nil || err.Error() != "measure_every_s = -1, want >= 0" {
		t.Fatalf("negative cadence: %v", err)
	}
}
