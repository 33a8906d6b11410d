package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/train"
	"github.com/hermes-go/hermes/wire"
)

// WorkerConfig configures an edge worker.
type WorkerConfig struct {
	URL    string
	Name   string
	Prefix string
	Memory int64
	Cores  int
	// Slowdown makes a fast machine behave like one Slowdown times slower:
	// after each chunk it sleeps (Slowdown-1) times the training time.
	Slowdown float64
	Seed     uint64
	Token    string // the server's token, if it requires one
	Log      *slog.Logger
}

// RunWorker joins the server at cfg.URL and trains until it is told to
// stop or ctx ends.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	if cfg.Prefix == "" {
		cfg.Prefix = "hermes"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Log = cfg.Log.With("worker", cfg.Name)
	nc, err := nats.Connect(cfg.URL, nats.Name("hermes-worker-"+cfg.Name), nats.Token(cfg.Token))
	if err != nil {
		return fmt.Errorf("worker %s: connect %s: %w", cfg.Name, cfg.URL, err)
	}
	defer nc.Close()
	inbox := make(chan any, 1024)
	sub, err := nc.Subscribe(cfg.Prefix+".w."+cfg.Name, func(msg *nats.Msg) {
		m, err := wire.Decode(msg.Data)
		if err != nil {
			cfg.Log.Warn("rejected message", "err", err)
			return
		}
		inbox <- m
	})
	if err != nil {
		return fmt.Errorf("worker %s: subscribe: %w", cfg.Name, err)
	}
	defer sub.Unsubscribe()
	join, _ := wire.Encode(nil, wire.Join{Name: cfg.Name, MemoryBytes: cfg.Memory, Cores: cfg.Cores, Version: fmt.Sprint(wire.Version)}, wire.FP32)
	reply, err := nc.Request(cfg.Prefix+".join", join, 30*time.Second)
	if err != nil {
		return fmt.Errorf("worker %s: join: %w", cfg.Name, err)
	}
	m, err := wire.Decode(reply.Data)
	if err != nil {
		return fmt.Errorf("worker %s: welcome: %w", cfg.Name, err)
	}
	if stop, ok := m.(wire.Stop); ok {
		return fmt.Errorf("worker %s: join refused: %s", cfg.Name, stop.Reason)
	}
	welcome, ok := m.(wire.Welcome)
	if !ok {
		return fmt.Errorf("worker %s: welcome: got %T", cfg.Name, m)
	}
	spec, err := nn.ParseSpec([]byte(welcome.Spec))
	if err != nil {
		return fmt.Errorf("worker %s: model spec from server: %w", cfg.Name, err)
	}
	st, err := protocol.ParseSettings([]byte(welcome.Settings))
	if err != nil {
		return fmt.Errorf("worker %s: settings from server: %w", cfg.Name, err)
	}
	var shape nn.Shape
	for _, d := range welcome.Shape {
		shape = append(shape, int(d))
	}
	model, err := nn.Build(spec, shape, int(welcome.Classes))
	if err != nil {
		return fmt.Errorf("worker %s: %w", cfg.Name, err)
	}
	id := protocol.WorkerID(welcome.Worker)
	sm, err := protocol.NewWorker(id, st)
	if err != nil {
		return err
	}
	cfg.Log.Info("joined", "id", id, "params", len(model.Params()))

	w := &clusterWorker{cfg: cfg, nc: nc, sm: sm, shape: shape, classes: int(welcome.Classes),
		ct:     &train.ChunkTrainer{Model: model, LR: welcome.LocalLR},
		rng:    rand.New(rand.NewPCG(cfg.Seed, uint64(id)+1)),
		chunks: map[int64]*data.Dataset{}, got: map[int64]int{}}
	// Heartbeats come from their own goroutine, so a long chunk does not
	// look like a dead worker.
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go func() {
		hb, _ := wire.Encode(nil, wire.Heartbeat{Worker: int64(id)}, wire.FP32)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				nc.Publish(cfg.Prefix+".ps", hb)
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-inbox:
			stop, err := w.handle(m)
			if err != nil {
				return fmt.Errorf("worker %s: %w", cfg.Name, err)
			}
			if stop {
				return nil
			}
		}
	}
}

// FreeMemory returns the memory the system can give (MemAvailable in
// /proc/meminfo), what a worker reports so that its chunks fit; 0 where it
// cannot tell.
func FreeMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

