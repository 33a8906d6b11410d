package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	fixImages = "../testdata/fmnist-1k-images-idx3-ubyte.gz"
	fixLabels = "../testdata/fmnist-1k-labels-idx1-ubyte.gz"
)

func TestLoadIDXFixture(t *testing.T) {
	d, err := Load(fixImages, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 1000 || d.Classes != 10 || len(d.Shape) != 3 || d.Shape[0] != 1 || d.Shape[1] != 28 || d.Shape[2] != 28 {
		t.Fatalf("len %d classes %d shape %v", d.Len(), d.Classes, d.Shape)
	}
	// Bytes travel as bytes: 784 pixels and a one-byte label.
	if d.WireBytes() != 785 {
		t.Errorf("wire bytes %d, want 785", d.WireBytes())
	}
	// The first Fashion-MNIST test image is an ankle boot (class 9).
	if d.Y[0] != 9 {
		t.Errorf("label 0 = %d, want 9", d.Y[0])
	}
	lo, hi := float32(1), float32(0)
	for _, v := range d.X {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 1 {
		t.Errorf("pixel range [%v, %v], want [0, 1]", lo, hi)
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadIDXUncompressedMatchesGzipped(t *testing.T) {
	dir := t.TempDir()
	img := write(t, dir, "x-images-idx3-ubyte", gunzip(t, fixImages))
	write(t, dir, "x-labels-idx1-ubyte", gunzip(t, fixLabels))
	plain, err := Load(img, 0)
	if err != nil {
		t.Fatal(err)
	}
	gz, _ := Load(fixImages, 0)
	if !slicesEqual(plain.X, gz.X) || !slicesEqual(plain.Y, gz.Y) {
		t.Fatal("uncompressed IDX differs from gzipped")
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// wantErr checks that err names the file and says what is wrong, on one line.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("error %q does not mention %q", msg, p)
		}
	}
}

func TestLoadIDXBadFiles(t *testing.T) {
	dir := t.TempDir()
	raw := gunzip(t, fixImages)
	labels := write(t, dir, "l-idx1", gunzip(t, fixLabels))

	trunc := write(t, dir, "trunc-idx3", raw[:len(raw)-100])
	_, err := Load(trunc+","+labels, 0)
	wantErr(t, err, trunc, "truncated")

	bad := append([]byte{0x12, 0x34}, raw[2:]...)
	magic := write(t, dir, "magic-idx3", bad)
	_, err = Load(magic+","+labels, 0)
	wantErr(t, err, magic, "bad magic")

	huge := append([]byte(nil), raw[:16]...)
	binary.BigEndian.PutUint32(huge[4:], 0xffffffff)
	hp := write(t, dir, "huge-idx3", huge)
	_, err = Load(hp+","+labels, 0)
	wantErr(t, err, hp, "dimensions")

	few := append([]byte(nil), gunzip(t, fixLabels)[:8+999]...)
	binary.BigEndian.PutUint32(few[4:], 999)
	fp := write(t, dir, "few-idx1", few)
	_, err = Load(fixImages+","+fp, 0)
	wantErr(t, err, "1000 samples", "999 labels")

	_, err = Load(filepath.Join(dir, "images.bin"), 0)
	wantErr(t, err, "images.bin", "cannot guess the labels file")
}

func TestLoadCSV(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "ok.csv", []byte("label,a,b\n1,0.5,2\n0,1,-1\n2,3,4\n"))
	d, err := Load(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || d.Classes != 3 || d.Shape[0] != 2 || d.X[5] != 4 || d.Y[1] != 0 {
		t.Fatalf("got %+v", d)
	}

	ragged := write(t, dir, "ragged.csv", []byte("1,0.5,2\n0,1\n"))
	_, err = Load(ragged, 0)
	wantErr(t, err, "ragged.csv:2", "2 fields, want 3")

	neg := write(t, dir, "neg.csv", []byte("1,0.5,2\n-1,1,1\n"))
	_, err = Load(neg, 0)
	wantErr(t, err, "neg.csv", "label -1 out of range")

	nan := write(t, dir, "nan.csv", []byte("1,NaN,2\n"))
	_, err = Load(nan, 0)
	wantErr(t, err, "nan.csv", "not finite")

	word := write(t, dir, "word.csv", []byte("1,0.5,2\n1,x,2\n"))
	_, err = Load(word, 0)
	wantErr(t, err, "word.csv:2", `"x" is not a number`)
}

func TestTestLabelBeyondTrainingClasses(t *testing.T) {
	dir := t.TempDir()
	tr := write(t, dir, "train.csv", []byte("0,1\n1,2\n"))
	te := write(t, dir, "test.csv", []byte("0,1\n5,2\n"))
	_, _, err := Files(tr, te)
	wantErr(t, err, "test.csv", "label 5 out of range [0, 2)")
}

// npy builds a version-1 .npy file.
func npy(descr string, shape string, data []byte) []byte {
	h := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }"
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h)))
	return append(append(b, h...), data...)
}

