package onnx

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hermes-go/hermes/nn"
)

// Supported lists the operators Import converts, for error messages.
const Supported = "Gemm, MatMul (+Add), Conv, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, " +
	"Relu, LeakyRelu, Tanh, Sigmoid, Flatten, Reshape to [N, -1], Dropout, Identity, Pad (of zero), " +
	"Transpose (tf2onnx's NHWC input and channel-last flatten), Sub and Div by scalars at the input, " +
	"Softmax/LogSoftmax at the output"

// Imported is a sequential model read from an ONNX file: its spec, the
// per-sample input shape it declares, and its weights in the order and
// layout of nn.Model.Params.
type Imported struct {
	Spec    nn.Spec
	Input   nn.Shape
	Classes int
	Params  []float32
	Opset   int64
}

// Model builds the imported model for samples of shape in (the data set's)
// and loads its weights.
func (im *Imported) Model(in nn.Shape, classes int) (*nn.Model, error) {
	m, err := nn.Build(im.Spec, in, classes)
	if err != nil {
		return nil, err
	}
	if len(m.Params()) != len(im.Params) {
		return nil, fmt.Errorf("model %s: %d weights for %d parameters", im.Spec.Name, len(im.Params), len(m.Params()))
	}
	copy(m.Params(), im.Params)
	return m, nil
}

