package protocol

import (
	"math"
	"sort"
	"time"
)

// Allocator sizes each worker's chunk and mini-batch so that slow devices
// stop being stragglers. It keeps every worker's last chunk time; once all
// have one, a worker whose time lies outside Tukey's fences
// [Q1 - 1.5 IQR, Q3 + 1.5 IQR] of the other workers' times gets the
// (chunk, mini-batch) whose predicted time is closest to their median.
//
// Predictions come from a per-worker cost model fitted to its own
// measurements, time = a·samples + b·steps: a is the compute per sample,
// b the fixed cost of an optimizer step (which is what makes small
// mini-batches slow on small devices).
//
// An allocator that aims (Policy.AimTime) has a fixed target instead,
// Settings.UpdateSeconds: a worker's first chunk is sized from the speed
// it declares at join, and every report that misses the target by more
// than ResizeTolerance resizes it, without waiting for the fleet. The
// paper's rule cannot act before every worker has reported once, and on a
// fleet whose slowest first chunk outlasts the run it never acts at all.
type Allocator struct {
	s       Settings
	epochs  int
	holdOut float64
	aim     bool
	workers map[WorkerID]*allocState
	// times holds every measured worker's last time in seconds, sorted,
	// and unmeasured counts the workers without one: the fences of a
	// report then cost O(log n) searches and one shift, not a sort of
	// the fleet (with 100,000 workers, that sort per report was the run).
	times      []float64
	unmeasured int
	// pass is the size of a pass over the training set (0: unknown), which
	// bounds every chunk to a worker's share of it; see share.
	pass int
	// FirstBySpeed caps a worker's first chunk at what it trains in
	// Settings.UpdateSeconds at the speed it declares (Policy.FirstBySpeed).
	FirstBySpeed bool
}

type allocState struct {
	chunk, miniBatch int
	maxChunk         int
	last             Time
	measured         bool
	hist             []costSample
}

type costSample struct{ samples, steps, secs float64 }

const costHistory = 8

// NewAllocator returns an allocator for work of the given epochs and
// held-out fraction, within the settings' bounds; aim selects the fixed
// target time over the paper's fences.
func NewAllocator(s Settings, epochs int, holdOut float64, aim bool) *Allocator {
	return &Allocator{s: s, epochs: epochs, holdOut: holdOut, aim: aim, workers: map[WorkerID]*allocState{}}
}

// Add registers a worker with its free memory, which caps its chunk, and
// its declared speed in GFLOP/s (0: unknown), which sizes its first chunk
// when the allocator aims.
func (a *Allocator) Add(w WorkerID, memoryBytes int64, gflops float64) {
	maxChunk := a.s.MaxChunk
	if memoryBytes > 0 {
		byMem := int64(float64(memoryBytes)*a.s.MemoryFraction) / a.s.SampleBytes
		maxChunk = int(max(int64(a.s.MinChunk), min(int64(maxChunk), byMem)))
	}
	a.Remove(w)
	st := &allocState{chunk: min(a.s.Chunk, maxChunk), miniBatch: a.s.MiniBatch, maxChunk: maxChunk}
	if (a.aim || a.FirstBySpeed) && gflops > 0 && a.s.SampleFLOPs > 0 {
		perSample := float64(a.s.SampleFLOPs) / (gflops * 1e9)
		aimed, _, _ := a.search(perSample, 0, a.s.UpdateSeconds, maxChunk, st.miniBatch)
		if a.aim {
			st.chunk = aimed
		} else {
			st.chunk = min(st.chunk, aimed)
		}
	}
	a.workers[w] = st
	a.unmeasured++
}

// SetPass tells the allocator how many samples a pass over the training
// set has, which bounds every chunk to a worker's share of a pass.
func (a *Allocator) SetPass(samples int) { a.pass = samples }

// share is the largest chunk any worker gets: its share of a pass, with
// two chunks in flight per worker (one training, one prefetched), and
// never below MinChunk. On a fleet of a few workers it is above the
// default chunk and changes nothing; on a fleet larger than the data (a
// thousand devices and 55,000 samples), 2,500-sample chunks shipped 180
// times the training set before the target was reached.
func (a *Allocator) share() int {
	if a.pass <= 0 || len(a.workers) == 0 {
		return math.MaxInt
	}
	return max(a.s.MinChunk, a.pass/(2*len(a.workers)))
}