func TestLoadNPY(t *testing.T) {
	dir := t.TempDir()
	var xs []byte
	for i := range 12 {
		xs = binary.LittleEndian.AppendUint32(xs, math.Float32bits(float32(i)))
	}
	var ys []byte
	for _, y := range []int64{0, 2, 1} {
		ys = binary.LittleEndian.AppendUint64(ys, uint64(y))
	}
	x := write(t, dir, "x.npy", npy("<f4", "(3, 2, 2)", xs))
	y := write(t, dir, "y.npy", npy("<i8", "(3,)", ys))
	d, err := Load(x+","+y, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || d.Classes != 3 || d.X[11] != 11 || d.Y[1] != 2 || len(d.Shape) != 3 {
		t.Fatalf("got %+v", d)
	}
	short := write(t, dir, "short.npy", npy("<f4", "(3, 2, 2)", xs[:40]))
	_, err = Load(short+","+y, 0)
	wantErr(t, err, "short.npy", "truncated")
	_, err = Load(x, 0)
	wantErr(t, err, "x.npy", "labels file")
}

func TestSplitIsDisjointAndSeeded(t *testing.T) {
	d, err := Load(fixImages, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Tag each sample by its index so the halves can be compared.
	for i := range d.Len() {
		d.Row(i)[0] = float32(i)
	}
	held, rest, err := d.Split(100, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[float32]bool{}
	for i := range held.Len() {
		seen[held.Row(i)[0]] = true
	}
	for i := range rest.Len() {
		if seen[rest.Row(i)[0]] {
			t.Fatalf("sample %v in both halves", rest.Row(i)[0])
		}
	}
	if held.Len() != 100 || rest.Len() != 900 {
		t.Fatalf("sizes %d, %d", held.Len(), rest.Len())
	}
	again, _, _ := d.Split(100, rand.New(rand.NewPCG(1, 1)))
	if !slicesEqual(again.X, held.X) {
		t.Fatal("same seed, different split")
	}
	if _, _, err := d.Split(1000, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Fatal("splitting off every sample should fail")
	}
}

func TestNormStandardizes(t *testing.T) {
	d := &Dataset{X: []float32{1, 2, 3, 4}, Y: []int32{0, 1}, Shape: []int{2}, Classes: 2}
	n := Stats(d)
	if n.Mean != 2.5 || math.Abs(n.Std-math.Sqrt(1.25)) > 1e-12 {
		t.Fatalf("stats %+v", n)
	}
	n.Apply(d)
	s := Stats(d)
	if math.Abs(s.Mean) > 1e-6 || math.Abs(s.Std-1) > 1e-6 {
		t.Fatalf("after Apply: %+v", s)
	}
}

func FuzzReadIDX(f *testing.F) {
	raw := []byte{0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3}
	f.Add(raw)
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4})
	f.Add([]byte{0, 0, 0x0d, 1, 0, 0, 0, 1, 0x7f, 0xc0, 0, 0})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f-idx")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		tsr, err := readIDX(p)
		if err == nil && len(tsr.raw) != tsr.size()*width(tsr.kind) {
			t.Fatalf("%d bytes for dims %v", len(tsr.raw), tsr.dims)
		}
	})
}
