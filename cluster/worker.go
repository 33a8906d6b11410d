package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
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
	Security Security
	Log      *slog.Logger
	// Transport, when set, carries the worker's messages instead of a
	// NATS connection to URL (MemNetwork in tests); the worker closes it.
	Transport Transport
	// GiveUp is how long the worker keeps trying to reach a server that
	// does not answer (not started yet, restarting, network down) before
	// it fails; 0 means 10 minutes.
	GiveUp time.Duration
}

const heartbeatEvery = time.Second

// RunWorker joins the server at cfg.URL and trains until it is told to
// stop or ctx ends. It joins again, as a new session, whenever the server
// no longer knows it: after the server restarted, or timed it out.
func RunWorker(ctx context.Context, cfg WorkerConfig) error {
	if cfg.Prefix == "" {
		cfg.Prefix = "hermes"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.GiveUp == 0 {
		cfg.GiveUp = 10 * time.Minute
	}
	if !ValidName(cfg.Name) || cfg.Name == "ps" {
		return fmt.Errorf("worker name %q: use letters, digits, - and _ (and not \"ps\")", cfg.Name)
	}
	subj := subjects{cfg.Prefix}
	// NATS refuses what the worker's credentials do not allow (a name that
	// is not theirs) asynchronously; denied keeps the first refusal.
	denied := newRefusal()
	tr := cfg.Transport
	if tr == nil {
		nc, err := dial(ctx, cfg, subj, denied)
		if err != nil {
			return fmt.Errorf("worker %s: connect %s: %w", cfg.Name, cfg.URL, err)
		}
		tr = NATSTransport(nc)
	}
	defer tr.Close()
	// The worker's events go to its stderr and to the server's central log.
	central := slog.NewJSONHandler(publisher{tr, subj.from(kindLog, cfg.Name)}, nil)
	log := slog.New(slog.NewMultiHandler(cfg.Log.Handler(), central)).With("worker", cfg.Name)
	defer tr.Flush()

	// Server-to-worker subjects end in the session's id, so that what was
	// sent to an earlier session is told apart and dropped.
	inbox := make(chan sessionMsg, 1024)
	models := newReceiver() // large models come in pieces
	unsubscribe, err := tr.Subscribe(subj.toSessions(cfg.Name), func(msg Msg) {
		id, err := strconv.ParseInt(msg.Subject[strings.LastIndex(msg.Subject, ".")+1:], 10, 64)
		m, derr := models.decode(msg.Data)
		if err != nil || derr != nil {
			log.Warn("rejected message", "subject", msg.Subject, "err", errors.Join(err, derr))
			return
		}
		if m != nil {
			inbox <- sessionMsg{id, m}
		}
	})
	if err != nil {
		return fmt.Errorf("worker %s: subscribe: %w", cfg.Name, err)
	}
	defer unsubscribe()
	out := newSender(tr)
	for {
		welcome, err := join(ctx, tr, cfg, subj, denied)
		if err != nil {
			return fmt.Errorf("worker %s: %w", cfg.Name, err)
		}
		s, err := newSession(cfg, tr, subj, out, log, welcome)
		if err != nil {
			return fmt.Errorf("worker %s: %w", cfg.Name, err)
		}
		stopped, err := s.run(ctx, inbox, denied)
		if err != nil || stopped {
			return err
		}
		log.Info("rejoining", "old_id", welcome.Worker)
	}
}

type sessionMsg struct {
	session int64
	msg     any
}

// publisher is an io.Writer for a slog.JSONHandler: every record is
// published to subject. A log line is not worth failing a chunk for, so
// errors are dropped.
type publisher struct {
	tr      Transport
	subject string
}

func (p publisher) Write(b []byte) (int, error) {
	p.tr.Publish(p.subject, b)
	return len(b), nil
}

// dial connects, retrying while no server answers: a worker may start
// before its server. A refusal (bad credentials, bad certificate) is final.
// Replies to the worker's requests come to its own inbox, the only one its
// permissions let it read; a permissions violation goes to denied.
func dial(ctx context.Context, cfg WorkerConfig, subj subjects, denied *refusal) (*nats.Conn, error) {
	opts, err := cfg.Security.clientOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.Name("hermes-worker-"+cfg.Name), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond), nats.ReconnectBufSize(64<<20),
		nats.CustomInboxPrefix(subj.inbox(cfg.Name)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				denied.set(fmt.Errorf("refused by NATS: %w (are these credentials bound to another worker name?)", err))
			}
		}))
	deadline := time.Now().Add(cfg.GiveUp)
	for {
		nc, err := nats.Connect(cfg.URL, opts...)
		if err != nil && cfg.Security.TLSCert == "" && strings.Contains(err.Error(), "tls") && !strings.Contains(err.Error(), "x509") {
			// A server that requires client certificates closes the
			// handshake with an error that does not say so.
			return nil, fmt.Errorf("%w (does the server require a client certificate? --tls-cert, --tls-key)", err)
		}
		if err == nil || !errors.Is(err, nats.ErrNoServers) || time.Now().After(deadline) {
			return nc, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// join asks to take part until the server answers, NATS refuses the
// worker's name, or cfg.GiveUp passes.
func join(ctx context.Context, tr Transport, cfg WorkerConfig, subj subjects, denied *refusal) (wire.Welcome, error) {
	req, _ := wire.Encode(nil, wire.Join{Name: cfg.Name, MemoryBytes: cfg.Memory, Cores: cfg.Cores, Version: fmt.Sprint(wire.Version)}, wire.FP32)
	deadline := time.Now().Add(cfg.GiveUp)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-denied.done():
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		reply, err := request(ctx, tr, subj.from(kindJoin, cfg.Name), req, 5*time.Second)
		if denied.err() != nil {
			return wire.Welcome{}, fmt.Errorf("join: %w", denied.err())
		}
		if err == nil {
			m, err := wire.Decode(reply)
			switch m := m.(type) {
			case wire.Welcome:
				return m, nil
			case wire.Stop:
				return wire.Welcome{}, fmt.Errorf("join refused: %s", m.Reason)
			}
			return wire.Welcome{}, fmt.Errorf("join: answered with %T, %v", m, err)
		}
		if ctx.Err() != nil {
			return wire.Welcome{}, ctx.Err()
		}
		if time.Now().After(deadline) {
			return wire.Welcome{}, fmt.Errorf("join: no server answered on %s for %v: %w", cfg.URL, cfg.GiveUp, err)
		}
		select {
		case <-ctx.Done():
			return wire.Welcome{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// request is a request that ends at d or with ctx.
func request(ctx context.Context, tr Transport, subject string, b []byte, d time.Duration) ([]byte, error) {
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return tr.Request(c, subject, b)
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

// session is one membership of a worker in a run, from a welcome to a stop
// or a rejoin.
type session struct {
	cfg     WorkerConfig
	tr      Transport
	subj    subjects
	out     *sender
	log     *slog.Logger
	id      protocol.WorkerID
	sm      *protocol.Worker
	ct      *train.ChunkTrainer
	rng     *rand.Rand
	shape   nn.Shape
	classes int
	params  []float32
	grad    []float32
	chunks  map[int64]*data.Dataset
	got     map[int64]int // rows received of each chunk
	buf     []byte        // send's encoding buffer
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
	return &session{cfg: cfg, tr: tr, subj: subj, out: out, log: log, id: id, sm: sm, shape: shape, classes: int(welcome.Classes),
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
	start := time.Now()
	res := s.ct.Chunk(s.params, local, s.rng, s.grad)
	s.grad = res.Grad
	if s.cfg.Slowdown > 1 {
		time.Sleep(time.Duration(float64(time.Since(start)) * (s.cfg.Slowdown - 1)))
	}
	return s.sm.Step(protocol.Trained{ChunkID: w.Chunk.ID, Grad: res.Grad, Loss: res.Loss,
		TrainTime: time.Since(start), Samples: res.Samples, Steps: res.Steps})
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

// refusal keeps the first error of a kind that arrives asynchronously.
type refusal struct {
	once  sync.Once
	ch    chan struct{}
	first error
}

func newRefusal() *refusal { return &refusal{ch: make(chan struct{})} }

func (r *refusal) set(err error) { r.once.Do(func() { r.first = err; close(r.ch) }) }

// done is closed once there is an error.
func (r *refusal) done() <-chan struct{} { return r.ch }

// err returns the error, nil while there is none.
func (r *refusal) err() error {
	select {
	case <-r.ch:
		return r.first
	default:
		return nil
	}
}
