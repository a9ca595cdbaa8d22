package onnx

// The operators of convolutional and residual models (RUN_FORMAT.md
// "Convolutional and residual models"): Conv, MaxPool, AveragePool (and
// torch.onnx's Pad before it), GlobalAveragePool, LayerNormalization, and
// the residual block recovered from a value read by two branches that merge
// in an Add.

import (
	"fmt"
	"strings"

	"github.com/certify-mli/certify/nn"
	pb "github.com/certify-mli/certify/nn/onnx/onnxpb"
)

// reads says whether node n has value v among its inputs.
func reads(n *pb.NodeProto, v string) bool {
	for _, in := range n.GetInput() {
		if in == v {
			return true
		}
	}
	return false
}

// attrInts is an ints attribute, or def when absent.
func attrInts(n *pb.NodeProto, name string, def []int64) []int64 {
	if a, ok := attrs(n)[name]; ok {
		return a.GetInts()
	}
	return def
}

// pair is the model.json form of a 2-D size: an int when both are equal.
func pair(h, w int) nn.IntPair {
	if h == w {
		return nn.IntPair{h}
	}
	return nn.IntPair{h, w}
}

// window reads the kernel_shape, strides, pads, dilations, auto_pad and
// ceil_mode attributes of a 2-D Conv or pooling node: kernel [kh, kw],
// stride, and symmetric padding. Anything PyTorch's layer cannot express
// is refused naming the attribute.
func (c *converter) window(n *pb.NodeProto, kernel []int64) (k, s, p nn.IntPair, err error) {
	op := n.GetOpType()
	if a, ok := attrs(n)["auto_pad"]; ok && string(a.GetS()) != "NOTSET" && string(a.GetS()) != "" {
		return nil, nil, nil, fmt.Errorf("%w: %s auto_pad=%s (explicit pads are read)", ErrUnsupported, op, a.GetS())
	}
	if attrInt(n, "ceil_mode", 0) != 0 {
		return nil, nil, nil, fmt.Errorf("%w: %s ceil_mode=1 (the pools compute floor output sizes: ceil_mode=False)", ErrUnsupported, op)
	}
	ks := attrInts(n, "kernel_shape", kernel)
	if len(ks) != 2 {
		return nil, nil, nil, fmt.Errorf("%w: %s kernel_shape %v (2-D windows are read)", ErrUnsupported, op, ks)
	}
	for _, d := range attrInts(n, "dilations", nil) {
		if d != 1 {
			return nil, nil, nil, fmt.Errorf("%w: %s dilations %v (dilation 1 is read)", ErrUnsupported, op, attrInts(n, "dilations", nil))
		}
	}
	st := attrInts(n, "strides", []int64{1, 1}) // ONNX's default stride is 1, also for pools
	if len(st) != 2 {
		return nil, nil, nil, fmt.Errorf("%w: %s strides %v", ErrUnsupported, op, st)
	}
	pd := attrInts(n, "pads", []int64{0, 0, 0, 0})
	if len(pd) != 4 || pd[0] != pd[2] || pd[1] != pd[3] {
		return nil, nil, nil, fmt.Errorf("%w: %s pads %v (symmetric [ph, pw, ph, pw] is read)", ErrUnsupported, op, pd)
	}
	for _, v := range append(append(append([]int64{}, ks...), st...), pd...) {
		if v < 0 || v > 1<<20 {
			return nil, nil, nil, fmt.Errorf("%w: %s window attribute %d", ErrFormat, op, v)
		}
	}
	return pair(int(ks[0]), int(ks[1])), pair(int(st[0]), int(st[1])), pair(int(pd[0]), int(pd[1])), nil
}

// image checks that the chain value is an image [N, C, H, W].
func (c *converter) image(op string) error {
	if len(c.curDim) != 3 {
		return fmt.Errorf("%w: %s on an input of shape [N, %v] (want [N, C, H, W])", ErrUnsupported, op, c.curDim)
	}
	return nil
}

