package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"

	"github.com/hermes-go/hermes/protocol"
)

// Message types: the byte after the version.
const (
	TypeRegister byte = iota + 1
	TypeModel
	TypeWork
	TypeUpdate
	TypeReport
	TypeStop
	TypeData
	TypeJoin
	TypeWelcome
	TypeHeartbeat
	TypeRejoin
	TypeFragment
)

// messages is every message the wire carries: a new message is one entry,
// its type byte, how its body is written and how it is read back and
// checked. A reader records its first error; what a decode function
// returns after an error is dropped.
var messages = []message{
	entry(TypeRegister, encodeRegister, decodeRegister),
	entry(TypeModel, encodeModel, decodeModel),
	entry(TypeWork, encodeWork, decodeWork),
	entry(TypeUpdate, encodeUpdate, decodeUpdate),
	entry(TypeReport, func(b []byte, m protocol.Report, _ Codec) []byte { return putReport(b, m) }, (*reader).report),
	entry(TypeStop, func(b []byte, m Stop, _ Codec) []byte { return putString(b, m.Reason) },
		func(r *reader) Stop { return Stop{Reason: r.str()} }),
	entry(TypeData, encodeData, (*reader).data),
	entry(TypeJoin, encodeJoin, decodeJoin),
	entry(TypeWelcome, encodeWelcome, decodeWelcome),
	entry(TypeHeartbeat, func(b []byte, m Heartbeat, _ Codec) []byte { return putI64(b, m.Worker) }, decodeHeartbeat),
	entry(TypeRejoin, func(b []byte, m Rejoin, _ Codec) []byte { return putString(b, m.Reason) },
		func(r *reader) Rejoin { return Rejoin{Reason: r.str()} }),
	entry(TypeFragment, encodeFragment, decodeFragment),
}

// message is an entry of messages.
type message struct {
	typ    byte
	goType reflect.Type
	encode func(b []byte, m any, codec Codec) []byte
	decode func(r *reader) any
}

func entry[T any](typ byte, enc func(b []byte, m T, codec Codec) []byte, dec func(r *reader) T) message {
	return message{typ: typ, goType: reflect.TypeFor[T](),
		encode: func(b []byte, m any, codec Codec) []byte { return enc(b, m.(T), codec) },
		decode: func(r *reader) any { return dec(r) }}
}

// byType and byGoType index messages for Decode and Encode.
var (
	byType   [256]*message
	byGoType = map[reflect.Type]*message{}
)

func init() {
	for i := range messages {
		m := &messages[i]
		if byType[m.typ] != nil || byGoType[m.goType] != nil {
			panic(fmt.Sprintf("wire: message type %d (%v) twice in the table", m.typ, m.goType))
		}
		byType[m.typ], byGoType[m.goType] = m, m
	}
}

func encodeRegister(b []byte, m protocol.Register, _ Codec) []byte {
	b = putI64(b, int64(m.Worker))
	b = putI64(b, m.MemoryBytes)
	return putI64(b, int64(m.Cores))
}

func decodeRegister(r *reader) protocol.Register {
	reg := protocol.Register{Worker: protocol.WorkerID(r.i64()), MemoryBytes: r.i64(), Cores: int(r.i64())}
	if r.err == nil && (reg.Worker < 0 || reg.MemoryBytes < 0 || reg.Cores < 0) {
		r.err = errors.New("negative field in registration")
	}
	return reg
}

func encodeModel(b []byte, m Model, codec Codec) []byte {
	b = putI64(b, m.Version)
	return putTensor(b, m.Params, codec)
}

func decodeModel(r *reader) Model { return Model{Version: r.i64(), Params: r.tensor()} }

func encodeWork(b []byte, m protocol.Work, _ Codec) []byte {
	b = putI64(b, m.Chunk.ID)
	b = putI64(b, int64(m.MiniBatch))
	b = putI64(b, int64(m.Epochs))
	b = putF64(b, m.HoldOut)
	testFirst := byte(0)
	if m.TestFirst {
		testFirst = 1
	}
	b = append(b, testFirst)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Chunk.Indices)))
	for _, i := range m.Chunk.Indices {
		b = binary.LittleEndian.AppendUint32(b, uint32(i))
	}
	return b
}

