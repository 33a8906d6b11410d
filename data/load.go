package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// FashionMNISTDir is where the Debian package dataset-fashion-mnist installs
// the data set.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// maxValues bounds the size a file header may claim, so a corrupt or hostile
// header cannot make the loader allocate without limit.
const maxValues = 1 << 30

// Named returns the train and test sets of a data set known by name. The
// only one so far is "fashion-mnist", read from dir (FashionMNISTDir when
// empty).
func Named(name, dir string) (train, test *Dataset, err error) {
	switch name {
	case "fashion-mnist":
		if dir == "" {
			dir = FashionMNISTDir
		}
		if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
			return nil, nil, fmt.Errorf("dataset fashion-mnist: %s has no train-images-idx3-ubyte.gz; install it with: apt-get update && apt-get install -y dataset-fashion-mnist", dir)
		}
		return Files(filepath.Join(dir, "train-images-idx3-ubyte.gz"), filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	}
	return nil, nil, fmt.Errorf("unknown dataset %q (known: fashion-mnist; or give --train FILE --test FILE)", name)
}

// Files loads a train and a test file (see Load) and checks that they agree
// on sample shape; the number of classes is taken from the training labels.
func Files(trainSpec, testSpec string) (train, test *Dataset, err error) {
	if train, err = Load(trainSpec, 0); err != nil {
		return nil, nil, err
	}
	if test, err = Load(testSpec, train.Classes); err != nil {
		return nil, nil, err
	}
	if fmt.Sprint(train.Shape) != fmt.Sprint(test.Shape) {
		return nil, nil, fmt.Errorf("%s: sample shape %v differs from the training set's %v", testSpec, test.Shape, train.Shape)
	}
	return train, test, nil
}

// Load reads a labelled data set from spec, "FILE" or "FILE,LABELS":
//
//   - FILE.csv: one sample per line, the label first, then the features; a
//     first line that is not numeric is a header.
//   - IDX (gzipped or not): FILE holds the samples; LABELS defaults to FILE
//     with "images-idx3" replaced by "labels-idx1", as in (Fashion-)MNIST.
//   - FILE.npy: samples as (N, F), (N, H, W) or (N, H, W, C); LABELS is a
//     1-D .npy of integers and must be given.
//
// Unsigned-byte values are scaled to [0, 1]. classes > 0 fixes the number of
// classes (labels must be below it); otherwise it is the largest label + 1.
func Load(spec string, classes int) (*Dataset, error) {
	file, labels, _ := strings.Cut(spec, ",")
	var d *Dataset
	var err error
	switch {
	case strings.HasSuffix(file, ".csv"):
		if labels != "" {
			return nil, fmt.Errorf("%s: a CSV file holds its own labels; drop %q", file, labels)
		}
		d, err = loadCSV(file)
	case strings.HasSuffix(file, ".npy"):
		if labels == "" {
			return nil, fmt.Errorf("%s: give the labels file too, as %s,LABELS.npy", file, file)
		}
		d, err = loadNPYPair(file, labels)
	default:
		if labels == "" {
			labels = strings.Replace(file, "images-idx3", "labels-idx1", 1)
			if labels == file {
				return nil, fmt.Errorf("%s: cannot guess the labels file; give it as %s,LABELS", file, file)
			}
		}
		d, err = loadIDXPair(file, labels)
	}
	if err != nil {
		return nil, err
	}
	if err := finish(d, classes); err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	return d, nil
}

func finish(d *Dataset, classes int) error {
	if d.Len() == 0 {
		return errors.New("no samples")
	}
	if classes <= 0 {
		for _, y := range d.Y {
			classes = max(classes, int(y)+1)
		}
	}
	d.Classes = classes
	return d.Validate()
}

// open returns a reader of the file's contents, gunzipped if it starts with
// the gzip magic.
func open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return struct {
			io.Reader
			io.Closer
		}{zr, f}, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{br, f}, nil
}

// tensor is an n-dimensional array as read from a file: its raw bytes and
// element type, decoded element by element straight into the float32 rows
// of a Dataset, so a 47-million-value image file is not held twice.
type tensor struct {
	dims  []int
	kind  string // u1, i1, i2, i4, i8, f4, f8
	order binary.ByteOrder
	raw   []byte
}

