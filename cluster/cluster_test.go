package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/wire"
)

const fixture = "../testdata/fmnist-1k-images-idx3-ubyte.gz"

// An embedded NATS on loopback, a server and three workers in this
// process: the run reaches a stated accuracy on the fixture.
func TestEndToEndEmbedded(t *testing.T) {
	sum := runCluster(t, fixtureNet{}, true)
	// a, b, c and the hostile y
	if sum.Workers != 4 || sum.UpdatesTotal == 0 || sum.BytesTotal == 0 {
		t.Fatalf("summary %+v", sum)
	}
}

// The same against an external nats-server process (Debian package
// nats-server, which `make test` installs), started and stopped here.
func TestEndToEndExternalNATS(t *testing.T) {
	runCluster(t, fixtureNet{url: startNATSServer(t)}, false)
}

// The same in memory (MemNetwork), hostile messages and all: the
// protocol-level behaviour needs no NATS.
func TestEndToEndMem(t *testing.T) {
	runCluster(t, newFixtureNet(), true)
}

// fixtureNet is where a test's server and workers meet: a MemNetwork, or
// NATS (at url, or the server's embedded one).
type fixtureNet struct {
	mem *MemNetwork
	url string
}

func newFixtureNet() fixtureNet { return fixtureNet{mem: NewMemNetwork(maxPayload)} }

// server configures a server for the network.
func (f fixtureNet) server(c *PSConfig) {
	if f.mem != nil {
		c.Transport = f.mem.Connect("hermes.inbox.ps")
	}
	c.NATS = f.url
}

// worker configures a worker called name for the network.
func (f fixtureNet) worker(w WorkerConfig) WorkerConfig {
	if f.mem != nil {
		w.Transport = f.mem.Connect(subjects{"hermes"}.inbox(w.Name))
	}
	return w
}

// client returns a raw connection to the network, with replies under the
// inbox of the worker called name.
func (f fixtureNet) client(t *testing.T, ps *PS, name string) Transport {
	t.Helper()
	if f.mem != nil {
		return f.mem.Connect(subjects{"hermes"}.inbox(name))
	}
	nc, err := nats.Connect(ps.URL(), nats.CustomInboxPrefix(subjects{"hermes"}.inbox(name)))
	if err != nil {
		t.Fatal(err)
	}
	return NATSTransport(nc)
}

// startNATSServer starts a nats-server process on a free loopback port for
// the test and returns its URL.
func startNATSServer(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server" // Debian's place, not on every PATH
		if _, err := os.Stat(bin); err != nil {
			t.Skip("nats-server is not installed (make test installs it)")
		}
	}
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, append([]string{"-a", host, "-p", port}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatal("nats-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "nats://" + addr
}

// startFixturePS starts a server for logistic regression on the fixture
// (800 training, 200 validation samples); mod adjusts its configuration.
func startFixturePS(t *testing.T, mod func(*PSConfig)) *PS {
	t.Helper()
	trainSet, test, norm, err := data.Open("", fixture, fixture)
	if err != nil {
		t.Fatal(err)
	}
	val, rest, err := trainSet.Split(200, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := nn.Builtin("logreg", 10)
	st := protocol.Defaults()
	st.Chunk, st.MinChunk, st.Epochs = 100, 50, 2
	st.ServerLR = 0.05 // hermes's tuned ratio of server to local rate (harness/tuned.json)
	cfg := PSConfig{Settings: st, LocalLR: 0.1, Train: rest, Val: val, Test: test, Spec: spec, Norm: norm, Seed: 1, Log: quietLog}
	mod(&cfg)
	ps, err := StartPS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Close)
	return ps
}

// runResult is what PS.Run returned.
type runResult struct {
	sum Summary
	err error
}

// runInBackground runs ps until it stops or ctx ends; the channel gets
// what Run returned.
func runInBackground(ctx context.Context, ps *PS) <-chan runResult {
	ran := make(chan runResult, 1)
	go func() {
		sum, err := ps.Run(ctx)
		ran <- runResult{sum, err}
	}()
	return ran
}

var quietLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// runWorkers runs ps with the given workers (in this process, quiet, seeded)
// until it stops or a minute passes, and checks that every worker ended
// without an error.
func runWorkers(t *testing.T, ps *PS, workers ...WorkerConfig) Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, len(workers))
	for _, w := range workers {
		w.URL, w.Seed, w.Log = cmp.Or(w.URL, ps.URL()), cmp.Or(w.Seed, 1), quietLog
		go func() { errs <- RunWorker(ctx, w) }()
	}
	sum, err := ps.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return sum
}

