package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/wire"
)

// LoadConfig configures a load test: Workers synthetic workers, each its
// own connection and name, join the server at URL and send valid updates
// as fast as Rate per worker per second allows, for Duration.
type LoadConfig struct {
	URL      string
	Workers  int
	Rate     float64 // updates per second per worker
	Duration time.Duration
	Security Security
	// Prefix is the run's subject prefix; empty means "hermes".
	Prefix string
}

// LoadResult is what a load test measured. Latency is from an update's
// send to the arrival of the model that answers it (the server merged it
// and replied), so it covers the server's queueing and merge.
type LoadResult struct {
	Workers       int     `json:"workers"`
	Sent          int64   `json:"sent"`
	Answered      int64   `json:"answered"`
	Dropped       int64   `json:"dropped"` // sent and never answered
	UpdatesPerSec float64 `json:"updates_per_second"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	Seconds       float64 `json:"seconds"`
}

// LoadTest runs the load test. It works against asynchronous policies
// (hermes, asp and their kin), where every update is answered with a
// model; the server needs no authentication or a token.
func LoadTest(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if cfg.Workers < 1 || !(cfg.Rate > 0) || cfg.Duration <= 0 {
		return LoadResult{}, fmt.Errorf("loadtest: workers %d, rate %v, duration %v: want all > 0", cfg.Workers, cfg.Rate, cfg.Duration)
	}
	subj := subjects{cmp.Or(cfg.Prefix, "hermes")}
	opts, err := cfg.Security.clientOptions()
	if err != nil {
		return LoadResult{}, err
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		res       = LoadResult{Workers: cfg.Workers}
	)
	run, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Workers)
	start := time.Now()
	for i := range cfg.Workers {
		name := "load-" + strconv.Itoa(i)
		nc, err := nats.Connect(cfg.URL, append(opts, nats.CustomInboxPrefix(subj.inbox(name)))...)
		if err != nil {
			return res, fmt.Errorf("loadtest: connect %s: %w", cfg.URL, err)
		}
		defer nc.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			lw := &loadWorker{name: name, subj: subj, tr: NATSTransport(nc), rng: rand.New(rand.NewPCG(uint64(i), 1))}
			lat, sent, err := lw.run(ctx, run, cfg.Rate)
			mu.Lock()
			latencies = append(latencies, lat...)
			res.Sent += sent
			mu.Unlock()
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	res.Seconds = time.Since(start).Seconds()
	if err := <-errs; err != nil {
		return res, err
	}
	res.Answered = int64(len(latencies))
	res.Dropped = res.Sent - res.Answered
	res.UpdatesPerSec = float64(res.Answered) / cfg.Duration.Seconds()
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		res.P50Ms = float64(latencies[n/2]) / 1e6
		res.P99Ms = float64(latencies[min(n-1, n*99/100)]) / 1e6
	}
	return res, nil
}

// loadWorker is one synthetic worker: it joins, heartbeats, and sends an
// update on each chunk it is given, as a worker of a gate that always
// says major would.
type loadWorker struct {
	name string
	subj subjects
	tr   Transport
	rng  *rand.Rand
}

// run sends updates until sending ends, then waits (up to 5 s, or until
// ctx ends) for the answer to the last one sent; it returns the latency of
// each answered update and how many it sent.
// join asks to take part, asking again for up to 10 s while nobody
// answers: the server's subscriptions may not be live yet when the load
// starts, as a worker started beside its server finds.
func (w *loadWorker) join(ctx context.Context, join []byte) ([]byte, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		reply, err := request(ctx, w.tr, w.subj.from(kindJoin, w.name), join, time.Until(deadline))
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return reply, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *loadWorker) run(ctx, sending context.Context, rate float64) ([]time.Duration, int64, error) {
	type model struct {
		at     time.Time
		params int
	}
	models := make(chan model, 64)
	works := make(chan int64, 64)
	_, err := w.tr.Subscribe(w.subj.toSessions(w.name), func(m Msg) {
		msg, err := wire.Decode(m.Data)
		if err != nil {
			return
		}
		switch msg := msg.(type) {
		case wire.Model:
			select {
			case models <- model{time.Now(), len(msg.Params)}:
			default:
			}
		case protocol.Work:
			select {
			case works <- msg.Chunk.ID:
			default:
			}
		}
	})
	if err != nil {
		return nil, 0, err
	}
	join, _ := wire.Encode(nil, wire.Join{Name: w.name, MemoryBytes: 1 << 30, Cores: 1, Version: strconv.Itoa(wire.Version)}, wire.FP32)
	reply, err := w.join(sending, join)
	if err != nil {
		return nil, 0, fmt.Errorf("join: %w", err)
	}
	m, err := wire.Decode(reply)
	welcome, ok := m.(wire.Welcome)
	if !ok {
		return nil, 0, fmt.Errorf("join: answered %T %v", m, err)
	}
	beating, stopBeats := context.WithCancel(ctx)
	defer stopBeats()
	go func() { // heartbeats, as a worker's, while the worker runs
		hb, _ := wire.Encode(nil, wire.Heartbeat{Worker: welcome.Worker}, wire.FP32)
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-beating.Done():
				return
			case <-t.C:
				request(beating, w.tr, w.subj.from(kindHeartbeat, w.name), hb, 3*heartbeatEvery)
			}
		}
	}()
	// The first model gives the size of an update.
	var first model
	select {
	case first = <-models:
	case <-sending.Done():
		return nil, 0, errors.New("no model before the end")
	}
	grad := make([]float32, first.params)
	var buf []byte
	var lat []time.Duration
	var sent int64
	every := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for {
		var chunk int64
		select {
		case chunk = <-works:
		case <-sending.Done():
			return lat, sent, nil
		}
		select {
		case <-time.After(time.Until(next)):
		case <-sending.Done():
			return lat, sent, nil
		}
		next = next.Add(every)
		for i := range grad {
			grad[i] = float32(w.rng.NormFloat64() * 1e-3)
		}
		u := protocol.Update{Report: protocol.Report{Worker: protocol.WorkerID(welcome.Worker), ChunkID: chunk,
			TrainTime: time.Millisecond, Samples: 1, Steps: 1, Loss: 1, Decision: protocol.Decision{Major: true}}, Grad: grad}
		buf, _ = wire.Encode(buf[:0], u, wire.FP32)
		sentAt := time.Now()
		if err := w.tr.Publish(w.subj.from(kindUp, w.name), buf); err != nil {
			return lat, sent, err
		}
		sent++
		// Wait for the answer before the next, as an honest worker of an
		// asynchronous policy does.
		select {
		case m := <-models:
			lat = append(lat, m.at.Sub(sentAt))
		case <-sending.Done():
			// The test ended while this update waited: give its answer
			// a while longer.
			select {
			case m := <-models:
				lat = append(lat, m.at.Sub(sentAt))
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
			}
			return lat, sent, nil
		}
	}
}
