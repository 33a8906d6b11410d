package wire

import (
	"errors"
	"fmt"
)

// MaxFragments bounds the pieces of one message.
const MaxFragments = 1 << 16

// Fragment is one piece of an encoded message too large for the
// transport's message limit (a model or an update beyond NATS's
// max_payload): piece Index of Count of message ID. Pieces travel in order,
// as NATS delivers one publisher's messages; an Assembler puts them back
// together, and the whole is then decoded, checksum and all, like any
// message.
type Fragment struct {
	ID           uint64
	Index, Count uint32
	Part         []byte
}

// fragmentOverhead is the bytes of a Fragment besides its part.
const fragmentOverhead = 4 + 8 + 4 + 4 + 4 + 4

// Split returns msg, an encoded message, as encoded Fragments of message
// id, each at most limit bytes; a message that fits is returned as it is.
func Split(msg []byte, limit int, id uint64) ([][]byte, error) {
	if len(msg) <= limit {
		return [][]byte{msg}, nil
	}
	part := limit - fragmentOverhead
	if part < 1 {
		return nil, fmt.Errorf("wire: message limit of %d bytes is too small to split into", limit)
	}
	n := (len(msg) + part - 1) / part
	if n > MaxFragments {
		return nil, fmt.Errorf("wire: message of %d bytes needs %d fragments of %d, at most %d", len(msg), n, limit, MaxFragments)
	}
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		b, err := Encode(nil, Fragment{ID: id, Index: uint32(i), Count: uint32(n), Part: msg[i*part : min((i+1)*part, len(msg))]}, FP32)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Assembler puts fragmented messages back together. Its input is untrusted:
// pieces must come in order; what it holds stays within a byte budget,
// each piece charged its bytes and pieceOverhead (so that a flood of tiny
// pieces costs what it takes), and within maxPending unfinished messages;
// the oldest unfinished message is dropped to make room. Give each sender
// its own Assembler, so that one cannot evict another's pieces.
type Assembler struct {
	budget, maxPending int
	held               int // charged bytes of the pending messages
	pending            map[uint64]*partial
	order              []uint64 // pending IDs, oldest first; at most maxPending
}

type partial struct {
	next, count uint32
	buf         []byte
	charged     int
}

// pieceOverhead is what a piece costs besides its bytes: the fragment's
// header and the bookkeeping of holding it.
const pieceOverhead = 64

// NewAssembler returns an assembler that holds at most budget bytes (as
// charged) of at most maxPending unfinished messages.
func NewAssembler(budget, maxPending int) *Assembler {
	return &Assembler{budget: budget, maxPending: max(1, maxPending), pending: map[uint64]*partial{}}
}

// ErrFragmentOrder reports a piece that does not continue its message.
var ErrFragmentOrder = errors.New("wire: fragment out of order")

// Add takes a piece and returns the whole message once its last piece has
// come, or nil. A bad piece drops its message and returns an error.
func (a *Assembler) Add(f Fragment) ([]byte, error) {
	p, ok := a.pending[f.ID]
	switch {
	case !ok && f.Index != 0:
		return nil, fmt.Errorf("%w: piece %d of message %x, whose first piece never came", ErrFragmentOrder, f.Index, f.ID)
	case !ok:
		if len(a.order) == a.maxPending {
			a.drop(a.order[0])
		}
		p = &partial{count: f.Count}
		a.pending[f.ID] = p
		a.order = append(a.order, f.ID)
	case f.Index != p.next || f.Count != p.count:
		a.drop(f.ID)
		return nil, fmt.Errorf("%w: piece %d/%d of message %x, want %d/%d", ErrFragmentOrder, f.Index, f.Count, f.ID, p.next, p.count)
	}
	cost := len(f.Part) + pieceOverhead
	if p.charged+cost > a.budget {
		a.drop(f.ID)
		return nil, fmt.Errorf("wire: message %x is larger than the %d bytes an assembler holds", f.ID, a.budget)
	}
	for a.held+cost > a.budget {
		oldest := a.order[0]
		if oldest == f.ID && len(a.order) == 1 {
			a.drop(f.ID)
			return nil, fmt.Errorf("wire: message %x is larger than the %d bytes an assembler holds", f.ID, a.budget)
		}
		if oldest == f.ID {
			oldest = a.order[1]
		}
		a.drop(oldest)
	}
	p.buf = append(p.buf, f.Part...)
	p.charged += cost
	a.held += cost
	p.next++
	if p.next < p.count {
		return nil, nil
	}
	a.drop(f.ID)
	return p.buf, nil
}

// Pending returns how many messages are unfinished and the bytes held, as
// charged.
func (a *Assembler) Pending() (messages, bytes int) { return len(a.pending), a.held }

func (a *Assembler) drop(id uint64) {
	if p, ok := a.pending[id]; ok {
		a.held -= p.charged
		delete(a.pending, id)
	}
	for i, v := range a.order {
		if v == id {
			a.order = append(a.order[:i], a.order[i+1:]...)
			break
		}
	}
}