// runCluster trains logistic regression on the fixture with three workers
// of unequal speed and checks that the run reaches 0.75 test accuracy.
// With hostile set, hostile messages come first, and the server must
// reject each for its reason and serve on: garbage, a NaN update and
// zeros (undecodable), an update of a sender that never joined (stale),
// bad log lines; and from a worker that joined (y), messages that decode
// and that the protocol must stop: an update of the wrong shape and a
// report of a chunk it does not hold (protocol), an update of a model
// version the server never had (stale_update) and one a trillion times
// too large (update_norm).
func runCluster(t *testing.T, net fixtureNet, hostile bool) Summary {
	t.Helper()
	dir := t.TempDir()
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.MinWorkers, c.Target, c.RunDir = 3, 0.75, dir
		if hostile {
			c.Settings.MinWorkers = 1 // y: its hostile updates come before anyone else's
		}
		net.server(c)
	})
	var workers []WorkerConfig
	for i, name := range []string{"a", "b", "c"} {
		workers = append(workers, net.worker(WorkerConfig{Name: name, Memory: 1 << 30, Cores: 1, Slowdown: float64(1 + i)}))
	}
	if !hostile {
		sum := runWorkers(t, ps, workers...)
		if !sum.ReachedTarget || sum.FinalAccuracy < 0.75 || sum.StopReason != "target accuracy" {
			t.Fatalf("summary %+v", sum)
		}
		checkRunDir(t, dir, sum)
		return sum
	}

	nc := net.client(t, ps, "x")
	// x never joins, and claims a session no worker will be given (y's
	// join may be handled first: a claim on y's id would be forged).
	const never = protocol.WorkerID(1 << 20)
	nan, _ := wire.Encode(nil, protocol.Update{Report: protocol.Report{Worker: never}, Grad: []float32{float32(math.NaN())}}, wire.FP32)
	shape, _ := wire.Encode(nil, protocol.Update{Report: protocol.Report{Worker: never}, Grad: make([]float32, 3)}, wire.FP32)
	for _, b := range [][]byte{[]byte("garbage"), nan, shape, make([]byte, 1<<20)} {
		nc.Publish("hermes.up.x", b)
	}
	nc.Publish("hermes.join.x", []byte("not a join"))
	nc.Publish("hermes.log.a", []byte("not json"))
	nc.Publish("hermes.log.ps", []byte(`{"msg":"forged server event"}`))
	nc.Publish("hermes.log.a", []byte(`{"msg":"`+strings.Repeat("x", maxLogLine)+`"}`))
	nc.Flush()
	nc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ran := runInBackground(ctx, ps)
	joinedHostile(t, ctx, net.client(t, ps, "y"))
	want := map[string]int64{rejectUndecodable: 4, rejectStale: 1, rejectLog: 3,
		rejectProtocol: 2, protocol.DiscardStale: 1, protocol.DiscardNorm: 1}
	got := func() map[string]int64 {
		r := ps.Rejected()
		for k := range r {
			if _, ok := want[k]; !ok {
				delete(r, k)
			}
		}
		return r
	}
	for ctx.Err() == nil && !maps.Equal(got(), want) {
		time.Sleep(10 * time.Millisecond)
	}
	if !maps.Equal(got(), want) {
		t.Fatalf("rejected %v, want %v", ps.Rejected(), want)
	}
	errs := make(chan error, len(workers))
	for _, w := range workers {
		w.URL, w.Seed, w.Log = cmp.Or(w.URL, ps.URL()), 1, quietLog
		go func() { errs <- RunWorker(ctx, w) }()
	}
	r := <-ran
	if r.err != nil {
		t.Fatal(r.err)
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if !r.sum.ReachedTarget || r.sum.FinalAccuracy < 0.75 || r.sum.StopReason != "target accuracy" {
		t.Fatalf("summary %+v", r.sum)
	}
	// Training time starts with the first chunk, after the joins.
	if !(r.sum.TrainSeconds > 0 && r.sum.TrainSeconds <= r.sum.WallSeconds) {
		t.Fatalf("train seconds %v, wall seconds %v", r.sum.TrainSeconds, r.sum.WallSeconds)
	}
	checkRunDir(t, dir, r.sum)
	return r.sum
}

