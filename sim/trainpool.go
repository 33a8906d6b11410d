package sim

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/train"
)

// chunkJob is a chunk of local training, priced when it starts and
// trained when it comes due: a run that ends first never pays for it.
// When one comes due, the pool trains the next ones due beside it, one per
// core. A job depends only on its own inputs (the model it started from,
// its work, its own seeded shuffles), so when and on which core it trains
// changes nothing in the run.
type chunkJob struct {
	w    *simWorker
	work protocol.Work
	inc  int       // the worker's incarnation when the job started
	base []float32 // the model it started from
	own  bool      // base is the worker's own (trained in place), not the server's shared copy
	// ref is the last global model the worker received, when its gate
	// compares with it (Policy.GainGate); baseLoss is ref's held-out loss.
	ref      []float32
	baseLoss float64
	seed     uint64
	due      Time
	seq      int64
	idx      int // in the pool's heap; -1 once out of it

	trained bool
	params  []float32 // the model after training
	res     train.ChunkResult
}

func (j *chunkJob) live() bool { return j.w.alive && j.w.incarnation == j.inc }

// trainPool trains due chunks on every core.
type trainPool struct {
	trainers []*train.ChunkTrainer // one engine model per core
	waiting  jobHeap               // started, not trained, by due time
	grads    [][]float32           // free gradient buffers
}

func newTrainPool(env *Env, lr float64, threads int) (*trainPool, error) {
	p := &trainPool{}
	for range max(threads, 1) {
		m, err := nn.Build(env.Spec, env.Train.Shape, env.Train.Classes)
		if err != nil {
			return nil, err
		}
		p.trainers = append(p.trainers, &train.ChunkTrainer{Model: m, Data: env.Train, LR: lr})
	}
	return p, nil
}

func (p *trainPool) add(j *chunkJob) { heap.Push(&p.waiting, j) }

// drop forgets a job that will never be stepped.
func (p *trainPool) drop(j *chunkJob) {
	if j.idx >= 0 {
		heap.Remove(&p.waiting, j.idx)
	}
	if j.trained {
		p.release(j)
	}
}

func (p *trainPool) release(j *chunkJob) {
	p.grads = append(p.grads, j.res.Grad)
	j.res.Grad = nil
}

// train trains j, and beside it the next live jobs due, one per core.
func (p *trainPool) train(j *chunkJob) {
	if j.trained {
		return
	}
	heap.Remove(&p.waiting, j.idx)
	batch := []*chunkJob{j}
	for len(batch) < len(p.trainers) && p.waiting.Len() > 0 {
		if next := heap.Pop(&p.waiting).(*chunkJob); next.live() {
			batch = append(batch, next)
		}
	}
	var grads [][]float32
	for range batch {
		var g []float32
		if n := len(p.grads); n > 0 {
			g, p.grads = p.grads[n-1], p.grads[:n-1]
		}
		grads = append(grads, g)
	}
	run := func(i int) {
		b := batch[i]
		b.params = b.base
		if !b.own { // the server's copy is shared: train a private one
			b.params = slices.Clone(b.base)
		}
		if b.ref != nil {
			b.baseLoss = p.trainers[i].HeldOutLoss(b.ref, b.work)
		}
		rng := rand.New(rand.NewPCG(b.seed^0x747261696e, uint64(b.seq))) // "train"
		b.res = p.trainers[i].Chunk(b.params, b.work, rng, grads[i])
		b.trained = true
	}
	if len(batch) == 1 {
		run(0)
		return
	}
	var wg sync.WaitGroup
	for i := range batch {
		wg.Go(func() { run(i) })
	}
	wg.Wait()
}

// jobHeap orders jobs by due time, then by start.
type jobHeap []*chunkJob

func (h jobHeap) Len() int { return len(h) }
func (h jobHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].seq < h[j].seq
}
func (h jobHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *jobHeap) Push(x any) {
	j := x.(*chunkJob)
	j.idx = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.idx = -1
	return j
}
