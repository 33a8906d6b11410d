package protocol

import (
	"math"
	"time"
)

// Time is the time since the start of a run, supplied by the driver: virtual
// in simulation, measured in the cluster. The protocol never reads a clock.
type Time = time.Duration

// WorkerID names a worker within one run.
type WorkerID int

// Chunk is a piece of the training set handed to one worker: the indices of
// its samples in the training set.
type Chunk struct {
	ID      int64
	Indices []int32
}

// SplitChunk returns how many of n chunk samples are trained on and how many
// are held out as the worker's local test set, for a held-out fraction frac.
// Trainers and the allocator's cost model must agree on it, hence one
// function.
func SplitChunk(n int, frac float64) (train, test int) {
	if frac <= 0 || n < 2 {
		return n, 0
	}
	test = max(1, int(math.Round(float64(n)*frac)))
	return n - test, test
}

// Work is a unit of local training: a chunk, the mini-batch size and the
// number of passes over it.
type Work struct {
	Chunk     Chunk
	MiniBatch int
	Epochs    int
	// HoldOut is the fraction of the chunk the worker keeps as its local
	// test set (0 when the policy does not gate updates on test loss).
	HoldOut float64
	// TestFirst tests on that fraction before training on it, with the
	// rest (Policy.TestFirst): no sample is shipped for testing alone.
	TestFirst bool
}

// Split returns the samples of w's chunk the worker trains on and those
// it tests on. Held out, they are disjoint; tested first, the test samples
// are trained on too, after the test.
func (w Work) Split() (train, test []int32) {
	idx := w.Chunk.Indices
	trainN, _ := SplitChunk(len(idx), w.HoldOut)
	if w.TestFirst {
		return idx, idx[trainN:]
	}
	return idx[:trainN], idx[trainN:]
}

// Report is what a worker tells the server after training a chunk; it
// acknowledges the chunk.
type Report struct {
	Worker    WorkerID
	ChunkID   int64
	TrainTime Time    // measured time of the local training
	Samples   int     // samples processed, over all epochs
	Steps     int     // optimizer steps taken
	Loss      float64 // loss on the local test set (training loss without one)
	Decision  Decision
}

// Decision is the outcome of the worker's update gate for one chunk.
type Decision struct {
	Major bool
	// Z and Thres are the z-score of the loss against the window and the
	// threshold it was compared with (both 0 when the gate did not apply).
	Z, Thres float64
	// Reason says why the gate decided as it did, for logs.
	Reason string
}

// Update is a report with a major update: the sum of all step gradients
// since the worker's last update.
type Update struct {
	Report
	Grad []float32
	// Base is the version of the global model the worker last received.
	Base int64
}

// Events a Server steps on.
type (
	// Register announces a worker: its free memory caps its chunk size,
	// and its speed, when it declares one, sizes its first chunk under
	// Policy.AimTime.
	Register struct {
		Worker      WorkerID
		MemoryBytes int64
		Cores       int
		// GFLOPS is the worker's declared arithmetic speed; 0: unknown.
		// The simulator's devices declare theirs; the cluster's workers
		// declare none yet (a probe at join would).
		GFLOPS float64
	}
	// Leave says a worker is gone (left, crashed or timed out); its
	// unacknowledged chunks return to the queue.
	Leave struct{ Worker WorkerID }
	// Tick advances time with no other news, so budgets can expire.
	Tick struct{}
	// Halt stops the run from outside, e.g. when the harness sees the
	// target accuracy.
	Halt struct{ Reason string }
	// Start begins training with the workers registered so far, without
	// waiting for MinWorkers: an operator's start signal.
	Start struct{}
)

// Events a Worker steps on.
type (
	// ModelArrived says the driver has installed a global model of this
	// version as the worker's local model.
	ModelArrived struct{ Version int64 }
	// WorkArrived hands the worker a unit of work.
	WorkArrived struct{ Work Work }
	// Trained is the result of a Train action.
	Trained struct {
		ChunkID int64
		Grad    []float32 // sum of the step gradients of this chunk
		Loss    float64
		// BaseLoss is the loss of the last global model the worker
		// received on the same held-out samples as Loss, for
		// Policy.GainGate; drivers of other policies leave it 0.
		BaseLoss  float64
		TrainTime Time
		Samples   int
		Steps     int
	}
)

// Actions a Server asks of its driver.
type (
	// SendModel: send the global model to a worker.
	SendModel struct {
		To      WorkerID
		Version int64
		// Params is a copy of the global model, shared by every SendModel
		// of this version (a fleet of 100,000 gets one copy, not 100,000):
		// drivers may keep it but must not write it.
		Params []float32
	}
	// Assign: send a unit of work to a worker. Prefetch is set when the
	// worker is still busy with an earlier chunk.
	Assign struct {
		To       WorkerID
		Work     Work
		Prefetch bool
	}
	// Applied: the global model changed. The harness measures test
	// accuracy here; Evals counts the validation passes the server ran for
	// this change, so a simulator can charge their cost.
	Applied struct {
		Version int64
		ValLoss float64
		Evals   int
		From    []WorkerID
	}
	// Discarded: an update was taken (its chunk acknowledged, its sender
	// answered) but not merged, for Reason (one of the Discard*
	// constants). Evals counts the validation passes spent deciding.
	Discarded struct {
		From   []WorkerID
		Reason string
		Evals  int
	}
	// Resized: the allocator gave a worker a new chunk size and mini-batch.
	Resized struct {
		Worker           WorkerID
		Chunk, MiniBatch int
		Predicted        Time
	}
	// Stop: the run is over.
	Stop struct{ Reason string }
)

// Actions a Worker asks of its driver.
type (
	// Train: train the local model on this work and step Trained.
	Train struct{ Work Work }
	// SendUpdate: send a major update to the server and wait for a model.
	SendUpdate struct{ Update Update }
	// SendReport: report a minor update (no gradient) to the server.
	SendReport struct{ Report Report }
)

// Event is anything a state machine steps on.
type Event any

// Action is anything a state machine asks its driver to do.
type Action any

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
