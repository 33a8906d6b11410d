package harness

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/hermes-go/hermes/protocol"
)

// Hyper are a policy's tuned hyperparameters: the learning rates, and for
// the policies that train chunks locally the passes over each chunk, and
// for the one-step policies the mini-batch. A zero field keeps the
// setting's value.
type Hyper struct {
	LocalLR   float64 `json:"local_lr"`
	ServerLR  float64 `json:"server_lr"`
	Epochs    int     `json:"epochs,omitempty"`
	MiniBatch int     `json:"mini_batch,omitempty"`
	Gain      float64 `json:"gain,omitempty"` // the gain gate's threshold
}

// Apply writes h's server rate, epochs and mini-batch into st. (The local
// rate is the trainer's, not a setting.)
func (h Hyper) Apply(st *protocol.Settings) {
	if h.ServerLR > 0 {
		st.ServerLR = h.ServerLR
	}
	if h.Epochs > 0 {
		st.Epochs = h.Epochs
	}
	if h.MiniBatch > 0 {
		st.MiniBatch = h.MiniBatch
	}
	if h.Gain > 0 {
		st.Gain = h.Gain
	}
}

// TunedTable is what `hermes bench --tune --write` generates: every tuned
// policy's best grid point, chosen by median over tuning seeds that the
// reported figures never use.
type TunedTable struct {
	Commands  []string         `json:"commands"` // that made it, in order
	Scenarios []string         `json:"scenarios"`
	Seeds     []uint64         `json:"seeds"`
	Policies  map[string]Hyper `json:"policies"`
}

//go:embed tuned.json
var tunedJSON []byte

// Tuned holds each policy's hyperparameters from the generated tuned.json.
// The ablations take Hermes's, so that each differs from Hermes in one
// mechanism only.
var Tuned = mustTuned(tunedJSON)

// borrowed names the policies that are another policy with one mechanism
// changed and take its tuned values, so that they differ from it in that
// mechanism only: hermes's ablations and candidates, and the baseline
// given Hermes's chunk compression.
var borrowed = map[string]string{
	"hermes-nostale": "hermes", "hermes-gup": "hermes", "hermes-noalloc": "hermes", "hermes-mean": "hermes",
	"hermes-whole": "hermes", "hermes-lossaware": "hermes",
	"hermes-gain": "hermes", "hermes-aim": "hermes", "hermes-eager": "hermes", "hermes-testfirst": "hermes",
	"hermes-raw": "hermes", "hermes-speed": "hermes", "hermes-deadline": "hermes",
	"fedasync-zstd": "fedasync",
}

func mustTuned(b []byte) map[string]Hyper {
	t, err := ParseTuned(b)
	if err != nil {
		panic(fmt.Sprintf("harness: embedded tuned.json: %v", err))
	}
	out := map[string]Hyper{}
	for p, h := range t.Policies {
		out[p] = h
	}
	for p, from := range borrowed {
		if _, err := protocol.PolicyNamed(p); err != nil {
			panic(fmt.Sprintf("harness: borrowed values: %v", err))
		}
		out[p] = out[from]
	}
	return out
}

// ParseTuned decodes a tuned table and checks every entry names a policy
// and usable rates.
func ParseTuned(b []byte) (TunedTable, error) {
	var t TunedTable
	if err := json.Unmarshal(b, &t); err != nil {
		return t, err
	}
	for p, h := range t.Policies {
		if _, err := protocol.PolicyNamed(p); err != nil {
			return t, err
		}
		if !(h.LocalLR > 0 && h.ServerLR > 0) || h.Epochs < 0 || h.MiniBatch < 0 {
			return t, fmt.Errorf("policy %s: %+v: want rates > 0", p, h)
		}
	}
	return t, nil
}
