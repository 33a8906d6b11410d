package protocol

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"time"

	"sigs.k8s.io/yaml"
)

// Settings are the knobs of every policy. Defaults returns the values of
// the Hermes reference code; JSON/YAML field names are the flag names.
type Settings struct {
	Policy string `json:"policy"`

	// Update gate (GUP).
	Alpha          float64 `json:"alpha"`           // initial z-score threshold
	Beta           float64 `json:"beta"`            // relaxation factor
	Lambda         int     `json:"lambda"`          // minor updates before relaxing
	Window         int     `json:"window"`          // test losses kept
	ResetThreshold bool    `json:"reset_threshold"` // reset z_thres to alpha after a major update (the reference never does)
	// MaxWithheld is the most local training, in seconds, a worker with a
	// deadline gate (Policy.Deadline) holds back before it sends.
	MaxWithheld float64 `json:"max_withheld_s"`
	HoldOut     float64 `json:"hold_out"` // fraction of a chunk kept as the worker's test set
	// Gain is the gain gate's starting threshold: the relative fall in
	// held-out loss from the global model to the local one that makes an
	// update major (Policy.GainGate).
	Gain float64 `json:"gain"`

	// Local training.
	Epochs      int   `json:"epochs"`
	Chunk       int   `json:"chunk"`
	MiniBatch   int   `json:"mini_batch"`
	MiniBatches []int `json:"mini_batches"` // the allocator's candidates

	// Allocation bounds.
	MinChunk       int     `json:"min_chunk"`
	MaxChunk       int     `json:"max_chunk"`
	MemoryFraction float64 `json:"memory_fraction"` // share of a worker's free memory its chunk may use
	// ResizeTolerance: an outlier is resized only if its time also differs
	// from the median by more than this fraction. With two or three other
	// workers the fences are as narrow as the clock's noise, and measured
	// times of small chunks would otherwise resize workers at random.
	ResizeTolerance float64 `json:"resize_tolerance"`
	SampleBytes     int64   `json:"sample_bytes"` // size of one sample on the worker (set by the driver)
	// UpdateSeconds is the local training time each chunk is sized for
	// under Policy.AimTime.
	UpdateSeconds float64 `json:"update_seconds"`
	// SampleFLOPs is the arithmetic of training one sample once, forward
	// and backward (set by the driver): with a worker's declared GFLOPS it
	// prices a chunk before the worker has trained any.
	SampleFLOPs int64 `json:"sample_flops"`

	// Server.
	ServerLR   float64 `json:"server_lr"`
	Patience   int     `json:"patience"`    // rounds of the fleet's work (a unit from every worker) without a new best validation loss before stopping
	Staleness  int     `json:"staleness"`   // SSP's bound
	Buffer     int     `json:"buffer"`      // FedBuff: updates averaged into one step
	MinWorkers int     `json:"min_workers"` // training starts when this many have registered
	MaxTime    Time    `json:"max_time"`    // budget; 0 means none
	// EvalEvery is how many global-model changes pass between validation
	// passes (which drive patience); 0 picks 1 for chunk-sized work and
	// chunk/mini_batch for mini-batch work, so that BSP/ASP/SSP are checked
	// about as often per sample as Hermes.
	EvalEvery int `json:"eval_every"`

	// Defences against poisoned updates (see screen and merge).
	// NormBound rejects an update whose norm is more than NormBound times
	// the median of the last merged ones, or whose step (server_lr times
	// its norm) is more than NormBound times the model's norm (at least
	// 1); 0 turns the bound off.
	NormBound float64 `json:"norm_bound"`
	// MaxStaleness rejects an update computed on a model more than this
	// many versions old; 0: no bound. One from a version the server never
	// had is always rejected.
	MaxStaleness int `json:"max_staleness"`
	// RejectWorse: loss-aware merging rejects an update whose candidate
	// model has a validation loss above (1 + RejectWorse) times the
	// current one; 0 turns the check off.
	RejectWorse float64 `json:"reject_worse"`
	// Aggregate is how a round's updates are combined (BSP, LocalSGD):
	// "mean", or the robust "median" (coordinate-wise) and
	// "trimmed-mean" (coordinate-wise, Trim of the values cut at each end).
	Aggregate string  `json:"aggregate"`
	Trim      float64 `json:"trim"`
}

// Defaults returns the settings of the Hermes reference code.
func Defaults() Settings {
	return Settings{
		Policy: "hermes",
		Alpha:  -1.3, Beta: 0.1, Lambda: 5, Window: 10, HoldOut: 0.15, Gain: 0.01, MaxWithheld: 2,
		Epochs: 5, Chunk: 2500, MiniBatch: 16, MiniBatches: []int{2, 4, 8, 16, 32, 64},
		MinChunk: 64, MaxChunk: 20000, MemoryFraction: 0.25, SampleBytes: 4 * 785, ResizeTolerance: 0.1, UpdateSeconds: 2,
		ServerLR: 0.1, Patience: 25, Staleness: 3, Buffer: 3, MinWorkers: 1,
		NormBound: 10, RejectWorse: 1, Aggregate: "mean", Trim: 0.2,
	}
}