// joinedHostile joins as y on tr, takes its model and two chunks, and
// sends the hostile messages of runCluster that pass the decoder.
func joinedHostile(t *testing.T, ctx context.Context, tr Transport) {
	t.Helper()
	models, works := make(chan wire.Model, 8), make(chan protocol.Work, 8)
	tr.Subscribe("hermes.w.y.*", func(m Msg) {
		switch msg, _ := wire.Decode(m.Data); msg := msg.(type) {
		case wire.Model:
			models <- msg
		case protocol.Work:
			works <- msg
		}
	})
	join, _ := wire.Encode(nil, wire.Join{Name: "y", MemoryBytes: 1 << 30, Cores: 1, Version: fmt.Sprint(wire.Version)}, wire.FP32)
	reply, err := tr.Request(ctx, "hermes.join.y", join)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := wire.Decode(reply)
	id := protocol.WorkerID(m.(wire.Welcome).Worker)
	model := <-models
	c1, c2 := (<-works).Chunk.ID, (<-works).Chunk.ID
	send := func(m any) {
		b, err := wire.Encode(nil, m, wire.FP32)
		if err != nil {
			t.Fatal(err)
		}
		tr.Publish("hermes.up.y", b)
	}
	n := len(model.Params)
	huge := make([]float32, n)
	for i := range huge {
		huge[i] = 1e12
	}
	send(protocol.Update{Report: protocol.Report{Worker: id, ChunkID: c1}, Grad: make([]float32, 3)})                // wrong shape
	send(protocol.Report{Worker: id, ChunkID: 1 << 40})                                                              // not its chunk
	send(protocol.Update{Report: protocol.Report{Worker: id, ChunkID: c1}, Base: 1 << 40, Grad: make([]float32, n)}) // no such version
	send(protocol.Update{Report: protocol.Report{Worker: id, ChunkID: c2}, Grad: huge})                              // far too large
	tr.Flush()
}

// checkRunDir checks what a finished run leaves: a central log with every
// node's events, one log per node, the final model with the accuracy the
// summary reports, and the archive.
func checkRunDir(t *testing.T, dir string, sum Summary) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev struct{ Node, Msg string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("events.jsonl: %v: %q", err, line)
		}
		if ev.Msg == "forged server event" {
			t.Fatal("a client wrote into the server's log")
		}
		nodes[ev.Node]++
	}
	for _, n := range []string{"ps", "a", "b", "c"} {
		if nodes[n] == 0 {
			t.Errorf("no events of %s in the central log: %v", n, nodes)
		}
		if _, err := os.Stat(filepath.Join(dir, "nodes", n+".jsonl")); err != nil {
			t.Error(err)
		}
	}
	m, err := nn.LoadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	_, test, _, _ := data.Open("", fixture, fixture)
	if _, acc := m.Evaluate(test.X, test.Y, test.Len(), 500); acc != sum.FinalAccuracy {
		t.Errorf("saved model scores %v, summary says %v", acc, sum.FinalAccuracy)
	}
	if _, err := os.Stat(dir + ".tar.gz"); err != nil || sum.Archive != dir+".tar.gz" {
		t.Errorf("archive %q: %v", sum.Archive, err)
	}
}

// With a token, a client without it is refused with a clear error, and
// one with it joins.
func TestTokenRequired(t *testing.T) {
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.Epochs, c.Target, c.Security.Token = 1, 0.5, "s3cret"
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := RunWorker(ctx, WorkerConfig{URL: ps.URL(), Name: "intruder", Log: quietLog})
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") || !strings.Contains(err.Error(), "worker intruder") {
		t.Fatalf("worker without the token: %v", err)
	}
	if sum := runWorkers(t, ps, WorkerConfig{Name: "friend", Security: Security{Token: "s3cret"}}); !sum.ReachedTarget || sum.Workers != 1 {
		t.Fatalf("run with the token: %+v", sum)
	}
}

