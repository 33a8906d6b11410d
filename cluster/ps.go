// Package cluster is the real driver of the protocol state machines: a
// parameter server and edge workers as processes that talk over NATS, with
// the wire package's binary messages. It runs the same protocol.Server and
// protocol.Worker as the simulator; only time (the wall clock) and the
// transport differ.
//
// The subjects a run uses, and the NATS permissions that confine each
// worker to its own, are laid out in subjects.go. The server takes a
// sender's identity from the subject, never from the message body.
package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/wire"
)

// maxPayload is the embedded server's message limit: a chunk of 2,500
// Fashion-MNIST samples is 7.9 MB as float32.
const maxPayload = 64 << 20

// PSConfig configures a parameter server.
type PSConfig struct {
	Settings   protocol.Settings
	LocalLR    float64 // handed to workers
	Train, Val *data.Dataset
	Test       *data.Dataset
	Spec       nn.Spec
	ModelMeta  map[string]string // saved with the final model (the input normalization)
	// Norm is the normalization applied to the data sets. With it, samples
	// that were bytes in their file travel as bytes (see wire.Data).
	Norm   data.Norm
	Seed   uint64
	Target float64 // stop when the test accuracy reaches it (0: never)
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
}

// Summary is the outcome of a run; its JSON is what `hermes ps --json` and
// `hermes demo --json` print.
type Summary struct {
	ReachedTarget bool    `json:"reached_target"`
	FinalAccuracy float64 `json:"final_accuracy"`
	BestAccuracy  float64 `json:"best_accuracy"`
	WallSeconds   float64 `json:"wall_seconds"`
	BytesTotal    int64   `json:"bytes_total"`
	UpdatesTotal  int64   `json:"updates_total"`
	Workers       int     `json:"workers"`
	StopReason    string  `json:"stop_reason"`
	Version       int64   `json:"version"`      // global-model changes so far
	ResumedFrom   int64   `json:"resumed_from"` // the version a resumed run started at (0: not resumed)
	Lost          int     `json:"lost_workers"` // timed out; their chunks were handed out again
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
	nc      *nats.Conn
	srv     *protocol.Server
	model   *nn.Model // the server's: validation passes
	rd      *runDir
	objects *objectStore // nil without JetStream
	meter   *meter
	// trainBytes is the training set as bytes, when it travels as bytes.
	trainBytes []uint8
	inbox      chan inbound
	subs       []*nats.Subscription
	buf        []byte // publish's encoding buffer
	out        *sender

	subj       subjects
	rejected   rejections
	names      map[protocol.WorkerID]string    // every worker that joined
	live       map[protocol.WorkerID]time.Time // last word from each live worker
	session    map[string]protocol.WorkerID    // each live worker's session, by name
	status     map[string]*WorkerStatus        // by name, across rejoins
	nextWorker int64
	bytes      atomic.Int64
	start      time.Time
	offset     time.Duration // run time before a resume
	lastSave   time.Time
	// lastMeasured is the version of the newest test measurement; result
	// is the model that reached the target, once one has.
	lastMeasured int64
	result       []float32
	sum          Summary
	once         sync.Once
}

type inbound struct {
	msg   any
	from  string    // the sender's name, from the subject
	reply func(any) // set for requests: joins and heartbeats
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
	m.Meta = cfg.ModelMeta
	p := &PS{cfg: cfg, model: m, inbox: make(chan inbound, 1024), log: cfg.Log,
		subj: subjects{cfg.Prefix}, names: map[protocol.WorkerID]string{}, live: map[protocol.WorkerID]time.Time{},
		session: map[string]protocol.WorkerID{}, status: map[string]*WorkerStatus{}}
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
	file := slog.NewJSONHandler(nodeWriter{p.rd, "ps"}, nil).WithAttrs([]slog.Attr{slog.String("node", "ps")})
	p.log = slog.New(slog.NewMultiHandler(p.cfg.Log.Handler(), file))
	return nil
}

