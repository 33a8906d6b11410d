package protocol

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Checkpoint is the part of a server's state that outlives its process:
// the global model and merge state, the patience counters, the run's clock
// and the dispenser's place in the current pass. Workers are not in it:
// after a restart they join again, so the chunks they held are put back in
// the queue, and no sample of the pass is lost.
type Checkpoint struct {
	Policy    string
	Version   int64
	Now       Time
	Params    []float32
	Agg       []float32 // nil until the first update
	LastLoss  float64
	BestLoss  float64
	SinceBest int
	Merged    int
	Changes   int
	Started   bool
	Stopped   bool
	Data      DispenserState
}

// DispenserState is a dispenser's place in the data: the current pass's
// order, how far it has been handed out, and the chunks waiting to be
// handed out again.
type DispenserState struct {
	Order  []int32
	Pos    int
	Pass   int
	NextID int64
	Queue  []Chunk
	// Acked and Returned carry the chunk accounting across restarts.
	Acked, Returned int64
}

// Checkpoint returns a copy of the server's durable state.
func (s *Server) Checkpoint() Checkpoint {
	return Checkpoint{
		Policy: s.s.Policy, Version: s.version, Now: s.now,
		Params: slices.Clone(s.params), Agg: slices.Clone(s.agg),
		LastLoss: s.lastLoss, BestLoss: s.bestLoss, SinceBest: s.sinceBest, Merged: s.merged, Changes: s.changes,
		Started: s.started || s.resumed, Stopped: s.stopped,
		Data: s.disp.state(),
	}
}

func (d *Dispenser) state() DispenserState {
	queue := slices.Clone(d.requeue)
	var held []Chunk
	for _, a := range d.out {
		held = append(held, a.chunk)
	}
	slices.SortFunc(held, func(a, b Chunk) int { return cmp.Compare(a.ID, b.ID) })
	return DispenserState{Order: slices.Clone(d.order), Pos: d.pos, Pass: d.pass, NextID: d.nextID,
		Queue: append(queue, held...), Acked: d.acked, Returned: d.returned + int64(len(held))}
}

// RestoreServer returns a server that continues from cp over the same
// training set. rng shuffles the passes after the checkpointed one. The
// checkpoint is checked against the settings and the training set first: a
// checkpoint of another run is refused, not half applied.
func RestoreServer(s Settings, cp Checkpoint, trainSize int, val Validator, rng *rand.Rand) (*Server, error) {
	if cp.Policy != s.Policy {
		return nil, fmt.Errorf("checkpoint of policy %q, settings say %q", cp.Policy, s.Policy)
	}
	if cp.Stopped {
		return nil, fmt.Errorf("checkpoint of a run that has ended")
	}
	if cp.Agg != nil && len(cp.Agg) != len(cp.Params) {
		return nil, fmt.Errorf("checkpoint: aggregate of %d values, model of %d", len(cp.Agg), len(cp.Params))
	}
	if cp.Version < 0 || cp.Now < 0 || cp.SinceBest < 0 || cp.Merged < 0 || cp.Changes < 0 {
		return nil, fmt.Errorf("checkpoint: negative version, time or counter")
	}
	for i, v := range cp.Params {
		if !finite(float64(v)) {
			return nil, fmt.Errorf("checkpoint: parameter %d is not finite", i)
		}
	}
	srv, err := NewServer(s, cp.Params, trainSize, val, rng)
	if err != nil {
		return nil, err
	}
	if err := srv.disp.restore(cp.Data); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	srv.version, srv.now = cp.Version, cp.Now
	srv.agg = slices.Clone(cp.Agg)
	srv.lastLoss, srv.bestLoss = cp.LastLoss, cp.BestLoss
	srv.sinceBest, srv.merged, srv.changes = cp.SinceBest, cp.Merged, cp.Changes
	// A restored server has no worker registered. Like a fresh one, it
	// waits for MinWorkers of them before handing out work: otherwise the
	// first worker back trains alone, and a near target can end the run
	// before the others have rejoined.
	srv.resumed = cp.Started
	return srv, nil
}

func (d *Dispenser) restore(st DispenserState) error {
	if len(st.Order) != d.n {
		return fmt.Errorf("data order of %d samples, training set has %d", len(st.Order), d.n)
	}
	seen := make([]bool, d.n)
	for _, v := range st.Order {
		if v < 0 || int(v) >= d.n || seen[v] {
			return fmt.Errorf("data order is not a permutation of the training set")
		}
		seen[v] = true
	}
	if st.Pos < 0 || st.Pos >= d.n || st.Pass < 0 || st.NextID < 0 || st.Acked < 0 || st.Returned < 0 ||
		st.Acked+int64(len(st.Queue)) != st.NextID {
		return fmt.Errorf("data position %d, pass %d, chunk accounting %d cut, %d acknowledged, %d queued",
			st.Pos, st.Pass, st.NextID, st.Acked, len(st.Queue))
	}
	for _, c := range st.Queue {
		if c.ID < 0 || c.ID >= st.NextID || len(c.Indices) == 0 {
			return fmt.Errorf("queued chunk %d is not one the dispenser cut", c.ID)
		}
		for _, v := range c.Indices {
			if v < 0 || int(v) >= d.n {
				return fmt.Errorf("queued chunk %d has sample %d of %d", c.ID, v, d.n)
			}
		}
	}
	d.order = slices.Clone(st.Order)
	d.pos, d.pass, d.nextID = st.Pos, st.Pass, st.NextID
	d.requeue = slices.Clone(st.Queue)
	d.acked, d.returned = st.Acked, st.Returned
	clear(d.out)
	return nil
}
