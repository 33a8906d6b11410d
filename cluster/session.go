package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/train"
	"github.com/hermes-go/hermes/wire"
)

// maxHeldChunks bounds the chunks a worker holds data of.
const maxHeldChunks = 4

type sessionMsg struct {
	session int64
	msg     any
}

// session is one membership of a worker in a run, from a welcome to a stop
// or a rejoin.
type session struct {
	cfg      WorkerConfig
	tr       Transport
	subj     subjects
	maxChunk int // the run's largest chunk (Settings.MaxChunk)
	out      *sender
	log      *slog.Logger
	id       protocol.WorkerID
	sm       *protocol.Worker
	ct       *train.ChunkTrainer
	rng      *rand.Rand
	shape    nn.Shape
	classes  int
	params   []float32
	// global is the last global model received, kept beside params (which
	// training moves) when the gate compares the two (Policy.GainGate).
	global   []float32
	gainGate bool
	grad     []float32
	chunks   map[int64]*data.Dataset
	got      map[int64]int // rows received of each chunk
	buf      []byte        // send's encoding buffer
}

func newSession(cfg WorkerConfig, tr Transport, subj subjects, out *sender, log *slog.Logger, welcome wire.Welcome) (*session, error) {
	spec, err := nn.ParseSpec([]byte(welcome.Spec))
	if err != nil {
		return nil, fmt.Errorf("model spec from server: %w", err)
	}
	st, err := protocol.ParseSettings([]byte(welcome.Settings))
	if err != nil {
		return nil, fmt.Errorf("settings from server: %w", err)
	}
	var shape nn.Shape
	for _, d := range welcome.Shape {
		shape = append(shape, int(d))
	}
	model, err := nn.Build(spec, shape, int(welcome.Classes))
	if err != nil {
		return nil, err
	}
	id := protocol.WorkerID(welcome.Worker)
	sm, err := protocol.NewWorker(id, st)
	if err != nil {
		return nil, err
	}
	log.Info("joined", "id", id, "params", len(model.Params()))
	policy, _ := protocol.PolicyNamed(st.Policy) // ParseSettings checked it
	return &session{cfg: cfg, gainGate: policy.GainGate, tr: tr, subj: subj, maxChunk: st.MaxChunk, out: out, log: log, id: id, sm: sm, shape: shape, classes: int(welcome.Classes),
		ct:     &train.ChunkTrainer{Model: model, LR: welcome.LocalLR},
		rng:    rand.New(rand.NewPCG(cfg.Seed, uint64(id)+1)),
		chunks: map[int64]*data.Dataset{}, got: map[int64]int{}}, nil
}

// run serves the session until the server stops the worker (stopped), the
// server no longer knows it (a rejoin: nil error, not stopped), or it
// fails.
func (s *session) run(ctx context.Context, inbox <-chan sessionMsg, denied *refusal) (stopped bool, err error) {
	// Heartbeats come from their own goroutine, so a long chunk does not
	// look like a dead worker.
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	rejoin, lost := make(chan struct{}, 1), make(chan error, 1)
	go s.heartbeat(hbCtx, rejoin, lost)
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-rejoin:
			return false, nil
		case err := <-lost:
			return false, err
		case <-denied.done():
			return false, denied.err()
		case m := <-inbox:
			if m.session != int64(s.id) {
				continue // sent to an earlier session
			}
			stop, err := s.handle(m.msg)
			if err != nil || stop {
				return stop, err
			}
		}
	}
}

// heartbeat tells the server the worker is alive. It signals rejoin when
// the server answers that it does not know the worker, and lost when no
// server has answered for cfg.GiveUp.
func (s *session) heartbeat(ctx context.Context, rejoin chan<- struct{}, lost chan<- error) {
	hb, _ := wire.Encode(nil, wire.Heartbeat{Worker: int64(s.id)}, wire.FP32)
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		reply, err := request(ctx, s.tr, s.subj.from(kindHeartbeat, s.cfg.Name), hb, 3*heartbeatEvery)
		if err != nil {
			if ctx.Err() == nil && time.Since(last) > s.cfg.GiveUp {
				lost <- fmt.Errorf("no answer from the server for %v: %w", s.cfg.GiveUp, err)
				return
			}
			continue
		}
		last = time.Now()
		if m, err := wire.Decode(reply); err == nil {
			if _, ok := m.(wire.Rejoin); ok {
				rejoin <- struct{}{}
				return
			}
		}
	}
}

func (s *session) handle(m any) (stop bool, err error) {
	switch m := m.(type) {
	case wire.Model:
		if len(m.Params) != len(s.ct.Model.Params()) {
			return false, fmt.Errorf("model of %d values, want %d", len(m.Params), len(s.ct.Model.Params()))
		}
		s.params = m.Params
		if s.gainGate {
			s.global = slices.Clone(m.Params)
		}
		err = s.sm.Step(protocol.ModelArrived{Version: m.Version})
	case wire.Data:
		err = s.receive(m)
	case protocol.Work:
		d, ok := s.chunks[m.Chunk.ID]
		if !ok || s.got[m.Chunk.ID] != d.Len() || d.Len() != len(m.Chunk.Indices) {
			return false, fmt.Errorf("work for chunk %d arrived without all its data", m.Chunk.ID)
		}
		err = s.sm.Step(protocol.WorkArrived{Work: m})
	case wire.Stop:
		s.log.Info("stopped by server", "reason", m.Reason)
		return true, nil
	default:
		return false, fmt.Errorf("unexpected message %T", m)
	}
	if err != nil {
		return false, err
	}
	return false, s.act()
}