// Remove forgets a worker.
func (a *Allocator) Remove(w WorkerID) {
	st, ok := a.workers[w]
	if !ok {
		return
	}
	if st.measured {
		a.dropTime(st.last.Seconds())
	} else {
		a.unmeasured--
	}
	delete(a.workers, w)
}

func (a *Allocator) dropTime(t float64) {
	i := sort.SearchFloat64s(a.times, t)
	a.times = append(a.times[:i], a.times[i+1:]...)
}

func (a *Allocator) addTime(t float64) {
	i := sort.SearchFloat64s(a.times, t)
	a.times = append(a.times, 0)
	copy(a.times[i+1:], a.times[i:])
	a.times[i] = t
}

// Size returns a worker's current chunk size and mini-batch.
func (a *Allocator) Size(w WorkerID) (chunk, miniBatch int) {
	st := a.workers[w]
	return a.chunkOf(st), st.miniBatch
}

func (a *Allocator) chunkOf(st *allocState) int { return min(st.chunk, a.share()) }

// MaxChunk returns the largest chunk a worker can get now: bounded by its
// memory and by its share of a pass.
func (a *Allocator) MaxChunk(w WorkerID) int { return min(a.workers[w].maxChunk, a.share()) }

// Observe records a chunk report and, if the worker is an outlier, resizes
// it. It returns whether the size changed.
func (a *Allocator) Observe(r Report) (resized bool, chunk, miniBatch int, predicted Time) {
	st, ok := a.workers[r.Worker]
	if !ok {
		return false, 0, 0, 0
	}
	if st.measured {
		a.dropTime(st.last.Seconds())
	} else {
		a.unmeasured--
	}
	// a.times holds the others' times until this one's goes in.
	defer a.addTime(r.TrainTime.Seconds())
	st.last, st.measured = r.TrainTime, true
	st.hist = append(st.hist, costSample{float64(r.Samples), float64(r.Steps), r.TrainTime.Seconds()})
	if len(st.hist) > costHistory {
		st.hist = st.hist[1:]
	}
	// A chunk cut before the worker's last resize says nothing about the
	// new size: it was prefetched at the old one. It feeds the cost model,
	// but judging the worker on it would resize it again for a time it no
	// longer has.
	if train, _ := SplitChunk(a.chunkOf(st), a.holdOut); r.Samples != a.epochs*train {
		return false, a.chunkOf(st), st.miniBatch, 0
	}
	if a.aim {
		return a.aimAt(st, r.TrainTime.Seconds())
	}
	if a.unmeasured > 0 {
		return false, a.chunkOf(st), st.miniBatch, 0 // not everyone has reported yet
	}
	others := a.times
	if len(others) == 0 {
		return false, a.chunkOf(st), st.miniBatch, 0
	}
	q1, q3 := quantile(others, 0.25), quantile(others, 0.75)
	lo, hi := q1-1.5*(q3-q1), q3+1.5*(q3-q1)
	t, median := r.TrainTime.Seconds(), quantile(others, 0.5)
	if t >= lo && t <= hi || math.Abs(t-median) <= a.s.ResizeTolerance*median {
		return false, a.chunkOf(st), st.miniBatch, 0
	}
	// The target is the median of every worker's time, this one's
	// included. The others' median alone is a moving target: with few
	// workers, two outliers resized to each other's last time swap sizes
	// forever (TestAllocatorSettlesWithTwoWorkers); with this one's time
	// in, each resize halves the gap at worst, and the sizes settle. With
	// many workers the two medians agree.
	return a.resizeTo(st, medianWith(others, t))
}

// aimAt resizes a worker whose last chunk took t seconds towards
// UpdateSeconds, if t missed it by more than ResizeTolerance.
func (a *Allocator) aimAt(st *allocState, t float64) (resized bool, chunk, miniBatch int, predicted Time) {
	target := a.s.UpdateSeconds
	if math.Abs(t-target) <= a.s.ResizeTolerance*target {
		return false, a.chunkOf(st), st.miniBatch, 0
	}
	return a.resizeTo(st, target)
}

