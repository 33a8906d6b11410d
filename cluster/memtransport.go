package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// MemNetwork is an in-memory network of Transports, for tests: what one
// connection publishes reaches every matching subscription of every
// connection, with NATS's subject wildcards, each publisher's order and
// request/reply, and no server, sockets, authentication or permissions.
// hashicorp/raft's InmemTransport is the model. Queues are unbounded: a
// slow subscriber delays, never loses, what it is sent.
type MemNetwork struct {
	maxPayload int

	mu     sync.Mutex
	subs   map[*memSub]struct{}
	nextID int64
}

// NewMemNetwork returns a network whose messages may be up to maxPayload
// bytes.
func NewMemNetwork(maxPayload int) *MemNetwork {
	return &MemNetwork{maxPayload: maxPayload, subs: map[*memSub]struct{}{}}
}

// Connect returns a new connection to the network. Replies to its requests
// come to subjects under inbox (a worker's is subjects.inbox of its name).
func (n *MemNetwork) Connect(inbox string) Transport { return &memConn{net: n, inbox: inbox} }

// ErrNoResponders is a request's error when nobody subscribes to its
// subject.
var ErrNoResponders = errors.New("no responders")

var errClosed = errors.New("transport closed")

type memConn struct {
	net   *MemNetwork
	inbox string

	mu     sync.Mutex
	closed bool
	subs   []*memSub
}

// memSub is a subscription: a queue that its own goroutine drains into h.
type memSub struct {
	pattern []string
	conn    *memConn
	h       func(Msg)

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []Msg
	closed bool
}

func (c *memConn) Publish(subject string, data []byte) error {
	_, err := c.publish(subject, "", data)
	return err
}

// publish delivers to every matching subscription and returns how many
// there were.
func (c *memConn) publish(subject, reply string, data []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	if len(data) > c.net.maxPayload {
		return 0, fmt.Errorf("message of %d bytes: maximum payload %d exceeded", len(data), c.net.maxPayload)
	}
	if subject == "" || strings.ContainsAny(subject, "*> ") {
		return 0, fmt.Errorf("publish to %q: not a subject", subject)
	}
	tokens := strings.Split(subject, ".")
	data = append([]byte(nil), data...)
	n := c.net
	n.mu.Lock()
	defer n.mu.Unlock()
	delivered := 0
	for s := range n.subs {
		if match(s.pattern, tokens) {
			s.push(Msg{Subject: subject, Reply: reply, Data: data, respond: s.conn.respond(reply)})
			delivered++
		}
	}
	return delivered, nil
}

func (c *memConn) respond(reply string) func([]byte) error {
	return func(data []byte) error {
		if reply == "" {
			return errors.New("respond: the message asked for no reply")
		}
		return c.Publish(reply, data)
	}
}

func (c *memConn) check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	return nil
}

// match reports whether a subject's tokens match a pattern's: * matches
// one token, > one or more to the end.
func match(pattern, subject []string) bool {
	for i, p := range pattern {
		if p == ">" {
			return len(subject) > i
		}
		if i >= len(subject) || (p != "*" && p != subject[i]) {
			return false
		}
	}
	return len(pattern) == len(subject)
}

func (c *memConn) Subscribe(pattern string, h func(Msg)) (func() error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	s := &memSub{pattern: strings.Split(pattern, "."), conn: c, h: h}
	s.cond = sync.NewCond(&s.mu)
	c.subs = append(c.subs, s)
	c.net.mu.Lock()
	c.net.subs[s] = struct{}{}
	c.net.mu.Unlock()
	go s.run()
	return func() error { s.stop(); return nil }, nil
}

func (s *memSub) push(m Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.queue = append(s.queue, m)
		s.cond.Signal()
	}
}

func (s *memSub) run() {
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.cond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		m := s.queue[0]
		s.queue[0] = Msg{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		s.h(m)
	}
}

func (s *memSub) stop() {
	s.conn.mu.Lock()
	s.conn.subs = slices.DeleteFunc(s.conn.subs, func(x *memSub) bool { return x == s })
	s.conn.mu.Unlock()
	s.conn.net.mu.Lock()
	delete(s.conn.net.subs, s)
	s.conn.net.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.queue = nil
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (c *memConn) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	c.net.mu.Lock()
	c.net.nextID++
	reply := c.inbox + "." + strconv.FormatInt(c.net.nextID, 10)
	c.net.mu.Unlock()
	answer := make(chan []byte, 1)
	unsubscribe, err := c.Subscribe(reply, func(m Msg) {
		select {
		case answer <- m.Data:
		default: // the first reply is the answer
		}
	})
	if err != nil {
		return nil, err
	}
	defer unsubscribe()
	n, err := c.publish(subject, reply, data)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("request on %s: %w", subject, ErrNoResponders)
	}
	select {
	case b := <-answer:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *memConn) MaxPayload() int { return c.net.maxPayload }

// Flush has nothing to wait for: Publish has queued the message for every
// subscription by the time it returns.
func (c *memConn) Flush() error { return c.check() }

func (c *memConn) Close() {
	c.mu.Lock()
	subs := c.subs
	c.subs, c.closed = nil, true
	c.mu.Unlock()
	for _, s := range subs {
		s.stop()
	}
}