// openState builds the protocol server, fresh or from the checkpoint: the
// run dir's, or else the JetStream object store's.
func (p *PS) openState() error {
	cfg := p.cfg
	// Passes after a checkpoint are shuffled from the seed and the
	// version, so a resumed run is as reproducible as a fresh one.
	if !cfg.Resume {
		var err error
		p.srv, err = protocol.NewServer(cfg.Settings, p.model.Params(), cfg.Train.Len(), p, rand.New(rand.NewPCG(cfg.Seed, 0x6469737065)))
		return err
	}
	from := filepath.Join(cfg.RunDir, checkpointFile)
	b, err := readCheckpoint(cfg.RunDir)
	if err == nil && b == nil && p.objects != nil {
		from = "JetStream object store " + cfg.Prefix + "-runs"
		b, err = p.objects.get(checkpointFile)
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if b == nil {
		return fmt.Errorf("resume: no checkpoint in %s (was the run started with this --run-dir?)", cfg.RunDir)
	}
	st, err := decodeState(b, from)
	if err != nil {
		return err
	}
	if n := len(st.Protocol.Params); n != len(p.model.Params()) {
		return fmt.Errorf("resume: checkpoint has a model of %d parameters, --model gives %d", n, len(p.model.Params()))
	}
	p.srv, err = protocol.RestoreServer(cfg.Settings, st.Protocol, cfg.Train.Len(), p,
		rand.New(rand.NewPCG(cfg.Seed, uint64(st.Protocol.Version))))
	if err != nil {
		return fmt.Errorf("resume from %s: %w", from, err)
	}
	p.sum = st.Summary
	p.sum.ResumedFrom = st.Protocol.Version
	p.nextWorker = st.NextWorker
	for reason, n := range st.Summary.Rejected {
		for range n {
			p.rejected.add(reason)
		}
	}
	p.offset = st.Protocol.Now
	for name, ws := range st.Summary.PerWorker {
		p.status[name] = &ws
	}
	p.log.Info("resumed", "run_dir", cfg.RunDir, "version", st.Protocol.Version, "elapsed", p.offset.Round(time.Millisecond), "from", from)
	return nil
}

// saveState writes the checkpoint to the run dir and, where there is one,
// to the object store.
func (p *PS) saveState(st psState) error {
	b, err := encodeState(st)
	if err != nil {
		return err
	}
	if err := p.rd.writeFile(checkpointFile, b); err != nil {
		return err
	}
	if p.objects != nil {
		if err := p.objects.put(checkpointFile, b); err != nil {
			p.log.Warn("checkpoint to JetStream", "err", err)
		}
	}
	return nil
}

// connect starts the embedded NATS server if there is to be one, connects,
// and subscribes.
func (p *PS) connect() error {
	cfg := p.cfg
	opts := []nats.Option{nats.Name("hermes-ps"), nats.MaxReconnects(-1)}
	url := cfg.NATS
	if url == "" {
		host, port, err := splitListen(cfg.Listen)
		if err != nil {
			return err
		}
		// nats-server reports a taken port only in its log; asking first
		// turns a 10 s wait into a clear error.
		if port > 0 {
			l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			l.Close()
		}
		o := &server.Options{Host: host, Port: port, NoLog: true, NoSigs: true, MaxPayload: cmp.Or(cfg.MaxPayload, maxPayload)}
		if cfg.RunDir != "" {
			o.JetStream, o.StoreDir = true, filepath.Join(cfg.RunDir, "jetstream")
		}
		own, err := cfg.Security.serverOptions(o, p.subj)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); cfg.Security.mode() == "none" && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
			p.log.Warn("no authentication on a network address: any client that reaches it can join, read all traffic and act as any worker; give each worker its own key (--nkey-file) or certificate (--tls-ca)", "listen", cfg.Listen)
		}
		if cfg.Security.Token != "" {
			p.log.Warn("token authentication: every client shares one identity, so any worker can read the others' traffic and act in their names; give each worker its own key (--nkey-file) or certificate (--tls-ca) to isolate them")
		}
		if p.ns, err = server.NewServer(o); err != nil {
			return fmt.Errorf("embedded nats: %w", err)
		}
		go p.ns.Start()
		if !p.ns.ReadyForConnections(10 * time.Second) {
			return fmt.Errorf("embedded nats on %s: not ready (is the port taken?)", cfg.Listen)
		}
		// In process: no TLS to itself (hence nats://), no port to reach.
		url = strings.Replace(p.ns.ClientURL(), "tls://", "nats://", 1)
		opts = append(opts, nats.InProcessServer(p.ns))
		opts = append(opts, own...)
	} else {
		co, err := cfg.Security.clientOptions()
		if err != nil {
			return err
		}
		opts = append(opts, co...)
	}
	var err error
	if p.nc, err = nats.Connect(url, opts...); err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	p.out = newSender(p.nc)
	if p.nc.MaxPayload() < 8<<20 {
		p.log.Warn("nats max_payload is small; large chunks will be refused", "max_payload", p.nc.MaxPayload())
	}
	updates := newReceiver() // reports and updates; large updates come in pieces
	subs := map[string]func(*nats.Msg){
		p.subj.all(kindJoin):      func(m *nats.Msg) { p.receive(m, kindJoin, nil) },
		p.subj.all(kindHeartbeat): func(m *nats.Msg) { p.receive(m, kindHeartbeat, nil) },
		p.subj.all(kindUp):        func(m *nats.Msg) { p.receive(m, kindUp, updates) },
		p.subj.all(kindLog):       p.receiveLog,
	}
	for subj, h := range subs {
		sub, err := p.nc.Subscribe(subj, h)
		if err != nil {
			return err
		}
		p.subs = append(p.subs, sub)
	}
	if cfg.RunDir != "" {
		if p.objects, err = openObjectStore(p.nc, cfg.Prefix); err != nil {
			p.log.Info("no JetStream object store: checkpoints are kept in the run dir only", "err", err)
		}
	}
	return nil
}

