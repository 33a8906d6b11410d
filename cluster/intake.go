package cluster

import (
	"fmt"

	"github.com/hermes-go/hermes/protocol"
	"github.com/hermes-go/hermes/wire"
)

type inbound struct {
	msg   any
	from  string    // the sender's name, from the subject
	reply func(any) // set for requests: joins and heartbeats
}

// receive decodes a message that arrived on a subject of kind, on a NATS
// goroutine, and queues it for the server's loop with its sender's name,
// taken from the subject. What cannot be used is rejected here, counted
// by reason. Requests (joins, heartbeats) come without a receiver: they
// are small, never in pieces.
func (p *PS) receive(msg Msg, kind string, rcv *receiver) {
	p.bytesIn.Add(int64(len(msg.Data)))
	from := p.subj.sender(msg.Subject)
	var m any
	var err error
	if rcv != nil {
		m, err = rcv.decode(msg.Data)
	} else {
		m, err = wire.Decode(msg.Data)
	}
	if err != nil {
		p.reject(rejectUndecodable, from, "err", err, "bytes", len(msg.Data))
		return
	}
	if m == nil {
		return // a piece of a message still incomplete
	}
	in := inbound{msg: m, from: from}
	switch m.(type) {
	case wire.Join:
		err = expectKind(kind, kindJoin, m)
	case wire.Heartbeat:
		err = expectKind(kind, kindHeartbeat, m)
	case protocol.Report, protocol.Update:
		err = expectKind(kind, kindUp, m)
	default:
		err = fmt.Errorf("%T is not for the server", m)
	}
	if err != nil {
		p.reject(rejectWrongSubject, from, "subject", msg.Subject, "err", err)
		return
	}
	if rcv == nil {
		if !p.subj.replyOK(from, msg.Reply) {
			p.reject(rejectReplySubject, from, "reply", msg.Reply)
			return
		}
		in.reply = func(w any) {
			b, _ := wire.Encode(nil, w, wire.FP32)
			p.bytesOut.Add(int64(len(b)))
			msg.Respond(b)
		}
	}
	// Backpressure, not loss: while the loop is busy the subscription
	// waits here, and NATS holds what comes next (up to its pending
	// limits; beyond them it reports a slow consumer, which is counted).
	select {
	case p.inbox <- in:
	case <-p.done:
	}
}

func expectKind(kind, want string, m any) error {
	if kind != want {
		return fmt.Errorf("%T on a %s subject", m, kind)
	}
	return nil
}

// reject counts a message turned away and logs why.
func (p *PS) reject(reason, from string, args ...any) {
	p.rejected.add(reason)
	p.log.Warn("rejected message", append([]any{"reason", reason, "from", from}, args...)...)
}

// receiveLog writes a worker's log line to the run dir.
func (p *PS) receiveLog(msg Msg) {
	if p.rd == nil {
		return
	}
	name := p.subj.sender(msg.Subject)
	line, err := nodeLine(name, msg.Data)
	if err == nil && (!ValidName(name) || name == "ps") {
		err = fmt.Errorf("worker name %q", name)
	}
	if err != nil {
		p.reject(rejectLog, name, "err", err)
		return
	}
	// A log file only for a worker that joined: a name that never did
	// opens nothing.
	if _, ok := p.joined.Load(name); !ok {
		p.reject(rejectNotJoined, name)
		return
	}
	if err := p.rd.write(name, line); err != nil {
		p.log.Warn("log", "err", err)
	}
}