func decodeWork(r *reader) protocol.Work {
	w := protocol.Work{Chunk: protocol.Chunk{ID: r.i64()}, MiniBatch: int(r.i64()), Epochs: int(r.i64()), HoldOut: r.f64()}
	if p := r.take(1); p != nil {
		if p[0] > 1 {
			r.err = fmt.Errorf("work with test-first flag %d, want 0 or 1", p[0])
		}
		w.TestFirst = p[0] == 1
	}
	n := r.count(4)
	if raw := r.take(4 * n); raw != nil {
		w.Chunk.Indices = make([]int32, n)
		for i := range w.Chunk.Indices {
			w.Chunk.Indices[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
			if w.Chunk.Indices[i] < 0 {
				r.err = fmt.Errorf("sample index %d is negative", i)
			}
		}
	}
	if r.err == nil && (w.MiniBatch < 1 || w.Epochs < 1 || !(w.HoldOut >= 0 && w.HoldOut < 1)) {
		r.err = fmt.Errorf("work with mini-batch %d, epochs %d, hold-out %v", w.MiniBatch, w.Epochs, w.HoldOut)
	}
	return w
}

func encodeUpdate(b []byte, m protocol.Update, codec Codec) []byte {
	b = putReport(b, m.Report)
	b = putI64(b, m.Base)
	return putTensor(b, m.Grad, codec)
}

func decodeUpdate(r *reader) protocol.Update {
	u := protocol.Update{Report: r.report()}
	u.Base = r.i64()
	u.Grad = r.tensor()
	return u
}

func encodeData(b []byte, m Data, codec Codec) []byte {
	b = putI64(b, m.ChunkID)
	b = putI64(b, m.Offset)
	b = putI64(b, m.Total)
	b = putShape(b, m.Shape)
	if m.Bytes != nil {
		enc := byte(1)
		if m.Compressed {
			enc = 2
		}
		b = append(b, enc)
		b = putF64(b, m.Scale)
		b = putF64(b, m.Mean)
		b = putF64(b, m.Std)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Bytes)))
		if m.Compressed {
			// The compressed length goes before the block, patched in
			// once the block is written after it.
			at := len(b)
			b = Compress(append(b, 0, 0, 0, 0), m.Bytes)
			binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-at-4))
		} else {
			b = append(b, m.Bytes...)
		}
	} else {
		b = append(b, 0)
		b = putTensor(b, m.X, codec)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Y)))
	for _, y := range m.Y {
		b = binary.LittleEndian.AppendUint32(b, uint32(y))
	}
	return b
}

func encodeJoin(b []byte, m Join, _ Codec) []byte {
	b = putString(b, m.Name)
	b = putI64(b, m.MemoryBytes)
	b = putI64(b, int64(m.Cores))
	return putString(b, m.Version)
}

func decodeJoin(r *reader) Join {
	j := Join{Name: r.str(), MemoryBytes: r.i64(), Cores: int(r.i64()), Version: r.str()}
	if r.err == nil && (j.Name == "" || j.MemoryBytes < 0 || j.Cores < 0) {
		r.err = errors.New("join without a name or with negative resources")
	}
	return j
}

func encodeWelcome(b []byte, m Welcome, _ Codec) []byte {
	b = putI64(b, m.Worker)
	b = putLongString(b, m.Spec)
	b = putLongString(b, m.Settings)
	b = putShape(b, m.Shape)
	b = putI64(b, m.Classes)
	return putF64(b, m.LocalLR)
}

func decodeWelcome(r *reader) Welcome {
	w := Welcome{Worker: r.i64(), Spec: r.longStr(), Settings: r.longStr()}
	w.Shape, _ = r.shape()
	w.Classes, w.LocalLR = r.i64(), r.f64()
	if r.err == nil && (w.Worker < 0 || w.Classes < 1 || !(w.LocalLR > 0) || !finite(w.LocalLR)) {
		r.err = errors.New("welcome with a bad worker id, class count or learning rate")
	}
	return w
}

func decodeHeartbeat(r *reader) Heartbeat {
	h := Heartbeat{Worker: r.i64()}
	if r.err == nil && h.Worker < 0 {
		r.err = errors.New("negative worker id")
	}
	return h
}

func encodeFragment(b []byte, m Fragment, _ Codec) []byte {
	b = binary.LittleEndian.AppendUint64(b, m.ID)
	b = binary.LittleEndian.AppendUint32(b, m.Index)
	b = binary.LittleEndian.AppendUint32(b, m.Count)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Part)))
	return append(b, m.Part...)
}

func decodeFragment(r *reader) Fragment {
	f := Fragment{ID: uint64(r.i64()), Index: r.u32(), Count: r.u32()}
	f.Part = append([]byte{}, r.take(r.count(1))...)
	if r.err == nil && (f.Count < 2 || f.Count > MaxFragments || f.Index >= f.Count || len(f.Part) == 0) {
		r.err = fmt.Errorf("fragment %d of %d with %d bytes", f.Index, f.Count, len(f.Part))
	}
	return f
}