func splitListen(listen string) (string, int, error) {
	if listen == "" {
		return "127.0.0.1", -1, nil
	}
	i := strings.LastIndex(listen, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("--listen %q: want host:port", listen)
	}
	var port int
	if _, err := fmt.Sscanf(listen[i+1:], "%d", &port); err != nil {
		return "", 0, fmt.Errorf("--listen %q: bad port", listen)
	}
	return listen[:i], port, nil
}

// URL returns the NATS URL workers connect to.
func (p *PS) URL() string {
	if p.ns != nil {
		return p.ns.ClientURL()
	}
	return p.nc.ConnectedUrl()
}

// receive decodes a message that arrived on a subject of kind, on a NATS
// goroutine, and queues it for the server's loop with its sender's name,
// taken from the subject. What cannot be used is rejected here, counted
// by reason. Requests (joins, heartbeats) come without a receiver: they
// are small, never in pieces.
func (p *PS) receive(msg *nats.Msg, kind string, rcv *receiver) {
	p.bytes.Add(int64(len(msg.Data)))
	from := p.subj.sender(msg.Subject)
	var m any
	var err error
	if rcv != nil {
		m, err = rcv.decode(msg.Data)
	} else {
		m, err = wire.Decode(msg.Data)
	}
	if err != nil {
		p.reject(rejectUndecodable, from, "err", err, "bytes", len(msg.Data))
		return
	}
	if m == nil {
		return // a piece of a message still incomplete
	}
	in := inbound{msg: m, from: from}
	switch m.(type) {
	case wire.Join:
		err = expectKind(kind, kindJoin, m)
	case wire.Heartbeat:
		err = expectKind(kind, kindHeartbeat, m)
	case protocol.Report, protocol.Update:
		err = expectKind(kind, kindUp, m)
	default:
		err = fmt.Errorf("%T is not for the server", m)
	}
	if err != nil {
		p.reject(rejectWrongSubject, from, "subject", msg.Subject, "err", err)
		return
	}
	if rcv == nil {
		if !p.subj.replyOK(from, msg.Reply) {
			p.reject(rejectReplySubject, from, "reply", msg.Reply)
			return
		}
		in.reply = func(w any) {
			b, _ := wire.Encode(nil, w, wire.FP32)
			p.bytes.Add(int64(len(b)))
			msg.Respond(b)
		}
	}
	select {
	case p.inbox <- in:
	default:
		p.log.Warn("inbox full, message dropped", "subject", msg.Subject)
	}
}

func expectKind(kind, want string, m any) error {
	if kind != want {
		return fmt.Errorf("%T on a %s subject", m, kind)
	}
	return nil
}

