package train

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
)

// ChunkTrainer does a worker's local training: plain SGD over a chunk of a
// data set for a few epochs, summing every step's gradient for the update
// the worker may send, and the loss on the chunk's held-out part for its
// update gate. One ChunkTrainer (one engine model) can serve many simulated
// workers, since each call loads the worker's own parameters.
type ChunkTrainer struct {
	Model *nn.Model
	Data  *data.Dataset
	LR    float64

	x   []float32
	y   []int32
	idx []int
	// staged holds a chunk's training samples side by side, when the
	// chunk is a small part of Data (see Chunk).
	staged data.Dataset
}

// ChunkResult is the outcome of training one chunk.
type ChunkResult struct {
	Grad    []float32 // sum of the step gradients
	Loss    float64   // on the held-out part; the last epoch's training loss without one
	Samples int       // samples processed over all epochs
	Steps   int
	// FLOPs is the arithmetic done, training and testing, for cost models.
	FLOPs int64
}

// Worker returns the protocol.Trainer of one worker: this trainer, with the
// worker's own seeded shuffles and gradient buffer.
func (t *ChunkTrainer) Worker(rng *rand.Rand) protocol.Trainer {
	return &workerTrainer{t: t, rng: rng}
}

type workerTrainer struct {
	t    *ChunkTrainer
	rng  *rand.Rand
	grad []float32
}

// Train implements protocol.Trainer. The gradient buffer is reused: the
// worker state machine copies it into its sum when the result is stepped.
func (w *workerTrainer) Train(params []float32, work protocol.Work) (protocol.Trained, int64) {
	res := w.t.Chunk(params, work, w.rng, w.grad)
	w.grad = res.Grad
	return protocol.Trained{ChunkID: work.Chunk.ID, Grad: res.Grad, Loss: res.Loss, Samples: res.Samples, Steps: res.Steps}, res.FLOPs
}

// HeldOutLoss returns the loss of params on w's held-out part, the
// baseline of a gate that asks whether local training beat the global
// model on data neither has seen (Policy.GainGate); NaN without a
// held-out part.
func (t *ChunkTrainer) HeldOutLoss(params []float32, w protocol.Work) float64 {
	_, test := w.Split()
	if len(test) == 0 {
		return math.NaN()
	}
	copy(t.Model.Params(), params)
	return t.heldOut(test)
}

// heldOut returns the model's loss on the samples test.
func (t *ChunkTrainer) heldOut(test []int32) float64 {
	n, size := len(test), t.Data.SampleSize()
	if len(t.x) < n*size {
		t.x = make([]float32, n*size)
		t.y = make([]int32, n)
	}
	idx := t.idx[:0]
	for _, i := range test {
		idx = append(idx, int(i))
	}
	t.idx = idx
	t.Data.Gather(idx, t.x[:n*size], t.y[:n])
	loss, _ := t.Model.Evaluate(t.x[:n*size], t.y[:n], n, 256)
	return loss
}

// Cost returns what Chunk does for w without doing it: the samples and
// optimizer steps over all epochs and the FLOPs of training and testing.
// A simulator prices a chunk's time with it when the chunk starts, and
// trains only when the chunk comes due.
func (t *ChunkTrainer) Cost(w protocol.Work) (samples, steps int, flops int64) {
	trained, tested := w.Split()
	trainN := len(trained)
	batch := max(1, min(w.MiniBatch, trainN))
	samples = w.Epochs * trainN
	steps = w.Epochs * ((trainN + batch - 1) / batch)
	fwd, train := t.Model.FLOPs()
	return samples, steps, int64(samples)*train + int64(len(tested))*fwd
}

// Chunk trains params in place on w, shuffling each epoch with rng. grad,
// if long enough, receives the gradient sum (it is cleared first).
func (t *ChunkTrainer) Chunk(params []float32, w protocol.Work, rng *rand.Rand, grad []float32) ChunkResult {
	m := t.Model
	copy(m.Params(), params)
	if len(grad) != len(params) {
		grad = make([]float32, len(params))
	}
	clear(grad)
	train, test := w.Split()
	trainN, testN := len(train), len(test)
	size := t.Data.SampleSize()
	batch := max(1, min(w.MiniBatch, trainN))
	if len(t.x) < batch*size || len(t.x) < testN*size {
		t.x = make([]float32, max(batch, testN)*size)
		t.y = make([]int32, max(batch, testN))
	}
	fwd, trainFLOPs := m.FLOPs()
	res := ChunkResult{Grad: grad}
	if w.TestFirst && testN > 0 {
		// Tested before any step: these samples are new to the model.
		res.Loss = t.heldOut(test)
		res.FLOPs += int64(testN) * fwd
	}
	// A chunk that is a small part of Data (the simulator's workers all
	// draw from one shared training set) is copied together once, so that
	// its epochs read a few megabytes instead of scattered rows of the
	// whole set. Its order is then positions in the copy, shuffled just
	// as the indices would be: the samples each step sees are the same.
	order := t.idx[:0]
	for _, i := range train {
		order = append(order, int(i))
	}
	t.idx = order
	src := t.Data
	if 4*trainN <= t.Data.Len() {
		t.staged = data.Dataset{X: slices.Grow(t.staged.X[:0], trainN*size)[:trainN*size], Y: slices.Grow(t.staged.Y[:0], trainN)[:trainN],
			Shape: t.Data.Shape, Classes: t.Data.Classes}
		t.Data.Gather(order, t.staged.X, t.staged.Y)
		for k := range order {
			order[k] = k
		}
		src = &t.staged
	}
	lr := float32(t.LR)
	var epochLoss float64
	for e := 0; e < w.Epochs; e++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		epochLoss = 0
		for i := 0; i < trainN; i += batch {
			b := min(batch, trainN-i)
			src.Gather(order[i:i+b], t.x[:b*size], t.y[:b])
			epochLoss += m.Backprop(t.x[:b*size], t.y[:b], b) * float64(b)
			nn.Axpy(1, m.Grads(), grad)
			nn.Axpy(-lr, m.Grads(), m.Params())
			res.Steps++
			res.Samples += b
		}
	}
	res.FLOPs += int64(res.Samples) * trainFLOPs
	switch {
	case w.TestFirst && testN > 0: // measured before training
	case testN > 0:
		res.Loss = t.heldOut(test)
		res.FLOPs += int64(testN) * fwd
	default:
		res.Loss = epochLoss / float64(max(trainN, 1))
	}
	copy(params, m.Params())
	return res
}
