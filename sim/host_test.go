package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/harness"
)

func TestHostRunsAsManyAsItHasCores(t *testing.T) {
	h := newHost(2)
	s := time.Second
	// Three seconds of work at 0 on two cores: the third waits for one.
	for i, want := range []Time{s, s, 2 * s} {
		if got := h.run(0, 0, s, 1); got != want {
			t.Fatalf("work %d ends at %v, want %v", i, got, want)
		}
	}
	// Work booked ahead leaves the core free until it starts: work that
	// fits the gap before it runs at once, work that does not runs after.
	h = newHost(1)
	if got := h.run(0, 10*s, s, 1); got != 11*s {
		t.Fatalf("work booked for 10s ends at %v", got)
	}
	if got := h.run(0, 2*s, 8*s, 1); got != 10*s {
		t.Fatalf("work that fits the gap before 10s ends at %v, want 10s", got)
	}
	if got := h.run(0, 2*s, s, 1); got != 12*s {
		t.Fatalf("work that fits no gap ends at %v, want 12s", got)
	}
	// Work that ended before now is forgotten.
	if got := h.run(20*s, 20*s, s, 1); got != 21*s || len(h.cores[0]) != 1 {
		t.Fatalf("work at 20s ends at %v with %d spans kept", got, len(h.cores[0]))
	}
	if got := (*host)(nil).run(0, 3*s, s, 1); got != 4*s {
		t.Fatalf("no host: %v", got)
	}
}

// A device slowed down s times holds a core for 1/s of its time and
// then sleeps s-1 times its time on the core, not its wait for the core,
// as a slowed-down worker process does.
func TestSlowedDeviceSleepsOffTheCore(t *testing.T) {
	s := time.Second
	h := newHost(1)
	if got := h.run(0, 0, 8*s, 8); got != 8*s {
		t.Fatalf("8 s of slowed work alone ends at %v", got)
	}
	if got := h.run(0, 0, s, 1); got != 2*s {
		t.Fatalf("work after the slowed one's 1 s on the core ends at %v, want 2s", got)
	}
	// The core is busy until 2 s: the next slowed work computes from 2
	// to 3 s and sleeps 7 s.
	if got := h.run(0, 0, 8*s, 8); got != 10*s {
		t.Fatalf("slowed work that waited 2 s ends at %v, want 10s", got)
	}
}

// A host with a core for every device changes nothing; with one core for
// the server and three equal devices, training in step, the same run
// takes longer. (With tiny.json's own devices it would not: the fast ones
// are done before the slow one's chunk arrives.)
func TestSharedHostSlowsTheRun(t *testing.T) {
	env := tinyEnv(t)
	opts := Options{Settings: tinySettings("localsgd"), Hyper: harness.Hyper{LocalLR: 0.05, ServerLR: 0.05}}
	run := func(cores int) Result {
		t.Helper()
		e, sc := *env, *env.Scenario
		sc.HostCores = cores
		sc.Workers = []WorkerGroup{sc.Workers[1]}
		sc.Workers[0].Count = 3
		// Links fast enough that training is the run's time.
		sc.PS.BandwidthMbps, sc.Workers[0].BandwidthMbps = 1e5, 1e5
		sc.PS.LatencyMs, sc.Workers[0].LatencyMs = 0, 0
		e.Scenario = &sc
		r, _, err := Run(&e, opts)
		if err != nil {
			t.Fatal(err)
		}
		r.WallSeconds = 0
		return r
	}
	own, many, one := run(0), run(16), run(1)
	if mustJSON(many) != mustJSON(own) {
		t.Fatalf("16 cores for 4 machines differ from a CPU each:\n%s\n%s", mustJSON(many), mustJSON(own))
	}
	if !own.ReachedTarget || !one.ReachedTarget || !(*one.TimeToTargetS > 2**own.TimeToTargetS) {
		t.Fatalf("one shared core: %s; a CPU each: %s", mustJSON(one), mustJSON(own))
	}
}

func TestScenarioNamesBadHost(t *testing.T) {
	base := `{"dataset":"x","model":"mlp","target_accuracy":0.8,"time_budget_s":10,"ps":{"gflops":1,"bandwidth_mbps":1},
		"workers":[{"name":"pi","count":1,"gflops":1,"bandwidth_mbps":1}]}`
	for js, want := range map[string]string{
		strings.Replace(base, `"time_budget_s":10`, `"time_budget_s":10,"host_cores":-1`, 1):    "host_cores = -1, want >= 0",
		strings.Replace(base, `"count":1,"gflops":1`, `"count":1,"slowdown":0.5,"gflops":1`, 1): "workers[0] (pi).slowdown = 0.5, want 0 or >= 1",
	} {
		if _, err := ParseScenario([]byte(js)); err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	}
}

// On a shared host the harness's test passes take a core, as the demo's
// meter does: back to back, a change that comes while a pass waits
// measured by that pass.
func TestMeterTakesACoreOfTheHost(t *testing.T) {
	s := time.Second
	sim := &simulation{sc: &Scenario{PS: Device{GFLOPS: 1}}, fwdFLOPs: 1e6, host: newHost(1),
		env: &Env{Test: &data.Dataset{Y: make([]int32, 1000)}}} // a pass: 1 s
	for _, c := range []struct {
		at, end Time
		spans   int
	}{
		{0, s, 1},              // runs at once
		{s / 2, 2 * s, 2},      // waits for the running pass
		{s * 7 / 10, 2 * s, 2}, // replaces the waiting one: nothing booked
		{s * 3 / 2, 3 * s, 3},  // the waiting one runs now: one more after it
	} {
		sim.meter(c.at)
		if sim.meterEnd != c.end || len(sim.host.cores[0]) != c.spans {
			t.Fatalf("change at %v: passes booked until %v, %d spans; want %v, %d", c.at, sim.meterEnd, len(sim.host.cores[0]), c.end, c.spans)
		}
	}
	sim.host = nil
	sim.meter(10 * s)
	if sim.meterEnd != 3*s {
		t.Fatal("without a host the meter booked a pass")
	}
}
