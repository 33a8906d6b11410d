// Package wire encodes protocol messages for the network: a versioned binary
// envelope, tensors as packed little-endian float32 (or float16), never
// JSON. Decoding treats its input as hostile: the version, the message type,
// every length and every tensor value are checked before use, and a decoded
// message never aliases the input buffer.
//
// Layout of a message:
//
//	magic "HG" | version (1 byte) | type (1 byte) | body | CRC-32C (4 bytes)
//
// The checksum covers everything before it. TCP and TLS already protect
// each hop, but a model or chunk may cross NATS routes, gateways and leaf
// nodes: a corrupt tensor is caught here, not trained on.
// Integers in bodies are little-endian fixed width; a tensor is its codec
// (1 byte), its element count (uint32) and the packed values.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"reflect"
	"slices"

	"github.com/hermes-go/hermes/protocol"
)

// Version is the wire format version; a peer with another version is
// refused rather than misread.
const Version = 4

// MaxTensor bounds the elements of one tensor (256 Mi float32 = 1 GiB), so a
// corrupt length cannot make a decoder allocate without limit.
const MaxTensor = 1 << 28

// Codec is how a tensor's values are packed.
type Codec byte

const (
	FP32 Codec = 1 // exact
	FP16 Codec = 2 // half the bytes; IEEE binary16, round to nearest even
)

// Model is a global model sent to a worker.
type Model struct {
	Version int64
	Params  []float32
}

// Stop ends a worker's run.
type Stop struct{ Reason string }

// Data carries samples of a chunk: rows [Offset, Offset+len(Y)) of its
// Total rows, values row-major, and their labels. A chunk larger than the
// transport's message limit travels as several Data messages; all arrive
// before the chunk's Work.
//
// Samples that were bytes in their file (images) travel as bytes, a
// quarter of float32: Bytes holds them, and the decoder fills X with
// (Bytes·Scale - Mean) / Std computed in float32 exactly as the data
// package's loading and normalization do, so the worker trains on the very
// values the server holds. With Compressed set, the bytes travel
// zstd-compressed (see Compress): a chunk's samples are most of a run's
// bytes, and images shrink to about 0.6 of theirs.
type Data struct {
	ChunkID          int64
	Offset, Total    int64
	Shape            []int32
	X                []float32
	Y                []int32
	Bytes            []uint8 // if set, sent instead of X
	Scale, Mean, Std float64 // how Bytes became X
	Compressed       bool    // Bytes travel compressed
}

// fromByte is the one formula for a byte sample's value, shared by the
// check in ByteSamples and the decoder.
func fromByte(b uint8, scale float64, m, inv float32) float32 {
	return (float32(float64(b)*scale) - m) * inv
}

// ByteSamples returns x as bytes that (scale, mean, std) map back to x, and
// whether that is exact: every value must be a scaled, normalized byte.
// Data sets that are not (floats in their file) travel as float32.
func ByteSamples(x []float32, scale, mean, std float64) ([]uint8, bool) {
	if !(std > 0) || !(scale > 0) || !finite(mean) {
		return nil, false
	}
	m, inv := float32(mean), float32(1/std)
	out := make([]uint8, len(x))
	for i, v := range x {
		raw := math.Round((float64(v)*std + mean) / scale)
		if raw < 0 || raw > 255 || fromByte(uint8(raw), scale, m, inv) != v {
			return nil, false
		}
		out[i] = uint8(raw)
	}
	return out, true
}

// Rejoin answers a heartbeat from a worker the server does not know (it was
// timed out, or the server restarted): the worker must join again.
type Rejoin struct{ Reason string }

// Heartbeat tells the server a worker is alive; a worker that stays silent
// too long is taken for gone and its chunks go back to the queue.
type Heartbeat struct{ Worker int64 }

// Welcome answers a Join: the worker's id and what it needs to train: the
// model spec and settings (small JSON documents), the sample shape, the
// number of classes and its local learning rate.
type Welcome struct {
	Worker   int64
	Spec     string
	Settings string
	Shape    []int32
	Classes  int64
	LocalLR  float64
}

// Join is a worker's request to take part: its name, free memory and
// cores. The server answers with a protocol.Register that carries the
// worker's id.
type Join struct {
	Name        string
	MemoryBytes int64
	Cores       int
	Version     string
}

var errShort = errors.New("message truncated")

// Encode appends the encoding of m to dst. m is one of the messages of
// the table in messages.go; tensors are packed with codec.
func Encode(dst []byte, m any, codec Codec) ([]byte, error) {
	e := byGoType[reflect.TypeOf(m)]
	if e == nil {
		return nil, fmt.Errorf("wire: cannot encode %T", m)
	}
	start := len(dst)
	b := append(dst, 'H', 'G', Version, e.typ)
	b = e.encode(b, m, codec)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli)), nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func putShape(b []byte, shape []int32) []byte {
	b = append(b, byte(len(shape)))
	for _, d := range shape {
		b = binary.LittleEndian.AppendUint32(b, uint32(d))
	}
	return b
}

