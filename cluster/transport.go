package cluster

import (
	"context"

	"github.com/nats-io/nats.go"
)

// Transport carries a run's messages between the parameter server and its
// workers: subject-addressed publish and subscribe, with request and
// reply, as NATS gives them. The NATS implementation (NATSTransport) runs
// real clusters; the in-memory one (MemNetwork) runs protocol-level tests
// without a server. Both pass the conformance suite in transport_test.go.
//
// A Transport is safe for concurrent use.
type Transport interface {
	// Publish sends data on subject. The transport copies data: the
	// caller may reuse it when Publish returns. A message larger than
	// MaxPayload is an error.
	Publish(subject string, data []byte) error
	// Subscribe calls h with every message on a subject that matches
	// pattern (NATS wildcards: * one token, > the rest), one message at a
	// time from one goroutine per subscription, in the order each
	// publisher sent them. The returned function ends the subscription.
	Subscribe(pattern string, h func(Msg)) (unsubscribe func() error, err error)
	// Request publishes data on subject with a reply subject in this
	// transport's inbox, and returns the first reply's data, or an error
	// when ctx ends first or nobody subscribes to subject.
	Request(ctx context.Context, subject string, data []byte) ([]byte, error)
	// MaxPayload is the largest message Publish takes.
	MaxPayload() int
	// Flush returns once everything published before it has been handed
	// to the network.
	Flush() error
	// Close ends the transport and its subscriptions.
	Close()
}

// Msg is a message a subscription delivers.
type Msg struct {
	Subject string
	// Reply is where an answer goes; empty when none is asked for.
	Reply string
	Data  []byte
	// respond answers on Reply through the transport that delivered it.
	respond func(data []byte) error
}

// Respond answers a request on its reply subject.
func (m Msg) Respond(data []byte) error { return m.respond(data) }

// NATSTransport is a Transport over a NATS connection. Replies to its
// requests come to the connection's inbox (nats.CustomInboxPrefix), the
// one place a worker's permissions let it listen for them.
func NATSTransport(nc *nats.Conn) Transport { return natsTransport{nc} }

type natsTransport struct{ nc *nats.Conn }

func (t natsTransport) Publish(subject string, data []byte) error { return t.nc.Publish(subject, data) }

func (t natsTransport) Subscribe(pattern string, h func(Msg)) (func() error, error) {
	sub, err := t.nc.Subscribe(pattern, func(m *nats.Msg) {
		h(Msg{Subject: m.Subject, Reply: m.Reply, Data: m.Data, respond: m.Respond})
	})
	if err != nil {
		return nil, err
	}
	return sub.Unsubscribe, nil
}

func (t natsTransport) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	m, err := t.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

func (t natsTransport) MaxPayload() int { return int(t.nc.MaxPayload()) }
func (t natsTransport) Flush() error    { return t.nc.Flush() }
func (t natsTransport) Close()          { t.nc.Close() }
