package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func pieces(t *testing.T, msg []byte, limit int, id uint64) []Fragment {
	t.Helper()
	parts, err := Split(msg, limit, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []Fragment
	for _, p := range parts {
		if len(p) > limit {
			t.Fatalf("piece of %d bytes over the limit %d", len(p), limit)
		}
		m, err := Decode(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.(Fragment))
	}
	return out
}

// A model larger than the limit travels in pieces and comes out whole,
// also when the pieces of two senders interleave.
func TestSplitAndAssemble(t *testing.T) {
	model := Model{Version: 3, Params: make([]float32, 10000)}
	for i := range model.Params {
		model.Params[i] = float32(i) / 7
	}
	msg, _ := Encode(nil, model, FP32)
	if parts, _ := Split(msg, len(msg), 1); len(parts) != 1 || !bytes.Equal(parts[0], msg) {
		t.Fatal("a message that fits was split")
	}
	a, b := pieces(t, msg, 4096, 1), pieces(t, msg, 1000, 2)
	if len(a) != 10 || len(b) != 42 {
		t.Fatalf("%d and %d pieces", len(a), len(b))
	}
	asm := NewAssembler(1<<20, 4)
	var whole [][]byte
	for i := 0; i < len(b); i++ {
		for _, f := range []Fragment{b[i], a[min(i, len(a)-1)]} {
			if f.ID == 1 && i >= len(a) {
				continue
			}
			got, err := asm.Add(f)
			if err != nil {
				t.Fatal(err)
			}
			if got != nil {
				whole = append(whole, got)
			}
		}
	}
	if len(whole) != 2 {
		t.Fatalf("%d messages reassembled, want 2", len(whole))
	}
	for _, w := range whole {
		m, err := Decode(w)
		if err != nil || !reflect.DeepEqual(m, model) {
			t.Fatalf("reassembled message: %v", err)
		}
	}
	if n, held := asm.Pending(); n != 0 || held != 0 {
		t.Fatalf("%d messages, %d bytes still held", n, held)
	}
}

// Pieces out of order, pieces of unknown messages and messages over the
// budget are refused; the assembler never holds more than its budget.
func TestAssemblerRefuses(t *testing.T) {
	msg, _ := Encode(nil, Model{Params: make([]float32, 5000)}, FP32) // 20 KB
	p := pieces(t, msg, 2048, 9)
	asm := NewAssembler(64<<10, 1000)
	if _, err := asm.Add(p[1]); !errors.Is(err, ErrFragmentOrder) {
		t.Fatalf("a second piece first: %v", err)
	}
	asm.Add(p[0])
	if _, err := asm.Add(p[2]); !errors.Is(err, ErrFragmentOrder) {
		t.Fatalf("a piece skipped: %v", err)
	}
	if n, _ := asm.Pending(); n != 0 {
		t.Fatal("a message with a gap is still held")
	}
	small := NewAssembler(8<<10, 4)
	var err error
	for _, f := range p {
		if _, err = small.Add(f); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a 20 KB message in an 8 KB assembler: %v", err)
	}
	// Many senders, none finishing: the oldest are dropped, the budget holds.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		f := pieces(t, msg, 2048, uint64(100+i))
		for _, piece := range f[:1+rng.IntN(len(f)-1)] {
			asm.Add(piece)
			if _, held := asm.Pending(); held > 64<<10 {
				t.Fatalf("holds %d bytes, budget 64 KiB", held)
			}
		}
	}
}

// A flood of one-byte pieces is charged their overhead: a million of them
// never hold more than the budget, however small each is, nor more than
// maxPending messages.
func TestAssemblerChargesPieces(t *testing.T) {
	asm := NewAssembler(1<<20, 8)
	for i := range 1_000_000 {
		asm.Add(Fragment{ID: uint64(i / MaxFragments), Index: uint32(i % MaxFragments), Count: MaxFragments, Part: []byte{1}})
		if n, held := asm.Pending(); held > 1<<20 || n > 8 {
			t.Fatalf("piece %d: %d messages, %d bytes held; budget 8 messages, 1 MiB", i, n, held)
		}
		if i == 999 {
			if _, held := asm.Pending(); held != 1000*(1+pieceOverhead) {
				t.Fatalf("1000 one-byte pieces charged %d bytes, want %d", held, 1000*(1+pieceOverhead))
			}
		}
	}
}

func TestSplitRefusesTinyLimits(t *testing.T) {
	msg, _ := Encode(nil, Model{Params: make([]float32, 100)}, FP32)
	if _, err := Split(msg, 20, 1); err == nil {
		t.Fatal("split into pieces smaller than their header")
	}
}

// The assembler takes pieces of any shape in any order: it never holds
// more than its budget or maxPending messages, never panics, and what it
// returns whole is exactly what was split.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte{0, 0, 3, 5, 1, 1, 3, 5, 2, 2, 3, 5}, uint16(100))
	f.Fuzz(func(t *testing.T, script []byte, budget uint16) {
		asm := NewAssembler(int(budget)+pieceOverhead, 3)
		for len(script) >= 4 {
			id, idx, count, n := script[0]%4, script[1]%8, script[2]%8, int(script[3])
			script = script[4:]
			part := bytes.Repeat([]byte{id}, n%32+1)
			got, err := asm.Add(Fragment{ID: uint64(id), Index: uint32(idx), Count: uint32(count), Part: part})
			if err == nil && got != nil && !bytes.Equal(got, bytes.Repeat([]byte{id}, len(got))) {
				t.Fatalf("message %d came back mixed with others' pieces: %v", id, got)
			}
			if n, held := asm.Pending(); n > 3 || held > int(budget)+pieceOverhead {
				t.Fatalf("%d messages, %d bytes held; at most 3 and %d", n, held, int(budget)+pieceOverhead)
			}
		}
	})
}