// conv is a Conv with group 1 → conv2d (weight [out, in, kh, kw], bias [out]).
func (c *converter) conv(i int) (int, error) {
	n := c.nodes[i]
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if err := c.image("Conv"); err != nil {
		return 0, err
	}
	if g := attrInt(n, "group", 1); g != 1 {
		return 0, fmt.Errorf("%w: Conv attribute group=%d (grouped and depthwise convolutions are not a layer type; group 1 is read)", ErrUnsupported, g)
	}
	if len(n.GetInput()) < 2 {
		return 0, fmt.Errorf("%w: Conv without a weight", ErrFormat)
	}
	w, err := c.param(n.GetInput()[1])
	if err != nil {
		return 0, err
	}
	if len(w.shape) != 4 {
		return 0, fmt.Errorf("%w: Conv weight %s of shape %v (want [out, in, kh, kw])", ErrUnsupported, w.source, w.shape)
	}
	out, in := w.shape[0], w.shape[1]
	if in != c.curDim[0] {
		return 0, fmt.Errorf("%w: Conv weight %s is %v but the previous layer gives %d channels (wrong architecture for these weights?)", ErrUnsupported, w.source, w.shape, c.curDim[0])
	}
	k, s, p, err := c.window(n, []int64{int64(w.shape[2]), int64(w.shape[3])})
	if err != nil {
		return 0, err
	}
	if kh, kw := k.HW(0); kh != w.shape[2] || kw != w.shape[3] {
		return 0, fmt.Errorf("%w: Conv kernel_shape %v but weight %s is %v", ErrFormat, k, w.source, w.shape)
	}
	li := len(c.layers)
	l := nn.LayerSpec{Type: "conv2d", In: in, Out: out, Kernel: k, Stride: s, Padding: p}
	if err := c.setParam(li, "weight", w, w.shape); err != nil {
		return 0, err
	}
	if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
		b, err := c.param(n.GetInput()[2])
		if err != nil {
			return 0, err
		}
		if err := c.setParam(li, "bias", b, []int{out}); err != nil {
			return 0, err
		}
	} else {
		f := false
		l.Bias = &f
	}
	c.add(l, i)
	return 1, nil
}

// maxPool → maxpool2d.
func (c *converter) maxPool(i int) (int, error) {
	n := c.nodes[i]
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if err := c.image("MaxPool"); err != nil {
		return 0, err
	}
	if len(n.GetOutput()) > 1 && n.GetOutput()[1] != "" {
		return 0, fmt.Errorf("%w: MaxPool with an Indices output (return_indices=True)", ErrUnsupported)
	}
	if attrInt(n, "storage_order", 0) != 0 {
		return 0, fmt.Errorf("%w: MaxPool storage_order=1", ErrUnsupported)
	}
	k, s, p, err := c.window(n, nil)
	if err != nil {
		return 0, err
	}
	c.add(nn.LayerSpec{Type: "maxpool2d", Kernel: k, Stride: s, Padding: p}, i)
	return 1, nil
}

// avgPool → avgpool2d, whose padding counts in the average (PyTorch's
// count_include_pad=True): padding in the node's own pads needs
// count_include_pad=1.
func (c *converter) avgPool(i int) (int, error) {
	n := c.nodes[i]
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if err := c.image("AveragePool"); err != nil {
		return 0, err
	}
	k, s, p, err := c.window(n, nil)
	if err != nil {
		return 0, err
	}
	if ph, pw := p.HW(0); (ph != 0 || pw != 0) && attrInt(n, "count_include_pad", 0) == 0 {
		return 0, fmt.Errorf("%w: AveragePool with pads and count_include_pad=0 (nn.AvgPool2d(count_include_pad=False)); avgpool2d counts the padding in the average (count_include_pad=True)", ErrUnsupported)
	}
	c.add(nn.LayerSpec{Type: "avgpool2d", Kernel: k, Stride: s, Padding: p}, i)
	return 1, nil
}