// reject counts a message turned away and logs why.
func (p *PS) reject(reason, from string, args ...any) {
	p.rejected.add(reason)
	p.log.Warn("rejected message", append([]any{"reason", reason, "from", from}, args...)...)
}

// receiveLog writes a worker's log line to the run dir.
func (p *PS) receiveLog(msg *nats.Msg) {
	if p.rd == nil {
		return
	}
	name := p.subj.sender(msg.Subject)
	line, err := nodeLine(name, msg.Data)
	if err == nil && (!ValidName(name) || name == "ps") {
		err = fmt.Errorf("worker name %q", name)
	}
	if err != nil {
		p.reject(rejectLog, name, "err", err)
		return
	}
	if err := p.rd.write(name, line); err != nil {
		p.log.Warn("log", "err", err)
	}
}

// Start begins training with the workers that have joined, without
// waiting for the minimum count.
func (p *PS) Start() { p.inbox <- inbound{msg: protocol.Start{}} }

// ValidationLoss implements protocol.Validator.
func (p *PS) ValidationLoss(params []float32) float64 {
	copy(p.model.Params(), params)
	loss, _ := p.model.Evaluate(p.cfg.Val.X, p.cfg.Val.Y, p.cfg.Val.Len(), 500)
	return loss
}

// Run serves until the protocol stops or ctx ends. When ctx ends first
// (SIGTERM), the state is checkpointed and the workers are left waiting,
// to reconnect to `hermes ps --resume`.
func (p *PS) Run(ctx context.Context) (Summary, error) {
	p.start = time.Now().Add(-p.offset)
	p.lastSave = time.Now()
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
				if err := p.checkpoint(); err != nil {
					p.log.Error("checkpoint", "err", err)
				}
			}
		case in := <-p.inbox:
			p.handle(in)
		case m := <-p.meter.done:
			p.measured(m)
		}
	}
	p.nc.Flush()
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
	sum.BytesTotal = p.bytes.Load()
	sum.Workers = len(p.status)
	sum.Version = p.srv.Version()
	sum.Chunks = p.srv.Dispenser().Stats()
	sum.PerWorker = map[string]WorkerStatus{}
	for name, st := range p.status {
		sum.PerWorker[name] = *st
	}
	sum.RunDir = p.cfg.RunDir
	sum.Rejected = p.rejected.counts()
	sum.Auth = p.cfg.Security.mode()
	return sum
}

// Rejected returns the counts of rejected messages by reason so far; it is
// safe to call while the server runs.
func (p *PS) Rejected() map[string]int64 { return p.rejected.counts() }

func (p *PS) elapsed() time.Duration { return time.Since(p.start) }

// checkpoint saves the server's state in the run dir.
func (p *PS) checkpoint() error {
	p.lastSave = time.Now()
	p.step(protocol.Tick{}) // bring the protocol's clock to now
	st := psState{Protocol: p.srv.Checkpoint(), NextWorker: p.nextWorker, Summary: p.summary()}
	if err := p.saveState(st); err != nil {
		return err
	}
	p.log.Info("checkpoint", "version", st.Protocol.Version, "elapsed", st.Protocol.Now.Round(time.Millisecond))
	return nil
}

func (p *PS) interrupt() (Summary, error) {
	p.sum.StopReason = "interrupted"
	if p.rd == nil {
		return p.summary(), nil
	}
	if err := p.checkpoint(); err != nil {
		return p.summary(), fmt.Errorf("checkpoint on interruption: %w", err)
	}
	p.log.Info("interrupted; resume with --resume", "run_dir", p.cfg.RunDir)
	return p.summary(), nil
}

// finish saves the final model, the summary and the ended state, and
// archives the run dir.
func (p *PS) finish(sum *Summary) error {
	copy(p.model.Params(), p.srv.Params())
	if p.result != nil {
		copy(p.model.Params(), p.result)
	}
	if err := p.model.Save(p.cfg.RunDir + "/model.safetensors"); err != nil {
		return err
	}
	if err := p.saveState(psState{Protocol: p.srv.Checkpoint(), NextWorker: p.nextWorker, Summary: *sum}); err != nil {
		return err
	}
	if p.objects != nil {
		if b, err := os.ReadFile(filepath.Join(p.cfg.RunDir, "model.safetensors")); err == nil {
			if err := p.objects.put("model.safetensors", b); err != nil {
				p.log.Warn("final model to JetStream", "err", err)
			}
		}
	}
	b, _ := json.MarshalIndent(sum, "", "  ")
	if err := p.rd.writeFile("summary.json", append(b, '\n')); err != nil {
		return err
	}
	arch, err := p.rd.archive()
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	sum.Archive = arch
	return nil
}

