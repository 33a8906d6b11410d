package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The transport conformance suite: every Transport passes it, so that what
// a protocol-level test shows over MemNetwork holds over NATS.

// dialer returns a new connection to one network per test, its replies
// under inbox.
type dialer func(t *testing.T, inbox string) Transport

func TestTransportMem(t *testing.T) {
	testTransport(t, func(t *testing.T) dialer {
		n := NewMemNetwork(1 << 20)
		return func(t *testing.T, inbox string) Transport {
			tr := n.Connect(inbox)
			t.Cleanup(tr.Close)
			return tr
		}
	})
}

func TestTransportNATS(t *testing.T) {
	testTransport(t, func(t *testing.T) dialer {
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats not ready")
		}
		t.Cleanup(ns.Shutdown)
		return func(t *testing.T, inbox string) Transport {
			nc, err := nats.Connect(ns.ClientURL(), nats.CustomInboxPrefix(inbox))
			if err != nil {
				t.Fatal(err)
			}
			tr := NATSTransport(nc)
			t.Cleanup(tr.Close)
			return tr
		}
	})
}

func testTransport(t *testing.T, network func(t *testing.T) dialer) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, dial dialer)
	}{
		{"PublishSubscribe", testPublishSubscribe},
		{"Wildcards", testWildcards},
		{"Order", testOrder},
		{"RequestReply", testRequestReply},
		{"NoResponders", testNoResponders},
		{"Unsubscribe", testUnsubscribe},
		{"MaxPayload", testMaxPayload},
		{"Close", testClose},
	} {
		t.Run(c.name, func(t *testing.T) { c.test(t, network(t)) })
	}
}

// collect subscribes tr to pattern and returns the channel of what
// arrives; the subscription is in place when it returns.
func collect(t *testing.T, tr Transport, pattern string) <-chan Msg {
	t.Helper()
	got := make(chan Msg, 1024)
	if _, err := tr.Subscribe(pattern, func(m Msg) { got <- m }); err != nil {
		t.Fatal(err)
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	return got
}

func next(t *testing.T, got <-chan Msg) Msg {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived")
		return Msg{}
	}
}

// none checks that nothing more arrives: whatever was published has been
// flushed, and a delivery would come within the wait.
func none(t *testing.T, got <-chan Msg) {
	t.Helper()
	select {
	case m := <-got:
		t.Fatalf("unexpected message on %s: %q", m.Subject, m.Data)
	case <-time.After(100 * time.Millisecond):
	}
}

func testPublishSubscribe(t *testing.T, dial dialer) {
	a, b := dial(t, "in.a"), dial(t, "in.b")
	got := collect(t, b, "hermes.up.w1")
	buf := []byte("update")
	if err := a.Publish("hermes.up.w1", buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXX") // the transport copied it
	a.Flush()
	if m := next(t, got); m.Subject != "hermes.up.w1" || string(m.Data) != "update" || m.Reply != "" {
		t.Fatalf("got %+v", m)
	}
	a.Publish("hermes.up.w2", []byte("other"))
	a.Flush()
	none(t, got)
}

func testWildcards(t *testing.T, dial dialer) {
	a, b := dial(t, "in.a"), dial(t, "in.b")
	star, tail := collect(t, b, "w.*.x"), collect(t, b, "w.>")
	for _, s := range []string{"w.1.x", "w.1.y", "w", "w.1.2.x", "v.1.x"} {
		if err := a.Publish(s, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	a.Flush()
	if m := next(t, star); m.Subject != "w.1.x" {
		t.Fatalf("w.*.x got %s", m.Subject)
	}
	none(t, star)
	for _, want := range []string{"w.1.x", "w.1.y", "w.1.2.x"} {
		if m := next(t, tail); m.Subject != want {
			t.Fatalf("w.> got %s, want %s", m.Subject, want)
		}
	}
	none(t, tail)
}

func testOrder(t *testing.T, dial dialer) {
	a, b := dial(t, "in.a"), dial(t, "in.b")
	got := collect(t, b, "seq")
	for i := range 500 {
		a.Publish("seq", []byte(fmt.Sprint(i)))
	}
	a.Flush()
	for i := range 500 {
		if m := next(t, got); string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("message %d arrived as %s", i, m.Data)
		}
	}
}

func testRequestReply(t *testing.T, dial dialer) {
	a, b := dial(t, "hermes.inbox.a"), dial(t, "in.b")
	replies := make(chan string, 1)
	b.Subscribe("svc", func(m Msg) {
		replies <- m.Reply
		m.Respond(bytes.ToUpper(m.Data))
	})
	b.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := a.Request(ctx, "svc", []byte("ping"))
	if err != nil || string(out) != "PING" {
		t.Fatalf("reply %q, %v", out, err)
	}
	if r := <-replies; !strings.HasPrefix(r, "hermes.inbox.a.") {
		t.Fatalf("reply subject %q is not in the requester's inbox", r)
	}
}

func testNoResponders(t *testing.T, dial dialer) {
	a := dial(t, "in.a")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := a.Request(ctx, "nobody", []byte("?"))
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request without responders: %v after %v, want an error at once", err, time.Since(start))
	}
}

func testUnsubscribe(t *testing.T, dial dialer) {
	a, b := dial(t, "in.a"), dial(t, "in.b")
	got := make(chan Msg, 8)
	unsubscribe, err := b.Subscribe("s", func(m Msg) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	b.Flush()
	a.Publish("s", []byte("1"))
	a.Flush()
	next(t, got)
	if err := unsubscribe(); err != nil {
		t.Fatal(err)
	}
	b.Flush()
	a.Publish("s", []byte("2"))
	a.Flush()
	none(t, got)
}

func testMaxPayload(t *testing.T, dial dialer) {
	a := dial(t, "in.a")
	if a.MaxPayload() != 1<<20 {
		t.Fatalf("max payload %d, want 1 MiB", a.MaxPayload())
	}
	if err := a.Publish("big", make([]byte, a.MaxPayload()+1)); err == nil {
		t.Fatal("a message over the limit was taken")
	}
	if err := a.Publish("big", make([]byte, a.MaxPayload()-1024)); err != nil {
		t.Fatalf("a message under the limit: %v", err)
	}
}

func testClose(t *testing.T, dial dialer) {
	a := dial(t, "in.a")
	a.Close()
	if err := a.Publish("s", []byte("x")); err == nil {
		t.Fatal("publish after close")
	}
}
