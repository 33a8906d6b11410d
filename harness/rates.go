package harness

// Tuned holds each policy's learning rates, chosen by
// `hermes bench --scenario ../shared/scenarios/edge-8.json --tune` (the grid
// of bench.TuneGrid on seed 1001, not the scenario's seed 1; see the
// README). Every policy gets its own best, so none is hobbled; the ablations
// take Hermes's rates, so each differs from Hermes in one mechanism only.
var Tuned = map[string]Hyper{
	"hermes":         {LocalLR: 0.02, ServerLR: 0.005},
	"hermes-nogup":   {LocalLR: 0.02, ServerLR: 0.005},
	"hermes-noalloc": {LocalLR: 0.02, ServerLR: 0.005},
	"hermes-mean":    {LocalLR: 0.02, ServerLR: 0.005},
	"asp":            {LocalLR: 0.02, ServerLR: 0.01},
	"ssp":            {LocalLR: 0.02, ServerLR: 0.02},
	"bsp":            {LocalLR: 0.02, ServerLR: 0.2},
	"localsgd":       {LocalLR: 0.05, ServerLR: 0.05},
}

// Hyper are a policy's learning rates.
type Hyper struct {
	LocalLR  float64 `json:"local_lr"`
	ServerLR float64 `json:"server_lr"`
}
