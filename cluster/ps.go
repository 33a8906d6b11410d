package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/wire"
)

// PSConfig configures a parameter server.
type PSConfig struct {
	Settings   protocol.Settings
	LocalLR    float64 // handed to workers
	Train, Val *data.Dataset
	Test       *data.Dataset
	Spec       nn.Spec
	InitParams []float32         // the model's starting weights (an imported model's); nil: seeded
	ModelMeta  map[string]string // saved with the final model (the input normalization)
	// Norm is the normalization applied to the data sets. With it, samples
	// that were bytes in their file travel as bytes (see wire.Data).
	Norm   data.Norm
	Seed   uint64
	Target float64 // stop when the test accuracy reaches it (0: never)
	// Transport, when set, carries the run's messages (MemNetwork in
	// tests); NATS, Listen and MaxPayload are then not used, and there is
	// no JetStream object store.
	Transport Transport
	// NATS is the URL of an existing NATS server; empty starts an
	// embedded one on Listen (host:port; port -1 picks a free one).
	NATS   string
	Listen string
	// MaxPayload is the embedded server's message limit; 0 means 64 MB.
	// Larger messages go in pieces (wire.Fragment).
	MaxPayload int32
	Prefix     string
	Security   Security
	Log        *slog.Logger
	// RunDir keeps the checkpoint, final model, summary and logs (see
	// runDir); empty keeps nothing. Resume continues the run checkpointed
	// there.
	RunDir string
	Resume bool
	// CheckpointEvery is how often the state is saved while the run goes
	// (it is also saved on interruption); 0 means 30 s.
	CheckpointEvery time.Duration
	// OnApplied, when set, is called after each measured change of the
	// global model (from the server's goroutine).
	OnApplied func(Status)
	// Events, when set, is called with every event line of the run's
	// central log (the server's and the workers', as events.jsonl keeps
	// them), one at a time; it needs a RunDir. A dashboard watches a run
	// this way.
	Events func(line []byte)
	// Timeout is how long a worker may stay silent (no message, no
	// heartbeat) before it is taken for gone; 0 means 10 s.
	Timeout time.Duration
}

// Status is the run's state after a change of the global model.
type Status struct {
	Elapsed  time.Duration
	Version  int64
	Accuracy float64
	Workers  map[string]WorkerStatus
}

// WorkerStatus is what the server knows of one worker.
type WorkerStatus struct {
	Chunk     int     `json:"chunk"`
	MiniBatch int     `json:"mini_batch"`
	Major     int     `json:"major"`
	Minor     int     `json:"minor"`
	LastLoss  float64 `json:"last_loss"`
	Joins     int     `json:"joins"` // 1, plus one per rejoin
	// Held is how many chunks the worker holds, assigned and not yet
	// acknowledged, as the summary is taken.
	Held int `json:"held"`
}

// Summary is the outcome of a run; its JSON is what `hermes ps --json` and
// `hermes demo --json` print.
type Summary struct {
	ReachedTarget bool    `json:"reached_target"`
	FinalAccuracy float64 `json:"final_accuracy"`
	BestAccuracy  float64 `json:"best_accuracy"`
	WallSeconds   float64 `json:"wall_seconds"`
	// TrainSeconds is the wall time from the first chunk handed out to the
	// end of the run (of this process, after a resume): the run without
	// the start-up and the joins before it, what a simulation's virtual
	// time to target compares with.
	TrainSeconds float64 `json:"train_seconds"`
	BytesTotal   int64   `json:"bytes_total"`
	UpdatesTotal int64   `json:"updates_total"`
	Workers      int     `json:"workers"`
	StopReason   string  `json:"stop_reason"`
	Version      int64   `json:"version"`      // global-model changes so far
	ResumedFrom  int64   `json:"resumed_from"` // the version a resumed run started at (0: not resumed)
	Lost         int     `json:"lost_workers"` // timed out; their chunks were handed out again
	// Auth is how workers prove who they are: "nkey" or "mtls" (each its
	// own identity and permissions), "token" (one shared identity), or
	// "none".
	Auth string `json:"auth"`
	// Rejected counts the messages turned away, by reason (see reject.go).
	Rejected  map[string]int64        `json:"rejected,omitempty"`
	Chunks    protocol.DispenserStats `json:"chunks"`
	PerWorker map[string]WorkerStatus `json:"per_worker"`
	RunDir    string                  `json:"run_dir,omitempty"`
	Archive   string                  `json:"archive,omitempty"`
}