// A worker that dies mid-run without a word (as under SIGKILL) is timed out;
// its chunks go back to the queue, the others train on, and no chunk stays
// with the dead worker.
func TestSilentWorkerIsTimedOut(t *testing.T) {
	mem := newFixtureNet()
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.MinWorkers = 3
		c.Settings.Patience = 1 << 20       // run until the context ends, past the timeout
		c.Timeout = 2500 * time.Millisecond // > 2 heartbeats: live workers never time out
		mem.server(c)
	})
	// The dead worker joins, takes its model and two chunks, and is never
	// heard of again.
	nc := mem.client(t, ps, "dead")
	defer nc.Close()
	got := make(chan any, 64)
	nc.Subscribe("hermes.w.dead.*", func(msg Msg) {
		m, err := wire.Decode(msg.Data)
		if err != nil {
			t.Error(err)
		}
		got <- m
	})
	join, _ := wire.Encode(nil, wire.Join{Name: "dead", MemoryBytes: 1 << 30, Cores: 1, Version: fmt.Sprint(wire.Version)}, wire.FP32)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc.Request(ctx, "hermes.join.dead", join)
	}()

	// No target: the run lasts until the context ends, long after the
	// timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"a", "b"} {
		go RunWorker(ctx, mem.worker(WorkerConfig{Name: name, Memory: 1 << 30, Cores: 1, Seed: 1, Log: quietLog}))
	}
	sum, err := ps.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 3 {
		t.Fatalf("the dead worker got %d messages before dying, want its model and chunks", len(got))
	}
	// The fixture's images were bytes in their file: they travel as bytes.
	for len(got) > 0 {
		if d, ok := (<-got).(wire.Data); ok && (d.Bytes == nil || len(d.X) != len(d.Bytes)) {
			t.Fatalf("chunk %d travelled as float32", d.ChunkID)
		}
	}
	if sum.Lost != 1 {
		t.Fatalf("%d workers lost, want 1: %+v", sum.Lost, sum)
	}
	if held := sum.PerWorker["dead"].Held; held != 0 {
		t.Fatalf("the dead worker still holds %d chunks", held)
	}
	if int64(sum.PerWorker["a"].Held+sum.PerWorker["b"].Held) != sum.Chunks.Outstanding {
		t.Fatalf("held chunks %+v do not add up to %d outstanding", sum.PerWorker, sum.Chunks.Outstanding)
	}
	if sum.UpdatesTotal == 0 || sum.BestAccuracy < 0.7 {
		t.Fatalf("the others did not train on: %+v", sum)
	}
}

// freeAddr returns a loopback address with a port free at the time of the
// call, for a server that must come back on the same address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The server is interrupted (as by SIGTERM) mid-run and checkpoints; a new
// server resumes from the checkpoint on the same address; the workers,
// left running, reconnect and join again by themselves, and the global
// model's version continues from where it stopped.
func TestResumeAfterInterrupt(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	interruptAndResume(t, addr, "", dir, dir)
}

// With an external NATS server that has JetStream, the checkpoint is also
// in its object store: a server on another machine (here: with another,
// empty run dir) resumes the run from there.
func TestResumeFromJetStream(t *testing.T) {
	url := startNATSServer(t, "-js", "-sd", t.TempDir())
	interruptAndResume(t, "", url, t.TempDir(), t.TempDir())
}

