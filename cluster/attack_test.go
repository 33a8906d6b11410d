package cluster

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/wire"
)

// The attack suite: a worker admitted with its own valid credentials
// (mallory) tries to read, forge and impersonate while two honest workers
// train. Every subject it may not use must be refused by NATS itself with
// a permissions violation; every message body that claims another worker
// must be rejected by the server and counted by reason; the run reaches
// its target and the honest workers' sessions are untouched.

// subjectAttacks are what mallory tries that NATS permissions must refuse:
// reading everything or another worker's traffic, speaking on another
// worker's or the server's subjects, JetStream and the object store that
// holds the run's checkpoints, the system account.
var subjectAttacks = struct{ subscribe, publish []string }{
	subscribe: []string{">", "hermes.>", "hermes.w.w1.*", "hermes.up.*", "hermes.inbox.w1.>", "$JS.API.>", "$O.hermes-runs.>"},
	publish: []string{"hermes.up.w1", "hermes.join.w1", "hermes.hb.w1", "hermes.log.w1", "hermes.w.w1.1",
		"hermes.up.ps", "$JS.API.STREAM.LIST", "$JS.API.STREAM.DELETE.OBJ_hermes-runs", "$O.hermes-runs.M.bW9kZWw",
		"$SYS.REQ.SERVER.PING"},
}

