package protocol

import "fmt"

// Worker is the state machine of an edge worker. It holds no model: its
// driver owns the parameters, trains them when asked (Train), installs
// global models and tells the worker (ModelArrived). The worker keeps the
// bookkeeping the method needs: the queue of assigned work, the sum of step
// gradients since its last update, and the update gate.
//
// A worker trains a chunk only while it holds a global model that is at
// least as new as its last update, so after sending an update it waits for
// the server's answer, as in Hermes.
type Worker struct {
	id     WorkerID
	policy Policy
	gate   *Gate

	queue    []Work
	version  int64 // of the last global model installed; -1 before the first
	training bool  // a Train action is out
	waiting  bool  // an update is out and no model has come back yet
	stopped  bool

	gradSum []float32
	out     []Action
}

// NewWorker returns the worker id under settings s.
func NewWorker(id WorkerID, s Settings) (*Worker, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	p, _ := PolicyNamed(s.Policy)
	gate := NewGate(s)
	if p.GainGate {
		gate = NewGainGate(s)
	}
	gate.eager = p.EagerStart
	if p.Deadline {
		gate.maxWithheld = s.MaxWithheld
	}
	return &Worker{id: id, policy: p, gate: gate, version: -1}, nil
}

// Gate returns the worker's update gate, for inspection.
func (w *Worker) Gate() *Gate { return w.gate }

// Step feeds the worker one event.
func (w *Worker) Step(ev Event) error {
	if w.stopped {
		return nil
	}
	switch e := ev.(type) {
	case ModelArrived:
		if e.Version < w.version {
			return fmt.Errorf("worker %d: model version %d is older than %d", w.id, e.Version, w.version)
		}
		w.version = e.Version
		w.waiting = false
	case WorkArrived:
		w.queue = append(w.queue, e.Work)
	case Trained:
		if err := w.trained(e); err != nil {
			return err
		}
	case Halt:
		w.stopped = true
		return nil
	default:
		return fmt.Errorf("worker %d: unexpected event %T", w.id, ev)
	}
	w.next()
	return nil
}

// Ready returns the actions accumulated since the last call.
func (w *Worker) Ready() []Action {
	out := w.out
	w.out = nil
	return out
}

// next starts training on the head of the queue when nothing blocks it.
func (w *Worker) next() {
	if w.training || w.waiting || w.version < 0 || len(w.queue) == 0 {
		return
	}
	w.training = true
	w.out = append(w.out, Train{Work: w.queue[0]})
}

func (w *Worker) trained(e Trained) error {
	if !w.training || len(w.queue) == 0 || w.queue[0].Chunk.ID != e.ChunkID {
		return fmt.Errorf("worker %d: result for chunk %d that is not in training", w.id, e.ChunkID)
	}
	w.training = false
	w.queue = w.queue[1:]
	// The sum runs over every step since the last update that was sent;
	// it is cleared when one is sent (the reference code never clears it).
	// A chunk whose loss is not finite diverged; its gradients are dropped.
	if w.gradSum == nil {
		w.gradSum = make([]float32, len(e.Grad))
	}
	if len(e.Grad) != len(w.gradSum) {
		return fmt.Errorf("worker %d: gradient of %d values, want %d", w.id, len(e.Grad), len(w.gradSum))
	}
	if finite(e.Loss) {
		for i, g := range e.Grad {
			w.gradSum[i] += g
		}
	}
	r := Report{Worker: w.id, ChunkID: e.ChunkID, TrainTime: e.TrainTime,
		Samples: e.Samples, Steps: e.Steps, Loss: e.Loss}
	switch {
	case w.policy.GUP && w.policy.GainGate:
		r.Decision = w.gate.ObserveGain(e.Loss, e.BaseLoss)
	case w.policy.GUP:
		r.Decision = w.gate.Observe(e.Loss)
	default:
		r.Decision = Decision{Major: finite(e.Loss), Reason: "every unit is sent"}
		if !r.Decision.Major {
			r.Decision.Reason = "non-finite loss"
		}
	}
	if w.policy.GUP {
		r.Decision = w.gate.Due(r.Decision, e.Loss, e.TrainTime)
	}
	if !r.Decision.Major {
		w.out = append(w.out, SendReport{Report: r})
		return nil
	}
	grad := make([]float32, len(w.gradSum))
	copy(grad, w.gradSum)
	clear(w.gradSum)
	w.waiting = true
	w.out = append(w.out, SendUpdate{Update: Update{Report: r, Grad: grad, Base: w.version}})
	return nil
}