// interruptAndResume runs two workers under a server on addr (embedded) or
// natsURL (external) with run dir dir1, interrupts it, and resumes with a
// second server with run dir dir2; it checks that the run continues.
func interruptAndResume(t *testing.T, addr, natsURL, dir1, dir2 string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	interrupt, stopFirst := context.WithCancel(ctx)
	dir := dir2
	first := startFixturePS(t, func(c *PSConfig) {
		c.Settings.MinWorkers, c.Listen, c.NATS, c.RunDir, c.Target = 2, addr, natsURL, dir1, 0.99
		c.Settings.Patience = 1 << 20
		c.OnApplied = func(s Status) {
			if s.Version >= 3 {
				stopFirst()
			}
		}
	})
	errs := make(chan error, 2)
	for _, name := range []string{"a", "b"} {
		go func() {
			errs <- RunWorker(ctx, WorkerConfig{URL: first.URL(), Name: name, Memory: 1 << 30, Cores: 1,
				Slowdown: 3, Seed: 1, GiveUp: 30 * time.Second, Log: quietLog})
		}()
	}
	sum1, err := first.Run(interrupt)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	if sum1.StopReason != "interrupted" || sum1.Version < 3 {
		t.Fatalf("first run: %+v", sum1)
	}

	var resumedCfg PSConfig
	second := startFixturePS(t, func(c *PSConfig) {
		c.Settings.MinWorkers, c.Listen, c.NATS, c.RunDir, c.Resume, c.Target = 2, addr, natsURL, dir2, true, 0.75
		resumedCfg = *c
	})
	// A resumed run trains with whoever is back: let both workers'
	// heartbeats (one a second) wait in the server's inbox, so that both
	// are told to join again at once, and the run cannot reach its target
	// before the second has rejoined (the workers would then wait for a
	// server that has gone). Three heartbeats' time: under -race on two
	// busy cores, 1.5 s once let one worker's heartbeat arrive late.
	time.Sleep(3 * time.Second)
	sum2, err := second.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// The server's log: the first change after the resume is the next version.
	var resumed bool
	var next int64
	b, _ := os.ReadFile(filepath.Join(dir, "nodes", "ps.jsonl"))
	for _, line := range strings.Split(string(b), "\n") {
		var ev struct {
			Msg     string
			Version int64
		}
		json.Unmarshal([]byte(line), &ev)
		resumed = resumed || ev.Msg == "resumed"
		if resumed && ev.Msg == "global model" {
			next = ev.Version
			break
		}
	}
	if !sum2.ReachedTarget || sum2.ResumedFrom != sum1.Version || next != sum1.Version+1 {
		t.Fatalf("resumed run: %+v; first version after resume %d, checkpoint at %d", sum2, next, sum1.Version)
	}
	if sum2.UpdatesTotal <= sum1.UpdatesTotal || sum2.Workers != 2 {
		t.Fatalf("counters did not carry over: before %+v, after %+v", sum1, sum2)
	}
	for name, w := range sum2.PerWorker {
		if w.Joins < 2 {
			t.Errorf("worker %s joined %d times, want a rejoin after the restart", name, w.Joins)
		}
	}
	c := sum2.Chunks
	if c.Cut != c.Acked+c.Outstanding+c.Queued || c.Returned == 0 {
		t.Fatalf("chunk accounting %+v", c)
	}
	if dir1 != dir2 && !strings.Contains(string(b), `"from":"JetStream object store hermes-runs"`) {
		t.Fatalf("the checkpoint did not come from JetStream:\n%s", b)
	}
	// Resuming a run that has ended is refused.
	second.Close()
	_, err = StartPS(resumedCfg)
	if err == nil || !strings.Contains(err.Error(), "ended") {
		t.Fatalf("resume of an ended run: %v", err)
	}
}

// The start signal begins a run short of its minimum worker count.
func TestStartSignal(t *testing.T) {
	dir, mem := t.TempDir(), newFixtureNet()
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.MinWorkers, c.Settings.Epochs, c.Target, c.RunDir = 3, 1, 0.5, dir
		mem.server(c)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		for ctx.Err() == nil && !logHas(filepath.Join(dir, "nodes", "ps.jsonl"), `"msg":"worker joined"`) {
			time.Sleep(20 * time.Millisecond)
		}
		ps.Start()
	}()
	if sum := runWorkers(t, ps, mem.worker(WorkerConfig{Name: "only"})); !sum.ReachedTarget || sum.Workers != 1 {
		t.Fatalf("run after the start signal: %+v", sum)
	}
}

func logHas(path, s string) bool {
	b, _ := os.ReadFile(path)
	return strings.Contains(string(b), s)
}

