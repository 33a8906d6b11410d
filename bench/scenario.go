package bench

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
)

// Run is one policy's simulated run on a scenario, on one seed.
type Run struct {
	Result sim.Result
	Trace  sim.Trace
	Hyper  harness.Hyper
	Seed   uint64
}

// PolicyRuns are one policy's runs, one per seed, in seed order.
type PolicyRuns struct {
	Policy string
	Hyper  harness.Hyper
	Runs   []Run
	Stats  Stats
}

// ScenarioConfig is a comparison of policies on one scenario.
type ScenarioConfig struct {
	Env      *sim.Env
	Policies []string
	Settings protocol.Settings // base settings; Policy is set per run
	Hyper    map[string]harness.Hyper
	Seed     uint64 // the first seed; 0: the scenario's
	Seeds    int    // seeds per policy, Seed, Seed+1, ...; 0: one
	Parallel int    // runs at once; 0: the number of cores
	// OnDone, when set, is called as each run finishes (from its
	// goroutine).
	OnDone func(policy string, r sim.Result)
}

// Scenario runs every policy of c on every seed, several at once, and
// returns the runs in the order of c.Policies.
func Scenario(c ScenarioConfig) ([]PolicyRuns, error) {
	for _, p := range c.Policies {
		if _, err := protocol.PolicyNamed(p); err != nil {
			return nil, err
		}
		if _, ok := c.Hyper[p]; !ok {
			return nil, fmt.Errorf("bench: no learning rates for policy %s", p)
		}
	}
	first, n := c.Seed, max(c.Seeds, 1)
	if first == 0 {
		first = c.Env.Scenario.Seed
	}
	var jobs []job
	for _, p := range c.Policies {
		st := c.Settings
		st.Policy = p
		for i := range n {
			jobs = append(jobs, job{settings: st, hyper: c.Hyper[p], seed: first + uint64(i)})
		}
	}
	runs, err := runJobs(c.Env, jobs, c.Parallel, c.OnDone)
	if err != nil {
		return nil, err
	}
	out := make([]PolicyRuns, len(c.Policies))
	for i, p := range c.Policies {
		rs := runs[i*n : (i+1)*n]
		out[i] = PolicyRuns{Policy: p, Hyper: c.Hyper[p], Runs: rs, Stats: Summarize(rs)}
	}
	return out, nil
}

// threadsPerRun shares the cores among the runs going at once.
func threadsPerRun(par, jobs int) int {
	return max(1, runtime.NumCPU()/max(1, min(par, jobs)))
}

// job is one simulated run.
type job struct {
	settings protocol.Settings
	hyper    harness.Hyper
	seed     uint64
}

// runJobs runs jobs, par at once (0: one per core), and returns their runs
// in order. Each run is deterministic, so running them in parallel changes
// nothing but the wall time.
func runJobs(env *sim.Env, jobs []job, par int, onDone func(policy string, r sim.Result)) ([]Run, error) {
	if par <= 0 {
		par = runtime.NumCPU()
	}
	runs := make([]Run, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			// The cores are shared out by run, so each run trains on one.
			res, tr, err := sim.Run(env, sim.Options{Settings: j.settings, Hyper: j.hyper, Seed: j.seed, Threads: threadsPerRun(par, len(jobs))})
			runs[i], errs[i] = Run{Result: res, Trace: tr, Hyper: j.hyper, Seed: j.seed}, err
			if err == nil && onDone != nil {
				onDone(j.settings.Policy, res)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", jobs[i].settings.Policy, err)
		}
	}
	return runs, nil
}