// PS is a running parameter server.
type PS struct {
	cfg     PSConfig
	log     *slog.Logger
	ns      *server.Server
	nc      *nats.Conn // of a NATS transport: JetStream's too
	tr      Transport
	srv     *protocol.Server
	model   *nn.Model // the server's: validation passes
	rd      *runDir
	objects *objectStore // nil without JetStream
	meter   *meter
	// trainBytes is the training set as bytes, when it travels as bytes.
	trainBytes []uint8
	inbox      chan inbound
	buf        []byte // publish's encoding buffer
	out        *sender
	pack       *packer // sends chunks

	subj       subjects
	rejected   rejections
	target     harness.Target
	names      map[protocol.WorkerID]string    // every worker that joined
	live       map[protocol.WorkerID]time.Time // last word from each live worker
	session    map[string]protocol.WorkerID    // each live worker's session, by name
	joinTimes  map[string][]time.Time          // recent joins by name, for joinBurst
	joined     sync.Map                        // names that ever joined (read by intake)
	status     map[string]*WorkerStatus        // by name, across rejoins
	nextWorker int64
	bytesIn    atomic.Int64 // payloads received, and sent
	bytesOut   atomic.Int64
	validating timedValidator
	start      time.Time
	firstChunk time.Time     // when the first chunk was handed out
	offset     time.Duration // run time before a resume
	lastSave   time.Time
	// lastMeasured is the version of the newest test measurement; result
	// is the model that reached the target, once one has.
	lastMeasured int64
	result       []float32
	sum          Summary
	once         sync.Once
	done         chan struct{}  // closed when the server closes: intake stops waiting
	writes       sync.WaitGroup // checkpoints being written off the loop
	writing      atomic.Bool    // one is
}

