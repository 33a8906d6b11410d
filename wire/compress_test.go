package wire

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/hermes-go/hermes/data"
)

// images returns the first n images of the Fashion-MNIST fixture, 28×28
// bytes each (data.Load scales bytes by 1/255; scaling back is exact).
func images(t testing.TB, n int) []uint8 {
	d, err := data.Load("../testdata/fmnist-1k-images-idx3-ubyte.gz", 10)
	if err != nil || len(d.X) < n*784 {
		t.Fatalf("fixture: %v", err)
	}
	out := make([]uint8, n*784)
	for i, x := range d.X[:n*784] {
		out[i] = uint8(math.Round(float64(x) * 255))
	}
	return out
}

func compressedData(raw []uint8) Data {
	const scale, mean, std = 1.0 / 255, 0.2860, 0.3530
	n := len(raw) / 784
	d := Data{ChunkID: 7, Total: int64(n), Shape: []int32{1, 28, 28}, Y: make([]int32, n),
		Bytes: raw, Scale: scale, Mean: mean, Std: std, Compressed: true}
	m, inv := float32(mean), float32(1/std)
	d.X = make([]float32, len(raw))
	for i, v := range raw {
		d.X[i] = fromByte(v, scale, m, inv)
	}
	return d
}

// Compressed samples decode to the very values the server holds, in fewer
// bytes than the raw ones.
func TestCompressedSamples(t *testing.T) {
	d := compressedData(images(t, 1000))
	packed, err := Encode(nil, d, FP32)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(packed)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Fatal("compressed samples decode to other values than the server's")
	}
	d.Compressed = false
	raw, _ := Encode(nil, d, FP32)
	if ratio := float64(len(packed)) / float64(len(raw)); ratio > 0.7 {
		t.Fatalf("compressed chunk is %.2f of the raw one (%d of %d bytes)", ratio, len(packed), len(raw))
	}
}

// A compressed block is decoded only to the size the message states, and
// that size is bounded before anything is allocated: a frame of a few
// bytes can claim gigabytes.
func TestCompressedSamplesRejects(t *testing.T) {
	good, _ := Encode(nil, compressedData(images(t, 4)), FP32)
	// The body: magic, version, type; chunk id, offset, total; the shape
	// (a count and 3 dimensions); the encoding; scale, mean, std; then
	// the decoded size, the block's size and the block.
	at := 4 + 3*8 + 1 + 3*4 + 1 + 3*8
	with := func(change func(b []byte) []byte) []byte {
		return seal(change(append([]byte(nil), good...)))
	}
	for _, c := range []struct {
		name, why string
		msg       []byte
	}{
		{"a size above the bound", "at most", with(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[at:], MaxDecompressed+1)
			return b
		})},
		{"more bytes than stated", "decode to", with(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[at:], 4*784-1)
			return b
		})},
		{"fewer bytes than stated", "decode to", with(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[at:], 4*784+1)
			return b
		})},
		{"not a zstd frame", "compressed samples:", with(func(b []byte) []byte {
			copy(b[at+8:], "not zstd")
			return b
		})},
	} {
		_, err := Decode(c.msg)
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.why)
		}
	}
	if _, err := Decode(good); err != nil {
		t.Fatalf("the unchanged message: %v", err)
	}
}

// Compress is what Data messages carry: the simulator prices chunks by it.
func TestCompressIsTheWireForm(t *testing.T) {
	raw := images(t, 50)
	msg, _ := Encode(nil, compressedData(raw), FP32)
	block := Compress(nil, raw)
	if !bytes.Contains(msg, block) {
		t.Fatal("the message does not carry Compress's block")
	}
}

// BenchmarkCompressChunk is a 1,000-sample chunk of Fashion-MNIST's images, as the server
// compresses them and a worker decompresses them; the simulator's codec
// costs come from its rates.
func BenchmarkCompressChunk(b *testing.B) {
	raw := images(b, 1000)
	block := Compress(nil, raw)
	b.Run("compress", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		var out []byte
		for b.Loop() {
			out = Compress(out[:0], raw)
		}
		b.ReportMetric(float64(len(out))/float64(len(raw)), "ratio")
	})
	b.Run("decompress", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := decompress(block, len(raw)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