// Validate reports the first setting that cannot work, naming its field.
func (s Settings) Validate() error {
	if _, err := PolicyNamed(s.Policy); err != nil {
		return err
	}
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("settings: %s = %v, want %s", field, v, want)
	}
	switch {
	case !finite(s.Alpha) || s.Alpha > 0:
		return bad("alpha", s.Alpha, "a finite value <= 0")
	case !(s.Beta >= 0 && s.Beta < 1):
		return bad("beta", s.Beta, "0 <= beta < 1")
	case s.Lambda < 1:
		return bad("lambda", s.Lambda, ">= 1")
	case !(s.MaxWithheld > 0) || math.IsInf(s.MaxWithheld, 0):
		return bad("max_withheld_s", s.MaxWithheld, "> 0")
	case s.Window < 2:
		return bad("window", s.Window, ">= 2")
	case !(s.HoldOut >= 0 && s.HoldOut < 1):
		return bad("hold_out", s.HoldOut, "0 <= hold_out < 1")
	case !(s.Gain >= 0 && s.Gain < 1):
		return bad("gain", s.Gain, "0 <= gain < 1")
	case s.Epochs < 1:
		return bad("epochs", s.Epochs, ">= 1")
	case s.MiniBatch < 1:
		return bad("mini_batch", s.MiniBatch, ">= 1")
	case s.MinChunk < 2:
		return bad("min_chunk", s.MinChunk, ">= 2")
	case s.MaxChunk < s.MinChunk:
		return bad("max_chunk", s.MaxChunk, fmt.Sprintf(">= min_chunk (%d)", s.MinChunk))
	case s.Chunk < s.MinChunk || s.Chunk > s.MaxChunk:
		return bad("chunk", s.Chunk, fmt.Sprintf("between min_chunk and max_chunk [%d, %d]", s.MinChunk, s.MaxChunk))
	case !(s.MemoryFraction > 0 && s.MemoryFraction <= 1):
		return bad("memory_fraction", s.MemoryFraction, "0 < memory_fraction <= 1")
	case !(s.ResizeTolerance >= 0) || math.IsInf(s.ResizeTolerance, 0):
		return bad("resize_tolerance", s.ResizeTolerance, ">= 0")
	case s.SampleBytes < 1:
		return bad("sample_bytes", s.SampleBytes, ">= 1")
	case !(s.UpdateSeconds > 0) || math.IsInf(s.UpdateSeconds, 0):
		return bad("update_seconds", s.UpdateSeconds, "> 0")
	case s.SampleFLOPs < 0:
		return bad("sample_flops", s.SampleFLOPs, ">= 0")
	case !(s.ServerLR > 0) || math.IsInf(s.ServerLR, 0):
		return bad("server_lr", s.ServerLR, "> 0")
	case s.Patience < 1:
		return bad("patience", s.Patience, ">= 1")
	case s.Staleness < 0:
		return bad("staleness", s.Staleness, ">= 0")
	case s.Buffer < 1:
		return bad("buffer", s.Buffer, ">= 1")
	case s.MinWorkers < 1:
		return bad("min_workers", s.MinWorkers, ">= 1")
	case s.MaxTime < 0:
		return bad("max_time", s.MaxTime, ">= 0")
	case s.EvalEvery < 0:
		return bad("eval_every", s.EvalEvery, ">= 0")
	case len(s.MiniBatches) == 0:
		return bad("mini_batches", s.MiniBatches, "at least one size")
	case !(s.NormBound == 0 || s.NormBound >= 1) || math.IsInf(s.NormBound, 0):
		return bad("norm_bound", s.NormBound, "0 (off) or >= 1")
	case s.MaxStaleness < 0:
		return bad("max_staleness", s.MaxStaleness, ">= 0")
	case !(s.RejectWorse >= 0) || math.IsInf(s.RejectWorse, 0):
		return bad("reject_worse", s.RejectWorse, ">= 0")
	case s.Aggregate != "mean" && s.Aggregate != "median" && s.Aggregate != "trimmed-mean":
		return bad("aggregate", s.Aggregate, "mean, median or trimmed-mean")
	case !(s.Trim >= 0 && s.Trim < 0.5):
		return bad("trim", s.Trim, "0 <= trim < 0.5")
	}
	for _, b := range s.MiniBatches {
		if b < 1 {
			return bad("mini_batches", s.MiniBatches, "sizes >= 1")
		}
	}
	return nil
}

// ParseSettings reads settings from the contents of a JSON or YAML file,
// over the defaults, and validates them. Unknown fields are errors, so a
// typo is not silently ignored. (Reading the file is the caller's business:
// this package does no I/O.)
func ParseSettings(b []byte) (Settings, error) {
	s := Defaults()
	if err := s.decode(b); err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	return s, s.Validate()
}

