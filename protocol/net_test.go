package protocol

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// quadVal is a validation loss with a known shape: 0.5 + Σ p².
type quadVal struct{}

func (quadVal) ValidationLoss(p []float32) float64 {
	l := 0.5
	for _, v := range p {
		l += float64(v) * float64(v)
	}
	return l
}

// network connects a server and its workers in memory, like etcd's
// raft_test network: it delivers every action as the matching event and
// records what happened. Training is left to the test, which answers each
// worker's Train action with a Trained event of its choosing.
type network struct {
	now     Time
	server  *Server
	workers map[WorkerID]*Worker
	s       Settings
	pending map[WorkerID]Work // Train actions not yet answered
	log     []string
}

func newNetwork(s Settings, params []float32, train int, seed uint64) (*network, error) {
	srv, err := NewServer(s, params, train, quadVal{}, rand.New(rand.NewPCG(seed, 0)))
	if err != nil {
		return nil, err
	}
	return &network{server: srv, s: s, workers: map[WorkerID]*Worker{}, pending: map[WorkerID]Work{}}, nil
}

func (n *network) logf(format string, args ...any) {
	n.log = append(n.log, fmt.Sprintf(format, args...))
}

// toServer steps the server and delivers until nothing moves.
func (n *network) toServer(ev Event) {
	if err := n.server.Step(n.now, ev); err != nil {
		n.logf("ps: rejected: %v", err)
	}
	n.settle()
}

func (n *network) register(w WorkerID, mem int64) error {
	wk, err := NewWorker(w, n.s)
	if err != nil {
		return err
	}
	n.workers[w] = wk
	n.toServer(Register{Worker: w, MemoryBytes: mem})
	return nil
}

func (n *network) leave(w WorkerID) {
	delete(n.workers, w)
	delete(n.pending, w)
	n.toServer(Leave{Worker: w})
}

// trained answers w's pending Train.
func (n *network) trained(w WorkerID, loss float64, dt Time, grad float32) error {
	work, ok := n.pending[w]
	if !ok {
		return fmt.Errorf("w%d is not training", w)
	}
	delete(n.pending, w)
	g := make([]float32, len(n.server.Params()))
	for i := range g {
		g[i] = grad
	}
	train, _ := SplitChunk(len(work.Chunk.Indices), work.HoldOut)
	steps := work.Epochs * ((train + work.MiniBatch - 1) / work.MiniBatch)
	// The global model's held-out loss, for the gain gate: gains of 0,
	// 7% and 14% in turn, so some chunks are major and some minor.
	base := loss * (1 + 0.08*float64(work.Chunk.ID%3))
	if err := n.workers[w].Step(Trained{ChunkID: work.Chunk.ID, Grad: g, Loss: loss, BaseLoss: base, TrainTime: dt,
		Samples: work.Epochs * train, Steps: steps}); err != nil {
		return err
	}
	n.settle()
	return nil
}

func (n *network) settle() {
	for moved := true; moved; {
		moved = false
		for _, a := range n.server.Ready() {
			moved = true
			n.serverAction(a)
		}
		for _, id := range n.workerIDs() {
			for _, a := range n.workers[id].Ready() {
				moved = true
				n.workerAction(id, a)
			}
		}
	}
}

func (n *network) workerIDs() []WorkerID {
	var ids []WorkerID
	for id := range n.workers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (n *network) serverAction(a Action) {
	switch a := a.(type) {
	case SendModel:
		n.logf("ps: model v%d -> w%d", a.Version, a.To)
		if w, ok := n.workers[a.To]; ok {
			w.Step(ModelArrived{Version: a.Version})
		}
	case Assign:
		pre := ""
		if a.Prefetch {
			pre = " (prefetch)"
		}
		n.logf("ps: chunk %d [%d samples, mb %d, %d epochs] -> w%d%s", a.Work.Chunk.ID, len(a.Work.Chunk.Indices), a.Work.MiniBatch, a.Work.Epochs, a.To, pre)
		if w, ok := n.workers[a.To]; ok {
			w.Step(WorkArrived{Work: a.Work})
		}
	case Applied:
		n.logf("ps: applied v%d from %v: val %.4g, %d evals", a.Version, a.From, a.ValLoss, a.Evals)
	case Resized:
		n.logf("ps: resize w%d: chunk %d, mb %d, predicted %v", a.Worker, a.Chunk, a.MiniBatch, a.Predicted)
	case Stop:
		n.logf("ps: stop: %s", a.Reason)
		for _, id := range n.workerIDs() {
			n.workers[id].Step(Halt{Reason: a.Reason})
		}
	default:
		n.logf("ps: unknown action %T", a)
	}
}

func (n *network) workerAction(id WorkerID, a Action) {
	switch a := a.(type) {
	case Train:
		n.logf("w%d: train chunk %d", id, a.Work.Chunk.ID)
		n.pending[id] = a.Work
	case SendUpdate:
		d := a.Update.Decision
		n.logf("w%d: update chunk %d: loss %.4g, z %.3f <= %.3f (%s)", id, a.Update.ChunkID, a.Update.Loss, d.Z, d.Thres, d.Reason)
		n.server.Step(n.now, a.Update)
	case SendReport:
		d := a.Report.Decision
		n.logf("w%d: minor chunk %d: loss %.4g, z %.3f > %.3f (%s)", id, a.Report.ChunkID, a.Report.Loss, d.Z, d.Thres, d.Reason)
		n.server.Step(n.now, a.Report)
	default:
		n.logf("w%d: unknown action %T", id, a)
	}
}

func (n *network) flush() string {
	out := strings.Join(n.log, "\n")
	n.log = n.log[:0]
	return out
}