// size returns the number of elements, or -1 if it exceeds maxValues (so
// that a hostile header cannot overflow int on 32-bit boards).
func (t tensor) size() int {
	n := uint64(1)
	for _, d := range t.dims {
		n *= uint64(d)
		if d < 0 || n > maxValues {
			return -1
		}
	}
	return int(n)
}

// width is the size in bytes of one element of kind.
func width(kind string) int { return int(kind[1] - '0') }

// at returns element i as a float64, exact for every kind but i8 beyond 2^53.
func (t tensor) at(i int) float64 {
	b := t.raw[i*width(t.kind):]
	switch t.kind {
	case "u1":
		return float64(b[0])
	case "i1":
		return float64(int8(b[0]))
	case "i2":
		return float64(int16(t.order.Uint16(b)))
	case "i4":
		return float64(int32(t.order.Uint32(b)))
	case "i8":
		return float64(int64(t.order.Uint64(b)))
	case "f4":
		return float64(math.Float32frombits(t.order.Uint32(b)))
	}
	return math.Float64frombits(t.order.Uint64(b))
}

// readData reads exactly the bytes that t's dimensions need. It grows its
// buffer as data arrives rather than trusting the header's size, so a
// corrupt header cannot make it allocate gigabytes.
func readData(r io.Reader, t *tensor, path string) error {
	want := int64(t.size()) * int64(width(t.kind))
	raw, err := io.ReadAll(io.LimitReader(r, want))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(raw)) < want {
		return fmt.Errorf("%s: truncated: dimensions %v need %d bytes of data, file has %d", path, t.dims, want, len(raw))
	}
	t.raw = raw
	return nil
}

// readIDX decodes an IDX file (the format of MNIST), gzipped or not.
func readIDX(path string) (tensor, error) {
	r, err := open(path)
	if err != nil {
		return tensor{}, err
	}
	defer r.Close()
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return tensor{}, fmt.Errorf("%s: not an IDX file: header: %w", path, err)
	}
	if hdr[0] != 0 || hdr[1] != 0 || hdr[3] == 0 || hdr[3] > 4 {
		return tensor{}, fmt.Errorf("%s: not an IDX file: bad magic %#x", path, hdr)
	}
	kind := map[byte]string{0x08: "u1", 0x09: "i1", 0x0B: "i2", 0x0C: "i4", 0x0D: "f4", 0x0E: "f8"}[hdr[2]]
	if kind == "" {
		return tensor{}, fmt.Errorf("%s: IDX element type %#x unknown", path, hdr[2])
	}
	t := tensor{dims: make([]int, hdr[3]), kind: kind, order: binary.BigEndian}
	for i := range t.dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return tensor{}, fmt.Errorf("%s: truncated IDX header: %w", path, err)
		}
		t.dims[i] = int(d)
	}
	if t.size() <= 0 {
		return tensor{}, fmt.Errorf("%s: IDX dimensions %v are empty or hold more than %d values", path, t.dims, maxValues)
	}
	return t, readData(r, &t, path)
}

func loadIDXPair(images, labels string) (*Dataset, error) {
	x, err := readIDX(images)
	if err != nil {
		return nil, err
	}
	y, err := readIDX(labels)
	if err != nil {
		return nil, err
	}
	return pair(x, y, images, labels)
}

// pair joins a sample tensor and a label tensor into a Dataset. Image
// tensors are (N, H, W) or channel-last (N, H, W, C).
func pair(x, y tensor, xpath, ypath string) (*Dataset, error) {
	if len(y.dims) != 1 {
		return nil, fmt.Errorf("%s: labels must be 1-D, got dimensions %v", ypath, y.dims)
	}
	if len(x.dims) < 2 || len(x.dims) > 4 {
		return nil, fmt.Errorf("%s: samples must have 2 to 4 dimensions, got %v", xpath, x.dims)
	}
	if x.dims[0] != y.dims[0] {
		return nil, fmt.Errorf("%s has %d samples but %s has %d labels", xpath, x.dims[0], ypath, y.dims[0])
	}
	d := &Dataset{X: make([]float32, x.size()), Y: make([]int32, y.size())}
	switch len(x.dims) {
	case 2:
		d.Shape = []int{x.dims[1]}
	case 3:
		d.Shape = []int{1, x.dims[1], x.dims[2]}
	case 4:
		d.Shape = []int{x.dims[3], x.dims[1], x.dims[2]}
	}
	scale := 1.0
	d.ValueBytes = 4
	if x.kind == "u1" {
		scale, d.ValueBytes = ByteScale, 1
	}
	for i := range d.X {
		d.X[i] = float32(x.at(i) * scale)
	}
	for i := range d.Y {
		v := y.at(i)
		if v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
			return nil, fmt.Errorf("%s: label %d is %v, not an integer", ypath, i, v)
		}
		d.Y[i] = int32(v)
	}
	return d, nil
}

