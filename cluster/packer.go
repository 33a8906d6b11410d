package cluster

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hermes-go/hermes/wire"
)

// packerQueue bounds the chunks waiting to be encoded: the server's loop
// waits once that many are queued, as it would have encoded them itself.
const packerQueue = 64

// packer encodes and sends chunks off the server's loop. Compressing a
// 2,500-sample chunk of Fashion-MNIST takes about 11 ms on a core here,
// and more on a small server: time the loop that validates and merges
// updates would otherwise spend on it (the simulator measured that cost:
// on edge-8's 20-GFLOP/s server, compression on the loop made Hermes
// slower than sending chunks raw). One goroutine, so chunks leave in the
// order they were assigned, and a chunk's rows before its work order.
type packer struct {
	jobs  chan packJob
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
	out   *sender // its own: a sender is not safe for concurrent use
	bytes *atomic.Int64
	log   *slog.Logger
}

// packJob is one chunk for one worker: its Data messages, then its Work.
type packJob struct {
	subject, worker string
	msgs            []any
}

func startPacker(tr Transport, bytes *atomic.Int64, log *slog.Logger) *packer {
	k := &packer{jobs: make(chan packJob, packerQueue), quit: make(chan struct{}), done: make(chan struct{}),
		out: newSender(tr), bytes: bytes, log: log}
	go k.run()
	return k
}

func (k *packer) run() {
	defer close(k.done)
	var buf []byte
	for {
		select {
		case <-k.quit:
			return
		case j := <-k.jobs:
			for _, m := range j.msgs {
				var err error
				if buf, err = wire.Encode(buf[:0], m, wire.FP32); err != nil {
					k.log.Error("encode", "err", err)
					break
				}
				k.bytes.Add(int64(len(buf)))
				if err := k.out.publish(j.subject, buf); err != nil {
					k.log.Warn("publish", "worker", j.worker, "err", err)
					break
				}
			}
		}
	}
}

// send queues a chunk; once the packer has stopped it is dropped (the run
// is over).
func (k *packer) send(j packJob) {
	select {
	case k.jobs <- j:
	case <-k.quit:
	}
}

// stop ends the packer and waits for it; chunks still queued are not sent.
func (k *packer) stop() {
	k.once.Do(func() { close(k.quit) })
	<-k.done
}
