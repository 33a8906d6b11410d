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

// maxDims bounds tensor ranks and element counts; a file that declares more
// is refused before anything is allocated for it.
const (
	maxRank   = 8
	maxValues = 1 << 30
)

var errTruncated = errors.New("truncated")

// reader walks the fields of one message.
type reader struct{ b []byte }

// next returns the next field's number, type and value (the bytes of a
// length-delimited field, or the varint or fixed value in v).
func (r *reader) next() (num protowire.Number, typ protowire.Type, v uint64, bs []byte, err error) {
	num, typ, n := protowire.ConsumeTag(r.b)
	if n < 0 {
		return 0, 0, 0, nil, fmt.Errorf("not ONNX, or corrupt: bad field tag: %w", protowire.ParseError(n))
	}
	r.b = r.b[n:]
	switch typ {
	case protowire.VarintType:
		v, n = protowire.ConsumeVarint(r.b)
	case protowire.Fixed32Type:
		var x uint32
		x, n = protowire.ConsumeFixed32(r.b)
		v = uint64(x)
	case protowire.Fixed64Type:
		v, n = protowire.ConsumeFixed64(r.b)
	case protowire.BytesType:
		bs, n = protowire.ConsumeBytes(r.b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, r.b)
	}
	if n < 0 {
		if err := protowire.ParseError(n); errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, 0, 0, nil, fmt.Errorf("truncated: field %d runs past the end of the file", num)
		}
		return 0, 0, 0, nil, fmt.Errorf("not ONNX, or corrupt: field %d: %w", num, protowire.ParseError(n))
	}
	r.b = r.b[n:]
	return num, typ, v, bs, nil
}

// Decode parses a serialized ModelProto.
func Decode(b []byte) (*Model, error) {
	m := &Model{Metadata: map[string]string{}}
	r := reader{b}
	sawGraph := false
	for len(r.b) > 0 {
		num, typ, v, bs, err := r.next()
		if err != nil {
			return nil, err
		}
		switch {
		case num == 1 && typ == protowire.VarintType:
			m.IRVersion = int64(v)
		case num == 2 && typ == protowire.BytesType:
			m.Producer = string(bs)
		case num == 7 && typ == protowire.BytesType:
			if err := decodeGraph(bs, &m.Graph); err != nil {
				return nil, fmt.Errorf("graph: %w", err)
			}
			sawGraph = true
		case num == 8 && typ == protowire.BytesType:
			domain, version, err := decodeOpset(bs)
			if err != nil {
				return nil, fmt.Errorf("opset_import: %w", err)
			}
			if domain == "" || domain == "ai.onnx" {
				m.Opset = version
			}
		case num == 14 && typ == protowire.BytesType:
			k, val, err := decodeEntry(bs)
			if err != nil {
				return nil, fmt.Errorf("metadata_props: %w", err)
			}
			m.Metadata[k] = val
		}
	}
	if !sawGraph {
		return nil, errors.New("no graph (not an ONNX model, or truncated)")
	}
	return m, nil
}

func decodeOpset(b []byte) (domain string, version int64, err error) {
	r := reader{b}
	for len(r.b) > 0 {
		num, typ, v, bs, err := r.next()
		if err != nil {
			return "", 0, err
		}
		switch {
		case num == 1 && typ == protowire.BytesType:
			domain = string(bs)
		case num == 2 && typ == protowire.VarintType:
			version = int64(v)
		}
	}
	return domain, version, nil
}

func decodeEntry(b []byte) (k, v string, err error) {
	r := reader{b}
	for len(r.b) > 0 {
		num, typ, _, bs, err := r.next()
		if err != nil {
			return "", "", err
		}
		if typ == protowire.BytesType && num == 1 {
			k = string(bs)
		} else if typ == protowire.BytesType && num == 2 {
			v = string(bs)
		}
	}
	return k, v, nil
}

