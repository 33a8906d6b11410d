package onnx

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestImportTF2ONNXStyle imports a graph written the way tf2onnx writes a
// Keras model (NHWC input transposed to NCHW, a transpose back before the
// reshape, MatMul plus Add, Softmax at the end) and checks it against a
// direct computation of the same network.
func TestImportTF2ONNXStyle(t *testing.T) {
	const H, W, C, F, K, out = 4, 5, 2, 3, 3, 4
	rng := rand.New(rand.NewPCG(1, 2))
	randn := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	wc, bc := randn(F*C*K*K), randn(F) // (F, C, kh, kw)
	wd, bd := randn(H*W*F*out), randn(out)
	ints := func(name string, v ...int64) Attr { return Attr{Name: name, Type: AttrInts, Ints: v} }
	g := Graph{
		Inputs:  []ValueInfo{{Name: "x", ElemType: Float, Dims: []int64{-1, H, W, C}}},
		Outputs: []ValueInfo{{Name: "y", ElemType: Float, Dims: []int64{-1, out}}},
		Initializer: []Tensor{
			{Name: "wc", Type: Float, Dims: []int64{F, C, K, K}, F: wc},
			{Name: "bc", Type: Float, Dims: []int64{F}, F: bc},
			{Name: "shape", Type: Int64, Dims: []int64{2}, I: []int64{-1, H * W * F}},
			{Name: "wd", Type: Float, Dims: []int64{H * W * F, out}, F: wd},
			{Name: "bd", Type: Float, Dims: []int64{out}, F: bd},
		},
		Nodes: []Node{
			{Name: "t0", Op: "Transpose", Inputs: []string{"x"}, Outputs: []string{"a"}, Attrs: []Attr{ints("perm", 0, 3, 1, 2)}},
			{Name: "conv", Op: "Conv", Inputs: []string{"a", "wc", "bc"}, Outputs: []string{"b"},
				Attrs: []Attr{ints("kernel_shape", K, K), ints("pads", 1, 1, 1, 1), ints("strides", 1, 1)}},
			{Name: "relu", Op: "Relu", Inputs: []string{"b"}, Outputs: []string{"c"}},
			{Name: "t1", Op: "Transpose", Inputs: []string{"c"}, Outputs: []string{"d"}, Attrs: []Attr{ints("perm", 0, 2, 3, 1)}},
			{Name: "flat", Op: "Reshape", Inputs: []string{"d", "shape"}, Outputs: []string{"e"}},
			{Name: "mm", Op: "MatMul", Inputs: []string{"e", "wd"}, Outputs: []string{"f"}},
			{Name: "add", Op: "Add", Inputs: []string{"f", "bd"}, Outputs: []string{"g"}},
			{Name: "sm", Op: "Softmax", Inputs: []string{"g"}, Outputs: []string{"y"}},
		},
	}
	im, err := Import(Encode(&Model{IRVersion: 7, Opset: 13, Graph: g}), "keras")
	if err != nil {
		t.Fatal(err)
	}
	if im.Input[0] != C || im.Input[1] != H || im.Input[2] != W {
		t.Fatalf("input %v, want [C H W] = [%d %d %d]", im.Input, C, H, W)
	}
	m, err := im.Model(im.Input, im.Classes)
	if err != nil {
		t.Fatal(err)
	}
	x := randn(H * W * C) // one NHWC image: the engine's layout as it is
	got := m.Forward(x, 1, false)
	// The reference: convolution with zero padding 1, ReLU, flatten in
	// (h, w, f) order, dense.
	act := make([]float32, H*W*F)
	for y := range H {
		for xx := range W {
			for f := range F {
				s := bc[f]
				for ch := range C {
					for ky := range K {
						for kx := range K {
							iy, ix := y+ky-1, xx+kx-1
							if iy < 0 || iy >= H || ix < 0 || ix >= W {
								continue
							}
							s += wc[((f*C+ch)*K+ky)*K+kx] * x[(iy*W+ix)*C+ch]
						}
					}
				}
				act[(y*W+xx)*F+f] = max(s, 0)
			}
		}
	}
	for o := range out {
		want := bd[o]
		for i, a := range act {
			want += a * wd[i*out+o]
		}
		if math.Abs(float64(got[o]-want)) > 1e-4 {
			t.Errorf("logit %d = %v, want %v", o, got[o], want)
		}
	}
}
