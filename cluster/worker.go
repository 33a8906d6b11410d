package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

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
	// after each chunk it sleeps (Slowdown-1) times the CPU time the
	// training took. Not the wall time: on a machine shared with other
	// workers (hermes demo), a wait for a core would be multiplied by
	// Slowdown, a cost no device of that speed on its own would pay.
	Slowdown float64
	// CPUTime, when set, returns the CPU time the worker's process has
	// used so far (tests inject it); nil: the operating system's account,
	// or the wall clock where there is none.
	CPUTime  func() time.Duration
	Seed     uint64
	Security Security
	Log      *slog.Logger
	// OnTrained, when set, is called after each chunk with its rows, the
	// samples trained (over all epochs) and the time it took (the worker's
	// metrics).
	OnTrained func(rows, samples int, took time.Duration)
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
	if cfg.CPUTime == nil {
		cfg.CPUTime = processCPUTime
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

	ended := make(chan struct{})
	defer close(ended)
	// Server-to-worker subjects end in the session's id, so that what was
	// sent to an earlier session is told apart and dropped.
	inbox := make(chan sessionMsg, 1024)
	models := newReceiver(assemblerBudget, 2) // large models come in pieces
	unsubscribe, err := tr.Subscribe(subj.toSessions(cfg.Name), func(msg Msg) {
		id, err := strconv.ParseInt(msg.Subject[strings.LastIndex(msg.Subject, ".")+1:], 10, 64)
		m, derr := models.decode(msg.Data)
		if err != nil || derr != nil {
			log.Warn("rejected message", "subject", msg.Subject, "err", errors.Join(err, derr))
			return
		}
		if m != nil {
			select { // never block past the worker's end
			case inbox <- sessionMsg{id, m}:
			case <-ended:
			}
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
