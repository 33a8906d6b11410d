// Package onnx reads and writes the subset of the ONNX protobuf format
// (onnx/onnx.proto) that sequential models need: a graph of nodes with
// attributes, its initializers, and its declared inputs and outputs.
//
// The decoder reads untrusted files: every length is checked against what
// is left of the input, tensors must hold exactly the data their dims say,
// and unknown fields are skipped, as protobuf requires.
package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Data types of TensorProto.data_type that the decoder converts.
const (
	Float = 1
	Int32 = 6
	Int64 = 7
)

// Attribute types of AttributeProto.type.
const (
	AttrFloat  = 1
	AttrInt    = 2
	AttrString = 3
	AttrTensor = 4
	AttrFloats = 6
	AttrInts   = 7
)

// Model is an ONNX ModelProto.
type Model struct {
	IRVersion int64
	Opset     int64 // version of the default ("" or "ai.onnx") domain
	Producer  string
	Graph     Graph
	Metadata  map[string]string
}

// Graph is an ONNX GraphProto.
type Graph struct {
	Name        string
	Nodes       []Node
	Initializer []Tensor
	Inputs      []ValueInfo
	Outputs     []ValueInfo
}

// Node is one operator application.
type Node struct {
	Name    string
	Op      string
	Domain  string
	Inputs  []string
	Outputs []string
	Attrs   []Attr
}

// Attr is a node attribute; which value field applies depends on Type.
type Attr struct {
	Name   string
	Type   int
	F      float32
	I      int64
	S      string
	T      *Tensor
	Floats []float32
	Ints   []int64
}

// Tensor is a TensorProto converted to float32 or int64 values.
type Tensor struct {
	Name  string
	Dims  []int64
	Type  int
	F     []float32 // for Float
	I     []int64   // for Int32 and Int64
	bytes int       // raw_data length as read, checked against Dims
}

// ValueInfo is a graph input or output: a name and a tensor shape. A
// symbolic dimension (such as a batch size "N") is -1.
type ValueInfo struct {
	Name     string
	ElemType int
	Dims     []int64
}

// Attr returns the node's attribute called name.
func (n *Node) Attr(name string) (Attr, bool) {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a, true
		}
	}
	return Attr{}, false
}

// Size is the number of values the tensor's dims call for.
func (t *Tensor) Size() int {
	n := 1
	for _, d := range t.Dims {
		n *= int(d)
	}
	return n
}

// maxRank and maxValues bound tensor ranks and element counts; a file that
// declares more is refused before anything is allocated for it.
const (
	maxRank   = 8
	maxValues = 1 << 30
)

var errTruncated = errors.New("truncated")

// field is one field of a message: its number and wire type, and its value
// (v for varint and fixed fields, b for length-delimited ones).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

func (f field) bytes(num protowire.Number) bool { return f.num == num && f.typ == protowire.BytesType }
func (f field) varint(num protowire.Number) bool {
	return f.num == num && f.typ == protowire.VarintType
}
func (f field) fixed32(num protowire.Number) bool {
	return f.num == num && f.typ == protowire.Fixed32Type
}

