// Package cluster is the real driver of the protocol state machines: a
// parameter server and edge workers as processes that talk over NATS, with
// the wire package's binary messages. It runs the same protocol.Server and
// protocol.Worker as the simulator; only time (the wall clock) and the
// transport differ.
//
// Subjects, under a run prefix P (default "hermes"):
//
//	P.join    request/reply: a worker's wire.Join, answered by wire.Welcome
//	P.ps      workers to server: reports and updates
//	P.w.<name>  server to the worker called name: models, chunk data, work,
//	          stop. A worker subscribes before it joins, so nothing the
//	          server sends right after the welcome is lost.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
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
	Seed       uint64
	Target     float64 // stop when the test accuracy reaches it (0: never)
	// NATS is the URL of an existing NATS server; empty starts an
	// embedded one on Listen (host:port; port -1 picks a free one).
	NATS   string
	Listen string
	Prefix string
	// Token, when set, is required of every client of the embedded NATS
	// server, and presented to an external one.
	Token string
	Log   *slog.Logger
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
}

// Summary is the outcome of a run; its JSON is what `hermes ps --json` and
// `hermes demo --json` print.
type Summary struct {
	ReachedTarget bool                    `json:"reached_target"`
	FinalAccuracy float64                 `json:"final_accuracy"`
	BestAccuracy  float64                 `json:"best_accuracy"`
	WallSeconds   float64                 `json:"wall_seconds"`
	BytesTotal    int64                   `json:"bytes_total"`
	UpdatesTotal  int64                   `json:"updates_total"`
	Workers       int                     `json:"workers"`
	StopReason    string                  `json:"stop_reason"`
	Lost          int                     `json:"lost_workers"` // timed out; their chunks were handed out again
	PerWorker     map[string]WorkerStatus `json:"per_worker"`
}

// PS is a running parameter server.
type PS struct {
	cfg    PSConfig
	ns     *server.Server
	nc     *nats.Conn
	srv    *protocol.Server
	model  *nn.Model
	inbox  chan inbound
	subs   []*nats.Subscription
	names  map[protocol.WorkerID]string
	status map[protocol.WorkerID]*WorkerStatus
	seen   map[protocol.WorkerID]time.Time // last message from each live worker
	bytes  atomic.Int64
	start  time.Time
	sum    Summary
	once   sync.Once
}

type inbound struct {
	msg   any
	reply func(any) // set for joins: a wire.Welcome, or a wire.Stop to refuse
}