func putLongString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func putI64(b []byte, v int64) []byte { return binary.LittleEndian.AppendUint64(b, uint64(v)) }
func putF64(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// maxString bounds reasons and names; longer ones are cut on encoding.
const maxString = 1 << 10

func putString(b []byte, s string) []byte {
	if len(s) > maxString {
		s = s[:maxString]
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func putReport(b []byte, r protocol.Report) []byte {
	b = putI64(b, int64(r.Worker))
	b = putI64(b, r.ChunkID)
	b = putI64(b, int64(r.TrainTime))
	b = putI64(b, int64(r.Samples))
	b = putI64(b, int64(r.Steps))
	b = putF64(b, r.Loss)
	major := byte(0)
	if r.Decision.Major {
		major = 1
	}
	b = append(b, major)
	b = putF64(b, r.Decision.Z)
	b = putF64(b, r.Decision.Thres)
	return putString(b, r.Decision.Reason)
}

func putTensor(b []byte, v []float32, codec Codec) []byte {
	if codec != FP16 {
		codec = FP32
	}
	b = append(b, byte(codec))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	// Grow once and fill in place: a model is 100k+ values, sent per update.
	at := len(b)
	if codec == FP16 {
		b = slices.Grow(b, 2*len(v))[:at+2*len(v)]
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[at+2*i:], toHalf(x))
		}
		return b
	}
	b = slices.Grow(b, 4*len(v))[:at+4*len(v)]
	out := b[at:]
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return b
}

// reader decodes a body, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) i64() int64 {
	if p := r.take(8); p != nil {
		return int64(binary.LittleEndian.Uint64(p))
	}
	return 0
}

func (r *reader) f64() float64 {
	if p := r.take(8); p != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(p))
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) str() string {
	p := r.take(2)
	if p == nil {
		return ""
	}
	n := int(binary.LittleEndian.Uint16(p))
	if n > maxString && r.err == nil {
		r.err = fmt.Errorf("string of %d bytes, at most %d", n, maxString)
	}
	return string(r.take(n))
}

// count reads an element count and checks that the rest of the message can
// hold that many elements of width bytes, before anything is allocated.
func (r *reader) count(width int) int {
	n := r.u32()
	if r.err == nil && (n > MaxTensor || int(n)*width > len(r.b)) {
		r.err = fmt.Errorf("length %d does not fit the message", n)
	}
	return int(n)
}

func (r *reader) tensor() []float32 {
	p := r.take(1)
	if p == nil {
		return nil
	}
	codec := Codec(p[0])
	width := map[Codec]int{FP32: 4, FP16: 2}[codec]
	if width == 0 {
		r.err = fmt.Errorf("tensor codec %d unknown", p[0])
		return nil
	}
	n := r.count(width)
	raw := r.take(n * width)
	if raw == nil {
		return nil
	}
	v := make([]float32, n)
	// An all-ones exponent is Inf or NaN: adding one to the exponent field
	// carries into the bit above it exactly then. Or-ing the carries finds
	// a non-finite value without a branch per value; the error names it.
	var carry uint32
	if codec == FP16 {
		for i := range v {
			h := uint32(binary.LittleEndian.Uint16(raw[2*i:]))
			carry |= (h&0x7c00 + 0x0400) & 0x8000
			v[i] = fromHalf(uint16(h))
		}
	} else {
		for i := range v {
			u := binary.LittleEndian.Uint32(raw[4*i : 4*i+4 : 4*i+4])
			carry |= (u&0x7f800000 + 0x00800000) & 0x80000000
			v[i] = math.Float32frombits(u)
		}
	}
	if carry != 0 {
		for i, x := range v {
			if !finite(float64(x)) {
				r.err = fmt.Errorf("tensor value %d is not finite", i)
				return nil
			}
		}
	}
	return v
}

func (r *reader) report() protocol.Report {
	rep := protocol.Report{
		Worker: protocol.WorkerID(r.i64()), ChunkID: r.i64(), TrainTime: protocol.Time(r.i64()),
		Samples: int(r.i64()), Steps: int(r.i64()), Loss: r.f64(),
	}
	if p := r.take(1); p != nil {
		rep.Decision.Major = p[0] == 1
	}
	rep.Decision.Z, rep.Decision.Thres = r.f64(), r.f64()
	rep.Decision.Reason = r.str()
	switch {
	case r.err != nil:
	case rep.TrainTime < 0 || rep.Samples < 0 || rep.Steps < 0 || rep.Worker < 0:
		r.err = errors.New("negative time, count or worker in report")
	case !finite(rep.Decision.Z) || !finite(rep.Decision.Thres):
		r.err = errors.New("non-finite z-score or threshold in report")
	case rep.Decision.Major && !finite(rep.Loss):
		// A non-finite loss may be reported, never as a major update.
		r.err = errors.New("major update with a non-finite loss")
	}
	return rep
}