// ReadFile imports the ONNX model at path; see Import. Errors name the file.
func ReadFile(path string) (*Imported, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	im, err := Import(b, filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

// Import converts a serialized ONNX model into a Hermes model: a chain of
// the operators in Supported from one input to one output, as
// torch.onnx.export (opsets 11 to 17) and tf2onnx write sequential models.
//
// ONNX models see images channel first, Hermes channel last: convolution
// weights are reordered, and the weights of a dense layer behind a
// flattened image have their inputs permuted to the channel-last order, so
// the imported model computes what the original computes on the same
// image. Its input normalization is [0, 1] (ToTensor's bytes / 255), or
// what a Sub and a Div by scalars at the front of the graph say (as
// Export writes them).
func Import(b []byte, name string) (*Imported, error) {
	m, err := Decode(b)
	if err != nil {
		return nil, err
	}
	if m.Opset != 0 && (m.Opset < 7 || m.Opset > 21) {
		return nil, fmt.Errorf("opset %d not supported (want 11 to 17; 7 to 21 are read)", m.Opset)
	}
	c := &converter{g: &m.Graph, values: map[string]*Tensor{}}
	for i := range m.Graph.Initializer {
		t := &m.Graph.Initializer[i]
		c.values[t.Name] = t
	}
	if err := c.input(); err != nil {
		return nil, err
	}
	for i := range m.Graph.Nodes {
		n := &m.Graph.Nodes[i]
		if err := c.node(n, i == len(m.Graph.Nodes)-1); err != nil {
			label := n.Name
			if label == "" {
				label = fmt.Sprintf("#%d", i)
			}
			return nil, fmt.Errorf("node %s (%s): %w", label, n.Op, err)
		}
	}
	// A softmax at the end was dropped (c.done); else the chain must end
	// at the graph's output.
	if !c.done && (len(m.Graph.Outputs) != 1 || m.Graph.Outputs[0].Name != c.cur) {
		return nil, fmt.Errorf("the graph's output is not the end of its chain of nodes")
	}
	if len(c.shape) != 1 {
		return nil, fmt.Errorf("output shape %v is not [N, classes]", c.shape)
	}
	if len(c.layers) == 0 || !hasParams(c.layers) {
		return nil, errors.New("no layers with weights")
	}
	im := &Imported{
		Spec:    nn.Spec{Name: name, Input: c.in, Norm: c.normalize, Layers: c.layers},
		Input:   c.in,
		Classes: c.shape[0],
		Params:  c.params,
		Opset:   m.Opset,
	}
	// The builder checks every layer's shape; this also proves that the
	// weights fill the parameter vector exactly.
	if _, err := im.Model(c.in, im.Classes); err != nil {
		return nil, err
	}
	return im, nil
}

func hasParams(ls []nn.LayerSpec) bool {
	for _, l := range ls {
		if l.Type == "dense" || l.Type == "conv2d" || l.Type == "batchnorm" {
			return true
		}
	}
	return false
}

// converter walks the chain of nodes, keeping the name and shape of the
// value flowing through it.
type converter struct {
	g      *Graph
	values map[string]*Tensor // initializers and constants

	in     nn.Shape
	cur    string
	shape  nn.Shape // per-sample shape of cur, ONNX order ([C H W] or [F])
	perm   []int    // for a flattened image: our index i holds ONNX's perm[i]
	layers []nn.LayerSpec
	params []float32
	done   bool // a final softmax was seen

	pendingMatMul bool      // the last layer is a MatMul whose bias an Add may give
	normalize     []float64 // [mean, std] of a Sub and Div at the front (Export writes them)
	hwc           bool      // the value is an image transposed to channel-last (tf2onnx, before a flatten)
}

// transpose accepts the two transposes tf2onnx writes around a Keras
// model's convolutions: NHWC to NCHW at the input, which is the engine's
// own layout already, and NCHW to NHWC in front of a flatten, which makes
// the flattened order the engine's, so no permutation is needed.
func (c *converter) transpose(n *Node) error {
	perm := ints(n, "perm", nil)
	is := func(p ...int64) bool { return slices.Equal(perm, p) }
	switch {
	case is(0, 3, 1, 2) && len(c.layers) == 0 && len(c.in) == 3 && c.shape.Equal(c.in):
		c.in = nn.Shape{c.in[2], c.in[0], c.in[1]} // declared [N H W C]
		c.shape = slices.Clone(c.in)
	case is(0, 2, 3, 1) && len(c.shape) == 3 && !c.hwc:
		c.hwc = true
	default:
		return fmt.Errorf("perm %v of a %v value: only NHWC to NCHW at the input, or NCHW to NHWC before a flatten", perm, c.shape)
	}
	return nil
}

func (c *converter) input() error {
	var inputs []ValueInfo
	for _, v := range c.g.Inputs {
		if _, ok := c.values[v.Name]; !ok { // older exports list initializers as inputs
			inputs = append(inputs, v)
		}
	}
	if len(inputs) != 1 {
		return fmt.Errorf("%d graph inputs besides the initializers, want 1", len(inputs))
	}
	v := inputs[0]
	if v.ElemType != 0 && v.ElemType != Float {
		return fmt.Errorf("input %s has element type %d, want float32", v.Name, v.ElemType)
	}
	if len(v.Dims) != 2 && len(v.Dims) != 4 {
		return fmt.Errorf("input %s has rank %d (%v), want [N, C, H, W] or [N, features]", v.Name, len(v.Dims), v.Dims)
	}
	for _, d := range v.Dims[1:] {
		if d < 1 || d > maxSample {
			return fmt.Errorf("input %s has shape %v: every dimension but the batch must be fixed", v.Name, v.Dims)
		}
		c.in = append(c.in, int(d))
	}
	if c.in.Size() > maxSample || c.in.Size() < 1 {
		return fmt.Errorf("input %s has shape %v: more than %d values per sample", v.Name, v.Dims, maxSample)
	}
	c.cur, c.shape = v.Name, slices.Clone(c.in)
	c.normalize = []float64{0, 1}
	return nil
}

// norm takes a Sub and then a Div by scalars in front of the first layer
// as the model's input normalization.
func (c *converter) norm(n *Node) error {
	if len(c.layers) > 0 || len(n.Inputs) != 2 {
		return fmt.Errorf("%s is supported only as the input normalization, by a scalar, in front of every layer", n.Op)
	}
	t, err := c.weight(n.Inputs[1])
	if err != nil {
		return err
	}
	if len(t.F) != 1 {
		return fmt.Errorf("%s by %q of dims %v: only scalars (one normalization for all channels)", n.Op, t.Name, t.Dims)
	}
	v := float64(t.F[0])
	switch {
	case n.Op == "Sub" && c.normalize[0] == 0 && c.normalize[1] == 1:
		c.normalize[0] = v
	case n.Op == "Div" && c.normalize[1] == 1 && v > 0:
		c.normalize[1] = v
	default:
		return fmt.Errorf("%s by %g: want one Sub, then one Div by a positive number", n.Op, v)
	}
	return nil
}

// weight returns the initializer or constant called name.
func (c *converter) weight(name string) (*Tensor, error) {
	t, ok := c.values[name]
	if !ok {
		return nil, fmt.Errorf("input %q is neither an initializer nor a constant (missing initializer?)", name)
	}
	if t.Type != Float {
		return nil, fmt.Errorf("initializer %q has data type %d, want float32", name, t.Type)
	}
	for i, v := range t.F {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("initializer %q holds a non-finite value at %d", name, i)
		}
	}
	return t, nil
}

func dimsAre(t *Tensor, want ...int) bool {
	if len(t.Dims) != len(want) {
		return false
	}
	for i, d := range t.Dims {
		if int(d) != want[i] {
			return false
		}
	}
	return true
}

func (c *converter) node(n *Node, last bool) error {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return fmt.Errorf("operator domain %q not supported", n.Domain)
	}
	if n.Op == "Constant" {
		a, ok := n.Attr("value")
		if !ok || a.T == nil || len(n.Outputs) != 1 {
			return errors.New("constant without a tensor value")
		}
		c.values[n.Outputs[0]] = a.T
		return nil
	}
	if c.done {
		return errors.New("follows the output softmax")
	}
	if len(n.Inputs) == 0 || n.Inputs[0] != c.cur {
		return fmt.Errorf("its input is not the output of the node before it (only chains of layers are supported, no branches)")
	}
	if len(n.Outputs) < 1 {
		return errors.New("no output")
	}
	// Extra outputs (Dropout's mask, BatchNormalization's training
	// statistics) must not be used.
	for _, o := range n.Outputs[1:] {
		if o != "" && c.used(o) {
			return fmt.Errorf("output %q is used; only the first output of a node may be", o)
		}
	}
	out := n.Outputs[0]
	pending := c.pendingMatMul
	c.pendingMatMul = false
	var err error
	switch n.Op {
	case "Gemm":
		err = c.gemm(n)
	case "MatMul":
		err = c.matmul(n)
	case "Add":
		if !pending {
			return errors.New("Add is supported only as the bias of a MatMul")
		}
		err = c.bias(n)
	case "Conv":
		err = c.conv(n)
	case "MaxPool", "AveragePool":
		err = c.pool(n)
	case "GlobalAveragePool":
		if len(c.shape) != 3 {
			return fmt.Errorf("input shape %v is not an image", c.shape)
		}
		c.layers = append(c.layers, nn.LayerSpec{Type: "globalavgpool"})
		c.shape = nn.Shape{c.shape[0], 1, 1}
	case "BatchNormalization":
		err = c.batchnorm(n)
	case "Relu", "Tanh", "Sigmoid":
		c.layers = append(c.layers, nn.LayerSpec{Type: strings.ToLower(n.Op)})
	case "LeakyRelu":
		alpha := float32(0.01)
		if a, ok := n.Attr("alpha"); ok {
			alpha = a.F
		}
		if !(alpha > 0 && alpha < 1) {
			return fmt.Errorf("alpha %g, want 0 < alpha < 1", alpha)
		}
		c.layers = append(c.layers, nn.LayerSpec{Type: "leakyrelu", Alpha: float64(alpha)})
	case "Dropout":
		err = c.dropout(n)
	case "Sub", "Div":
		err = c.norm(n)
	case "Transpose":
		err = c.transpose(n)
	case "Identity":
	case "Pad":
		err = c.pad(n)
	case "Flatten":
		if a, ok := n.Attr("axis"); ok && a.I != 1 {
			return fmt.Errorf("axis %d, want 1 (keep the batch dimension)", a.I)
		}
		c.flatten()
	case "Reshape":
		err = c.reshape(n)
	case "Softmax", "LogSoftmax":
		if !last {
			return errors.New("a softmax is supported only as the last node (the loss applies it)")
		}
		if len(c.shape) != 1 {
			return fmt.Errorf("softmax over shape %v, want [N, classes]", c.shape)
		}
		if a, ok := n.Attr("axis"); ok && a.I != 1 && a.I != -1 {
			return fmt.Errorf("softmax over axis %d, want the classes (1)", a.I)
		}
		c.done = true
		return nil
	default:
		return fmt.Errorf("unsupported op (supported: %s)", Supported)
	}
	if err != nil {
		return err
	}
	if c.hwc && n.Op != "Transpose" && n.Op != "Flatten" && n.Op != "Reshape" {
		return errors.New("only a Flatten or Reshape may follow a Transpose to channel-last")
	}
	if size := c.shape.Size(); size > maxSample || size < 1 {
		return fmt.Errorf("output of %d values per sample (shape %v), want 1 to %d", size, c.shape, maxSample)
	}
	c.cur = out
	return nil
}