// pad is torch.onnx's export of nn.AvgPool2d(padding=p) (count_include_pad
// True): Pad with zeros on H and W, then an AveragePool without pads. The
// two nodes become one avgpool2d; any other Pad is refused.
func (c *converter) pad(i int) (int, error) {
	n := c.nodes[i]
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if err := c.image("Pad"); err != nil {
		return 0, err
	}
	if m := attrs(n)["mode"]; m != nil && string(m.GetS()) != "constant" {
		return 0, fmt.Errorf("%w: Pad mode %q (zero padding before an AveragePool is read)", ErrUnsupported, m.GetS())
	}
	if len(n.GetInput()) < 2 || len(n.GetInput()) > 3 {
		return 0, fmt.Errorf("%w: Pad with %d inputs (opset ≥ 11: data, pads, value)", ErrUnsupported, len(n.GetInput()))
	}
	pads, err := c.param(n.GetInput()[1])
	if err != nil {
		return 0, err
	}
	d := pads.data
	if len(d) != 8 || d[0] != 0 || d[1] != 0 || d[4] != 0 || d[5] != 0 || d[2] != d[6] || d[3] != d[7] || d[2] < 0 || d[3] < 0 || d[2] > 1<<20 || d[3] > 1<<20 {
		return 0, fmt.Errorf("%w: Pad pads %v (symmetric padding of H and W before an AveragePool is read)", ErrUnsupported, d)
	}
	if len(n.GetInput()) == 3 && n.GetInput()[2] != "" {
		v, err := c.param(n.GetInput()[2])
		if err != nil || len(v.data) != 1 || v.data[0] != 0 {
			return 0, fmt.Errorf("%w: Pad with a value other than 0", ErrUnsupported)
		}
	}
	out := n.GetOutput()[0]
	j := i + 1
	for ; j < len(c.nodes) && c.nodes[j].GetOpType() == "Constant"; j++ {
		if _, err := c.constantNode(j); err != nil {
			return 0, err
		}
	}
	if j == len(c.nodes) || c.nodes[j].GetOpType() != "AveragePool" || len(c.nodes[j].GetInput()) != 1 || c.nodes[j].GetInput()[0] != out || c.users[out] != 1 {
		return 0, fmt.Errorf("%w: Pad not followed by an AveragePool that alone reads it (only nn.AvgPool2d's padding is read)", ErrUnsupported)
	}
	pool := c.nodes[j]
	k, s, p, err := c.window(pool, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", nodeName(pool, j), err)
	}
	if ph, pw := p.HW(0); ph != 0 || pw != 0 {
		return 0, fmt.Errorf("%w: Pad then AveragePool with pads %v", ErrUnsupported, p)
	}
	c.cur = out
	c.add(nn.LayerSpec{Type: "avgpool2d", Kernel: k, Stride: s, Padding: pair(int(d[2]), int(d[3]))}, j)
	return j - i + 1, nil
}

// globalAvgPool → adaptive_avgpool2d with output 1.
func (c *converter) globalAvgPool(i int) (int, error) {
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if err := c.image("GlobalAveragePool"); err != nil {
		return 0, err
	}
	c.add(nn.LayerSpec{Type: "adaptive_avgpool2d", Output: nn.IntPair{1}}, i)
	return 1, nil
}

// layerNorm is LayerNormalization (opset 17) → layernorm over the
// dimensions from axis on, with weight and bias of that shape.
func (c *converter) layerNorm(i int) (int, error) {
	n := c.nodes[i]
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if len(n.GetOutput()) > 1 && (n.GetOutput()[1] != "" || len(n.GetOutput()) > 2 && n.GetOutput()[2] != "") {
		return 0, fmt.Errorf("%w: LayerNormalization with Mean or InvStdDev outputs", ErrUnsupported)
	}
	rank := int64(len(c.curDim) + 1)
	ax := attrInt(n, "axis", -1)
	if ax < 0 {
		ax += rank
	}
	if ax < 1 || ax >= rank {
		return 0, fmt.Errorf("%w: LayerNormalization axis %d on [N, %v] (normalising the batch dimension is not nn.LayerNorm)", ErrUnsupported, attrInt(n, "axis", -1), c.curDim)
	}
	if attrInt(n, "stash_type", 1) != 1 {
		return 0, fmt.Errorf("%w: LayerNormalization stash_type=%d", ErrUnsupported, attrInt(n, "stash_type", 1))
	}
	shape := append([]int(nil), c.curDim[ax-1:]...)
	if len(n.GetInput()) != 3 || n.GetInput()[2] == "" {
		return 0, fmt.Errorf("%w: LayerNormalization without a bias (nn.LayerNorm has weight and bias)", ErrUnsupported)
	}
	li := len(c.layers)
	for k, name := range []string{"weight", "bias"} {
		p, err := c.param(n.GetInput()[k+1])
		if err != nil {
			return 0, err
		}
		if err := c.setParam(li, name, p, shape); err != nil {
			return 0, err
		}
	}
	eps := shortest32(attrFloat(n, "epsilon", 1e-5))
	c.add(nn.LayerSpec{Type: "layernorm", Shape: shape, Eps: &eps}, i)
	return 1, nil
}