type clusterWorker struct {
	cfg     WorkerConfig
	nc      *nats.Conn
	sm      *protocol.Worker
	ct      *train.ChunkTrainer
	rng     *rand.Rand
	shape   nn.Shape
	classes int
	params  []float32
	grad    []float32
	chunks  map[int64]*data.Dataset
	got     map[int64]int // rows received of each chunk
}

func (w *clusterWorker) handle(m any) (stop bool, err error) {
	switch m := m.(type) {
	case wire.Model:
		if len(w.params) > 0 && len(m.Params) != len(w.params) || len(m.Params) != len(w.ct.Model.Params()) {
			return false, fmt.Errorf("model of %d values, want %d", len(m.Params), len(w.ct.Model.Params()))
		}
		w.params = m.Params
		err = w.sm.Step(protocol.ModelArrived{Version: m.Version})
	case wire.Data:
		part := &data.Dataset{X: m.X, Y: m.Y, Classes: w.classes}
		for _, s := range m.Shape {
			part.Shape = append(part.Shape, int(s))
		}
		if !nn.Shape(part.Shape).Equal(w.shape) {
			return false, fmt.Errorf("chunk %d has samples of shape %v, model wants %v", m.ChunkID, part.Shape, w.shape)
		}
		if err := part.Validate(); err != nil {
			return false, fmt.Errorf("chunk %d: %w", m.ChunkID, err)
		}
		d, ok := w.chunks[m.ChunkID]
		if !ok {
			size := w.shape.Size()
			d = &data.Dataset{X: make([]float32, int(m.Total)*size), Y: make([]int32, m.Total), Shape: part.Shape, Classes: w.classes}
			w.chunks[m.ChunkID] = d
		}
		if int(m.Total) != d.Len() {
			return false, fmt.Errorf("chunk %d: parts disagree on its size", m.ChunkID)
		}
		copy(d.X[int(m.Offset)*w.shape.Size():], part.X)
		copy(d.Y[m.Offset:], part.Y)
		w.got[m.ChunkID] += part.Len()
	case protocol.Work:
		d, ok := w.chunks[m.Chunk.ID]
		if !ok || w.got[m.Chunk.ID] != d.Len() || d.Len() != len(m.Chunk.Indices) {
			return false, fmt.Errorf("work for chunk %d arrived without all its data", m.Chunk.ID)
		}
		err = w.sm.Step(protocol.WorkArrived{Work: m})
	case wire.Stop:
		w.cfg.Log.Info("stopped by server", "reason", m.Reason)
		return true, nil
	default:
		return false, fmt.Errorf("unexpected message %T", m)
	}
	if err != nil {
		return false, err
	}
	return false, w.act()
}

// act carries out the worker's actions; training happens here, on the
// worker's own goroutine, as on a device.
func (w *clusterWorker) act() error {
	for actions := w.sm.Ready(); len(actions) > 0; actions = w.sm.Ready() {
		for _, a := range actions {
			switch a := a.(type) {
			case protocol.Train:
				d := w.chunks[a.Work.Chunk.ID]
				delete(w.chunks, a.Work.Chunk.ID)
				delete(w.got, a.Work.Chunk.ID)
				local := a.Work
				local.Chunk.Indices = make([]int32, d.Len())
				for i := range local.Chunk.Indices {
					local.Chunk.Indices[i] = int32(i)
				}
				w.ct.Data = d
				start := time.Now()
				res := w.ct.Chunk(w.params, local, w.rng, w.grad)
				w.grad = res.Grad
				elapsed := time.Since(start)
				if w.cfg.Slowdown > 1 {
					time.Sleep(time.Duration(float64(elapsed) * (w.cfg.Slowdown - 1)))
				}
				if err := w.sm.Step(protocol.Trained{ChunkID: a.Work.Chunk.ID, Grad: res.Grad, Loss: res.Loss,
					TrainTime: time.Since(start), Samples: res.Samples, Steps: res.Steps}); err != nil {
					return err
				}
			case protocol.SendUpdate:
				if err := w.send(a.Update); err != nil {
					return err
				}
			case protocol.SendReport:
				if err := w.send(a.Report); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (w *clusterWorker) send(m any) error {
	b, err := wire.Encode(nil, m, wire.FP32)
	if err != nil {
		return err
	}
	return w.nc.Publish(w.cfg.Prefix+".ps", b)
}