func loadCSV(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = -1 // checked below, with a clearer message
	r.ReuseRecord = true
	d := &Dataset{}
	width := 0
	for line := 1; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if line == 1 {
			if _, err := strconv.ParseFloat(strings.TrimSpace(rec[0]), 64); err != nil {
				continue // header
			}
		}
		if width == 0 {
			if len(rec) < 2 {
				return nil, fmt.Errorf("%s:%d: want a label and at least one feature, got %d field(s)", path, line, len(rec))
			}
			width = len(rec)
		}
		if len(rec) != width {
			return nil, fmt.Errorf("%s:%d: %d fields, want %d like the first row", path, line, len(rec), width)
		}
		for j, s := range rec {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: field %d: %q is not a number", path, line, j+1, s)
			}
			if j == 0 {
				if v != math.Trunc(v) || math.Abs(v) > math.MaxInt32 {
					return nil, fmt.Errorf("%s:%d: label %q is not an integer", path, line, s)
				}
				d.Y = append(d.Y, int32(v))
			} else {
				d.X = append(d.X, float32(v))
			}
		}
	}
	d.Shape = []int{width - 1}
	return d, nil
}

var npyField = regexp.MustCompile(`'(descr|fortran_order|shape)'\s*:\s*('[^']*'|True|False|\([^)]*\))`)

// readNPY decodes a NumPy .npy file of little-endian numbers in C order.
func readNPY(path string) (tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return tensor{}, err
	}
	if len(b) < 10 || !bytes.Equal(b[:6], []byte("\x93NUMPY")) {
		return tensor{}, fmt.Errorf("%s: not an NPY file: bad magic", path)
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		if len(b) < 12 {
			return tensor{}, fmt.Errorf("%s: truncated NPY header", path)
		}
		hlen, start = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return tensor{}, fmt.Errorf("%s: NPY version %d unsupported", path, b[6])
	}
	if start+hlen > len(b) {
		return tensor{}, fmt.Errorf("%s: truncated NPY header", path)
	}
	fields := map[string]string{}
	for _, m := range npyField.FindAllStringSubmatch(string(b[start:start+hlen]), -1) {
		fields[m[1]] = m[2]
	}
	if fields["fortran_order"] != "False" {
		return tensor{}, fmt.Errorf("%s: NPY fortran_order %q unsupported, save with C order", path, fields["fortran_order"])
	}
	descr := strings.Trim(fields["descr"], "'")
	kind := map[string]string{"|u1": "u1", "|i1": "i1", "<i2": "i2", "<i4": "i4", "<i8": "i8", "<f4": "f4", "<f8": "f8"}[descr]
	if kind == "" {
		return tensor{}, fmt.Errorf("%s: NPY dtype %q unsupported (want |u1, |i1, <i2, <i4, <i8, <f4, <f8)", path, descr)
	}
	t := tensor{kind: kind, order: binary.LittleEndian}
	for _, s := range strings.Split(strings.Trim(fields["shape"], "()"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return tensor{}, fmt.Errorf("%s: NPY shape %s invalid", path, fields["shape"])
		}
		t.dims = append(t.dims, n)
	}
	if n := t.size(); len(t.dims) == 0 || n < 0 {
		return tensor{}, fmt.Errorf("%s: NPY shape %v unsupported", path, t.dims)
	}
	return t, readData(bytes.NewReader(b[start+hlen:]), &t, path)
}

func loadNPYPair(xpath, ypath string) (*Dataset, error) {
	x, err := readNPY(xpath)
	if err != nil {
		return nil, err
	}
	y, err := readNPY(ypath)
	if err != nil {
		return nil, err
	}
	return pair(x, y, xpath, ypath)
}