// residual recovers a residual block from node i, the first of the nodes
// that read the chain value h while h has more readers: it follows the
// values computed from h in graph order until one value is left; when that
// value is made by an Add of two of them, the nodes before it form the two
// branches: the shortcut (empty when the Add reads h itself) and the body,
// which may end in a Mul by a one-element parameter (the block's scale).
// Which side is the body: the one under the Mul, else the one whose node
// names have "shortcut" on the other side, else the Add's second input
// (torch.onnx's order for shortcut(h) + body(h)). ok is false when the
// branches do not merge in such an Add (the GELU and SiLU patterns).
func (c *converter) residual(i int) (step int, ok bool, err error) {
	h := c.cur
	live := map[string]int{h: c.users[h]}
	tainted := map[string]bool{h: true}
	producer := map[string]int{}
	merge := -1
	for j := i; j < len(c.nodes) && merge < 0; j++ {
		n := c.nodes[j]
		hit := false
		for _, in := range n.GetInput() {
			if tainted[in] {
				hit = true
				live[in]--
				if live[in] <= 0 {
					delete(live, in)
				}
			}
		}
		if !hit {
			continue
		}
		for _, o := range n.GetOutput() {
			if o != "" {
				tainted[o] = true
				producer[o] = j
				if c.users[o] > 0 {
					live[o] = c.users[o]
				}
			}
		}
		if len(live) <= 1 {
			merge = j
		}
	}
	if merge < 0 || c.nodes[merge].GetOpType() != "Add" {
		return 0, false, nil
	}
	add := c.nodes[merge]
	if len(add.GetInput()) != 2 || !tainted[add.GetInput()[0]] || !tainted[add.GetInput()[1]] || add.GetInput()[0] == add.GetInput()[1] {
		return 0, false, nil
	}
	// The nodes each branch needs, back from the Add's input to h.
	branch := func(v string) map[int]bool {
		set := map[int]bool{}
		stack := []string{v}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			j, ok := producer[x]
			if !ok || x == h || set[j] {
				continue
			}
			set[j] = true
			for _, in := range c.nodes[j].GetInput() {
				if tainted[in] {
					stack = append(stack, in)
				}
			}
		}
		return set
	}
	ends := [2]string{add.GetInput()[0], add.GetInput()[1]}
	sets := [2]map[int]bool{branch(ends[0]), branch(ends[1])}
	for j := range sets[0] {
		if sets[1][j] {
			return 0, true, fmt.Errorf("%w: the two inputs of %s share %s (not a residual block: shortcut(h) + body(h))", ErrUnsupported, nodeName(add, merge), nodeName(c.nodes[j], j))
		}
	}
	for j := i; j < merge; j++ {
		if c.nodes[j].GetOpType() != "Constant" && !sets[0][j] && !sets[1][j] && reads(c.nodes[j], h) {
			return 0, true, fmt.Errorf("%w: %s reads %q but feeds neither input of %s", ErrUnsupported, nodeName(c.nodes[j], j), h, nodeName(add, merge))
		}
	}
	// Which is the body.
	body := 1
	var scale *constant
	scaleOf := func(k int) (*constant, string) {
		j, ok := producer[ends[k]]
		if !ok || c.nodes[j].GetOpType() != "Mul" || len(c.nodes[j].GetInput()) != 2 {
			return nil, ""
		}
		for a, in := range c.nodes[j].GetInput() {
			if p, err := c.param(in); err == nil && len(p.data) == 1 && tainted[c.nodes[j].GetInput()[1-a]] {
				return p, c.nodes[j].GetInput()[1-a]
			}
		}
		return nil, ""
	}
	names := func(k int) string {
		var s []string
		for j := range sets[k] {
			s = append(s, strings.ToLower(c.nodes[j].GetName()))
		}
		return strings.Join(s, " ")
	}
	s0, _ := scaleOf(0)
	s1, _ := scaleOf(1)
	switch {
	case ends[1] == h:
		body = 0
	case ends[0] == h:
		body = 1
	case s0 != nil && s1 == nil:
		body = 0
	case s1 != nil && s0 == nil:
		body = 1
	case strings.Contains(names(1), "shortcut") && !strings.Contains(names(0), "shortcut"):
		body = 0
	}
	bodyEnd := ends[body]
	bodySet := sets[body]
	if p, v := scaleOf(body); p != nil {
		scale = p
		delete(bodySet, producer[ends[body]])
		bodyEnd = v
	}
	li := len(c.layers)
	l := nn.LayerSpec{Type: "residual"}
	for k, part := range []string{"body", "shortcut"} {
		set, end := bodySet, bodyEnd
		if k == 1 {
			set, end = sets[1-body], ends[1-body]
		}
		var nodes []*pb.NodeProto
		for j := i; j < merge; j++ {
			if set[j] || len(c.nodes[j].GetOutput()) > 0 && !tainted[c.nodes[j].GetOutput()[0]] {
				nodes = append(nodes, c.nodes[j])
			}
		}
		layers, err := c.branch(part, li, nodes, end)
		if err != nil {
			return 0, true, err
		}
		if k == 0 {
			if len(layers) == 0 {
				return 0, true, fmt.Errorf("%w: %s: both inputs are the block's input %q", ErrUnsupported, nodeName(add, merge), h)
			}
			l.Body = layers
		} else {
			l.Shortcut = layers
		}
	}
	if scale != nil {
		t := true
		l.Scale = &t
		if err := c.setParam(li, "scale", scale, []int{1}); err != nil {
			return 0, true, err
		}
	}
	c.add(l, merge)
	return merge - i + 1, true, nil
}