func decodeGraph(b []byte, g *Graph) error {
	r := reader{b}
	for len(r.b) > 0 {
		num, typ, _, bs, err := r.next()
		if err != nil {
			return err
		}
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case 1:
			var n Node
			if err := decodeNode(bs, &n); err != nil {
				return fmt.Errorf("node %d: %w", len(g.Nodes), err)
			}
			g.Nodes = append(g.Nodes, n)
		case 2:
			g.Name = string(bs)
		case 5:
			var t Tensor
			if err := decodeTensor(bs, &t); err != nil {
				return fmt.Errorf("initializer %d: %w", len(g.Initializer), err)
			}
			g.Initializer = append(g.Initializer, t)
		case 11, 12:
			var vi ValueInfo
			if err := decodeValueInfo(bs, &vi); err != nil {
				return fmt.Errorf("input/output: %w", err)
			}
			if num == 11 {
				g.Inputs = append(g.Inputs, vi)
			} else {
				g.Outputs = append(g.Outputs, vi)
			}
		}
	}
	return nil
}

func decodeNode(b []byte, n *Node) error {
	r := reader{b}
	for len(r.b) > 0 {
		num, typ, _, bs, err := r.next()
		if err != nil {
			return err
		}
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case 1:
			n.Inputs = append(n.Inputs, string(bs))
		case 2:
			n.Outputs = append(n.Outputs, string(bs))
		case 3:
			n.Name = string(bs)
		case 4:
			n.Op = string(bs)
		case 7:
			n.Domain = string(bs)
		case 5:
			var a Attr
			if err := decodeAttr(bs, &a); err != nil {
				return fmt.Errorf("attribute: %w", err)
			}
			n.Attrs = append(n.Attrs, a)
		}
	}
	return nil
}

