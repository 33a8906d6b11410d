package bench

import (
	"encoding/json"
	"testing"

	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/sim"
)

// Every seed's run is deterministic, whatever runs beside it; different
// seeds are different runs.
func TestSeedsAreDeterministic(t *testing.T) {
	env := tinyEnv(t)
	sc := env.Scenario
	st := protocol.Defaults()
	st.Chunk, st.MinChunk, st.Epochs = 100, 10, 2
	cfg := ScenarioConfig{Env: env, Policies: []string{"hermes", "fedbuff"}, Settings: st, Seeds: 3,
		Hyper: map[string]harness.Hyper{"hermes": {LocalLR: 0.05, ServerLR: 0.01}, "fedbuff": {LocalLR: 0.05, ServerLR: 0.05, Epochs: 1}}}
	perSeed := func(parallel int) []string {
		cfg.Parallel = parallel
		prs, err := Scenario(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, pr := range prs {
			if len(pr.Runs) != 3 || pr.Stats.Runs != 3 {
				t.Fatalf("%s: %d runs", pr.Policy, len(pr.Runs))
			}
			for i, r := range pr.Runs {
				if r.Seed != sc.Seed+uint64(i) {
					t.Fatalf("%s run %d has seed %d", pr.Policy, i, r.Seed)
				}
				r.Result.WallSeconds = 0
				b, _ := json.Marshal(r.Result)
				out = append(out, string(b))
			}
		}
		return out
	}
	a, b := perSeed(1), perSeed(6)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run %d differs between 1 and 6 at once:\n%s\n%s", i, a[i], b[i])
		}
	}
	if a[0] == a[1] || a[1] == a[2] {
		t.Fatal("two seeds gave the same run")
	}
}

// tinyEnv loads the simulator's three-device scenario on the fixture.
func tinyEnv(t *testing.T) *sim.Env {
	t.Helper()
	sc, err := sim.LoadScenario("../sim/testdata/tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	env, err := sim.NewEnv(sc, 200)
	if err != nil {
		t.Fatal(err)
	}
	return env
}