// StartPS starts the server (and, without cfg.NATS, an embedded NATS).
func StartPS(cfg PSConfig) (*PS, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "hermes"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = 30 * time.Second
	}
	if cfg.Resume && cfg.RunDir == "" {
		return nil, fmt.Errorf("resume: needs the run dir of the run to continue")
	}
	if err := cfg.Security.Validate(); err != nil {
		return nil, err
	}
	m, err := nn.Build(cfg.Spec, cfg.Train.Shape, cfg.Train.Classes)
	if err != nil {
		return nil, err
	}
	m.Init(cfg.Seed)
	if cfg.InitParams != nil {
		if len(cfg.InitParams) != len(m.Params()) {
			return nil, fmt.Errorf("model %s: %d starting weights for %d parameters", cfg.Spec.Name, len(cfg.InitParams), len(m.Params()))
		}
		copy(m.Params(), cfg.InitParams)
	}
	m.Meta = cfg.ModelMeta
	p := &PS{cfg: cfg, model: m, target: harness.Target{Accuracy: cfg.Target}, inbox: make(chan inbound, 1024), done: make(chan struct{}), log: cfg.Log,
		subj: subjects{cfg.Prefix}, names: map[protocol.WorkerID]string{}, live: map[protocol.WorkerID]time.Time{},
		session: map[string]protocol.WorkerID{}, joinTimes: map[string][]time.Time{}, status: map[string]*WorkerStatus{}}
	if p.meter, err = newMeter(cfg.Spec, cfg.Test); err != nil {
		return nil, err
	}
	// Once, not per chunk: the training set as the bytes it was in its
	// file, if it was (see wire.Data).
	if cfg.Train.ValueBytes == 1 {
		if raw, ok := wire.ByteSamples(cfg.Train.X, data.ByteScale, cfg.Norm.Mean, cfg.Norm.Std); ok {
			p.trainBytes = raw
		}
	}
	for _, open := range []func() error{p.openLog, p.connect, p.openState} {
		if err := open(); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// openLog opens the run dir and sends the server's events to it as well.
func (p *PS) openLog() error {
	if p.cfg.RunDir == "" {
		return nil
	}
	var err error
	if p.rd, err = openRunDir(p.cfg.RunDir); err != nil {
		return err
	}
	p.rd.tee = p.cfg.Events
	file := slog.NewJSONHandler(nodeWriter{p.rd, "ps"}, nil).WithAttrs([]slog.Attr{slog.String("node", "ps")})
	p.log = slog.New(slog.NewMultiHandler(p.cfg.Log.Handler(), file))
	return nil
}

// Start begins training with the workers that have joined, without
// waiting for the minimum count.
func (p *PS) Start() { p.inbox <- inbound{msg: protocol.Start{}} }

// Run serves until the protocol stops or ctx ends. When ctx ends first
// (SIGTERM), the state is checkpointed and the workers are left waiting,
// to reconnect to `hermes ps --resume`.
func (p *PS) Run(ctx context.Context) (Summary, error) {
	p.start = time.Now().Add(-p.offset)
	p.lastSave = time.Now()
	st := p.cfg.Settings
	p.log.Info("run started", "policy", st.Policy, "chunk", st.Chunk, "mini_batch", st.MiniBatch, "target", p.cfg.Target)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for !p.srv.Stopped() {
		select {
		case <-ctx.Done():
			return p.interrupt()
		case <-tick.C:
			p.expire()
			p.step(protocol.Tick{})
			if p.rd != nil && time.Since(p.lastSave) >= p.cfg.CheckpointEvery {
				if err := p.checkpoint(false); err != nil {
					p.log.Error("checkpoint", "err", err)
				}
			}
		case in := <-p.inbox:
			p.handle(in)
		case m := <-p.meter.done:
			p.measured(m)
		}
	}
	p.pack.stop()
	p.tr.Flush()
	// A run that reached its target ends with the model that reached it;
	// any other ends with the server's last model, measured here.
	p.meter.stop()
	if v := p.srv.Version(); p.result == nil && v != p.lastMeasured {
		p.measured(p.meter.measure(snapshot{version: v, at: p.elapsed(), params: p.srv.Params()}))
	}
	sum := p.summary()
	if p.rd == nil {
		return sum, nil
	}
	if err := p.finish(&sum); err != nil {
		return sum, err
	}
	return sum, nil
}

func (p *PS) summary() Summary {
	sum := p.sum
	sum.WallSeconds = p.elapsed().Seconds()
	if !p.firstChunk.IsZero() {
		sum.TrainSeconds = time.Since(p.firstChunk).Seconds()
	}
	sum.BytesTotal = p.bytesIn.Load() + p.bytesOut.Load()
	sum.Workers = len(p.status)
	sum.Version = p.srv.Version()
	sum.Chunks = p.srv.Dispenser().Stats()
	sum.PerWorker = map[string]WorkerStatus{}
	for name, st := range p.status {
		ws := *st
		ws.Held = 0
		sum.PerWorker[name] = ws
	}
	for _, id := range p.srv.Dispenser().Holders() {
		if ws, ok := sum.PerWorker[p.names[id]]; ok {
			ws.Held++
			sum.PerWorker[p.names[id]] = ws
		}
	}
	sum.RunDir = p.cfg.RunDir
	sum.Rejected = p.rejected.counts()
	sum.Auth = p.cfg.Security.mode()
	return sum
}

// Halt stops the run and tells the live workers to stop. Run does so
// itself when the run ends; Halt is for after Run returned on its context,
// when the workers were left waiting for a resume.
func (p *PS) Halt(reason string) error {
	p.step(protocol.Halt{Reason: reason})
	return p.tr.Flush()
}

// Rejected returns the counts of rejected messages by reason so far; it is
// safe to call while the server runs.
func (p *PS) Rejected() map[string]int64 { return p.rejected.counts() }

func (p *PS) elapsed() time.Duration { return time.Since(p.start) }

func (p *PS) handle(in inbound) {
	switch m := in.msg.(type) {
	case wire.Heartbeat:
		id := protocol.WorkerID(m.Worker)
		if owner, ok := p.names[id]; ok && owner != in.from {
			p.reject(rejectForged, in.from, "claims", owner, "id", id)
			return
		}
		if cur, ok := p.session[in.from]; ok && cur == id {
			p.live[id] = time.Now()
			in.reply(m)
		} else {
			in.reply(wire.Rejoin{Reason: "unknown worker"})
		}
	case wire.Join:
		p.join(in.from, m, in.reply)
	case protocol.Start: // from Start, never from the network
		p.log.Info("start signal", "workers", len(p.live))
		p.step(m)
	case protocol.Report:
		if p.account(in.from, m, false) {
			p.stepFrom(in.from, m)
		}
	case protocol.Update:
		if p.account(in.from, m.Report, true) {
			p.sum.UpdatesTotal++
			p.stepFrom(in.from, m)
		}
	default:
		p.log.Error("unexpected message in the inbox", "type", fmt.Sprintf("%T", m))
	}
}

// stepFrom steps a worker's message; one the protocol refuses is counted.
func (p *PS) stepFrom(from string, ev protocol.Event) {
	if err := p.srv.Step(p.elapsed(), ev); err != nil {
		p.reject(rejectProtocol, from, "err", err)
	}
	p.ready()
}

func (p *PS) step(ev protocol.Event) {
	if err := p.srv.Step(p.elapsed(), ev); err != nil {
		p.log.Warn("rejected event", "err", err)
	}
	p.ready()
}

func (p *PS) ready() {
	for _, a := range p.srv.Ready() {
		p.act(a)
	}
}

// publish sends m to a worker. The encoding buffer is reused: the NATS
// client copies what it is given, and a model goes out on every update.
func (p *PS) publish(to protocol.WorkerID, m any) {
	var err error
	if p.buf, err = wire.Encode(p.buf[:0], m, wire.FP32); err != nil {
		p.log.Error("encode", "err", err)
		return
	}
	p.bytesOut.Add(int64(len(p.buf)))
	if err := p.out.publish(p.subj.toWorker(p.names[to], int64(to)), p.buf); err != nil {
		p.log.Warn("publish", "worker", p.names[to], "err", err)
	}
}

func (p *PS) act(a protocol.Action) {
	switch a := a.(type) {
	case protocol.SendModel:
		p.publish(a.To, wire.Model{Version: a.Version, Params: a.Params})
	case protocol.Assign:
		if p.firstChunk.IsZero() {
			p.firstChunk = time.Now()
		}
		p.assign(a)
	case protocol.Discarded:
		for _, id := range a.From {
			p.reject(a.Reason, p.names[id])
		}
	case protocol.Resized:
		p.log.Info("resized", "worker", p.names[a.Worker], "chunk", a.Chunk, "mini_batch", a.MiniBatch, "predicted", a.Predicted.Round(time.Millisecond))
	case protocol.Applied:
		if a.Evals > 0 {
			p.log.Info("global model", "version", a.Version, "val_loss", a.ValLoss, "from", a.From,
				"validation_ms", float64(p.validating.take())/1e6)
			p.meter.submit(snapshot{version: a.Version, at: p.elapsed(), params: p.srv.Params()})
		}
	case protocol.Stop:
		p.sum.StopReason = a.Reason
		ids := make([]protocol.WorkerID, 0, len(p.live))
		for id := range p.live {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			p.publish(id, wire.Stop{Reason: a.Reason})
		}
		p.log.Info("stop", "reason", a.Reason, "version", p.srv.Version())
	}
}

// measured records a test measurement and stops the run at the target.
func (p *PS) measured(m measurement) {
	if m.version < p.lastMeasured {
		return
	}
	p.lastMeasured = m.version
	p.sum.FinalAccuracy = m.accuracy
	p.sum.BestAccuracy = max(p.sum.BestAccuracy, m.accuracy)
	p.log.Info("test accuracy", "version", m.version, "test_accuracy", m.accuracy, "at", m.at.Round(time.Millisecond),
		"bytes_in", p.bytesIn.Load(), "bytes_out", p.bytesOut.Load())
	if p.cfg.OnApplied != nil {
		st := Status{Elapsed: m.at, Version: m.version, Accuracy: m.accuracy, Workers: map[string]WorkerStatus{}}
		for name, w := range p.status {
			st.Workers[name] = *w
		}
		p.cfg.OnApplied(st)
	}
	if p.target.Reached(m.accuracy) {
		p.sum.ReachedTarget = true
		p.result = m.params
		p.step(protocol.Halt{Reason: "target accuracy"})
	}
}

// Close stops the server's connection and its embedded NATS, and closes
// the run dir's logs.
func (p *PS) Close() {
	p.once.Do(func() {
		close(p.done)
		p.writes.Wait()
		if p.pack != nil {
			p.pack.stop()
		}
		if p.tr != nil {
			p.tr.Close()
		} else if p.nc != nil {
			p.nc.Close()
		}
		if p.ns != nil {
			p.ns.Shutdown()
		}
		if p.rd != nil {
			p.rd.close()
		}
		p.meter.stop()
	})
}
