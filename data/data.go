// Package data loads labelled data sets (IDX, CSV, NPY), normalizes them,
// and cuts them into seeded shuffles, splits and chunks.
//
// A Dataset keeps every sample as one row of float32 values in a single
// slice, images channel-last, which is the layout the nn engine consumes
// without copying.
package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Dataset is a labelled data set held in memory.
type Dataset struct {
	// X holds N rows of Shape.Size() values each.
	X []float32
	// Y holds N labels in [0, Classes).
	Y []int32
	// Shape is the shape of one sample: [C H W] for images, [F] for vectors.
	Shape []int
	// Classes is the number of distinct labels the data set can have.
	Classes int
	// ValueBytes is the width of one value in the file it came from (1 for
	// bytes, 4 otherwise): what shipping a sample costs on the wire, where
	// it travels in its original width (the normalization is applied on
	// arrival). 0 means float32.
	ValueBytes int
}

// ByteScale is what byte values (IDX u8, NPY uint8) are multiplied by on
// loading, before the normalization: images come in [0, 1].
const ByteScale = 1.0 / 255

// WireBytes returns the bytes one sample and its label take on the wire.
func (d *Dataset) WireBytes() int64 {
	w := d.ValueBytes
	if w == 0 {
		w = 4
	}
	label := 4
	if d.Classes <= 256 {
		label = 1
	}
	return int64(d.SampleSize()*w + label)
}

// Len returns the number of samples.
func (d *Dataset) Len() int { return len(d.Y) }

// SampleSize returns the number of values in one sample.
func (d *Dataset) SampleSize() int {
	n := 1
	for _, s := range d.Shape {
		n *= s
	}
	return n
}

// Row returns sample i's values (a view).
func (d *Dataset) Row(i int) []float32 {
	s := d.SampleSize()
	return d.X[i*s : (i+1)*s]
}

// Slice returns samples [from, to) as a data set that shares storage.
func (d *Dataset) Slice(from, to int) *Dataset {
	s := d.SampleSize()
	return &Dataset{X: d.X[from*s : to*s], Y: d.Y[from:to], Shape: d.Shape, Classes: d.Classes, ValueBytes: d.ValueBytes}
}

// Subset returns a copy of the samples at idx, in that order.
func (d *Dataset) Subset(idx []int) *Dataset {
	s := d.SampleSize()
	out := &Dataset{X: make([]float32, len(idx)*s), Y: make([]int32, len(idx)), Shape: d.Shape, Classes: d.Classes, ValueBytes: d.ValueBytes}
	d.Gather(idx, out.X, out.Y)
	return out
}

// Gather copies the samples at idx into x and y, which must have room for
// them. It is how mini-batches are assembled without allocating.
func (d *Dataset) Gather(idx []int, x []float32, y []int32) {
	s := d.SampleSize()
	for j, i := range idx {
		copy(x[j*s:(j+1)*s], d.X[i*s:(i+1)*s])
		y[j] = d.Y[i]
	}
}

// Perm returns a seeded permutation of the sample indices.
func (d *Dataset) Perm(rng *rand.Rand) []int { return rng.Perm(d.Len()) }

// Split shuffles the samples with rng and returns the first n as held-out and
// the rest, both as copies: the validation set is carved from training data
// this way and never overlaps what is trained on.
func (d *Dataset) Split(n int, rng *rand.Rand) (held, rest *Dataset, err error) {
	if n < 0 || n >= d.Len() {
		return nil, nil, fmt.Errorf("split %d of %d samples: want 0 <= n < %d", n, d.Len(), d.Len())
	}
	p := d.Perm(rng)
	return d.Subset(p[:n]), d.Subset(p[n:]), nil
}

// Validate checks that labels are in range and values are finite; loaders
// call it so that bad files fail at load time with a clear message.
func (d *Dataset) Validate() error {
	if d.Len()*d.SampleSize() != len(d.X) {
		return fmt.Errorf("%d labels but %d values for samples of shape %v", d.Len(), len(d.X), d.Shape)
	}
	for i, y := range d.Y {
		if y < 0 || int(y) >= d.Classes {
			return fmt.Errorf("sample %d: label %d out of range [0, %d)", i, y, d.Classes)
		}
	}
	for i, v := range d.X {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("sample %d: value %v is not finite", i/d.SampleSize(), v)
		}
	}
	return nil
}

// Norm is an affine normalization x' = (x - Mean) / Std with one mean and
// standard deviation for all features, computed on training data and applied
// unchanged to validation and test data.
type Norm struct{ Mean, Std float64 }

// Stats computes the normalization of d.
func Stats(d *Dataset) Norm {
	var sum, sq float64
	for _, v := range d.X {
		sum += float64(v)
	}
	mean := sum / float64(len(d.X))
	for _, v := range d.X {
		dv := float64(v) - mean
		sq += dv * dv
	}
	std := math.Sqrt(sq / float64(len(d.X)))
	if std == 0 {
		std = 1
	}
	return Norm{Mean: mean, Std: std}
}

// Meta returns the normalization as model metadata, so that a saved model
// carries the preprocessing it was trained with.
func (n Norm) Meta() map[string]string {
	return map[string]string{
		"hermes.norm.mean": strconv.FormatFloat(n.Mean, 'g', -1, 64),
		"hermes.norm.std":  strconv.FormatFloat(n.Std, 'g', -1, 64),
	}
}

// NormFromMeta reads a normalization written by Meta; ok is false when meta
// has none.
func NormFromMeta(meta map[string]string) (n Norm, ok bool, err error) {
	ms, ss := meta["hermes.norm.mean"], meta["hermes.norm.std"]
	if ms == "" && ss == "" {
		return Norm{}, false, nil
	}
	if n.Mean, err = strconv.ParseFloat(ms, 64); err != nil {
		return Norm{}, false, fmt.Errorf("hermes.norm.mean %q: %w", ms, err)
	}
	if n.Std, err = strconv.ParseFloat(ss, 64); err != nil || !(n.Std > 0) {
		return Norm{}, false, fmt.Errorf("hermes.norm.std %q: not a positive number", ss)
	}
	return n, true, nil
}

// Renormalize changes d, normalized by n, to the normalization to.
func (n Norm) Renormalize(d *Dataset, to Norm) {
	// x01 = x·σ + μ, then (x01 − μ')/σ', as one multiply-add.
	a := float32(n.Std / to.Std)
	b := float32((n.Mean - to.Mean) / to.Std)
	for i, v := range d.X {
		d.X[i] = v*a + b
	}
}

// Apply normalizes d in place.
func (n Norm) Apply(d *Dataset) {
	m, inv := float32(n.Mean), float32(1/n.Std)
	for i, v := range d.X {
		d.X[i] = (v - m) * inv
	}
}