// maxSample bounds the values per sample of the input and of every layer's
// output, so that a file cannot make the engine allocate without bound.
const maxSample = 1 << 24

func (c *converter) used(name string) bool {
	for _, n := range c.g.Nodes {
		if slices.Contains(n.Inputs, name) {
			return true
		}
	}
	for _, o := range c.g.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

// flatten records the permutation from ONNX's channel-first order of an
// image's values to ours, for the dense layer that will consume them.
func (c *converter) flatten() {
	if c.hwc {
		c.hwc = false
	} else if len(c.shape) == 3 && c.shape[0] > 1 && c.shape[1]*c.shape[2] > 1 {
		C, H, W := c.shape[0], c.shape[1], c.shape[2]
		c.perm = make([]int, C*H*W)
		for y := range H {
			for x := range W {
				for ch := range C {
					c.perm[(y*W+x)*C+ch] = ch*H*W + y*W + x
				}
			}
		}
	}
	if len(c.shape) != 1 {
		c.layers = append(c.layers, nn.LayerSpec{Type: "flatten"})
	}
	c.shape = nn.Shape{c.shape.Size()}
}

func (c *converter) reshape(n *Node) error {
	var shape []int64
	if len(n.Inputs) >= 2 {
		t, ok := c.values[n.Inputs[1]]
		if !ok || (t.Type != Int64 && t.Type != Int32) {
			return fmt.Errorf("shape %q is not a constant integer tensor", n.Inputs[1])
		}
		shape = t.I
	} else if a, ok := n.Attr("shape"); ok { // opset < 5
		shape = a.Ints
	}
	size := int64(c.shape.Size())
	if len(shape) == 2 && (shape[0] == -1 || shape[0] == 0 || shape[1] == -1 || shape[1] == size) &&
		(shape[1] == -1 || shape[1] == size) {
		c.flatten()
		return nil
	}
	return fmt.Errorf("reshape to %v of a %v input: only reshapes to [N, -1] are supported", shape, c.shape)
}

// dense appends a dense layer from w laid out (in, out) in ONNX's input
// order, and its bias.
func (c *converter) dense(w []float32, in, out int, bias []float32) {
	if c.perm != nil {
		pw := make([]float32, len(w))
		for i, src := range c.perm {
			copy(pw[i*out:(i+1)*out], w[src*out:(src+1)*out])
		}
		w = pw
		c.perm = nil
	}
	c.layers = append(c.layers, nn.LayerSpec{Type: "dense", Units: out})
	c.params = append(c.params, w...)
	if bias == nil {
		bias = make([]float32, out)
	}
	c.params = append(c.params, bias...)
	c.shape = nn.Shape{out}
}

func (c *converter) gemm(n *Node) error {
	if len(c.shape) != 1 {
		return fmt.Errorf("input shape %v is not flat; flatten first", c.shape)
	}
	if len(n.Inputs) < 2 {
		return errors.New("no weight input")
	}
	if a, ok := n.Attr("transA"); ok && a.I != 0 {
		return errors.New("transA = 1 not supported")
	}
	alpha, beta := float32(1), float32(1)
	if a, ok := n.Attr("alpha"); ok {
		alpha = a.F
	}
	if a, ok := n.Attr("beta"); ok {
		beta = a.F
	}
	transB := false
	if a, ok := n.Attr("transB"); ok {
		transB = a.I != 0
	}
	wt, err := c.weight(n.Inputs[1])
	if err != nil {
		return err
	}
	in := c.shape[0]
	if len(wt.Dims) != 2 {
		return fmt.Errorf("weight %q has dims %v, want rank 2", wt.Name, wt.Dims)
	}
	out := int(wt.Dims[1])
	if transB {
		out = int(wt.Dims[0])
	}
	if (transB && !dimsAre(wt, out, in)) || (!transB && !dimsAre(wt, in, out)) {
		return fmt.Errorf("weight %q has dims %v for %d inputs", wt.Name, wt.Dims, in)
	}
	w := make([]float32, in*out)
	for i := range in {
		for o := range out {
			v := wt.F[i*out+o]
			if transB {
				v = wt.F[o*in+i]
			}
			w[i*out+o] = alpha * v
		}
	}
	var bias []float32
	if len(n.Inputs) >= 3 && n.Inputs[2] != "" {
		bt, err := c.weight(n.Inputs[2])
		if err != nil {
			return err
		}
		if bt.Size() != out || (len(bt.Dims) != 1 && !dimsAre(bt, 1, out)) {
			return fmt.Errorf("bias %q has dims %v, want [%d]", bt.Name, bt.Dims, out)
		}
		bias = make([]float32, out)
		for i, v := range bt.F {
			bias[i] = beta * v
		}
	}
	c.dense(w, in, out, bias)
	return nil
}

func (c *converter) matmul(n *Node) error {
	if len(c.shape) != 1 {
		return fmt.Errorf("input shape %v is not flat; flatten first", c.shape)
	}
	if len(n.Inputs) != 2 {
		return errors.New("want 2 inputs")
	}
	wt, err := c.weight(n.Inputs[1])
	if err != nil {
		return err
	}
	in := c.shape[0]
	if len(wt.Dims) != 2 || int(wt.Dims[0]) != in {
		return fmt.Errorf("weight %q has dims %v for %d inputs", wt.Name, wt.Dims, in)
	}
	c.dense(slices.Clone(wt.F), in, int(wt.Dims[1]), nil)
	c.pendingMatMul = true
	return nil
}

// bias adds the Add behind a MatMul to its dense layer's bias.
func (c *converter) bias(n *Node) error {
	if len(n.Inputs) != 2 {
		return errors.New("want 2 inputs")
	}
	bt, err := c.weight(n.Inputs[1])
	if err != nil {
		return err
	}
	out := c.shape[0]
	if bt.Size() != out || (len(bt.Dims) != 1 && !dimsAre(bt, 1, out)) {
		return fmt.Errorf("bias %q has dims %v, want [%d]", bt.Name, bt.Dims, out)
	}
	copy(c.params[len(c.params)-out:], bt.F)
	return nil
}

// ints returns an int-list attribute, or def when absent.
func ints(n *Node, name string, def []int64) []int64 {
	if a, ok := n.Attr(name); ok {
		return a.Ints
	}
	return def
}

// square returns v[0] if v holds two equal values (or is empty: def).
func square(v []int64, what string, def int) (int, error) {
	switch {
	case len(v) == 0:
		return def, nil
	case len(v) == 2 && v[0] == v[1] && v[0] >= 0 && v[0] < 1<<16:
		return int(v[0]), nil
	case len(v) == 4 && v[0] == v[1] && v[1] == v[2] && v[2] == v[3] && v[0] >= 0 && v[0] < 1<<16:
		return int(v[0]), nil
	}
	return 0, fmt.Errorf("%s %v: only equal values on both axes (and both sides) are supported", what, v)
}

func autoPad(n *Node) error {
	if a, ok := n.Attr("auto_pad"); ok && a.S != "NOTSET" && a.S != "VALID" && a.S != "" {
		return fmt.Errorf("auto_pad %s not supported (export with explicit pads)", a.S)
	}
	return nil
}

func (c *converter) conv(n *Node) error {
	if len(c.shape) != 3 {
		return fmt.Errorf("input shape %v is not an image [C H W]", c.shape)
	}
	if a, ok := n.Attr("group"); ok && a.I != 1 {
		return fmt.Errorf("group %d not supported (want 1)", a.I)
	}
	if err := autoPad(n); err != nil {
		return err
	}
	if d, err := square(ints(n, "dilations", nil), "dilations", 1); err != nil || d != 1 {
		return fmt.Errorf("dilations %v not supported (want 1)", ints(n, "dilations", nil))
	}
	if len(n.Inputs) < 2 {
		return errors.New("no weight input")
	}
	wt, err := c.weight(n.Inputs[1])
	if err != nil {
		return err
	}
	C, H, W := c.shape[0], c.shape[1], c.shape[2]
	if len(wt.Dims) != 4 || int(wt.Dims[1]) != C || wt.Dims[2] != wt.Dims[3] {
		return fmt.Errorf("weight %q has dims %v for %d input channels (want [F, %d, k, k])", wt.Name, wt.Dims, C, C)
	}
	F, k := int(wt.Dims[0]), int(wt.Dims[2])
	if ks, err := square(ints(n, "kernel_shape", nil), "kernel_shape", k); err != nil || ks != k {
		return fmt.Errorf("kernel_shape %v does not match weight dims %v", ints(n, "kernel_shape", nil), wt.Dims)
	}
	stride, err := square(ints(n, "strides", nil), "strides", 1)
	if err != nil {
		return err
	}
	pad, err := square(ints(n, "pads", nil), "pads", 0)
	if err != nil {
		return err
	}
	if stride < 1 {
		return fmt.Errorf("strides %v", ints(n, "strides", nil))
	}
	// ONNX (F, C, kh, kw) to ours (F, kh, kw, C).
	w := make([]float32, len(wt.F))
	for f := range F {
		for ch := range C {
			for y := range k {
				for x := range k {
					w[((f*k+y)*k+x)*C+ch] = wt.F[((f*C+ch)*k+y)*k+x]
				}
			}
		}
	}
	bias := make([]float32, F)
	if len(n.Inputs) >= 3 && n.Inputs[2] != "" {
		bt, err := c.weight(n.Inputs[2])
		if err != nil {
			return err
		}
		if !dimsAre(bt, F) {
			return fmt.Errorf("bias %q has dims %v, want [%d]", bt.Name, bt.Dims, F)
		}
		copy(bias, bt.F)
	}
	oh, ow := (H+2*pad-k)/stride+1, (W+2*pad-k)/stride+1
	if oh < 1 || ow < 1 {
		return fmt.Errorf("kernel %d does not fit input %v with pads %d", k, c.shape, pad)
	}
	c.layers = append(c.layers, nn.LayerSpec{Type: "conv2d", Filters: F, Kernel: k, Stride: stride, Padding: pad})
	c.params = append(append(c.params, w...), bias...)
	c.shape = nn.Shape{F, oh, ow}
	return nil
}

func (c *converter) pool(n *Node) error {
	if len(c.shape) != 3 {
		return fmt.Errorf("input shape %v is not an image [C H W]", c.shape)
	}
	if err := autoPad(n); err != nil {
		return err
	}
	k, err := square(ints(n, "kernel_shape", nil), "kernel_shape", 0)
	if err != nil || k < 1 {
		return fmt.Errorf("kernel_shape %v: want two equal sizes", ints(n, "kernel_shape", nil))
	}
	stride, err := square(ints(n, "strides", nil), "strides", 1)
	if err != nil || stride < 1 {
		return fmt.Errorf("strides %v: want two equal strides", ints(n, "strides", nil))
	}
	if pad, err := square(ints(n, "pads", nil), "pads", 0); err != nil || pad != 0 {
		return fmt.Errorf("pads %v not supported (want 0)", ints(n, "pads", nil))
	}
	if d, err := square(ints(n, "dilations", nil), "dilations", 1); err != nil || d != 1 {
		return fmt.Errorf("dilations %v not supported (want 1)", ints(n, "dilations", nil))
	}
	H, W := c.shape[1], c.shape[2]
	if a, ok := n.Attr("ceil_mode"); ok && a.I != 0 && ((H-k)%stride != 0 || (W-k)%stride != 0) {
		return errors.New("ceil_mode = 1 with a partial last window not supported")
	}
	if k > H || k > W {
		return fmt.Errorf("window %d does not fit input %v", k, c.shape)
	}
	typ := "maxpool2d"
	if n.Op == "AveragePool" {
		typ = "avgpool2d"
	}
	c.layers = append(c.layers, nn.LayerSpec{Type: typ, Size: k, Stride: stride})
	c.shape = nn.Shape{c.shape[0], (H-k)/stride + 1, (W-k)/stride + 1}
	return nil
}

func (c *converter) batchnorm(n *Node) error {
	if len(n.Inputs) != 5 {
		return fmt.Errorf("%d inputs, want 5 (X, scale, B, mean, var)", len(n.Inputs))
	}
	if a, ok := n.Attr("training_mode"); ok && a.I != 0 {
		return errors.New("training_mode = 1 not supported (export in evaluation mode)")
	}
	ch := c.shape[0]
	var ts [4][]float32
	for i := range ts {
		t, err := c.weight(n.Inputs[1+i])
		if err != nil {
			return err
		}
		if !dimsAre(t, ch) {
			return fmt.Errorf("%q has dims %v, want [%d]", t.Name, t.Dims, ch)
		}
		ts[i] = t.F
		if c.perm != nil { // per feature of a flattened image
			p := make([]float32, ch)
			for j, src := range c.perm {
				p[j] = t.F[src]
			}
			ts[i] = p
		}
	}
	for j, v := range ts[3] {
		if v < 0 {
			return fmt.Errorf("running variance %q is negative at %d", n.Inputs[4], j)
		}
	}
	eps, mom := float32(1e-5), float32(0.9)
	if a, ok := n.Attr("epsilon"); ok {
		eps = a.F
	}
	if a, ok := n.Attr("momentum"); ok {
		mom = a.F
	}
	if !(eps > 0) || !(mom >= 0 && mom < 1) {
		return fmt.Errorf("epsilon %g, momentum %g: want epsilon > 0 and 0 <= momentum < 1", eps, mom)
	}
	// ONNX's momentum is the running statistics' own weight; ours (as
	// PyTorch's) the batch's.
	c.layers = append(c.layers, nn.LayerSpec{Type: "batchnorm", Eps: float64(eps), Momentum: float64(1 - mom)})
	for _, t := range ts {
		c.params = append(c.params, t...)
	}
	return nil
}

func (c *converter) dropout(n *Node) error {
	rate := float32(0.5)
	if a, ok := n.Attr("ratio"); ok { // opset < 12
		rate = a.F
	}
	if len(n.Inputs) >= 2 && n.Inputs[1] != "" {
		t, err := c.weight(n.Inputs[1])
		if err != nil {
			return err
		}
		if len(t.F) != 1 {
			return fmt.Errorf("ratio %q is not a scalar", t.Name)
		}
		rate = t.F[0]
	}
	if !(rate >= 0 && rate < 1) {
		return fmt.Errorf("ratio %g, want 0 <= ratio < 1", rate)
	}
	c.layers = append(c.layers, nn.LayerSpec{Type: "dropout", Rate: float64(rate)})
	return nil
}

// pad accepts only a Pad that adds nothing, which PyTorch's export puts in
// front of an AveragePool.
func (c *converter) pad(n *Node) error {
	pads := ints(n, "pads", nil) // opset < 11
	if len(n.Inputs) >= 2 && n.Inputs[1] != "" {
		t, ok := c.values[n.Inputs[1]]
		if !ok || (t.Type != Int64 && t.Type != Int32) {
			return fmt.Errorf("pads %q is not a constant integer tensor", n.Inputs[1])
		}
		pads = t.I
	}
	for _, p := range pads {
		if p != 0 {
			return fmt.Errorf("pads %v not supported (only a Pad of zero)", pads)
		}
	}
	return nil
}