// Models and updates larger than the server's message limit travel in
// pieces: here the MLP's 437 KB through a 64 KB limit (a default external
// nats-server allows 1 MB, less than a large model).
func TestLargeMessagesTravelInPieces(t *testing.T) {
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Spec, _ = nn.Builtin("mlp", 10)
		c.Settings.MinWorkers, c.Target, c.MaxPayload = 2, 0.7, 64<<10
	})
	nc, err := nats.Connect(ps.URL())
	if err != nil {
		t.Fatal(err)
	}
	if got := nc.MaxPayload(); got != 64<<10 {
		t.Fatalf("max payload %d", got)
	}
	nc.Close()
	sum := runWorkers(t, ps, WorkerConfig{Name: "a", Memory: 1 << 30}, WorkerConfig{Name: "b", Memory: 1 << 30})
	if !sum.ReachedTarget || sum.UpdatesTotal == 0 {
		t.Fatalf("run through 64 KB messages: %+v", sum)
	}
}

// Per-name state only for workers that joined, and joins bounded: a log
// line of a name that never joined opens no file, and a name that joins
// more than joinBurst times a minute is not answered, each counted.
func TestJoinsAndNamesBounded(t *testing.T) {
	dir, mem := t.TempDir(), newFixtureNet()
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.MinWorkers, c.RunDir = 100, dir
		mem.server(c)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	ran := runInBackground(ctx, ps)
	defer func() { cancel(); <-ran }()
	nc := mem.client(t, ps, "flappy")
	nc.Publish("hermes.log.ghost", []byte(`{"msg":"never joined"}`))
	join, _ := wire.Encode(nil, wire.Join{Name: "flappy", Version: fmt.Sprint(wire.Version)}, wire.FP32)
	answered := 0
	for range joinBurst + 2 {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := nc.Request(rctx, "hermes.join.flappy", join); err == nil {
			answered++
		}
		rcancel()
	}
	if answered != joinBurst {
		t.Fatalf("%d joins answered, want %d", answered, joinBurst)
	}
	for ctx.Err() == nil && ps.Rejected()[rejectNotJoined] == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if r := ps.Rejected(); r[rejectJoinRate] != 2 || r[rejectNotJoined] != 1 {
		t.Fatalf("rejected %v, want 2 %s and 1 %s", r, rejectJoinRate, rejectNotJoined)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes", "ghost.jsonl")); err == nil {
		t.Fatal("a name that never joined has a log file")
	}
}

// The chunk-training baselines run over the network as in simulation: the
// server buffers (fedbuff) or mixes at once (fedasync), and the run
// reaches the target. So does hermes-gain, whose workers keep the global
// model beside their own to measure their gain over it.
func TestChunkPoliciesEndToEnd(t *testing.T) {
	for _, policy := range []string{"fedbuff", "fedasync", "hermes-gain", "hermes-testfirst"} {
		t.Run(policy, func(t *testing.T) {
			net := newFixtureNet()
			ps := startFixturePS(t, func(c *PSConfig) {
				c.Settings.Policy, c.Settings.MinWorkers, c.Target = policy, 3, 0.7
				c.Settings.ServerLR, c.Settings.Epochs, c.Settings.Buffer = 0.05, 1, 2
				net.server(c)
			})
			var workers []WorkerConfig
			var mu sync.Mutex
			var wrong []string // chunks trained on other than their policy's part
			bad := 0
			for _, name := range []string{"a", "b", "c"} {
				workers = append(workers, net.worker(WorkerConfig{Name: name, Memory: 1 << 30, Cores: 1,
					OnTrained: func(n, samples int, _ time.Duration) {
						// One epoch a chunk: hermes-gain trains on all but
						// its held-out part (a chunk of one row cannot be
						// split, protocol.SplitChunk), hermes-testfirst on
						// the whole chunk, after the test.
						want := n
						if policy == "hermes-gain" {
							want, _ = protocol.SplitChunk(n, protocol.Defaults().HoldOut)
						}
						if samples != want && (policy == "hermes-gain" || policy == "hermes-testfirst") {
							mu.Lock()
							if bad++; len(wrong) < 3 {
								wrong = append(wrong, fmt.Sprintf("%d of %d rows (want %d)", samples, n, want))
							}
							mu.Unlock()
						}
					}}))
			}
			sum := runWorkers(t, ps, workers...)
			if !sum.ReachedTarget || sum.UpdatesTotal < 1 {
				t.Fatalf("summary %+v", sum)
			}
			mu.Lock()
			defer mu.Unlock()
			if bad > 0 {
				t.Fatalf("%s: %d chunks trained on other rows than the policy's, first %v", policy, bad, wrong)
			}
			// FedBuff moves the model once per two updates.
			if policy == "fedbuff" && sum.Version > (sum.UpdatesTotal+1)/2 {
				t.Fatalf("%d updates made %d versions with a buffer of 2", sum.UpdatesTotal, sum.Version)
			}
		})
	}
}