func (r *reader) longStr() string {
	n := r.count(1)
	if n > 1<<20 && r.err == nil {
		r.err = fmt.Errorf("document of %d bytes", n)
	}
	return string(r.take(n))
}

// shape reads a sample shape and returns it with its number of values.
func (r *reader) shape() (shape []int32, size int) {
	p := r.take(1)
	if p == nil {
		return nil, 0
	}
	size = 1
	for i := 0; i < int(p[0]); i++ {
		v := int32(r.u32())
		if v < 1 && r.err == nil {
			r.err = fmt.Errorf("shape dimension %d is %d", i, v)
		}
		shape = append(shape, v)
		size *= max(int(v), 1)
		if size > MaxTensor && r.err == nil {
			r.err = fmt.Errorf("shape %v too large", shape)
		}
	}
	return shape, size
}

func (r *reader) data() Data {
	d := Data{ChunkID: r.i64(), Offset: r.i64(), Total: r.i64()}
	var size int
	d.Shape, size = r.shape()
	switch p := r.take(1); {
	case p == nil:
	case p[0] == 0:
		d.X = r.tensor()
	case p[0] == 1 || p[0] == 2:
		d.Scale, d.Mean, d.Std = r.f64(), r.f64(), r.f64()
		if r.err == nil && !(finite(d.Scale) && d.Scale > 0 && finite(d.Mean) && finite(d.Std) && d.Std > 0) {
			r.err = fmt.Errorf("byte samples with scale %v, mean %v, std %v", d.Scale, d.Mean, d.Std)
		}
		if p[0] == 1 {
			d.Bytes = append([]uint8{}, r.take(r.count(1))...)
		} else {
			d.Compressed = true
			n := int(r.u32())
			if block := r.take(r.count(1)); r.err == nil {
				d.Bytes, r.err = decompress(block, n)
			}
		}
		m, inv := float32(d.Mean), float32(1/d.Std)
		d.X = make([]float32, len(d.Bytes))
		for i, v := range d.Bytes {
			d.X[i] = fromByte(v, d.Scale, m, inv)
			if !finite(float64(d.X[i])) && r.err == nil {
				r.err = fmt.Errorf("sample value %d is not finite after normalization", i)
			}
		}
	default:
		r.err = fmt.Errorf("sample encoding %d unknown", p[0])
	}
	n := r.count(4)
	if raw := r.take(4 * n); raw != nil {
		d.Y = make([]int32, n)
		for i := range d.Y {
			d.Y[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
			if d.Y[i] < 0 && r.err == nil {
				r.err = fmt.Errorf("label %d is negative", i)
			}
		}
	}
	switch {
	case r.err != nil:
	case len(d.X) != n*size:
		r.err = fmt.Errorf("%d values for %d samples of shape %v", len(d.X), n, d.Shape)
	case d.Offset < 0 || d.Total > MaxTensor || d.Offset > d.Total || int64(n) > d.Total-d.Offset: // no Offset+n: it overflows
		r.err = fmt.Errorf("rows [%d, %d) of a chunk of %d", d.Offset, d.Offset+int64(n), d.Total)
	}
	return d
}

// Decode decodes one message, validating it whole. A decoded message does
// not alias b.
func Decode(b []byte) (any, error) {
	if len(b) < 8 || b[0] != 'H' || b[1] != 'G' {
		return nil, errors.New("wire: not a hermes message")
	}
	if b[2] != Version {
		return nil, fmt.Errorf("wire: version %d, this build speaks %d", b[2], Version)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("wire: checksum %08x, message says %08x: corrupted in transit", got, sum)
	}
	e := byType[b[3]]
	if e == nil {
		return nil, fmt.Errorf("wire: message type %d unknown", b[3])
	}
	r := &reader{b: body[4:]}
	m := e.decode(r)
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the message", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("wire: type %d: %w", b[3], r.err)
	}
	return m, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// toHalf converts to IEEE binary16 with round-to-nearest-even; values
// beyond the half range become infinities, which Decode then rejects.
func toHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b>>23)&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case (b>>23)&0xff == 0xff: // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp >= 31:
		return sign | 0x7c00
	case exp <= 0: // subnormal or zero in half
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		half := uint16(mant >> shift)
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | half
	}
	half := sign | uint16(exp)<<10 | uint16(mant>>13)
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is still right
	}
	return half
}

func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: normalize
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
