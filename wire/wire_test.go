package wire

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/hermes-go/hermes/protocol"
)

func sampleMessages() []any {
	rep := protocol.Report{Worker: 3, ChunkID: 17, TrainTime: 1500, Samples: 10625, Steps: 665, Loss: 0.42,
		Decision: protocol.Decision{Major: true, Z: -1.5, Thres: -1.3, Reason: "significant improvement"}}
	return []any{
		protocol.Register{Worker: 2, MemoryBytes: 1 << 30, Cores: 4},
		Model{Version: 9, Params: []float32{1, -2.5, 0, 3e-3}},
		protocol.Work{Chunk: protocol.Chunk{ID: 5, Indices: []int32{4, 8, 15, 16, 23, 42}}, MiniBatch: 16, Epochs: 5, HoldOut: 0.15},
		protocol.Work{Chunk: protocol.Chunk{ID: 6, Indices: []int32{1, 2}}, MiniBatch: 2, Epochs: 1, HoldOut: 0.5, TestFirst: true},
		protocol.Update{Report: rep, Base: 8, Grad: []float32{0.5, -0.25, 1}},
		rep,
		Stop{Reason: "converged"},
		Data{ChunkID: 4, Offset: 2, Total: 4, Shape: []int32{1, 2, 2}, X: []float32{1, 2, 3, 4, 5, 6, 7, 8}, Y: []int32{3, 9}},
		Data{ChunkID: 5, Total: 1, Shape: []int32{3}, X: []float32{-0.5, 0, 127}, Y: []int32{1}, Bytes: []uint8{0, 1, 255}, Scale: 1, Mean: 1, Std: 2},
		Data{ChunkID: 6, Total: 2, Shape: []int32{3}, X: []float32{-0.5, 0, 127, -0.5, -0.5, -0.5}, Y: []int32{1, 0}, Bytes: []uint8{0, 1, 255, 0, 0, 0}, Scale: 1, Mean: 1, Std: 2, Compressed: true},
		Join{Name: "pi3-a", MemoryBytes: 1 << 30, Cores: 4, Version: "1"},
		Heartbeat{Worker: 2},
		Rejoin{Reason: "unknown worker"},
		Fragment{ID: 1 << 40, Index: 1, Count: 3, Part: []byte("piece")},
		Welcome{Worker: 3, Spec: `{"layers":[]}`, Settings: `{"policy":"hermes"}`, Shape: []int32{1, 28, 28}, Classes: 10, LocalLR: 0.02},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := Encode(nil, m, FP32)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%T: got %+v, want %+v", m, got, m)
		}
	}
}

// Byte samples arrive as exactly the float32 values the server holds, at a
// quarter of the bytes; values that are not normalized bytes stay float32.
func TestByteSamples(t *testing.T) {
	// As the data package loads and normalizes Fashion-MNIST.
	const scale, mean, std = 1.0 / 255, 0.2860, 0.3530
	m, inv := float32(mean), float32(1/std)
	x := make([]float32, 784)
	for i := range x {
		x[i] = (float32(float64(i%256)*scale) - m) * inv
	}
	raw, ok := ByteSamples(x, scale, mean, std)
	if !ok {
		t.Fatal("normalized bytes were not recognized")
	}
	y := make([]int32, 1)
	asBytes, _ := Encode(nil, Data{Total: 1, Shape: []int32{784}, Y: y, Bytes: raw, Scale: scale, Mean: mean, Std: std}, FP32)
	asFloats, _ := Encode(nil, Data{Total: 1, Shape: []int32{784}, Y: y, X: x}, FP32)
	got, err := Decode(asBytes)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.(Data).X, x) {
		t.Fatal("byte samples decode to other values than the server's")
	}
	if 3*len(asBytes) > len(asFloats) {
		t.Fatalf("byte samples take %d bytes, float32 %d", len(asBytes), len(asFloats))
	}
	x[3] += 1e-3
	if _, ok := ByteSamples(x, scale, mean, std); ok {
		t.Fatal("a value between bytes was taken for a byte")
	}
}

func TestFP16(t *testing.T) {
	for _, v := range []float32{0, 1, -2.5, 0.1, 65504, 6.1e-5, 5.96e-8, 1e-3} {
		got := fromHalf(toHalf(v))
		if math.Abs(float64(got-v)) > math.Abs(float64(v))*1e-3+6e-8 {
			t.Errorf("%v -> %v", v, got)
		}
	}
	// Exhaustively: every finite half survives a round trip.
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 {
			continue
		}
		if got := toHalf(fromHalf(uint16(h))); got != uint16(h) {
			t.Fatalf("half %#04x -> %v -> %#04x", h, fromHalf(uint16(h)), got)
		}
	}
	b, _ := Encode(nil, Model{Params: make([]float32, 1000)}, FP16)
	if len(b) > 2*1000+32 {
		t.Fatalf("fp16 model of 1000 values takes %d bytes", len(b))
	}
}