// attack runs mallory against a server that has started training, and
// returns the subjects NATS refused. creds gives a worker's credentials.
func attack(t *testing.T, url string, creds func(name string) Security) (refused []string) {
	t.Helper()
	var mu sync.Mutex
	opts, err := creds("mallory").clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, nats.CustomInboxPrefix("hermes.inbox.mallory"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			defer mu.Unlock()
			refused = append(refused, err.Error())
		}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	overheard := 0 // what the wide subscriptions let mallory read
	for _, s := range subjectAttacks.subscribe {
		if _, err := nc.Subscribe(s, func(*nats.Msg) { mu.Lock(); overheard++; mu.Unlock() }); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subjectAttacks.publish {
		nc.Publish(s, []byte("forged"))
	}
	// Through the JetStream API, as a client library would.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err = js.DeleteObjectStore(ctx, "hermes-runs")
	cancel()
	if err == nil {
		t.Error("mallory deleted the run's object store")
	}
	nc.Flush()
	// Violations come asynchronously, after the server has read each
	// operation; Flush has made it read them all.
	want := len(subjectAttacks.subscribe) + len(subjectAttacks.publish)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(refused)
		mu.Unlock()
		if n >= want {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // anything the wide subscriptions deliver
	mu.Lock()
	defer mu.Unlock()
	if overheard > 0 {
		t.Logf("mallory overheard %d messages", overheard)
	}
	return slices.Clone(refused)
}

// forge has mallory, joined under its own name, send messages in the
// honest workers' names on its own subjects, where NATS lets it speak:
// reports, updates and heartbeats that claim the others' sessions (ids 0
// and 1, theirs: they joined first), a join that claims w1's name, and
// requests that would have the server answer into w1's subjects. The
// server must reject each: 7 forged identities and 2 foreign reply
// subjects.
func forge(t *testing.T, url string, creds func(name string) Security) {
	t.Helper()
	opts, _ := creds("mallory").clientOptions()
	nc, err := nats.Connect(url, append(opts, nats.CustomInboxPrefix("hermes.inbox.mallory"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	enc := func(m any) []byte {
		b, err := wire.Encode(nil, m, wire.FP32)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	join := enc(wire.Join{Name: "mallory", MemoryBytes: 1 << 30, Cores: 1, Version: fmt.Sprint(wire.Version)})
	reply, err := nc.Request("hermes.join.mallory", join, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Decode(reply.Data)
	if w, ok := m.(wire.Welcome); !ok || w.Worker != 2 {
		t.Fatalf("mallory's own join: %+v %v, want the welcome of worker 2", m, err)
	}
	for id := range protocol.WorkerID(2) {
		r := protocol.Report{Worker: id, ChunkID: 0, Samples: 10, Steps: 1, Loss: 0.1}
		nc.Publish("hermes.up.mallory", enc(r))
		nc.Publish("hermes.up.mallory", enc(protocol.Update{Report: r, Grad: make([]float32, 7850)}))
		nc.PublishRequest("hermes.hb.mallory", "hermes.inbox.mallory.hb", enc(wire.Heartbeat{Worker: int64(id)}))
	}
	nc.PublishRequest("hermes.join.mallory", "hermes.inbox.mallory.join", enc(wire.Join{Name: "w1", Version: fmt.Sprint(wire.Version)}))
	hb := enc(wire.Heartbeat{Worker: 2})
	nc.PublishRequest("hermes.hb.mallory", "hermes.inbox.w1.x", hb)
	nc.PublishRequest("hermes.hb.mallory", "hermes.w.w1.0", hb)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// keyring makes an nkey for each name, as hermes keygen does.
type keyring struct {
	seeds map[string]string
	users []NKeyUser
}

func newKeyring(t testing.TB, names ...string) keyring {
	t.Helper()
	dir := t.TempDir()
	k := keyring{seeds: map[string]string{}}
	for _, n := range names {
		seed, pub, err := NewNKey()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, n+".nk")
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		k.seeds[n] = path
		k.users = append(k.users, NKeyUser{Name: n, Key: pub})
	}
	return k
}

func (k keyring) creds(name string) Security { return Security{NKeySeed: k.seeds[name]} }

// runAttacked runs a server that waits for four workers. w1 and w2 join;
// mallory joins, forges, attacks subjects and tries to join as w1; then w3
// joins, training starts, and the run must reach its target. mod
// configures the server; url, when set, is the NATS URL for clients.
func runAttacked(t *testing.T, creds func(string) Security, mod func(*PSConfig), url string) {
	joined := make(chan string, 8)
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.MinWorkers, c.Target, c.RunDir = 4, 0.75, t.TempDir()
		c.Log = slog.New(joinWatch{joined})
		mod(c)
	})
	url = cmp.Or(url, ps.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := make(chan error, 3)
	honest := func(name string, slowdown float64) {
		go func() {
			errs <- RunWorker(ctx, WorkerConfig{URL: url, Name: name, Memory: 1 << 30, Cores: 1, Slowdown: slowdown, Seed: 1,
				Security: creds(name), Log: quietLog})
		}()
	}
	done := runInBackground(ctx, ps)
	honest("w1", 1)
	<-joined
	honest("w2", 2)
	<-joined

	forge(t, url, creds)
	want := map[string]int64{rejectForged: 7, rejectReplySubject: 2}
	// The forgeries' counts; the protocol may discard honest updates too
	// (worse_loss), which is not this test's business.
	forgeries := func(r map[string]int64) map[string]int64 {
		return map[string]int64{rejectForged: r[rejectForged], rejectReplySubject: r[rejectReplySubject]}
	}
	for deadline := time.Now().Add(5 * time.Second); !maps.Equal(forgeries(ps.Rejected()), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("rejected %v, want %v", ps.Rejected(), want)
		}
	}
	refused := attack(t, url, creds)
	for _, s := range subjectAttacks.subscribe {
		if !hasViolation(refused, "Subscription", s) {
			t.Errorf("subscribing to %s was not refused by NATS", s)
		}
	}
	for _, s := range subjectAttacks.publish {
		if !hasViolation(refused, "Publish", s) {
			t.Errorf("publishing on %s was not refused by NATS", s)
		}
	}
	// With its own credentials, under w1's name.
	ictx, icancel := context.WithTimeout(ctx, 10*time.Second)
	err := RunWorker(ictx, WorkerConfig{URL: url, Name: "w1", Security: creds("mallory"), Log: quietLog, GiveUp: 5 * time.Second})
	icancel()
	if err == nil || !strings.Contains(err.Error(), "permissions violation") || !strings.Contains(err.Error(), "worker w1") {
		t.Errorf("joining as w1 with mallory's credentials: %v, want a permissions violation", err)
	}

	honest("w3", 1)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if !r.sum.ReachedTarget {
		t.Errorf("the attacked run did not reach its target: %+v", r.sum)
	}
	if !maps.Equal(forgeries(r.sum.Rejected), want) {
		t.Errorf("the summary counts %v rejections, want %v", r.sum.Rejected, want)
	}
	for _, n := range []string{"w1", "w2", "w3"} {
		if w := r.sum.PerWorker[n]; w.Joins != 1 {
			t.Errorf("%s joined %d times, want 1: its session was disturbed", n, w.Joins)
		}
	}
}

// joinWatch is a log handler that reports the name of each worker that
// joins; the rest of the log is dropped.
type joinWatch struct{ joined chan<- string }

func (joinWatch) Enabled(context.Context, slog.Level) bool { return true }
func (j joinWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "worker joined" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "worker" {
				select {
				case j.joined <- a.Value.String():
				default: // never block the server's loop
				}
			}
			return true
		})
	}
	return nil
}
func (j joinWatch) WithAttrs([]slog.Attr) slog.Handler { return j }
func (j joinWatch) WithGroup(string) slog.Handler      { return j }

func hasViolation(refused []string, op, subject string) bool {
	want := fmt.Sprintf("Permissions Violation for %s to %q", op, subject)
	return slices.ContainsFunc(refused, func(e string) bool { return strings.Contains(e, want) })
}

// Each worker its own nkey, on the embedded server.
func TestAttackNKeys(t *testing.T) {
	k := newKeyring(t, "w1", "w2", "w3", "mallory")
	runAttacked(t, k.creds, func(c *PSConfig) { c.Security = Security{NKeyUsers: k.users} }, "")
}

// Each worker its own client certificate, its common name the worker's
// name, on the embedded server with mutual TLS.
func TestAttackMutualTLS(t *testing.T) {
	ca := newTestCA(t, t.TempDir())
	srvCert, srvKey := ca.leaf("server", x509.ExtKeyUsageServerAuth)
	creds := func(name string) Security {
		cert, key := ca.leaf(name, x509.ExtKeyUsageClientAuth)
		return Security{TLSCA: ca.file, TLSCert: cert, TLSKey: key}
	}
	runAttacked(t, creds, func(c *PSConfig) {
		c.Security = Security{TLSCert: srvCert, TLSKey: srvKey, TLSCA: ca.file}
	}, "")
}

// An external Debian nats-server, configured by NATSConfig as `hermes ps
// --print-nats-config` prints it; the parameter server connects with the
// key of the users file's ps line.
func TestAttackExternalNATS(t *testing.T) {
	k := newKeyring(t, "ps", "w1", "w2", "w3", "mallory")
	conf, err := NATSConfig(NATSConfigOptions{StoreDir: t.TempDir(), Security: Security{NKeyUsers: k.users}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startNATSServer(t, "-c", path)
	runAttacked(t, k.creds, func(c *PSConfig) { c.NATS, c.Security = url, k.creds("ps") }, url)
}

// The control: with a token, the one identity every client shares, the
// same attacks are not refused. The suite can tell isolation from none.
func TestAttackTokenIsNotIsolation(t *testing.T) {
	ps := startFixturePS(t, func(c *PSConfig) { c.Security.Token = "s3cret" })
	refused := attack(t, ps.URL(), func(string) Security { return Security{Token: "s3cret"} })
	if len(refused) != 0 {
		t.Fatalf("with a token, NATS refused %q", refused)
	}
}
