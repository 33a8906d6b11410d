package protocol

import (
	"testing"
	"time"
)

// allocRun drives an allocator with workers of fixed per-sample costs (in
// seconds, plus a little noise-free per-step cost), each with a chunk in
// training and one prefetched, as the server hands them out: a resize
// takes effect one chunk later. It returns every worker's chunk size after
// each report.
func allocRun(t *testing.T, costs []float64, reports int) [][]int {
	t.Helper()
	s := Defaults()
	a := NewAllocator(s, 1, 0, false)
	type dev struct {
		queue []int // chunk sizes: in training, then prefetched
		done  float64
	}
	devs := make([]*dev, len(costs))
	for w := range costs {
		a.Add(WorkerID(w), 0, 0)
		c, _ := a.Size(WorkerID(w))
		devs[w] = &dev{queue: []int{c, c}}
	}
	cost := func(w, n int) float64 { return costs[w]*float64(n) + 1e-4*float64(n/16) }
	for w, d := range devs {
		d.done = cost(w, d.queue[0])
	}
	var sizes [][]int
	for range reports {
		w := 0
		for i, d := range devs {
			if d.done < devs[w].done {
				w = i
			}
		}
		d := devs[w]
		n := d.queue[0]
		_, b := a.Size(WorkerID(w))
		secs := cost(w, n)
		a.Observe(Report{Worker: WorkerID(w), TrainTime: Time(secs * float64(time.Second)), Samples: n, Steps: (n + b - 1) / b})
		next, _ := a.Size(WorkerID(w))
		d.queue = append(d.queue[1:], next)
		d.done += cost(w, d.queue[0])
		row := make([]int, len(devs))
		for i := range devs {
			row[i], _ = a.Size(WorkerID(i))
		}
		sizes = append(sizes, row)
	}
	return sizes
}

// Two workers, one four times slower: the allocator must settle, with both
// chunks taking about the same time, not chase each other's last times.
func TestAllocatorSettlesWithTwoWorkers(t *testing.T) {
	costs := []float64{0.0004, 0.0016}
	sizes := allocRun(t, costs, 60)
	last := sizes[len(sizes)-1]
	for _, row := range sizes[40:] {
		if row[0] != last[0] || row[1] != last[1] {
			t.Fatalf("still resizing after 40 reports: %v", sizes[40:])
		}
	}
	t.Logf("settled at %v; first reports %v", last, sizes[:8])
	t0, t1 := costs[0]*float64(last[0]), costs[1]*float64(last[1])
	if r := t0 / t1; r < 0.8 || r > 1.25 {
		t.Fatalf("settled at chunks %v taking %.3fs and %.3fs", last, t0, t1)
	}
}

// Three workers, and eight of the edge-8 kind: the sizes settle too.
func TestAllocatorSettlesWithMoreWorkers(t *testing.T) {
	for _, costs := range [][]float64{
		{0.0004, 0.0008, 0.0016},
		{0.002, 0.002, 0.0005, 0.0005, 0.00025, 0.00025, 0.0000625, 0.0000625},
	} {
		// Slow workers report rarely: give each some 80 reports.
		sizes := allocRun(t, costs, 80*len(costs))
		last := sizes[len(sizes)-1]
		for _, row := range sizes[40*len(costs):] {
			for i := range row {
				if row[i] != last[i] {
					t.Fatalf("%d workers still resizing: %v", len(costs), sizes[40*len(costs):])
				}
			}
		}
	}
}

// The chunk a worker had prefetched before a resize is of the old size: its
// time does not make the worker an outlier again.
func TestAllocatorIgnoresChunksCutBeforeAResize(t *testing.T) {
	a := NewAllocator(Defaults(), 1, 0, false)
	for w := range 3 {
		a.Add(WorkerID(w), 0, 0)
	}
	obs := func(w WorkerID, samples int, secs float64) (bool, int) {
		changed, c, _, _ := a.Observe(Report{Worker: w, TrainTime: Time(secs * float64(time.Second)), Samples: samples, Steps: samples / 16})
		return changed, c
	}
	obs(0, 2500, 1)
	obs(1, 2500, 1)
	changed, c := obs(2, 2500, 4)
	if !changed || c >= 2500 {
		t.Fatalf("a worker 4 times slower was not made smaller: %d", c)
	}
	// The old chunk, a little slower still (noise): without this rule
	// the worker would be resized again, to another size.
	if changed, _ := obs(2, 2500, 4.4); changed {
		t.Fatal("resized again on a chunk cut before the resize")
	}
	if got, _ := a.Size(2); got != c {
		t.Fatalf("chunk %d after the stale report, want %d", got, c)
	}
}

// A chunk is at most a worker's share of a pass: on a fleet larger than
// the data, the default chunk would ship the training set many times over
// before the first update came back.
func TestChunksAreAShareOfAPass(t *testing.T) {
	for _, tc := range []struct {
		workers, want int
	}{
		{1, 10}, // the default chunk: 100 samples / 2 chunks in flight is more
		{4, 10}, // 100 / 8 = 12: still the default
		{10, 5}, // 100 / 20
		{40, 2}, // 100 / 80 = 1, floored at MinChunk
	} {
		srv := newTestServer(t, func(s *Settings) { s.MinWorkers = tc.workers }, []float32{0}, &scriptedVal{losses: []float64{1}})
		for id := range tc.workers {
			srv.Step(0, Register{Worker: WorkerID(id + 1)})
		}
		sizes := map[int]int{}
		for _, a := range srv.Ready() {
			if as, ok := a.(Assign); ok {
				sizes[len(as.Work.Chunk.Indices)]++
			}
		}
		if len(sizes) != 1 || sizes[tc.want] != 2*tc.workers {
			t.Errorf("%d workers on 100 samples: chunk sizes %v, want %d chunks of %d", tc.workers, sizes, 2*tc.workers, tc.want)
		}
	}
}
