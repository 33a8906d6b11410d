package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// BenchmarkPermissions measures what NATS permissions cost a worker's
// message: a worker publishes on hermes.up.NAME and the server's
// subscriber receives it, through an embedded server whose worker user has
// the allow-lists of subjects.permissions, or none.
func BenchmarkPermissions(b *testing.B) {
	for _, size := range []int{64, 437_544} { // a heartbeat, an MLP update
		for _, perms := range []bool{false, true} {
			b.Run(fmt.Sprintf("bytes=%d/permissions=%v", size, perms), func(b *testing.B) {
				benchPublish(b, size, perms)
			})
		}
	}
}

func benchPublish(b *testing.B, size int, perms bool) {
	k := newKeyring(b, "w1")
	subj := subjects{"hermes"}
	sec := Security{NKeyUsers: k.users}
	o := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: maxPayload}
	own, err := sec.serverOptions(o, subj)
	if err != nil {
		b.Fatal(err)
	}
	if !perms {
		for _, u := range o.Nkeys {
			u.Permissions = nil
		}
	}
	ns, err := server.NewServer(o)
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("not ready")
	}
	ps, err := nats.Connect(ns.ClientURL(), own...)
	if err != nil {
		b.Fatal(err)
	}
	defer ps.Close()
	got := make(chan struct{}, 1024)
	ps.Subscribe(subj.all(kindUp), func(*nats.Msg) { got <- struct{}{} })
	ps.Flush()
	co, _ := k.creds("w1").clientOptions()
	w, err := nats.Connect(ns.ClientURL(), co...)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := w.Publish(subj.from(kindUp, "w1"), msg); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
