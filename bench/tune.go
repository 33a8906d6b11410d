package bench

import (
	"time"

	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
)

// TuneGrid is the learning-rate grid searched for every policy: local SGD
// rates times server rates. The server rate multiplies a sum of gradients,
// so its useful range depends on how many steps an update sums.
var TuneGrid = struct {
	Local  []float64
	Server map[string][]float64
}{
	Local: []float64{0.02, 0.05},
	Server: map[string][]float64{
		"async":     {0.005, 0.01, 0.02}, // Hermes-style: one worker's long gradient sum
		"average":   {0.02, 0.05, 0.1},   // LocalSGD: the mean of all workers' sums (FedAvg at the local rate)
		"minibatch": {0.05, 0.1, 0.2},    // one mini-batch gradient per update
	},
}

// TuneBudget caps the virtual time of a tuning run.
const TuneBudget = 30 * time.Minute

// GridFor returns the candidate learning rates of a policy.
func GridFor(p protocol.Policy) []harness.Hyper {
	locals, servers := TuneGrid.Local, TuneGrid.Server["async"]
	switch {
	case p.MiniBatchUnit:
		// A mini-batch worker's own step is replaced by the next
		// global model: only the server's rate matters.
		locals, servers = locals[:1], TuneGrid.Server["minibatch"]
	case p.Merge == protocol.MergeAverage:
		servers = TuneGrid.Server["average"]
	}
	var out []harness.Hyper
	for _, l := range locals {
		for _, s := range servers {
			out = append(out, harness.Hyper{LocalLR: l, ServerLR: s})
		}
	}
	return out
}

// Better reports whether run a beats run b in tuning: reaching the target
// sooner, or, if neither reaches it, a higher best accuracy.
func Better(a, b sim.Result) bool {
	switch {
	case a.ReachedTarget && !b.ReachedTarget:
		return true
	case !a.ReachedTarget && b.ReachedTarget:
		return false
	case a.ReachedTarget:
		return *a.TimeToTargetS < *b.TimeToTargetS
	}
	return a.BestAccuracy > b.BestAccuracy
}

// Tune runs policy once per candidate set of learning rates, on seed,
// several at once.
func Tune(env *sim.Env, st protocol.Settings, policy string, cands []harness.Hyper, seed uint64, parallel int) ([]Run, error) {
	st.Policy = policy
	var jobs []job
	for _, h := range cands {
		jobs = append(jobs, job{settings: st, hyper: h, seed: seed})
	}
	return runJobs(env, jobs, parallel, nil)
}
