package cluster

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// proxy forwards TCP connections to a target until it is cut: then it
// closes the connections it carries and refuses new ones, as a network
// that drops, until it is restored.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// A worker whose network drops for longer than the server's timeout is
// taken for gone (its chunks go back to the queue); when the network comes
// back, its client reconnects by itself, the server answers its heartbeat
// with "join again", and it trains on in a new session to the end.
func TestWorkerRejoinsAfterNetworkDrop(t *testing.T) {
	dir := t.TempDir()
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.MinWorkers, c.Settings.Patience, c.Target, c.RunDir = 2, 1<<20, 0.99, dir
		c.Timeout = 2500 * time.Millisecond
	})
	px := newProxy(t, ps.URL()[len("nats://"):])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, stopRun := context.WithCancel(ctx)
	errs := make(chan error, 2)
	for name, url := range map[string]string{"steady": ps.URL(), "flaky": "nats://" + px.l.Addr().String()} {
		go func() {
			errs <- RunWorker(ctx, WorkerConfig{URL: url, Name: name, Memory: 1 << 30, Cores: 1, Slowdown: 5, Seed: 1,
				GiveUp: 30 * time.Second, Log: quietLog})
		}()
	}
	psLog := filepath.Join(dir, "nodes", "ps.jsonl")
	go func() {
		wait := func(s string) bool {
			for ctx.Err() == nil && !logHas(psLog, s) {
				time.Sleep(20 * time.Millisecond)
			}
			return ctx.Err() == nil
		}
		if !wait(`"msg":"worker joined","node":"ps","worker":"flaky"`) || !wait(`"msg":"global model"`) {
			return
		}
		px.cut()
		if !wait(`"msg":"worker timed out","node":"ps","worker":"flaky"`) {
			return
		}
		px.restore()
		if wait(`"msg":"worker joined","node":"ps","worker":"flaky","id":2`) {
			time.Sleep(time.Second) // let the new session train
			stopRun()
		}
	}()
	sum, err := ps.Run(run)
	if err != nil {
		t.Fatal(err)
	}
	ps.Halt("test over") // tell the workers to stop
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if flaky := sum.PerWorker["flaky"]; sum.Lost != 1 || flaky.Joins != 2 {
		t.Fatalf("after the drop: lost %d, flaky %+v", sum.Lost, flaky)
	}
	// The worker's own log, as the server keeps it: it trained in its new
	// session.
	b, _ := os.ReadFile(filepath.Join(dir, "nodes", "flaky.jsonl"))
	rejoined := strings.Index(string(b), `{"id":2,"level":"INFO","msg":"joined"`)
	if rejoined < 0 || !strings.Contains(string(b[rejoined:]), `"msg":"chunk trained"`) {
		t.Fatalf("no training after the rejoin in the worker's log:\n%s", b)
	}
	if c := sum.Chunks; c.Returned == 0 || c.Cut != c.Acked+c.Outstanding+c.Queued {
		t.Fatalf("chunk accounting %+v", c)
	}
}
