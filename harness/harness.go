// Package harness is what both drivers of the protocol state machines, the
// simulator (sim) and the NATS cluster (cluster), put around them, once:
// the validation split and the server's data order from the run's seed,
// the validation loss the server decides with, the experiment's target,
// the byte size of a sample on the wire, and each policy's tuned rates.
// Like etcd's node.go around rawnode.go, the drivers add time and
// transport; the harness makes sure they agree on everything else, so
// that a simulated run and a real one of the same seed start alike.
package harness

import (
	"fmt"
	"math/rand/v2"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
)

// Streams of the run's seed: each random choice draws from its own
// stream, so that adding one does not shift the others.
const (
	splitStream = 0x76616c     // "val": the validation split
	orderStream = 0x6469737065 // "dispe": the dispenser's data order
)

// SplitValidation carves n samples out of the training set for the
// server's validation set, the same ones for the same seed in every
// driver; rest is what workers train on.
func SplitValidation(train *data.Dataset, n int, seed uint64) (val, rest *data.Dataset, err error) {
	return train.Split(n, rand.New(rand.NewPCG(seed, splitStream)))
}

// NewServer starts the parameter server's state machine on params, with
// the data order of the seed.
func NewServer(st protocol.Settings, params []float32, trainSize int, v protocol.Validator, seed uint64) (*protocol.Server, error) {
	return protocol.NewServer(st, params, trainSize, v, rand.New(rand.NewPCG(seed, orderStream)))
}

// RestoreServer continues a checkpointed run. Passes after the checkpoint
// are shuffled from the seed and the checkpoint's version, so that a
// resumed run is as reproducible as a fresh one.
func RestoreServer(st protocol.Settings, cp protocol.Checkpoint, trainSize int, v protocol.Validator, seed uint64) (*protocol.Server, error) {
	return protocol.RestoreServer(st, cp, trainSize, v, rand.New(rand.NewPCG(seed, uint64(cp.Version))))
}

// SampleBytes is what one training sample costs on the wire as float32
// values and a label: the unit the allocator caps chunks by.
func SampleBytes(d *data.Dataset) int64 { return int64(d.SampleSize()*4 + 4) }

// Validator is the server's validation loss: the model of params on the
// validation set. It evaluates with Model, whose parameters it
// overwrites; the server's decisions use it, never the test set.
type Validator struct {
	Model *nn.Model
	Val   *data.Dataset
}

// ValidationLoss implements protocol.Validator.
func (v Validator) ValidationLoss(params []float32) float64 {
	copy(v.Model.Params(), params)
	loss, _ := v.Model.Evaluate(v.Val.X, v.Val.Y, v.Val.Len(), evalBatch)
	return loss
}

// evalBatch is the batch of evaluation passes: large, as no gradient is
// kept.
const evalBatch = 500

// Target is the experiment's stopping rule, not the method's: the first
// test accuracy at or above Accuracy ends the run. An Accuracy of 0 is
// never reached.
type Target struct {
	Accuracy float64
	reached  bool
}

// Reached records a test measurement and reports whether it is the first
// to reach the target.
func (t *Target) Reached(acc float64) bool {
	if t.reached || t.Accuracy <= 0 || acc < t.Accuracy {
		return false
	}
	t.reached = true
	return true
}

// Data is a run's data: the training set workers draw chunks from, the
// server's validation set carved out of it, the test set the harness
// measures on, and the normalization applied to all three.
type Data struct {
	Train, Val, Test *data.Dataset
	Norm             data.Norm
}

// OpenData loads a named data set, or train and test files (see
// data.Open), and carves valSize validation samples out of the training
// set by the seed.
func OpenData(dataset, trainSpec, testSpec string, valSize int, seed uint64) (*Data, error) {
	train, test, norm, err := data.Open(dataset, trainSpec, testSpec)
	if err != nil {
		return nil, err
	}
	val, rest, err := SplitValidation(train, valSize, seed)
	if err != nil {
		return nil, fmt.Errorf("validation set (--val %d): %w", valSize, err)
	}
	return &Data{Train: rest, Val: val, Test: test, Norm: norm}, nil
}

// Rates returns a policy's tuned hyperparameters, each field replaced by
// the one of override that is above 0 (what the user set by flag).
func Rates(policy string, override Hyper) Hyper {
	h := Tuned[policy]
	if override.LocalLR > 0 {
		h.LocalLR = override.LocalLR
	}
	if override.ServerLR > 0 {
		h.ServerLR = override.ServerLR
	}
	if override.Epochs > 0 {
		h.Epochs = override.Epochs
	}
	if override.MiniBatch > 0 {
		h.MiniBatch = override.MiniBatch
	}
	return h
}
