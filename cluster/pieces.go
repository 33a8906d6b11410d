package cluster

import (
	"fmt"
	"math/rand/v2"

	"github.com/hermes-go/hermes/wire"
)

// assemblerBudget bounds the bytes of unfinished fragmented messages a
// worker's receiver holds: a few models of 16M parameters.
const assemblerBudget = 256 << 20

// sender publishes wire messages on a transport, splitting those over its
// payload limit into wire.Fragments: a default external nats-server takes
// 1 MB, and a CNN's model is more. Not safe for concurrent use.
type sender struct {
	tr   Transport
	next uint64 // message ids: random start, so that senders do not collide
}

func newSender(tr Transport) *sender { return &sender{tr: tr, next: rand.Uint64()} }

// publish sends msg, an encoded message, to subject.
func (s *sender) publish(subject string, msg []byte) error {
	limit := s.tr.MaxPayload()
	if len(msg) <= limit {
		return s.tr.Publish(subject, msg)
	}
	s.next++
	parts, err := wire.Split(msg, limit, s.next)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := s.tr.Publish(subject, p); err != nil {
			return fmt.Errorf("fragment of %d bytes: %w", len(msg), err)
		}
	}
	return nil
}

// receiver decodes what one subscription delivers, putting fragmented
// messages back together. A subscription calls its handler from one
// goroutine, so a receiver needs no lock.
type receiver struct{ asm *wire.Assembler }

// newReceiver returns a receiver that holds at most budget bytes of at
// most maxPending unfinished messages.
func newReceiver(budget, maxPending int) *receiver {
	return &receiver{asm: wire.NewAssembler(budget, maxPending)}
}

// receivers keeps a receiver for each sender of a subscription, so that
// one sender's pieces never evict another's; at most max senders, the
// longest known dropped first. Only the subscription's goroutine uses it.
type receivers struct {
	budget, max int
	by          map[string]*receiver
	order       []string
}

func newReceivers(budget, max int) *receivers {
	return &receivers{budget: budget, max: max, by: map[string]*receiver{}}
}

func (r *receivers) of(sender string) *receiver {
	if rc, ok := r.by[sender]; ok {
		return rc
	}
	if len(r.order) == r.max {
		delete(r.by, r.order[0])
		r.order = r.order[1:]
	}
	// Two messages in pieces at a time: an update and the next.
	rc := newReceiver(r.budget, 2)
	r.by[sender] = rc
	r.order = append(r.order, sender)
	return rc
}

// decode returns the message in b, or nil while a fragmented one is
// incomplete.
func (r *receiver) decode(b []byte) (any, error) {
	m, err := wire.Decode(b)
	if err != nil {
		return nil, err
	}
	f, ok := m.(wire.Fragment)
	if !ok {
		return m, nil
	}
	whole, err := r.asm.Add(f)
	if whole == nil || err != nil {
		return nil, err
	}
	m, err = wire.Decode(whole)
	if _, nested := m.(wire.Fragment); nested {
		return nil, fmt.Errorf("wire: a fragment inside a fragment")
	}
	return m, err
}