// resizeTo gives a worker the size whose time, by its cost model, is
// closest to target seconds.
func (a *Allocator) resizeTo(st *allocState, target float64) (resized bool, chunk, miniBatch int, predicted Time) {
	perSample, perStep := fitCost(st.hist)
	c, b, pred := a.search(perSample, perStep, target, min(st.maxChunk, a.share()), st.miniBatch)
	changed := c != a.chunkOf(st) || b != st.miniBatch
	st.chunk, st.miniBatch = c, b
	return changed, c, b, Time(pred * float64(time.Second))
}

// predict returns the modelled seconds of a chunk of c samples at
// mini-batch b.
func (a *Allocator) predict(perSample, perStep float64, c, b int) float64 {
	train, _ := SplitChunk(c, a.holdOut)
	steps := (train + b - 1) / b
	return float64(a.epochs) * (perSample*float64(train) + perStep*float64(steps))
}

// search finds, for every candidate mini-batch, by binary search over the
// chunk size (time grows with the chunk), the chunk whose predicted time is
// closest to target, and returns the best over all candidates, preferring
// more samples on ties, then the current mini-batch (with a single
// configuration measured the model cannot tell mini-batches apart, and a
// change would be a guess). O(|candidates| · log(maxChunk)).
func (a *Allocator) search(perSample, perStep, target float64, maxChunk, current int) (chunk, miniBatch int, pred float64) {
	bestDiff := math.Inf(1)
	for _, b := range a.s.MiniBatches {
		lo, hi := a.s.MinChunk, maxChunk
		// Largest c in [lo, hi] with predict(c) <= target, or lo.
		c := lo + sort.Search(hi-lo+1, func(i int) bool {
			return a.predict(perSample, perStep, lo+i, b) > target
		}) - 1
		for _, cand := range []int{max(c, lo), c + 1} {
			if cand < lo || cand > hi {
				continue
			}
			if train, _ := SplitChunk(cand, a.holdOut); train < b {
				continue
			}
			p := a.predict(perSample, perStep, cand, b)
			d := math.Abs(p - target)
			tie := math.Abs(d-bestDiff) <= 1e-12
			if d < bestDiff-1e-12 || (tie && cand > chunk) || (tie && cand == chunk && b == current) {
				bestDiff, chunk, miniBatch, pred = d, cand, b, p
			}
		}
	}
	return chunk, miniBatch, pred
}

// fitCost fits secs = perSample·samples + perStep·steps to a worker's
// measurements by least squares. With one configuration measured the two
// cannot be told apart, and all time is put on the samples.
func fitCost(h []costSample) (perSample, perStep float64) {
	var ss, sk, kk, st, kt, tt, n float64
	for _, c := range h {
		ss += c.samples * c.samples
		sk += c.samples * c.steps
		kk += c.steps * c.steps
		st += c.samples * c.secs
		kt += c.steps * c.secs
		tt += c.secs
		n += c.samples
	}
	det := ss*kk - sk*sk
	if det > 1e-9*ss*kk {
		a := (st*kk - kt*sk) / det
		b := (kt*ss - st*sk) / det
		if a > 0 && b >= 0 {
			return a, b
		}
	}
	if n == 0 {
		return 0, 0
	}
	return tt / n, 0
}

// medianWith returns the median of sorted xs with x added, without
// building that list.
func medianWith(xs []float64, x float64) float64 {
	n := len(xs) + 1
	k := sort.SearchFloat64s(xs, x) // x's place among xs
	// at returns the i-th smallest of xs and x.
	at := func(i int) float64 {
		switch {
		case i < k:
			return xs[i]
		case i == k:
			return x
		}
		return xs[i-1]
	}
	if n%2 == 1 {
		return at(n / 2)
	}
	return at(n/2-1) + 0.5*(at(n/2)-at(n/2-1))
}

// quantile returns the q-quantile of sorted xs by linear interpolation
// between order statistics (NumPy's default, "type 7").
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 1 {
		return xs[0]
	}
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
}