// The bytes of an update on the wire are its float32 values plus a header
// of fixed size: within 5% of the raw size for any model worth the name.
func TestUpdateOverhead(t *testing.T) {
	grad := make([]float32, 784*128+128+128*64+64+64*10+10) // the MLP
	b, _ := Encode(nil, protocol.Update{Report: protocol.Report{Decision: protocol.Decision{Reason: "significant improvement"}}, Grad: grad}, FP32)
	raw := 4 * len(grad)
	t.Logf("update of the MLP: %d raw float32 bytes, %d on the wire (%.3f%% over)", raw, len(b), 100*float64(len(b)-raw)/float64(raw))
	if over := float64(len(b)-raw) / float64(raw); over > 0.05 || over < 0 {
		t.Fatalf("update of %d raw bytes takes %d on the wire (%.4f%% over)", raw, len(b), 100*over)
	}
}

// seal replaces the checksum of a message whose body a test has changed, so
// that Decode gets past the checksum to the check under test.
func seal(b []byte) []byte {
	body := b[:len(b)-4]
	return binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
}

// unsealed returns a message without its checksum.
func unsealed(b []byte) []byte { return b[:len(b)-4] }

func TestDecodeRejects(t *testing.T) {
	good, _ := Encode(nil, Model{Version: 1, Params: []float32{1, 2}}, FP32)
	body := unsealed(good)
	nan := append([]byte(nil), body...)
	copy(nan[len(nan)-4:], []byte{0, 0, 0xc0, 0x7f}) // a NaN
	huge := append([]byte(nil), body[:13]...)
	huge = append(huge, 0xff, 0xff, 0xff, 0x0f) // 2^28-1 elements claimed
	version := append([]byte(nil), good...)
	version[2] = 1
	flipped := append([]byte(nil), good...)
	flipped[14] ^= 0x10
	badWork, _ := Encode(nil, protocol.Work{Chunk: protocol.Chunk{ID: 1}, MiniBatch: 0, Epochs: 1}, FP32)
	negReport, _ := Encode(nil, protocol.Report{Worker: 1, Samples: -5}, FP32)
	testFirst, _ := Encode(nil, protocol.Work{Chunk: protocol.Chunk{ID: 1}, MiniBatch: 1, Epochs: 1, TestFirst: true}, FP32)
	testFirst[4+4*8] = 2 // after the header, chunk ID, mini-batch, epochs and hold-out
	cases := map[string][]byte{
		"not a hermes message": []byte("GET / HTTP/1.1"),
		"version 1":            version,
		"corrupted in transit": flipped,
		"type 99":              seal([]byte{'H', 'G', Version, 99, 0, 0, 0, 0}),
		"truncated":            seal(append(append([]byte(nil), body[:8]...), 0, 0, 0, 0)),
		"does not fit the":     seal(append(append([]byte(nil), body[:len(body)-1]...), 0, 0, 0, 0)),
		"not finite":           seal(append(nan, 0, 0, 0, 0)),
		"does not fit":         seal(append(huge, 0, 0, 0, 0)),
		"bytes after":          seal(append(append([]byte(nil), body...), 0, 0, 0, 0, 0)),
		"mini-batch 0":         badWork,
		"negative":             negReport,
		"test-first flag 2":    seal(testFirst),
	}
	for want, b := range cases {
		_, err := Decode(b)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	b, _ := Encode(nil, protocol.Work{Chunk: protocol.Chunk{ID: 1, Indices: []int32{7}}, MiniBatch: 1, Epochs: 1}, FP32)
	m, _ := Decode(b)
	for i := range b {
		b[i] = 0
	}
	if m.(protocol.Work).Chunk.Indices[0] != 7 {
		t.Fatal("decoded message changed with its buffer")
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		for _, c := range []Codec{FP32, FP16} {
			b, _ := Encode(nil, m, c)
			f.Add(unsealed(b))
		}
	}
	// The fuzzer mutates bodies and the checksum is fixed up after, or
	// almost no mutation would get past it to the decoder.
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(seal(append(append([]byte(nil), b...), 0, 0, 0, 0)))
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to a message that decodes to the
		// same bytes again (compared as bytes: a reported loss may be NaN).
		again, err := Encode(nil, m, FP32)
		if err != nil {
			t.Fatalf("re-encode %T: %v", m, err)
		}
		m2, err := Decode(again)
		if err != nil {
			t.Fatalf("decode of re-encoded %T: %v", m, err)
		}
		third, _ := Encode(nil, m2, FP32)
		if !bytes.Equal(again, third) {
			t.Fatalf("round trip of %T changed it", m)
		}
	})
}

// The server decodes an update and encodes a model for every update of an
// asynchronous policy: these two bound its rate.
func BenchmarkDecodeUpdate(b *testing.B) {
	buf, _ := Encode(nil, protocol.Update{Grad: make([]float32, 109386)}, FP32) // the MLP
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeModel(b *testing.B) {
	m := Model{Params: make([]float32, 109386)}
	b.SetBytes(4 * int64(len(m.Params)))
	var buf []byte
	for b.Loop() {
		buf, _ = Encode(buf[:0], m, FP32)
	}
}

// Rows past the chunk's end are refused, also where Offset+rows would
// overflow int64 and wrap to a negative number.
func TestDataRowsOutOfChunk(t *testing.T) {
	for _, off := range []int64{3, math.MaxInt64 - 1, math.MaxInt64} {
		b, err := Encode(nil, Data{ChunkID: 1, Offset: off, Total: 4, Shape: []int32{1}, X: []float32{1, 2}, Y: []int32{0, 1}}, FP32)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(b); err == nil || !strings.Contains(err.Error(), "of a chunk of 4") {
			t.Errorf("rows [%d, %d+2) of 4: %v", off, off, err)
		}
	}
}