// settingsFile mirrors Settings with max_time as a duration string ("90m").
type settingsFile struct {
	Settings
	MaxTime string `json:"max_time"`
}

// MarshalJSON writes settings as ParseSettings reads them, max_time as a
// duration string.
func (s Settings) MarshalJSON() ([]byte, error) {
	type plain Settings // without this method
	var mt string
	if s.MaxTime > 0 {
		mt = s.MaxTime.String()
	}
	return json.Marshal(struct {
		plain
		MaxTime string `json:"max_time,omitempty"`
	}{plain(s), mt})
}

func (s *Settings) decode(b []byte) error {
	j, err := yaml.YAMLToJSON(b) // JSON is YAML, so this reads both
	if err != nil {
		return err
	}
	f := settingsFile{Settings: *s}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return err
	}
	*s = f.Settings
	if f.MaxTime != "" {
		d, err := time.ParseDuration(f.MaxTime)
		if err != nil {
			return fmt.Errorf("max_time %q: %w", f.MaxTime, err)
		}
		s.MaxTime = d
	}
	return nil
}

// RegisterFlags binds the settings of the method to flags of the same name
// (with - for _), so that flags override a settings file loaded before
// parsing. The policy is left to the caller: a benchmark takes several.
func (s *Settings) RegisterFlags(fs *flag.FlagSet) {
	fs.Float64Var(&s.Alpha, "alpha", s.Alpha, "initial z-score threshold of the update gate")
	fs.Float64Var(&s.Beta, "beta", s.Beta, "threshold relaxation factor")
	fs.IntVar(&s.Lambda, "lambda", s.Lambda, "minor updates before the threshold relaxes")
	fs.IntVar(&s.Window, "window", s.Window, "test losses in the gate's window")
	fs.Float64Var(&s.MaxWithheld, "max-withheld", s.MaxWithheld, "deadline gate: seconds of local training a worker holds back at most before it sends")
	fs.BoolVar(&s.ResetThreshold, "reset-threshold", s.ResetThreshold, "reset the threshold to alpha after each major update")
	fs.Float64Var(&s.Gain, "gain", s.Gain, "gain gate: relative fall in held-out loss over the global model that makes an update major")
	fs.Float64Var(&s.HoldOut, "hold-out", s.HoldOut, "fraction of each chunk kept as the worker's test set")
	fs.IntVar(&s.Epochs, "local-epochs", s.Epochs, "local epochs per chunk")
	fs.IntVar(&s.Chunk, "chunk", s.Chunk, "initial chunk size (samples)")
	fs.IntVar(&s.MiniBatch, "mini-batch", s.MiniBatch, "initial mini-batch size")
	fs.IntVar(&s.MinChunk, "min-chunk", s.MinChunk, "smallest chunk the allocator assigns")
	fs.IntVar(&s.MaxChunk, "max-chunk", s.MaxChunk, "largest chunk the allocator assigns")
	fs.Float64Var(&s.UpdateSeconds, "update-seconds", s.UpdateSeconds, "local training time a chunk is sized for (policies that aim at a time)")
	fs.Float64Var(&s.ResizeTolerance, "resize-tolerance", s.ResizeTolerance, "resize an outlier only if its time is this fraction away from the median")
	fs.Float64Var(&s.ServerLR, "server-lr", s.ServerLR, "server learning rate")
	fs.IntVar(&s.Patience, "patience", s.Patience, "rounds of the fleet's work (a chunk, or eval-every mini-batches, from every worker) without improvement before stopping")
	fs.IntVar(&s.Staleness, "staleness", s.Staleness, "SSP staleness bound")
	fs.IntVar(&s.Buffer, "buffer", s.Buffer, "FedBuff: updates averaged into one step of the global model")
	fs.IntVar(&s.MinWorkers, "min-workers", s.MinWorkers, "start training when this many workers have registered")
	fs.DurationVar(&s.MaxTime, "max-time", s.MaxTime, "time budget (0: none)")
	fs.Float64Var(&s.NormBound, "norm-bound", s.NormBound, "reject updates this many times larger than the recent median (0: off)")
	fs.IntVar(&s.MaxStaleness, "max-staleness", s.MaxStaleness, "reject updates computed on a model this many versions old (0: no bound)")
	fs.Float64Var(&s.RejectWorse, "reject-worse", s.RejectWorse, "loss-aware merge: reject updates that raise the validation loss by more than this fraction (0: off)")
	fs.StringVar(&s.Aggregate, "aggregate", s.Aggregate, "how a round's updates combine: mean, median or trimmed-mean")
	fs.Float64Var(&s.Trim, "trim", s.Trim, "trimmed-mean: fraction cut at each end")
	fs.IntVar(&s.EvalEvery, "eval-every", s.EvalEvery, "global-model changes between validation passes (0: automatic)")
}