// StartPS starts the server (and, without cfg.NATS, an embedded NATS).
func StartPS(cfg PSConfig) (*PS, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "hermes"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m, err := nn.Build(cfg.Spec, cfg.Train.Shape, cfg.Train.Classes)
	if err != nil {
		return nil, err
	}
	m.Init(cfg.Seed)
	p := &PS{cfg: cfg, model: m, inbox: make(chan inbound, 1024),
		names: map[protocol.WorkerID]string{}, status: map[protocol.WorkerID]*WorkerStatus{},
		seen: map[protocol.WorkerID]time.Time{}}
	if p.cfg.Timeout == 0 {
		p.cfg.Timeout = 10 * time.Second
	}
	p.srv, err = protocol.NewServer(cfg.Settings, m.Params(), cfg.Train.Len(), p, rand.New(rand.NewPCG(cfg.Seed, 0x6469737065)))
	if err != nil {
		return nil, err
	}
	url := cfg.NATS
	if url == "" {
		host, port, err := splitListen(cfg.Listen)
		if err != nil {
			return nil, err
		}
		p.ns, err = server.NewServer(&server.Options{Host: host, Port: port, NoLog: true, NoSigs: true,
			MaxPayload: maxPayload, Authorization: cfg.Token})
		if err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
		go p.ns.Start()
		if !p.ns.ReadyForConnections(10 * time.Second) {
			return nil, fmt.Errorf("embedded nats on %s: not ready", cfg.Listen)
		}
		url = p.ns.ClientURL()
	}
	if p.nc, err = nats.Connect(url, nats.Name("hermes-ps"), nats.Token(cfg.Token)); err != nil {
		p.Close()
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	if p.nc.MaxPayload() < 8<<20 {
		cfg.Log.Warn("nats max_payload is small; large chunks will be refused", "max_payload", p.nc.MaxPayload())
	}
	for subj, withReply := range map[string]bool{cfg.Prefix + ".join": true, cfg.Prefix + ".ps": false} {
		sub, err := p.nc.Subscribe(subj, func(msg *nats.Msg) { p.receive(msg, withReply) })
		if err != nil {
			p.Close()
			return nil, err
		}
		p.subs = append(p.subs, sub)
	}
	return p, nil
}

func splitListen(listen string) (string, int, error) {
	if listen == "" {
		return "127.0.0.1", -1, nil
	}
	var host string
	var port int
	for i := len(listen) - 1; i >= 0; i-- {
		if listen[i] == ':' {
			host = listen[:i]
			if _, err := fmt.Sscanf(listen[i+1:], "%d", &port); err != nil {
				return "", 0, fmt.Errorf("--listen %q: bad port", listen)
			}
			return host, port, nil
		}
	}
	return "", 0, fmt.Errorf("--listen %q: want host:port", listen)
}

// URL returns the NATS URL workers connect to.
func (p *PS) URL() string { return p.nc.ConnectedUrl() }

// receive decodes a message on a NATS goroutine and queues it for the
// server's loop. Undecodable input is logged and dropped.
func (p *PS) receive(msg *nats.Msg, join bool) {
	p.bytes.Add(int64(len(msg.Data)))
	m, err := wire.Decode(msg.Data)
	if err != nil {
		p.cfg.Log.Warn("rejected message", "subject", msg.Subject, "bytes", len(msg.Data), "err", err)
		return
	}
	in := inbound{msg: m}
	if join {
		if _, ok := m.(wire.Join); !ok {
			p.cfg.Log.Warn("rejected message", "subject", msg.Subject, "err", fmt.Sprintf("%T on the join subject", m))
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
		p.cfg.Log.Warn("inbox full, message dropped", "subject", msg.Subject)
	}
}

// ValidationLoss implements protocol.Validator.
func (p *PS) ValidationLoss(params []float32) float64 {
	copy(p.model.Params(), params)
	loss, _ := p.model.Evaluate(p.cfg.Val.X, p.cfg.Val.Y, p.cfg.Val.Len(), 500)
	return loss
}

// Run serves until the protocol stops or ctx ends.
func (p *PS) Run(ctx context.Context) (Summary, error) {
	p.start = time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for !p.srv.Stopped() {
		select {
		case <-ctx.Done():
			p.step(protocol.Halt{Reason: "interrupted"})
		case <-tick.C:
			p.expire()
			p.step(protocol.Tick{})
		case in := <-p.inbox:
			p.handle(in)
		}
	}
	p.sum.WallSeconds = time.Since(p.start).Seconds()
	p.sum.BytesTotal = p.bytes.Load()
	p.sum.Workers = len(p.names)
	p.sum.PerWorker = map[string]WorkerStatus{}
	for id, st := range p.status {
		p.sum.PerWorker[p.names[id]] = *st
	}
	p.nc.Flush()
	return p.sum, nil
}

// expire takes workers that have been silent too long for gone: the
// protocol returns their unacknowledged chunks to the queue.
func (p *PS) expire() {
	ids := make([]protocol.WorkerID, 0, len(p.seen))
	for id, t := range p.seen {
		if time.Since(t) > p.cfg.Timeout {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		delete(p.seen, id)
		p.sum.Lost++
		p.cfg.Log.Warn("worker timed out", "worker", p.names[id], "after", p.cfg.Timeout)
		p.step(protocol.Leave{Worker: id})
	}
}

// alive records that a worker spoke; messages from a worker already taken
// for gone are ignored.
func (p *PS) alive(id protocol.WorkerID) bool {
	if _, ok := p.seen[id]; !ok {
		return false
	}
	p.seen[id] = time.Now()
	return true
}

// account records a worker's report for the status table; it returns
// false for a worker already taken for gone, whose messages are dropped.
func (p *PS) account(r protocol.Report, major bool) bool {
	if !p.alive(r.Worker) {
		return false
	}
	st := p.status[r.Worker]
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
		p.alive(protocol.WorkerID(m.Worker))
	case wire.Join:
		if !validName(m.Name) {
			in.reply(wire.Stop{Reason: fmt.Sprintf("worker name %q: use letters, digits, - and _", m.Name)})
			return
		}
		for _, n := range p.names {
			if n == m.Name {
				in.reply(wire.Stop{Reason: fmt.Sprintf("worker name %q is taken", m.Name)})
				return
			}
		}
		id := protocol.WorkerID(len(p.names))
		p.names[id] = m.Name
		p.status[id] = &WorkerStatus{}
		p.seen[id] = time.Now()
		spec, _ := json.Marshal(p.cfg.Spec)
		st, _ := json.Marshal(p.cfg.Settings)
		in.reply(wire.Welcome{Worker: int64(id), Spec: string(spec), Settings: string(st), Shape: shape32(p.cfg.Train.Shape),
			Classes: int64(p.cfg.Train.Classes), LocalLR: p.cfg.LocalLR})
		p.cfg.Log.Info("worker joined", "worker", m.Name, "id", id, "memory_mb", m.MemoryBytes>>20, "cores", m.Cores)
		p.step(protocol.Register{Worker: id, MemoryBytes: m.MemoryBytes, Cores: m.Cores})
	case protocol.Report:
		if p.account(m, false) {
			p.step(m)
		}
	case protocol.Update:
		if p.account(m.Report, true) {
			p.sum.UpdatesTotal++
			p.step(m)
		}
	default:
		p.cfg.Log.Warn("rejected message", "type", fmt.Sprintf("%T", m))
	}
}

func (p *PS) step(ev protocol.Event) {
	if err := p.srv.Step(time.Since(p.start), ev); err != nil {
		p.cfg.Log.Warn("rejected event", "err", err)
	}
	for _, a := range p.srv.Ready() {
		p.act(a)
	}
}

func (p *PS) publish(to protocol.WorkerID, m any) {
	b, err := wire.Encode(nil, m, wire.FP32)
	if err != nil {
		p.cfg.Log.Error("encode", "err", err)
		return
	}
	p.bytes.Add(int64(len(b)))
	if err := p.nc.Publish(p.cfg.Prefix+".w."+p.names[to], b); err != nil {
		p.cfg.Log.Warn("publish", "worker", to, "err", err)
	}
}

func (p *PS) act(a protocol.Action) {
	switch a := a.(type) {
	case protocol.SendModel:
		p.publish(a.To, wire.Model{Version: a.Version, Params: a.Params})
	case protocol.Assign:
		idx := make([]int, len(a.Work.Chunk.Indices))
		for i, v := range a.Work.Chunk.Indices {
			idx[i] = int(v)
		}
		sub := p.cfg.Train.Subset(idx)
		shape := shape32(sub.Shape)
		// Split the rows so that each message fits the transport's limit.
		size := sub.SampleSize()
		per := max(1, int(p.nc.MaxPayload()-4096)/(4*size+4))
		for lo := 0; lo < sub.Len(); lo += per {
			hi := min(lo+per, sub.Len())
			p.publish(a.To, wire.Data{ChunkID: a.Work.Chunk.ID, Offset: int64(lo), Total: int64(sub.Len()),
				Shape: shape, X: sub.X[lo*size : hi*size], Y: sub.Y[lo:hi]})
		}
		p.publish(a.To, a.Work)
		if st, ok := p.status[a.To]; ok {
			st.Chunk, st.MiniBatch = len(idx), a.Work.MiniBatch
		}
	case protocol.Applied:
		if a.Evals == 0 {
			return
		}
		copy(p.model.Params(), p.srv.Params())
		_, acc := p.model.Evaluate(p.cfg.Test.X, p.cfg.Test.Y, p.cfg.Test.Len(), 500)
		p.sum.FinalAccuracy = acc
		p.sum.BestAccuracy = max(p.sum.BestAccuracy, acc)
		if p.cfg.OnApplied != nil {
			st := Status{Elapsed: time.Since(p.start), Version: a.Version, Accuracy: acc, Workers: map[string]WorkerStatus{}}
			for id, w := range p.status {
				st.Workers[p.names[id]] = *w
			}
			p.cfg.OnApplied(st)
		}
		if p.cfg.Target > 0 && acc >= p.cfg.Target && !p.sum.ReachedTarget {
			p.sum.ReachedTarget = true
			p.step(protocol.Halt{Reason: "target accuracy"})
		}
	case protocol.Stop:
		p.sum.StopReason = a.Reason
		ids := make([]protocol.WorkerID, 0, len(p.names))
		for id := range p.names {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			p.publish(id, wire.Stop{Reason: a.Reason})
		}
		p.cfg.Log.Info("stop", "reason", a.Reason)
	}
}

// validName reports whether name can be a NATS subject token.
func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Close stops the server's connection and its embedded NATS.
func (p *PS) Close() {
	p.once.Do(func() {
		if p.nc != nil {
			p.nc.Close()
		}
		if p.ns != nil {
			p.ns.Shutdown()
		}
	})
}
