package protocol

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Dispenser hands out the training set in chunks. It walks a seeded
// shuffle of the sample indices and reshuffles at the end of each pass, so
// every sample is used once per pass (the reference instead sends a fresh
// random sample each time, which repeats some samples and skips others). A
// chunk stays assigned until acknowledged; the chunks of a worker that
// leaves go back to the queue and are handed out before new ones, so no
// sample of a pass is lost.
type Dispenser struct {
	n     int
	rng   *rand.Rand
	order []int32
	pos   int
	pass  int

	nextID   int64
	out      map[int64]assigned // handed out, not yet acknowledged
	requeue  []Chunk            // returned by departed workers
	acked    int64
	returned int64
}

// DispenserStats accounts for every chunk cut: each is acknowledged, held
// by a worker, or queued to be handed out again, so
// Cut = Acked + Outstanding + Queued. Returned counts the times a departed
// worker's chunk went back to the queue.
type DispenserStats struct {
	Cut         int64 `json:"cut"`
	Acked       int64 `json:"acked"`
	Outstanding int64 `json:"outstanding"`
	Queued      int64 `json:"queued"`
	Returned    int64 `json:"returned"`
}

// Stats returns the dispenser's chunk accounting.
func (d *Dispenser) Stats() DispenserStats {
	return DispenserStats{Cut: d.nextID, Acked: d.acked, Outstanding: int64(len(d.out)),
		Queued: int64(len(d.requeue)), Returned: d.returned}
}

type assigned struct {
	worker WorkerID
	chunk  Chunk
}

// NewDispenser returns a dispenser over n samples, shuffled with rng.
func NewDispenser(n int, rng *rand.Rand) *Dispenser {
	d := &Dispenser{n: n, rng: rng, order: make([]int32, n), out: map[int64]assigned{}}
	for i := range d.order {
		d.order[i] = int32(i)
	}
	d.shuffle()
	return d
}

func (d *Dispenser) shuffle() {
	d.rng.Shuffle(d.n, func(i, j int) { d.order[i], d.order[j] = d.order[j], d.order[i] })
}

// Pass returns how many full passes over the data have been handed out.
func (d *Dispenser) Pass() int { return d.pass }

// Next assigns a chunk of up to size samples to worker w. A returned chunk
// is handed out whole, whatever its size; a fresh chunk is cut at the end of
// a pass, so a pass is exactly a permutation.
func (d *Dispenser) Next(w WorkerID, size int) Chunk {
	var c Chunk
	if len(d.requeue) > 0 {
		c = d.requeue[0]
		d.requeue = d.requeue[1:]
	} else {
		end := min(d.pos+size, d.n)
		c = Chunk{ID: d.nextID, Indices: append([]int32(nil), d.order[d.pos:end]...)}
		d.nextID++
		d.pos = end
		if d.pos == d.n {
			d.pos = 0
			d.pass++
			d.shuffle()
		}
	}
	d.out[c.ID] = assigned{w, c}
	return c
}

// Ack marks chunk id, assigned to w, as done.
func (d *Dispenser) Ack(w WorkerID, id int64) error {
	a, ok := d.out[id]
	if !ok || a.worker != w {
		return fmt.Errorf("chunk %d is not assigned to worker %d", id, w)
	}
	delete(d.out, id)
	d.acked++
	return nil
}

// Release returns every unacknowledged chunk of w to the queue, in the
// order they were cut, and reports how many.
func (d *Dispenser) Release(w WorkerID) int {
	var back []Chunk
	for _, a := range d.out {
		if a.worker == w {
			back = append(back, a.chunk)
		}
	}
	// Map order is random; chunk IDs restore the order of the shuffle.
	slices.SortFunc(back, func(a, b Chunk) int { return cmp.Compare(a.ID, b.ID) })
	for _, c := range back {
		delete(d.out, c.ID)
	}
	d.requeue = append(d.requeue, back...)
	d.returned += int64(len(back))
	return len(back)
}

// Holders maps every assigned, unacknowledged chunk to its worker.
func (d *Dispenser) Holders() map[int64]WorkerID {
	h := make(map[int64]WorkerID, len(d.out))
	for id, a := range d.out {
		h[id] = a.worker
	}
	return h
}

// Outstanding returns how many chunks are assigned and not acknowledged.
func (d *Dispenser) Outstanding() int { return len(d.out) }