// A slowed worker sleeps in proportion to the CPU time its training took,
// not to its wall time: on a shared machine the wait for a core would be
// multiplied too. The injected CPU clock says each chunk took 20 ms of
// CPU, far more than the fixture's chunks take on the wall clock, so each
// chunk must take at least the 40 ms a worker slowed 3 times sleeps.
func TestSlowdownSleepsOffCPUTime(t *testing.T) {
	net := newFixtureNet()
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.MinWorkers, c.Target = 1, 0.6
		net.server(c)
	})
	var mu sync.Mutex
	var cpu time.Duration
	var took []time.Duration
	w := net.worker(WorkerConfig{Name: "slow", Memory: 1 << 30, Cores: 1, Slowdown: 3,
		CPUTime: func() time.Duration {
			mu.Lock()
			defer mu.Unlock()
			cpu += 20 * time.Millisecond // read before and after each chunk
			return cpu
		},
		OnTrained: func(_, _ int, d time.Duration) {
			mu.Lock()
			took = append(took, d)
			mu.Unlock()
		}})
	if sum := runWorkers(t, ps, w); !sum.ReachedTarget {
		t.Fatalf("summary %+v", sum)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(took) == 0 {
		t.Fatal("no chunk trained")
	}
	for i, d := range took {
		if d < 40*time.Millisecond {
			t.Fatalf("chunk %d took %v of %v: the sleep did not follow the CPU clock", i, d, took)
		}
	}
}

// A policy that compresses chunks (hermes) sends a chunk's images
// zstd-compressed, in fewer bytes than one that does not (hermes-raw),
// and the worker gets the same samples either way.
func TestChunksTravelCompressed(t *testing.T) {
	type got struct {
		chunk      int64 // the first chunk's id; only its rows are kept
		bytes      int
		compressed []bool
		x          []float32
	}
	first := func(policy string) got {
		net := newFixtureNet()
		ps := startFixturePS(t, func(c *PSConfig) {
			c.Settings.Policy, c.Settings.MinWorkers = policy, 1
			net.server(c)
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		runInBackground(ctx, ps)
		tr := net.client(t, ps, "y")
		var mu sync.Mutex
		var g got
		work := make(chan struct{}, 8)
		tr.Subscribe("hermes.w.y.*", func(m Msg) {
			msg, err := wire.Decode(m.Data)
			if err != nil {
				t.Errorf("decode: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch msg := msg.(type) {
			case wire.Data:
				if len(g.compressed) == 0 {
					g.chunk = msg.ChunkID
				}
				if msg.ChunkID == g.chunk {
					g.bytes += len(m.Data)
					g.compressed = append(g.compressed, msg.Compressed)
					g.x = append(g.x, msg.X...)
				}
			case protocol.Work:
				work <- struct{}{}
			}
		})
		join, _ := wire.Encode(nil, wire.Join{Name: "y", MemoryBytes: 1 << 30, Cores: 1, Version: fmt.Sprint(wire.Version)}, wire.FP32)
		if _, err := tr.Request(ctx, "hermes.join.y", join); err != nil {
			t.Fatal(err)
		}
		select {
		case <-work:
		case <-ctx.Done():
			t.Fatal("no work arrived")
		}
		mu.Lock()
		defer mu.Unlock()
		return g
	}
	packed, raw := first("hermes"), first("hermes-raw")
	if len(packed.compressed) == 0 || !packed.compressed[0] || raw.compressed[0] {
		t.Fatalf("compressed flags: hermes %v, hermes-raw %v", packed.compressed, raw.compressed)
	}
	if !slices.Equal(packed.x, raw.x) {
		t.Fatal("the compressed chunk holds other samples than the raw one")
	}
	if 4*packed.bytes > 3*raw.bytes {
		t.Fatalf("the first chunk took %d bytes compressed, %d raw", packed.bytes, raw.bytes)
	}
}
