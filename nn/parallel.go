package nn

import (
	"runtime"
	"sync"
)

// The engine splits work across cores itself (GEMM blocks, batch ranges of
// convolution and pooling) on a fixed set of long-lived goroutines: starting
// goroutines per layer call would cost more than the small GEMMs of edge
// models. GOMAXPROCS sets how many take part, so `--threads` is honoured.
var workers struct {
	once sync.Once
	jobs chan job
	bufs chan *gemmBuf // free packing buffers for calling goroutines
	// groups recycles the wait groups of parallel calls, which would
	// otherwise escape to the heap on every call.
	groups chan *sync.WaitGroup
}

type job struct {
	fn     func(lo, hi int, buf *gemmBuf)
	lo, hi int
	done   *sync.WaitGroup
}

func startWorkers() {
	workers.jobs = make(chan job, 4*runtime.NumCPU())
	for range runtime.NumCPU() {
		go func() {
			buf := new(gemmBuf)
			for j := range workers.jobs {
				j.fn(j.lo, j.hi, buf)
				j.done.Done()
			}
		}()
	}
}

func init() {
	workers.bufs = make(chan *gemmBuf, 4*runtime.NumCPU())
	workers.groups = make(chan *sync.WaitGroup, 4*runtime.NumCPU())
}

// getBuf returns a packing buffer for the calling goroutine. Buffers are
// recycled through a channel rather than a sync.Pool, which the garbage
// collector empties, so steady-state training never allocates one.
func getBuf() *gemmBuf {
	select {
	case b := <-workers.bufs:
		return b
	default:
		return new(gemmBuf)
	}
}

func putBuf(b *gemmBuf) {
	select {
	case workers.bufs <- b:
	default:
	}
}

// parallel calls fn on contiguous ranges that cover [0, n), one per core in
// GOMAXPROCS, the first on the calling goroutine. fn must not call parallel
// (use gemmOn, not gemm, inside it): a worker waiting on other workers could
// wait forever.
func parallel(n int, fn func(lo, hi int, buf *gemmBuf)) {
	parts := min(runtime.GOMAXPROCS(0), n)
	if parts <= 1 {
		buf := getBuf()
		fn(0, n, buf)
		putBuf(buf)
		return
	}
	workers.once.Do(startWorkers)
	var wg *sync.WaitGroup
	select {
	case wg = <-workers.groups:
	default:
		wg = new(sync.WaitGroup)
	}
	wg.Add(parts - 1)
	for p := 1; p < parts; p++ {
		workers.jobs <- job{fn, p * n / parts, (p + 1) * n / parts, wg}
	}
	buf := getBuf()
	fn(0, n/parts, buf)
	putBuf(buf)
	wg.Wait()
	select {
	case workers.groups <- wg:
	default:
	}
}