// branch converts one branch of a residual block (nodes, in graph order,
// from the block input c.cur to end) with a converter of its own, and files
// its tensors under "li.part.j.name" with their sources, derived weights
// and notes.
func (c *converter) branch(part string, li int, nodes []*pb.NodeProto, end string) ([]nn.LayerSpec, error) {
	sub := &converter{
		opt:     c.opt,
		m:       &Model{Spec: &nn.Spec{}, State: nn.State{}, Source: map[string]string{}},
		inits:   c.inits,
		consts:  c.consts,
		users:   c.users,
		cur:     c.cur,
		curDim:  c.curDim,
		width:   c.width,
		nodes:   nodes,
		pending: -1,
		start:   c.cur,
	}
	if end != c.cur {
		if err := sub.run(); err != nil {
			return nil, fmt.Errorf("residual %s: %w", part, err)
		}
		if sub.cur != end {
			return nil, fmt.Errorf("%w: residual %s: the chain ends at %q, not at the Add's input %q", ErrUnsupported, part, sub.cur, end)
		}
		sub.align()
	}
	for k, t := range sub.m.State {
		key := fmt.Sprintf("%d.%s.%s", li, part, k)
		c.m.State[key], c.m.Source[key] = t, sub.m.Source[k]
	}
	c.m.Derived = append(c.m.Derived, sub.m.Derived...)
	c.m.BatchNormNodes += sub.m.BatchNormNodes
	c.m.TrainingBatchNorm = c.m.TrainingBatchNorm || sub.m.TrainingBatchNorm
	for _, n := range sub.m.Notes {
		c.m.Notes = appendOnce(c.m.Notes, n)
	}
	return sub.layers, nil
}
