package sim

// Tuned holds each policy's learning rates, chosen by `hermes bench --tune`
// (a small grid per policy, on a seed other than the scenario's; see the
// README) on edge-8. Every policy gets its own best, so none is hobbled.
var Tuned = map[string]Hyper{
	"hermes":         {LocalLR: 0.05, ServerLR: 0.1},
	"hermes-nogup":   {LocalLR: 0.05, ServerLR: 0.1},
	"hermes-noalloc": {LocalLR: 0.05, ServerLR: 0.1},
	"hermes-mean":    {LocalLR: 0.05, ServerLR: 0.1},
	"asp":            {LocalLR: 0.05, ServerLR: 0.05},
	"ssp":            {LocalLR: 0.05, ServerLR: 0.05},
	"bsp":            {LocalLR: 0.05, ServerLR: 0.1},
	"localsgd":       {LocalLR: 0.05, ServerLR: 0.05},
}
