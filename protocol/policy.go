package protocol

import (
	"fmt"
	"sort"
	"strings"
)

// Merge is how an update reaches the global model; the server picks the
// rule once (see NewServer).
type Merge int

const (
	// MergeLossAware is Hermes's: a running aggregate of updates, each
	// weighted by the inverse of the validation loss it would give.
	MergeLossAware Merge = iota
	// MergeMean is the same running aggregate with equal weights.
	MergeMean
	// MergeApply applies each update as it comes (ASP, SSP).
	MergeApply
	// MergeAverage applies the mean of one update from every worker
	// (BSP, LocalSGD), formed by the rounds of Sync.
	MergeAverage
)

var mergeNames = [...]string{MergeLossAware: "loss-aware", MergeMean: "mean", MergeApply: "apply", MergeAverage: "average"}

func (m Merge) String() string {
	if m < 0 || int(m) >= len(mergeNames) {
		return fmt.Sprintf("Merge(%d)", int(m))
	}
	return mergeNames[m]
}

// Sync is when an update may move the global model.
type Sync int

const (
	// Async: as it arrives; the sender gets the new model at once.
	Async Sync = iota
	// StaleSync: as it arrives, but a worker more than Settings.Staleness
	// updates ahead of the slowest waits for the new model (SSP).
	StaleSync
	// Rounds: once every worker has sent one; then all get the new model
	// (BSP, LocalSGD).
	Rounds
	// Buffered: the server keeps updates in a buffer and applies their
	// mean once it holds Settings.Buffer of them (FedBuff); the sender is
	// answered at once with the current model.
	Buffered
)

var syncNames = [...]string{Async: "async", StaleSync: "ssp", Rounds: "sync", Buffered: "buffered"}

func (s Sync) String() string {
	if s < 0 || int(s) >= len(syncNames) {
		return fmt.Sprintf("Sync(%d)", int(s))
	}
	return syncNames[s]
}

// Policy is a training method as a combination of mechanisms. Hermes and
// its ablations differ from each other in one mechanism each; the baselines
// are the classic points of the same space.
type Policy struct {
	Name string
	// GUP gates updates on the local test loss; without it a worker sends
	// an update after every unit of work.
	GUP bool
	// GainGate gates on the gain over the global model instead of the
	// paper's z-score (see Gate.ObserveGain).
	GainGate bool
	// Merge is how an update reaches the global model.
	Merge Merge
	// Sync is when an update may move the global model.
	Sync Sync
	// Allocate resizes outlier workers' chunks and mini-batches.
	Allocate bool
	// AimTime sizes every chunk for Settings.UpdateSeconds of training,
	// the first from the speed a worker declares at join, instead of the
	// paper's fences over the fleet's times (see Allocator).
	AimTime bool
	// MiniBatchUnit makes each unit of work a single mini-batch, one
	// optimizer step, as in classic BSP/ASP/SSP.
	MiniBatchUnit bool
	// HoldOut keeps Settings.HoldOut of each chunk as the worker's test
	// set. The gate needs it; hermes, without the gate, keeps it too, so
	// that it differs from hermes-gup in the gate alone (hermes-whole
	// trains on every sample).
	HoldOut bool
	// StalenessWeight scales an update computed on a model τ versions old
	// by (1+τ)^-1/2, the polynomial staleness function of FedAsync (Xie
	// et al., 2019) and FedBuff (Nguyen et al., 2022).
	StalenessWeight bool
	// TestFirst measures the gate's test loss on part of each chunk
	// before training on all of it (prequential, test-then-train
	// evaluation), instead of holding that part out: the model has not
	// seen those samples when it is tested, and no shipped sample goes
	// untrained.
	TestFirst bool
	// EagerStart makes a worker's first chunk a major update, whatever
	// the gate says: the paper's z-score cannot call one before the third.
	EagerStart bool
	// CompressChunks sends a chunk's samples zstd-compressed when they are
	// bytes (images): samples are most of a run's bytes. The drivers act
	// on it (wire.Data.Compressed); the protocol does not change.
	CompressChunks bool
	// FirstBySpeed caps a worker's first chunk at what it trains in
	// Settings.UpdateSeconds at the speed it declares at join: a slow
	// device is not handed data it will sit on for the whole run before
	// the paper's allocator can act. Fast devices keep the default.
	FirstBySpeed bool
	// Deadline makes the gate send once Settings.MaxWithheld seconds of
	// local training have been withheld, whatever the z-score says (see
	// Gate.Due).
	Deadline bool
}