// receive files rows of a chunk. Chunks arrive while the worker trains on
// the one before: that is the prefetch.
func (s *session) receive(m wire.Data) error {
	part := &data.Dataset{X: m.X, Y: m.Y, Classes: s.classes}
	for _, d := range m.Shape {
		part.Shape = append(part.Shape, int(d))
	}
	if !nn.Shape(part.Shape).Equal(s.shape) {
		return fmt.Errorf("chunk %d has samples of shape %v, model wants %v", m.ChunkID, part.Shape, s.shape)
	}
	if err := part.Validate(); err != nil {
		return fmt.Errorf("chunk %d: %w", m.ChunkID, err)
	}
	d, ok := s.chunks[m.ChunkID]
	if !ok {
		// Rows of a chunk are allocated whole: bound what one takes and
		// how many are held (the one in training, the prefetched one,
		// and one of a resize in flight).
		if m.Total > int64(s.maxChunk) {
			return fmt.Errorf("chunk %d of %d samples, the run's largest is %d", m.ChunkID, m.Total, s.maxChunk)
		}
		if len(s.chunks) >= maxHeldChunks {
			return fmt.Errorf("chunk %d: %d chunks held already, at most %d", m.ChunkID, len(s.chunks), maxHeldChunks)
		}
		size := s.shape.Size()
		d = &data.Dataset{X: make([]float32, int(m.Total)*size), Y: make([]int32, m.Total), Shape: part.Shape, Classes: s.classes}
		s.chunks[m.ChunkID] = d
	}
	if int(m.Total) != d.Len() {
		return fmt.Errorf("chunk %d: parts disagree on its size", m.ChunkID)
	}
	copy(d.X[int(m.Offset)*s.shape.Size():], part.X)
	copy(d.Y[m.Offset:], part.Y)
	s.got[m.ChunkID] += part.Len()
	return nil
}

// act carries out the worker's actions; training happens here, on the
// worker's own goroutine, as on a device.
func (s *session) act() error {
	for actions := s.sm.Ready(); len(actions) > 0; actions = s.sm.Ready() {
		for _, a := range actions {
			switch a := a.(type) {
			case protocol.Train:
				if err := s.train(a.Work); err != nil {
					return err
				}
			case protocol.SendUpdate:
				s.send(a.Update, a.Update.Report)
			case protocol.SendReport:
				s.send(a.Report, a.Report)
			}
		}
	}
	return nil
}

func (s *session) train(w protocol.Work) error {
	d := s.chunks[w.Chunk.ID]
	delete(s.chunks, w.Chunk.ID)
	delete(s.got, w.Chunk.ID)
	local := w
	local.Chunk.Indices = make([]int32, d.Len())
	for i := range local.Chunk.Indices {
		local.Chunk.Indices[i] = int32(i)
	}
	s.ct.Data = d
	start, cpu := time.Now(), s.cfg.CPUTime()
	base := 0.0
	if s.gainGate {
		base = s.ct.HeldOutLoss(s.global, local)
	}
	res := s.ct.Chunk(s.params, local, s.rng, s.grad)
	s.grad = res.Grad
	if s.cfg.Slowdown > 1 {
		time.Sleep(time.Duration(float64(s.cfg.CPUTime()-cpu) * (s.cfg.Slowdown - 1)))
	}
	took := time.Since(start)
	if s.cfg.OnTrained != nil {
		s.cfg.OnTrained(d.Len(), res.Samples, took)
	}
	return s.sm.Step(protocol.Trained{ChunkID: w.Chunk.ID, Grad: res.Grad, Loss: res.Loss, BaseLoss: base,
		TrainTime: took, Samples: res.Samples, Steps: res.Steps})
}

// send publishes a report or update. A failed send is logged, not fatal:
// while the server is away the connection buffers, and a chunk whose
// report is lost goes back to the queue when the server drops the session.
func (s *session) send(m any, r protocol.Report) {
	s.log.Info("chunk trained", "chunk", r.ChunkID, "samples", r.Samples, "steps", r.Steps, "loss", r.Loss,
		"major", r.Decision.Major, "z", r.Decision.Z, "threshold", r.Decision.Thres, "train_ms", r.TrainTime.Milliseconds())
	var err error
	if s.buf, err = wire.Encode(s.buf[:0], m, wire.FP32); err == nil {
		err = s.out.publish(s.subj.from(kindUp, s.cfg.Name), s.buf) // the client copies it: buf is reused
	}
	if err != nil {
		s.log.Warn("send", "chunk", r.ChunkID, "err", err)
	}
}