func decodeAttr(b []byte, a *Attr) error {
	r := reader{b}
	for len(r.b) > 0 {
		num, typ, v, bs, err := r.next()
		if err != nil {
			return err
		}
		switch {
		case num == 1 && typ == protowire.BytesType:
			a.Name = string(bs)
		case num == 20 && typ == protowire.VarintType:
			a.Type = int(v)
		case num == 2 && typ == protowire.Fixed32Type:
			a.F = math.Float32frombits(uint32(v))
		case num == 3 && typ == protowire.VarintType:
			a.I = int64(v)
		case num == 4 && typ == protowire.BytesType:
			a.S = string(bs)
		case num == 5 && typ == protowire.BytesType:
			a.T = new(Tensor)
			if err := decodeTensor(bs, a.T); err != nil {
				return err
			}
		case num == 7 && typ == protowire.BytesType: // packed floats
			if len(bs)%4 != 0 {
				return fmt.Errorf("floats: %d bytes", len(bs))
			}
			for i := 0; i < len(bs); i += 4 {
				a.Floats = append(a.Floats, math.Float32frombits(binary.LittleEndian.Uint32(bs[i:])))
			}
		case num == 7 && typ == protowire.Fixed32Type:
			a.Floats = append(a.Floats, math.Float32frombits(uint32(v)))
		case num == 8 && typ == protowire.BytesType: // packed ints
			ints, err := varints(bs)
			if err != nil {
				return fmt.Errorf("ints: %w", err)
			}
			a.Ints = append(a.Ints, ints...)
		case num == 8 && typ == protowire.VarintType:
			a.Ints = append(a.Ints, int64(v))
		}
	}
	return nil
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
	r := reader{b}
	var raw []byte
	external := false
	for len(r.b) > 0 {
		num, typ, v, bs, err := r.next()
		if err != nil {
			return err
		}
		switch {
		case num == 1 && typ == protowire.VarintType:
			t.Dims = append(t.Dims, int64(v))
		case num == 1 && typ == protowire.BytesType:
			d, err := varints(bs)
			if err != nil {
				return fmt.Errorf("dims: %w", err)
			}
			t.Dims = append(t.Dims, d...)
		case num == 2 && typ == protowire.VarintType:
			t.Type = int(v)
		case num == 4 && typ == protowire.BytesType:
			if len(bs)%4 != 0 {
				return fmt.Errorf("float_data: %d bytes", len(bs))
			}
			for i := 0; i < len(bs); i += 4 {
				t.F = append(t.F, math.Float32frombits(binary.LittleEndian.Uint32(bs[i:])))
			}
		case num == 4 && typ == protowire.Fixed32Type:
			t.F = append(t.F, math.Float32frombits(uint32(v)))
		case (num == 5 || num == 7) && typ == protowire.BytesType:
			d, err := varints(bs)
			if err != nil {
				return fmt.Errorf("int data: %w", err)
			}
			for _, x := range d {
				if num == 5 {
					x = int64(int32(x))
				}
				t.I = append(t.I, x)
			}
		case (num == 5 || num == 7) && typ == protowire.VarintType:
			t.I = append(t.I, int64(v))
		case num == 8 && typ == protowire.BytesType:
			t.Name = string(bs)
		case num == 9 && typ == protowire.BytesType:
			raw = bs
		case num == 14 && typ == protowire.VarintType:
			external = v == 1
		}
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
		t.bytes = len(raw)
		switch t.Type {
		case Float:
			if len(raw) != 4*size {
				return fmt.Errorf("tensor %q: %d bytes of data for dims %v", t.Name, len(raw), t.Dims)
			}
			t.F = make([]float32, size)
			for i := range t.F {
				t.F[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		case Int64, Int32:
			w := 8
			if t.Type == Int32 {
				w = 4
			}
			if len(raw) != w*size {
				return fmt.Errorf("tensor %q: %d bytes of data for dims %v", t.Name, len(raw), t.Dims)
			}
			t.I = make([]int64, size)
			for i := range t.I {
				if w == 8 {
					t.I[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
				} else {
					t.I[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
				}
			}
		default:
			return fmt.Errorf("tensor %q: data type %d not supported (want float32, int32 or int64)", t.Name, t.Type)
		}
		return nil
	}
	switch t.Type {
	case Float:
		if len(t.F) != size {
			return fmt.Errorf("tensor %q: %d values for dims %v", t.Name, len(t.F), t.Dims)
		}
	case Int32, Int64:
		if len(t.I) != size {
			return fmt.Errorf("tensor %q: %d values for dims %v", t.Name, len(t.I), t.Dims)
		}
	default:
		return fmt.Errorf("tensor %q: data type %d not supported (want float32, int32 or int64)", t.Name, t.Type)
	}
	return nil
}

func decodeValueInfo(b []byte, vi *ValueInfo) error {
	r := reader{b}
	for len(r.b) > 0 {
		num, typ, _, bs, err := r.next()
		if err != nil {
			return err
		}
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case 1:
			vi.Name = string(bs)
		case 2: // TypeProto
			if err := decodeType(bs, vi); err != nil {
				return fmt.Errorf("%s: %w", vi.Name, err)
			}
		}
	}
	return nil
}

func decodeType(b []byte, vi *ValueInfo) error {
	r := reader{b}
	for len(r.b) > 0 {
		num, typ, _, bs, err := r.next()
		if err != nil {
			return err
		}
		if num != 1 || typ != protowire.BytesType { // tensor_type only
			continue
		}
		tr := reader{bs}
		for len(tr.b) > 0 {
			num, typ, v, bs, err := tr.next()
			if err != nil {
				return err
			}
			switch {
			case num == 1 && typ == protowire.VarintType:
				vi.ElemType = int(v)
			case num == 2 && typ == protowire.BytesType:
				if err := decodeShape(bs, vi); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func decodeShape(b []byte, vi *ValueInfo) error {
	r := reader{b}
	for len(r.b) > 0 {
		num, typ, _, bs, err := r.next()
		if err != nil {
			return err
		}
		if num != 1 || typ != protowire.BytesType {
			continue
		}
		if len(vi.Dims) >= maxRank {
			return fmt.Errorf("shape of rank above %d", maxRank)
		}
		d := int64(-1)
		dr := reader{bs}
		for len(dr.b) > 0 {
			num, typ, v, _, err := dr.next()
			if err != nil {
				return err
			}
			if num == 1 && typ == protowire.VarintType {
				d = int64(v)
			}
		}
		vi.Dims = append(vi.Dims, d)
	}
	return nil
}