// expire takes workers that have been silent too long for gone: the
// protocol returns their unacknowledged chunks to the queue.
func (p *PS) expire() {
	var ids []protocol.WorkerID
	for id, t := range p.live {
		if time.Since(t) > p.cfg.Timeout {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		p.sum.Lost++
		p.log.Warn("worker timed out", "worker", p.names[id], "after", p.cfg.Timeout)
		p.drop(id)
	}
}

func (p *PS) drop(id protocol.WorkerID) {
	delete(p.live, id)
	if name := p.names[id]; p.session[name] == id {
		delete(p.session, name)
	}
	p.step(protocol.Leave{Worker: id})
}

// sender checks that a message from the worker called name (NATS vouches
// for the subject it came on) that claims worker id in its body comes from
// name's live session, and records that the worker spoke. A body that
// claims another worker's session is forged; one that claims an earlier
// session of name's, or none known, is stale.
func (p *PS) sender(name string, id protocol.WorkerID) bool {
	if cur, ok := p.session[name]; ok && cur == id {
		p.live[id] = time.Now()
		return true
	}
	if owner, ok := p.names[id]; ok && owner != name {
		p.reject(rejectForged, name, "claims", owner, "id", id)
	} else {
		p.rejected.add(rejectStale)
		p.log.Debug("message from a session that is over", "worker", name, "id", id)
	}
	return false
}

// account records a worker's report for the status table; it returns
// false when the report is not from the sender's live session.
func (p *PS) account(from string, r protocol.Report, major bool) bool {
	if !p.sender(from, r.Worker) {
		return false
	}
	st := p.status[from]
	if major {
		st.Major++
	} else {
		st.Minor++
	}
	st.LastLoss = r.Loss
	return true
}

func shape32(s []int) []int32 {
	out := make([]int32, len(s))
	for i, d := range s {
		out[i] = int32(d)
	}
	return out
}

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

// join admits the worker called name (NATS vouches for the subject the
// join came on). A name that is live already is a worker that restarted or
// lost its connection: its old session is dropped (its chunks go back to
// the queue) and it starts afresh.
func (p *PS) join(name string, m wire.Join, reply func(any)) {
	if m.Name != name {
		p.reject(rejectForged, name, "claims", m.Name)
		reply(wire.Stop{Reason: fmt.Sprintf("join as %q on the subject of %q", m.Name, name)})
		return
	}
	if !ValidName(m.Name) || m.Name == "ps" {
		p.reject(rejectJoin, name, "err", "bad name")
		reply(wire.Stop{Reason: fmt.Sprintf("worker name %q: use letters, digits, - and _ (and not \"ps\")", m.Name)})
		return
	}
	if m.Version != fmt.Sprint(wire.Version) {
		p.reject(rejectJoin, name, "err", "wire version", "version", m.Version)
		reply(wire.Stop{Reason: fmt.Sprintf("wire version %s, the server speaks %d", m.Version, wire.Version)})
		return
	}
	if old, ok := p.session[name]; ok {
		p.log.Info("worker rejoined; its previous session is dropped", "worker", name, "old_id", old)
		p.drop(old)
	}
	id := protocol.WorkerID(p.nextWorker)
	p.nextWorker++
	p.names[id] = name
	p.live[id] = time.Now()
	p.session[name] = id
	st, ok := p.status[name]
	if !ok {
		st = &WorkerStatus{}
		p.status[name] = st
	}
	st.Joins++
	spec, _ := json.Marshal(p.cfg.Spec)
	settings, _ := json.Marshal(p.cfg.Settings)
	reply(wire.Welcome{Worker: int64(id), Spec: string(spec), Settings: string(settings), Shape: shape32(p.cfg.Train.Shape),
		Classes: int64(p.cfg.Train.Classes), LocalLR: p.cfg.LocalLR})
	p.log.Info("worker joined", "worker", name, "id", id, "memory_mb", m.MemoryBytes>>20, "cores", m.Cores)
	p.step(protocol.Register{Worker: id, MemoryBytes: m.MemoryBytes, Cores: m.Cores})
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
	p.bytes.Add(int64(len(p.buf)))
	if err := p.out.publish(p.subj.toWorker(p.names[to], int64(to)), p.buf); err != nil {
		p.log.Warn("publish", "worker", p.names[to], "err", err)
	}
}

func (p *PS) act(a protocol.Action) {
	switch a := a.(type) {
	case protocol.SendModel:
		p.publish(a.To, wire.Model{Version: a.Version, Params: a.Params})
	case protocol.Assign:
		p.assign(a)
	case protocol.Resized:
		p.log.Info("resized", "worker", p.names[a.Worker], "chunk", a.Chunk, "mini_batch", a.MiniBatch, "predicted", a.Predicted.Round(time.Millisecond))
	case protocol.Applied:
		if a.Evals > 0 {
			p.log.Info("global model", "version", a.Version, "val_loss", a.ValLoss, "from", a.From)
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

// assign sends a chunk's samples, split so that each message fits the
// transport's limit, and then its work order.
func (p *PS) assign(a protocol.Assign) {
	idx := make([]int, len(a.Work.Chunk.Indices))
	for i, v := range a.Work.Chunk.Indices {
		idx[i] = int(v)
	}
	train := p.cfg.Train
	n, size := len(idx), train.SampleSize()
	y := make([]int32, n)
	var x []float32
	var raw []uint8
	if p.trainBytes != nil {
		raw = make([]uint8, n*size)
		for j, i := range idx {
			copy(raw[j*size:], p.trainBytes[i*size:(i+1)*size])
			y[j] = train.Y[i]
		}
	} else {
		x = make([]float32, n*size)
		train.Gather(idx, x, y)
	}
	shape := shape32(train.Shape)
	per := max(1, int(p.nc.MaxPayload()-4096)/(4*size+4))
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		d := wire.Data{ChunkID: a.Work.Chunk.ID, Offset: int64(lo), Total: int64(n), Shape: shape, Y: y[lo:hi]}
		if raw != nil {
			d.Bytes, d.Scale, d.Mean, d.Std = raw[lo*size:hi*size], data.ByteScale, p.cfg.Norm.Mean, p.cfg.Norm.Std
		} else {
			d.X = x[lo*size : hi*size]
		}
		p.publish(a.To, d)
	}
	p.publish(a.To, a.Work)
	if st, ok := p.status[p.names[a.To]]; ok {
		st.Chunk, st.MiniBatch = len(idx), a.Work.MiniBatch
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
	p.log.Info("test accuracy", "version", m.version, "test_accuracy", m.accuracy, "at", m.at.Round(time.Millisecond))
	if p.cfg.OnApplied != nil {
		st := Status{Elapsed: m.at, Version: m.version, Accuracy: m.accuracy, Workers: map[string]WorkerStatus{}}
		for name, w := range p.status {
			st.Workers[name] = *w
		}
		p.cfg.OnApplied(st)
	}
	if p.cfg.Target > 0 && m.accuracy >= p.cfg.Target && !p.sum.ReachedTarget {
		p.sum.ReachedTarget = true
		p.result = m.params
		p.step(protocol.Halt{Reason: "target accuracy"})
	}
}

// ValidName reports whether name can be a worker's name: a NATS subject
// token and a file name, of letters, digits, - and _.
func ValidName(name string) bool {
	return name != "" && len(name) <= 64 && !strings.ContainsFunc(name, func(r rune) bool { return !nameRune(r) })
}

func nameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// Name turns s (a host name, a label) into a worker name: other
// characters become _, and it is cut to 64 bytes.
func Name(s string) string {
	n := strings.Map(func(r rune) rune {
		if nameRune(r) {
			return r
		}
		return '_'
	}, s)
	return n[:min(len(n), 64)]
}

// Close stops the server's connection and its embedded NATS, and closes
// the run dir's logs.
func (p *PS) Close() {
	p.once.Do(func() {
		if p.nc != nil {
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