// fields calls fn on each field of the message in b, in order; fn sees
// unknown fields too, and ignores them, as protobuf requires.
func fields(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("not ONNX, or corrupt: bad field tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			f.v = uint64(x)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			if err := protowire.ParseError(n); errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("truncated: field %d runs past the end of the file", num)
			}
			return fmt.Errorf("not ONNX, or corrupt: field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// Decode parses a serialized ModelProto.
func Decode(b []byte) (*Model, error) {
	m := &Model{Metadata: map[string]string{}}
	sawGraph := false
	err := fields(b, func(f field) error {
		switch {
		case f.varint(1):
			m.IRVersion = int64(f.v)
		case f.bytes(2):
			m.Producer = string(f.b)
		case f.bytes(7):
			if err := decodeGraph(f.b, &m.Graph); err != nil {
				return fmt.Errorf("graph: %w", err)
			}
			sawGraph = true
		case f.bytes(8):
			var domain string
			var version int64
			err := fields(f.b, func(f field) error {
				if f.bytes(1) {
					domain = string(f.b)
				} else if f.varint(2) {
					version = int64(f.v)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			if domain == "" || domain == "ai.onnx" {
				m.Opset = version
			}
		case f.bytes(14):
			var k, v string
			err := fields(f.b, func(f field) error {
				if f.bytes(1) {
					k = string(f.b)
				} else if f.bytes(2) {
					v = string(f.b)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("metadata_props: %w", err)
			}
			m.Metadata[k] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !sawGraph {
		return nil, errors.New("no graph (not an ONNX model, or truncated)")
	}
	return m, nil
}

func decodeGraph(b []byte, g *Graph) error {
	return fields(b, func(f field) error {
		switch {
		case f.bytes(1):
			var n Node
			if err := decodeNode(f.b, &n); err != nil {
				return fmt.Errorf("node %d: %w", len(g.Nodes), err)
			}
			g.Nodes = append(g.Nodes, n)
		case f.bytes(2):
			g.Name = string(f.b)
		case f.bytes(5):
			var t Tensor
			if err := decodeTensor(f.b, &t); err != nil {
				return fmt.Errorf("initializer %d: %w", len(g.Initializer), err)
			}
			g.Initializer = append(g.Initializer, t)
		case f.bytes(11), f.bytes(12):
			var vi ValueInfo
			if err := decodeValueInfo(f.b, &vi); err != nil {
				return fmt.Errorf("input/output: %w", err)
			}
			if f.num == 11 {
				g.Inputs = append(g.Inputs, vi)
			} else {
				g.Outputs = append(g.Outputs, vi)
			}
		}
		return nil
	})
}

func decodeNode(b []byte, n *Node) error {
	return fields(b, func(f field) error {
		switch {
		case f.bytes(1):
			n.Inputs = append(n.Inputs, string(f.b))
		case f.bytes(2):
			n.Outputs = append(n.Outputs, string(f.b))
		case f.bytes(3):
			n.Name = string(f.b)
		case f.bytes(4):
			n.Op = string(f.b)
		case f.bytes(7):
			n.Domain = string(f.b)
		case f.bytes(5):
			var a Attr
			if err := decodeAttr(f.b, &a); err != nil {
				return fmt.Errorf("attribute: %w", err)
			}
			n.Attrs = append(n.Attrs, a)
		}
		return nil
	})
}

// floats appends packed little-endian float32 values to dst.
func floats(dst []float32, b []byte, what string) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%s: %d bytes", what, len(b))
	}
	for i := 0; i < len(b); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return dst, nil
}

func decodeAttr(b []byte, a *Attr) error {
	return fields(b, func(f field) error {
		var err error
		switch {
		case f.bytes(1):
			a.Name = string(f.b)
		case f.varint(20):
			a.Type = int(f.v)
		case f.fixed32(2):
			a.F = math.Float32frombits(uint32(f.v))
		case f.varint(3):
			a.I = int64(f.v)
		case f.bytes(4):
			a.S = string(f.b)
		case f.bytes(5):
			a.T = new(Tensor)
			err = decodeTensor(f.b, a.T)
		case f.bytes(7): // packed floats
			a.Floats, err = floats(a.Floats, f.b, "floats")
		case f.fixed32(7):
			a.Floats = append(a.Floats, math.Float32frombits(uint32(f.v)))
		case f.bytes(8): // packed ints
			var ints []int64
			ints, err = varints(f.b)
			a.Ints = append(a.Ints, ints...)
		case f.varint(8):
			a.Ints = append(a.Ints, int64(f.v))
		}
		return err
	})
}

func varints(b []byte) ([]int64, error) {
	var out []int64
	for len(b) > 0 {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, errTruncated
		}
		out = append(out, int64(v))
		b = b[n:]
	}
	return out, nil
}

func decodeTensor(b []byte, t *Tensor) error {
	var raw []byte
	external := false
	err := fields(b, func(f field) error {
		var err error
		switch {
		case f.varint(1):
			t.Dims = append(t.Dims, int64(f.v))
		case f.bytes(1):
			var d []int64
			d, err = varints(f.b)
			t.Dims = append(t.Dims, d...)
		case f.varint(2):
			t.Type = int(f.v)
		case f.bytes(4):
			t.F, err = floats(t.F, f.b, "float_data")
		case f.fixed32(4):
			t.F = append(t.F, math.Float32frombits(uint32(f.v)))
		case f.bytes(5), f.bytes(7): // int32_data, int64_data
			var d []int64
			d, err = varints(f.b)
			for _, x := range d {
				if f.num == 5 {
					x = int64(int32(x))
				}
				t.I = append(t.I, x)
			}
		case f.varint(5), f.varint(7):
			t.I = append(t.I, int64(f.v))
		case f.bytes(8):
			t.Name = string(f.b)
		case f.bytes(9):
			raw = f.b
		case f.varint(14):
			external = f.v == 1
		}
		return err
	})
	if err != nil {
		return err
	}
	if external {
		return fmt.Errorf("tensor %q: data in an external file is not supported (export without external data)", t.Name)
	}
	if len(t.Dims) > maxRank {
		return fmt.Errorf("tensor %q: rank %d", t.Name, len(t.Dims))
	}
	size := 1
	for _, d := range t.Dims {
		if d < 0 || d > maxValues || size*int(d) > maxValues {
			return fmt.Errorf("tensor %q: dims %v", t.Name, t.Dims)
		}
		size *= int(d)
	}
	if raw != nil {
		return t.setRaw(raw, size)
	}
	n := len(t.F)
	switch t.Type {
	case Float:
	case Int32, Int64:
		n = len(t.I)
	default:
		return fmt.Errorf("tensor %q: data type %d not supported (want float32, int32 or int64)", t.Name, t.Type)
	}
	if n != size {
		return fmt.Errorf("tensor %q: %d values for dims %v", t.Name, n, t.Dims)
	}
	return nil
}

// setRaw converts raw_data, which must hold exactly size values.
func (t *Tensor) setRaw(raw []byte, size int) error {
	w := map[int]int{Float: 4, Int32: 4, Int64: 8}[t.Type]
	if w == 0 {
		return fmt.Errorf("tensor %q: data type %d not supported (want float32, int32 or int64)", t.Name, t.Type)
	}
	if len(raw) != w*size {
		return fmt.Errorf("tensor %q: %d bytes of data for dims %v", t.Name, len(raw), t.Dims)
	}
	switch t.Type {
	case Float:
		t.F, _ = floats(make([]float32, 0, size), raw, "raw_data")
	case Int32:
		t.I = make([]int64, size)
		for i := range t.I {
			t.I[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	case Int64:
		t.I = make([]int64, size)
		for i := range t.I {
			t.I[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
	}
	return nil
}

// decodeValueInfo reads a ValueInfoProto: its name, and of its TypeProto
// only tensor_type (element type and shape).
func decodeValueInfo(b []byte, vi *ValueInfo) error {
	return fields(b, func(f field) error {
		switch {
		case f.bytes(1):
			vi.Name = string(f.b)
		case f.bytes(2): // TypeProto
			err := fields(f.b, func(f field) error {
				if !f.bytes(1) { // tensor_type only
					return nil
				}
				return fields(f.b, func(f field) error {
					switch {
					case f.varint(1):
						vi.ElemType = int(f.v)
					case f.bytes(2):
						return decodeShape(f.b, vi)
					}
					return nil
				})
			})
			if err != nil {
				return fmt.Errorf("%s: %w", vi.Name, err)
			}
		}
		return nil
	})
}

// decodeShape reads a TensorShapeProto; a symbolic dimension is -1.
func decodeShape(b []byte, vi *ValueInfo) error {
	return fields(b, func(f field) error {
		if !f.bytes(1) {
			return nil
		}
		if len(vi.Dims) >= maxRank {
			return fmt.Errorf("shape of rank above %d", maxRank)
		}
		d := int64(-1)
		err := fields(f.b, func(f field) error {
			if f.varint(1) {
				d = int64(f.v)
			}
			return nil
		})
		vi.Dims = append(vi.Dims, d)
		return err
	})
}