var policies = map[string]Policy{
	// hermes-paper is the method as published (with the corrections the
	// README lists). hermes is ours: every departure from the paper is a
	// mechanism of its own, with an ablation that removes it alone.
	"hermes-paper": {Name: "hermes-paper", GUP: true, HoldOut: true, Merge: MergeLossAware, Sync: Async, Allocate: true},
	"hermes":       hermes,
	// The departures from the paper, undone one at a time: the gate and
	// the loss-aware merge put back, staleness weights and compression
	// taken out.
	"hermes-gup":       gated,
	"hermes-lossaware": without(hermes, "hermes-lossaware", func(p *Policy) { p.Merge = MergeLossAware }),
	"hermes-nostale":   without(hermes, "hermes-nostale", func(p *Policy) { p.StalenessWeight = false }),
	"hermes-raw":       without(hermes, "hermes-raw", func(p *Policy) { p.CompressChunks = false }),
	// The mechanisms Hermes shares with the paper, one at a time.
	"hermes-noalloc": without(hermes, "hermes-noalloc", func(p *Policy) { p.Allocate = false }),
	"hermes-whole":   without(hermes, "hermes-whole", func(p *Policy) { p.HoldOut = false }),
	// Candidates that did not earn their place (README). On the gate: a
	// gate on the gain over the global model, a first chunk always sent,
	// the test part of a chunk tested before it is trained on, a deadline
	// on withheld training; each is hermes-gup with that change. On the
	// allocation: chunks aimed at a fixed time from the first, and a first
	// chunk sized by declared speed. On the merge: the running aggregate
	// with equal weights.
	"hermes-mean":      without(hermes, "hermes-mean", func(p *Policy) { p.Merge = MergeMean }),
	"hermes-gain":      without(gated, "hermes-gain", func(p *Policy) { p.GainGate = true }),
	"hermes-eager":     without(gated, "hermes-eager", func(p *Policy) { p.EagerStart = true }),
	"hermes-testfirst": without(gated, "hermes-testfirst", func(p *Policy) { p.TestFirst = true }),
	"hermes-deadline":  without(gated, "hermes-deadline", func(p *Policy) { p.Deadline = true }),
	"hermes-aim":       without(hermes, "hermes-aim", func(p *Policy) { p.AimTime = true }),
	"hermes-speed":     without(hermes, "hermes-speed", func(p *Policy) { p.FirstBySpeed = true }),
	"fedasync-zstd":    without(fedasync, "fedasync-zstd", func(p *Policy) { p.CompressChunks = true }),
	"asp":              {Name: "asp", Merge: MergeApply, Sync: Async, MiniBatchUnit: true},
	"ssp":              {Name: "ssp", Merge: MergeApply, Sync: StaleSync, MiniBatchUnit: true},
	"bsp":              {Name: "bsp", Merge: MergeAverage, Sync: Rounds, MiniBatchUnit: true},
	// The strong baselines train chunks locally, Settings.Epochs passes
	// each (tuned per policy like the learning rates).
	"localsgd": {Name: "localsgd", Merge: MergeAverage, Sync: Rounds},
	"fedbuff":  {Name: "fedbuff", Merge: MergeApply, Sync: Buffered, StalenessWeight: true},
	"fedasync": fedasync,
}

// hermes is our method: the paper's allocator and hold-out, without its
// update gate (every chunk trained is sent) and with each update applied
// as it comes, scaled by its staleness, instead of the loss-aware merge;
// chunks travel compressed. Once chunks are compressed, the chunk round
// trips the gate costs outweigh the model bytes it saves, and the
// loss-aware merge's two validation passes per update cost the server more
// than its weights gain (README, Results).
var hermes = Policy{Name: "hermes", HoldOut: true, Merge: MergeApply, Sync: Async,
	Allocate: true, StalenessWeight: true, CompressChunks: true}

// gated is hermes with the paper's gate on the local test loss.
var gated = without(hermes, "hermes-gup", func(p *Policy) { p.GUP = true })

var fedasync = Policy{Name: "fedasync", Merge: MergeApply, Sync: Async, StalenessWeight: true}

// without returns p, renamed, with one mechanism changed by change.
func without(p Policy, name string, change func(*Policy)) Policy {
	p.Name = name
	change(&p)
	return p
}

// PolicyNamed returns the policy called name.
func PolicyNamed(name string) (Policy, error) {
	p, ok := policies[name]
	if !ok {
		return Policy{}, fmt.Errorf("settings: policy = %q, want one of %s", name, strings.Join(PolicyNames(), ", "))
	}
	return p, nil
}

// PolicyNames lists the known policies, sorted.
func PolicyNames() []string {
	var names []string
	for n := range policies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
