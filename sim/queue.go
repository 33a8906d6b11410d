package sim

import "container/heap"

// queue is the simulator's event list: callbacks ordered by virtual time,
// ties broken by scheduling order so that runs are reproducible.
type queue struct{ items itemHeap }

type item struct {
	at  Time
	seq int64
	fn  func()
}

type itemHeap []item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func (q *queue) push(at Time, seq int64, fn func()) { heap.Push(&q.items, item{at, seq, fn}) }
func (q *queue) pop() item                          { return heap.Pop(&q.items).(item) }
func (q *queue) len() int                           { return len(q.items) }
