package nn

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Models are saved in the safetensors layout (huggingface/safetensors): an
// 8-byte little-endian header length, a JSON header mapping each tensor name
// to its dtype, shape and byte range, then the raw little-endian data. Any
// safetensors reader can open our files. Tensors are named
// "layers.<spec index>.<weight|bias>"; dense weights are (in, out) and
// convolution weights (filters, kh, kw, c). The header's __metadata__ holds
// the model spec ("hermes.spec"), the input shape and the class count, so a
// file is enough to rebuild its model.

const maxHeader = 100 << 20

type stEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// tensors lists the model's named tensors with their offsets into Params.
func (m *Model) tensors() (names []string, shapes [][]int, offs []int) {
	off := 0
	for i, l := range m.layers {
		if n, ok := l.(ParamNamer); ok {
			for _, t := range n.ParamTensors() {
				names = append(names, fmt.Sprintf("layers.%d.%s", m.index[i], t.Name))
				shapes = append(shapes, t.Shape)
				offs = append(offs, off)
				off += Shape(t.Shape).Size()
			}
		}
	}
	return names, shapes, offs
}

// Save writes the model's parameters to path. It writes a temporary file
// and renames it, so an existing file is never left half-written.
func (m *Model) Save(path string) error {
	names, shapes, offs := m.tensors()
	spec, err := json.Marshal(m.spec)
	if err != nil {
		return err
	}
	in, _ := json.Marshal([]int(m.in))
	meta := map[string]string{}
	for k, v := range m.Meta {
		meta[k] = v
	}
	meta["format"] = "hermes"
	meta["hermes.spec"] = string(spec)
	meta["hermes.input"] = string(in)
	meta["hermes.classes"] = strconv.Itoa(m.classes)
	ts := make([]NamedTensor, len(names))
	for i, name := range names {
		ts[i] = NamedTensor{Name: name, Shape: shapes[i], F32: m.params[offs[i] : offs[i]+Shape(shapes[i]).Size()]}
	}
	return WriteSafetensors(path, meta, ts)
}

// NamedTensor is one tensor of a safetensors file: float32 values, or
// int64 ones (PyTorch's num_batches_tracked) when I64 is not nil.
type NamedTensor struct {
	Name  string
	Shape []int
	F32   []float32
	I64   []int64
}

// WriteSafetensors writes tensors and metadata to path in the safetensors
// layout, through a temporary file and a rename.
func WriteSafetensors(path string, meta map[string]string, tensors []NamedTensor) error {
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var pos int64
	for _, t := range tensors {
		dtype, n := "F32", int64(len(t.F32))*4
		if t.I64 != nil {
			dtype, n = "I64", int64(len(t.I64))*8
		}
		header[t.Name] = stEntry{DType: dtype, Shape: t.Shape, Offsets: [2]int64{pos, pos + n}}
		pos += n
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 { // the format aligns the data to 8 bytes
		hb = append(hb, ' ')
	}
	buf := make([]byte, 8, 8+len(hb)+int(pos))
	binary.LittleEndian.PutUint64(buf, uint64(len(hb)))
	buf = append(buf, hb...)
	for _, t := range tensors {
		for _, v := range t.F32 {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		for _, v := range t.I64 {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
		}
	}
	return WriteFileAtomic(path, buf)
}

// WriteFileAtomic writes b to path through a temporary file in the same
// directory and a rename, so an existing file is never left half-written.
func WriteFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// stFile is a parsed safetensors file.
type stFile struct {
	meta    map[string]string
	entries map[string]stEntry
	data    []byte
}

func readST(path string) (*stFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("%s: not a safetensors file: %w", path, err)
	}
	if n == 0 || n > maxHeader {
		return nil, fmt.Errorf("%s: not a safetensors file: header length %d", path, n)
	}
	hb := make([]byte, n)
	if _, err := io.ReadFull(f, hb); err != nil {
		return nil, fmt.Errorf("%s: truncated safetensors header", path)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hb, &raw); err != nil {
		return nil, fmt.Errorf("%s: safetensors header: %w", path, err)
	}
	st := &stFile{entries: map[string]stEntry{}}
	for k, v := range raw {
		if k == "__metadata__" {
			if err := json.Unmarshal(v, &st.meta); err != nil {
				return nil, fmt.Errorf("%s: safetensors metadata: %w", path, err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, k, err)
		}
		st.entries[k] = e
	}
	if st.data, err = io.ReadAll(f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// Load reads the parameters at path into m, checking that every tensor the
// model needs is there with the right dtype and shape. On error m is
// unchanged.
func (m *Model) Load(path string) error {
	st, err := readST(path)
	if err != nil {
		return fmt.Errorf("load %w", err)
	}
	return m.loadFrom(st, path)
}

func (m *Model) loadFrom(st *stFile, path string) error {
	names, shapes, offs := m.tensors()
	params := make([]float32, len(m.params))
	for i, name := range names {
		e, ok := st.entries[name]
		if !ok {
			return fmt.Errorf("load %s: tensor %s missing", path, name)
		}
		if e.DType != "F32" {
			return fmt.Errorf("load %s: tensor %s has dtype %s, want F32", path, name, e.DType)
		}
		if !Shape(e.Shape).Equal(shapes[i]) {
			return fmt.Errorf("load %s: tensor %s has shape %v, model wants %v", path, name, e.Shape, shapes[i])
		}
		size := int64(Shape(shapes[i]).Size()) * 4
		if e.Offsets[0] < 0 || e.Offsets[1]-e.Offsets[0] != size || e.Offsets[1] > int64(len(st.data)) {
			return fmt.Errorf("load %s: tensor %s: byte range %v invalid for %d bytes of data", path, name, e.Offsets, len(st.data))
		}
		b := st.data[e.Offsets[0]:e.Offsets[1]]
		dst := params[offs[i] : offs[i]+Shape(shapes[i]).Size()]
		for j := range dst {
			v := math.Float32frombits(binary.LittleEndian.Uint32(b[j*4:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("load %s: tensor %s holds a non-finite value at %d", path, name, j)
			}
			dst[j] = v
		}
	}
	if len(st.entries) != len(names) {
		extra := []string{}
		for k := range st.entries {
			if !contains(names, k) {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		return fmt.Errorf("load %s: tensors %v are not part of this model", path, extra)
	}
	copy(m.params, params)
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// LoadFile rebuilds a model from a file written by Save, using the spec,
// input shape and class count stored in its metadata.
func LoadFile(path string) (*Model, error) {
	st, err := readST(path)
	if err != nil {
		return nil, fmt.Errorf("load %w", err)
	}
	spec, err := ParseSpec([]byte(st.meta["hermes.spec"]))
	if err != nil {
		return nil, fmt.Errorf("load %s: metadata hermes.spec: %w", path, err)
	}
	var in []int
	if err := json.Unmarshal([]byte(st.meta["hermes.input"]), &in); err != nil {
		return nil, fmt.Errorf("load %s: metadata hermes.input %q: %w", path, st.meta["hermes.input"], err)
	}
	classes, err := strconv.Atoi(st.meta["hermes.classes"])
	if err != nil {
		return nil, fmt.Errorf("load %s: metadata hermes.classes %q: %w", path, st.meta["hermes.classes"], err)
	}
	m, err := Build(spec, in, classes)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m.Meta = st.meta
	return m, m.loadFrom(st, path)
}
