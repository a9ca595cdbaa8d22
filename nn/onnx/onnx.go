// Package onnx turns an ONNX graph exported from PyTorch into certify's
// model.json (a sequential/v1 Spec) and the state its initialisers hold, so
// `certify import` can analyse a model given as two ONNX files (θ0, θT).
//
// The graph must be a chain: every operator node consumes the previous one's
// output (plus initialisers and constants) and the last one produces the
// graph's single output. Supported operators and the layer each becomes:
//
//	Gemm (transA 0, alpha = beta = 1)          linear
//	MatMul, optionally followed by Add of a vector   linear
//	Conv (group 1, dilation 1, symmetric pads) conv2d
//	MaxPool, AveragePool (ceil_mode 0)         maxpool2d, avgpool2d
//	  Pad(0) → AveragePool (torch.onnx's export of AvgPool2d(padding=p))  avgpool2d with padding p
//	GlobalAveragePool                          adaptive_avgpool2d, output 1
//	Relu, LeakyRelu, Tanh, Sigmoid, Softplus   relu, leaky_relu, tanh, sigmoid, softplus
//	Gelu, or its erf decomposition             gelu
//	  Div(√2) → Erf → Add(1) → Mul(x) → Mul(0.5) (torch.onnx's export of nn.GELU)
//	BatchNormalization on [N, C] / [N, C, H, W]   batchnorm1d / batchnorm2d (running statistics)
//	LayerNormalization (opset 17)              layernorm
//	Add of two branches of one value           residual (body, shortcut)
//	  Mul by a one-element parameter on the body's output   the residual's scale
//	Flatten (axis 1), Reshape to [N, −1]       flatten
//	Identity, Dropout                          nothing (a pass-through)
//
// A value read by two nodes starts a residual block: the values computed
// from it are followed in graph order until they merge in one Add, and the
// nodes of each Add input form the body and the shortcut (see residual),
// each converted like the top-level chain, so blocks nest.
//
// Weights may be initialisers, Identity aliases of initialisers (torch.onnx
// merges equal initialisers that way) or Transpose of an initialiser (a
// bias-free nn.Linear exported without constant folding). Any other
// operator is refused naming it and the node, with a hint for some
// (opHints: ReduceMean is probably a LayerNorm exported before opset 17, a
// final Softmax or LogSoftmax is not needed with cross_entropy); x·Sigmoid(x)
// is refused as SiLU.
//
// # The BatchNorm-folding trap
//
// torch.onnx.export in evaluation mode may fold a BatchNorm into the
// preceding Conv or Gemm and rename the folded weights (onnx::Conv_12). The
// line between two folded graphs is not the line between the trained
// parameters (the fold is not linear in θ), so its Δ is another quantity.
// Import records every weight that is not a raw parameter (Derived) and
// refuses a graph whose Gemm or Conv weights are derived while it has no
// BatchNormalization node, unless AllowFolded is set.
package onnx

import (
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/certify-mli/certify/nn"
	pb "github.com/certify-mli/certify/nn/onnx/onnxpb"
	"github.com/certify-mli/certify/nn/safetensors"
)

// Sentinel errors, for errors.Is.
var (
	// ErrFormat: not a parseable ONNX model, or an initialiser whose data
	// disagree with its dims or type.
	ErrFormat = errors.New("invalid ONNX model")
	// ErrUnsupported: an operator (or an attribute value) the import does
	// not handle, or a graph that is not a chain.
	ErrUnsupported = errors.New("unsupported ONNX graph")
	// ErrFolded: the graph looks BatchNorm-folded (see the package doc).
	ErrFolded = errors.New("folded parameterisation")
	// ErrTrainingBatchNorm: a BatchNormalization node exported in training
	// mode, whose running statistics the export itself updated.
	ErrTrainingBatchNorm = errors.New("BatchNormalization exported in training mode")
)

// TrainingBatchNormReason says why a training-mode BatchNormalization is
// refused and what to do instead.
const TrainingBatchNormReason = "torch.onnx.export with training=TrainingMode.TRAINING runs a training-mode forward pass on the example input, " +
	"so the graph's running_mean and running_var were already updated by that input and are not the trained model's " +
	"(L(α) then differs from the .pt route). Import the .pt state_dicts, or export in evaluation mode " +
	"(model.eval(); torch.onnx.export(..., do_constant_folding=False) keeps BatchNorm1d nodes); " +
	"--allow-training-batchnorm reads these statistics anyway"

// TrainingBatchNormNote is the note (and warning) of an import that
// accepted a training-mode BatchNormalization.
const TrainingBatchNormNote = "TRAINING-MODE BATCHNORM accepted (--allow-training-batchnorm): the running statistics are those the export's own training-mode forward pass left, not the trained model's"

// MaxFileSize bounds the ONNX file read, in bytes.
const MaxFileSize = 2 << 30

// Model is an ONNX graph read as a sequential model.
type Model struct {
	// Spec is the architecture; its Loss is empty (ONNX has no loss).
	Spec *nn.Spec
	// State holds every tensor Spec expects, keyed by state_dict name.
	State nn.State
	// Source maps a state key to where its value came from: the initialiser
	// name, "transpose(NAME)", or a note such as "absent (0)".
	Source map[string]string
	// Derived lists the initialisers used as weights that are not raw
	// parameters (names like onnx::MatMul_27 that torch.onnx gives to
	// constants it computed), in graph order.
	Derived []string
	// BatchNormNodes counts BatchNormalization nodes.
	BatchNormNodes int
	// TrainingBatchNorm: a BatchNormalization exported in training mode was
	// accepted (Options.AllowTrainingBatchNorm).
	TrainingBatchNorm bool
	// Opset is the default-domain opset version; Producer the exporter.
	Opset    int64
	Producer string
	// Notes says what was assumed or dropped (a training-mode BatchNorm
	// accepted, Dropout dropped, num_batches_tracked absent).
	Notes []string
}

// Options adjusts Read.
type Options struct {
	// AllowFolded imports a graph that looks BatchNorm-folded instead of
	// refusing it (the report then says the folded parameterisation was
	// interpolated).
	AllowFolded bool
	// AllowTrainingBatchNorm reads a BatchNormalization exported in
	// training mode with the running statistics the graph holds (which the
	// export's forward pass updated) instead of refusing it.
	AllowTrainingBatchNorm bool
}

// Read parses the ONNX model at path and converts its graph. Errors name
// the file and, for graph faults, the node (its name, or its index) and the
// operator.
func Read(path string, opt Options) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: %w: %d bytes (at most %d are read)", path, ErrFormat, st.Size(), int64(MaxFileSize))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Decode(b, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Decode is Read on the bytes of a serialised ModelProto.
func Decode(b []byte, opt Options) (*Model, error) {
	var mp pb.ModelProto
	if err := proto.Unmarshal(b, &mp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	g := mp.GetGraph()
	if g == nil || len(g.GetNode()) == 0 {
		return nil, fmt.Errorf("%w: no graph (is this an ONNX model?)", ErrFormat)
	}
	c := &converter{
		opt:    opt,
		m:      &Model{State: nn.State{}, Source: map[string]string{}, Producer: strings.TrimSpace(mp.GetProducerName() + " " + mp.GetProducerVersion())},
		inits:  map[string]*pb.TensorProto{},
		consts: map[string]*constant{},
		users:  map[string]int{},
	}
	for _, o := range mp.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			c.m.Opset = o.GetVersion()
		}
	}
	if err := c.convert(g); err != nil {
		return nil, err
	}
	if err := c.checkFold(opt); err != nil {
		return nil, err
	}
	return c.m, nil
}

// constant is a value known at import time: an initialiser, a Constant
// node, or an Identity/Transpose of one.
type constant struct {
	shape  []int
	data   []float64
	source string // initialiser name, "transpose(NAME)", or "Constant node NAME"
	raw    bool   // a raw parameter name (not onnx::…, not a Constant node)
}

type converter struct {
	opt    Options
	m      *Model
	inits  map[string]*pb.TensorProto
	consts map[string]*constant
	users  map[string]int // how many nodes read each value
	cur    string         // the chain value
	curDim []int          // its shape without the batch dimension (nil if unknown)
	layers []nn.LayerSpec
	// layerNode is the index in nodes of the (first) node of each layer.
	layerNode []int
	width     int
	nodes     []*pb.NodeProto
	// pending: the index in layers of a linear from MatMul still waiting
	// for its Add (bias), or −1.
	pending int
	// err is a layer that did not fit its input shape (set by add).
	err error
	// start is a residual branch's input, which the other branch reads
	// too ("" at the top level).
	start string
}

// rawName matches the names torch.onnx gives initialisers that are module
// parameters: dotted paths like "0.weight", "fc1.bias", "net.3.running_mean".
var rawName = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)

func nodeName(n *pb.NodeProto, i int) string {
	if n.GetName() != "" {
		return fmt.Sprintf("node %q (%s)", n.GetName(), n.GetOpType())
	}
	return fmt.Sprintf("node %d (%s)", i, n.GetOpType())
}

func (c *converter) convert(g *pb.GraphProto) error {
	for _, t := range g.GetInitializer() {
		c.inits[t.GetName()] = t
	}
	// The graph input: the one that is not an initialiser.
	var inputs []*pb.ValueInfoProto
	for _, in := range g.GetInput() {
		if _, ok := c.inits[in.GetName()]; !ok {
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 {
		return fmt.Errorf("%w: %d graph inputs besides initialisers (a model with one input is read)", ErrUnsupported, len(inputs))
	}
	if len(g.GetOutput()) != 1 {
		return fmt.Errorf("%w: %d graph outputs (a model with one output is read)", ErrUnsupported, len(g.GetOutput()))
	}
	in := inputs[0]
	shape, err := inputShape(in)
	if err != nil {
		return err
	}
	c.cur, c.curDim = in.GetName(), shape
	c.width = 1
	for _, d := range shape {
		c.width *= d
	}
	c.m.Spec = &nn.Spec{Format: nn.FormatSequentialV1, InputShape: shape}
	c.pending = -1
	for _, n := range g.GetNode() {
		for _, v := range n.GetInput() {
			c.users[v]++
		}
	}
	c.nodes = g.GetNode()
	if err := c.run(); err != nil {
		return err
	}
	if out := g.GetOutput()[0].GetName(); c.cur != out {
		return fmt.Errorf("%w: the chain of operators ends at %q, not at the graph output %q", ErrUnsupported, c.cur, out)
	}
	if len(c.layers) == 0 {
		return fmt.Errorf("%w: no layers", ErrUnsupported)
	}
	c.m.Spec.Layers = c.layers
	c.align()
	// An initialiser named after another key is one torch.onnx shared
	// between equal tensors; one whose name differs from its key only by a
	// module path ("net.3.weight" → "3.weight") or that is not a
	// Sequential's ("fc1.weight" → "1.weight") was renamed.
	var shared, renamed []string
	for _, k := range c.m.State.Names() {
		src := c.m.Source[k]
		if !rawName.MatchString(src) || src == k {
			continue
		}
		m := torchIndex.FindStringSubmatch(src)
		if m != nil && !strings.HasSuffix(src, "."+k) {
			shared = append(shared, k+" ← "+src)
		} else {
			renamed = append(renamed, k+" ← "+src)
		}
	}
	sort.Strings(renamed)
	sort.Strings(shared)
	if len(renamed) > 0 {
		c.m.Notes = append(c.m.Notes, fmt.Sprintf("tensors renamed to nn.Sequential state_dict keys (layer index: position in the graph or in the module path): %s", strings.Join(renamed, ", ")))
	}
	if len(shared) > 0 {
		c.m.Notes = append(c.m.Notes, fmt.Sprintf("the exporter merged equal initialisers; read from the shared one (same values): %s", strings.Join(shared, ", ")))
	}
	return nil
}

// run converts c.nodes in order, each handler consuming one node or more.
func (c *converter) run() error {
	for i := 0; i < len(c.nodes); {
		n := c.nodes[i]
		step, err := c.node(i)
		if err == nil {
			err, c.err = c.err, nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", nodeName(n, i), err)
		}
		i += step
	}
	return nil
}

// torchIndex matches a raw parameter name "PREFIX<i>.<tensor>" of an
// nn.Sequential (PREFIX is "" or a dotted path such as "net.").
var torchIndex = regexp.MustCompile(`^((?:.*\.)?)([0-9]+)\.(weight|bias|running_mean|running_var)$`)

// headIndex matches "PREFIX<i>", the part of a raw parameter name before
// its tensor name within layer i (PREFIX is "" or a dotted path).
var headIndex = regexp.MustCompile(`^((?:.*\.)?)([0-9]+)$`)

// nodeIndex matches the name torch.onnx (≥ 1.13) gives a node of the
// module at index i of an nn.Sequential: "/PREFIX/i/Op" ("/5/MatMul",
// "/net/3/Relu"), with an optional suffix ("/3/Mul_1").
var nodeIndex = regexp.MustCompile(`^/(.*?/)?([0-9]+)/[A-Za-z]+(_[0-9]+)?$`)

// LayerIndexWarning starts the note of an import whose layer indices could
// not be established.
const LayerIndexWarning = "LAYER INDICES UNCERTAIN"

// align renumbers the layers to PyTorch's indices: a layer's index is the
// one most of its tensors' initialiser names give ("3.weight"), else the one
// its node's name gives ("/5/MatMul": torch.onnx names nodes after the
// module path; constant folding renames a transposed weight onnx::MatMul_34
// but keeps the node name). Identity layers stand in for the modules the
// export dropped (Dropout, nn.Identity), so the state keys are the module's
// own state_dict keys. Initialiser names that are not an nn.Sequential's
// keep the graph positions, with a note; indices that leave a gap only some
// of the layers could fill, or go backwards, are reported with a
// LayerIndexWarning note instead of claimed.
func (c *converter) align() {
	votes := map[int]map[int]int{} // layer position → torch index → tensors naming it
	prefix := "\x00"
	for key, src := range c.m.Source {
		var li int
		var tname string
		if _, err := fmt.Sscanf(strings.Replace(key, ".", " ", 1), "%d %s", &li, &tname); err != nil {
			return
		}
		if tname == "num_batches_tracked" {
			continue
		}
		// src is PREFIX<i>.<tname> (tname may be nested: body.0.weight).
		var m []string
		if h := strings.TrimSuffix(src, "."+tname); h != src && rawName.MatchString(src) {
			m = headIndex.FindStringSubmatch(h)
		}
		if m == nil && !rawName.MatchString(src) || m == nil && torchIndex.MatchString(src) {
			// A derived weight (onnx::…), or an initialiser torch.onnx
			// shared between equal tensors: no vote on the index.
			continue
		}
		if prefix == "\x00" && m != nil {
			prefix = m[1]
		}
		if m == nil || m[1] != prefix {
			c.m.Notes = appendOnce(c.m.Notes, "layer indices are graph positions (initialiser names are not nn.Sequential state_dict keys)")
			return
		}
		var ti int
		fmt.Sscan(m[2], &ti)
		if votes[li] == nil {
			votes[li] = map[int]int{}
		}
		votes[li][ti]++
	}
	// Each layer's index is the one most of its tensors name (a tensor
	// merged with an equal one elsewhere — BatchNorm's ones and zeros at
	// initialisation — names the other layer).
	want := map[int]int{}
	for li, v := range votes {
		best, n, tie := 0, 0, false
		for ti, k := range v {
			switch {
			case k > n:
				best, n, tie = ti, k, false
			case k == n:
				tie = true
			}
		}
		if !tie {
			want[li] = best
		}
	}
	// Layers without a vote: the index in their node's name, when every
	// such name has the same module path (and it is the initialisers' path).
	nodePrefix, fromNodes := "\x00", map[int]int{}
	for li, ni := range c.layerNode {
		m := nodeIndex.FindStringSubmatch(c.nodes[ni].GetName())
		if m == nil {
			continue
		}
		p := strings.ReplaceAll(m[1], "/", ".")
		if nodePrefix == "\x00" {
			nodePrefix = p
		}
		if p != nodePrefix || prefix != "\x00" && p != prefix {
			fromNodes = nil
			break
		}
		var ti int
		fmt.Sscan(m[2], &ti)
		fromNodes[li] = ti
	}
	for li, ti := range fromNodes {
		if _, ok := want[li]; !ok {
			want[li] = ti
		}
	}
	// New position of every layer: layers with an index at it, the others
	// right after their predecessor; an index that would go backwards (a
	// merged name) is ignored.
	pos := make([]int, len(c.layers))
	next := 0
	var doubt []string
	for li := range c.layers {
		ti, ok := want[li]
		switch {
		case ok && ti >= next:
			next = ti
		case ok:
			doubt = append(doubt, fmt.Sprintf("layer %d (%s) is named index %d but follows index %d", li, c.layers[li].Type, ti, next-1))
		default:
			// Unindexed: certain only when the next indexed layer leaves
			// no room for a dropped module before this one.
			gap := 0
			for lj := li + 1; lj < len(c.layers); lj++ {
				if tj, ok := want[lj]; ok {
					gap = tj - next - (lj - li)
					break
				}
			}
			if gap > 0 {
				doubt = append(doubt, fmt.Sprintf("layer %d (%s) has no index in its tensor or node names and could sit at %d to %d", li, c.layers[li].Type, next, next+gap))
			}
		}
		pos[li] = next
		next++
	}
	if len(doubt) > 0 {
		c.m.Notes = append(c.m.Notes, fmt.Sprintf("%s: the layers keep their graph order but their nn.Sequential indices are not established (%s); the state keys may not be your state_dict's (export with do_constant_folding=False, or import the .pt state_dicts with a model.json)", LayerIndexWarning, strings.Join(doubt, "; ")))
	}
	if next == len(c.layers) {
		return
	}
	layers := make([]nn.LayerSpec, next)
	for k := range layers {
		layers[k] = nn.LayerSpec{Type: "identity"}
	}
	for li, l := range c.layers {
		layers[pos[li]] = l
	}
	state, source := nn.State{}, map[string]string{}
	for key, t := range c.m.State {
		var li int
		var tname string
		fmt.Sscanf(strings.Replace(key, ".", " ", 1), "%d %s", &li, &tname)
		nk := nn.ParamKey(pos[li], tname)
		state[nk], source[nk] = t, c.m.Source[key]
	}
	c.layers, c.m.Spec.Layers, c.m.State, c.m.Source = layers, layers, state, source
	if len(doubt) == 0 {
		c.m.Notes = append(c.m.Notes, fmt.Sprintf("identity layers stand where the export dropped modules (Dropout, nn.Identity), so the layer indices are the nn.Sequential's: %d layers", len(layers)))
	}
}

// inputShape is the input's shape without its first (batch) dimension.
func inputShape(in *pb.ValueInfoProto) ([]int, error) {
	tt := in.GetType().GetTensorType()
	if tt == nil || tt.GetShape() == nil {
		return nil, fmt.Errorf("%w: input %q has no tensor shape", ErrUnsupported, in.GetName())
	}
	dims := tt.GetShape().GetDim()
	if len(dims) < 2 {
		return nil, fmt.Errorf("%w: input %q has rank %d; want [N, features…]", ErrUnsupported, in.GetName(), len(dims))
	}
	var out []int
	for k, d := range dims[1:] {
		if _, fixed := d.GetValue().(*pb.TensorShapeProto_Dimension_DimValue); !fixed || d.GetDimValue() <= 0 || d.GetDimValue() > 1<<31 {
			return nil, fmt.Errorf("%w: input %q dimension %d is not a fixed positive size (only the batch dimension may be dynamic)", ErrUnsupported, in.GetName(), k+1)
		}
		out = append(out, int(d.GetDimValue()))
	}
	return out, nil
}

// opHandlers maps an operator to its conversion. A handler reads node i
// (and maybe the following ones) and returns how many nodes it consumed.
var opHandlers map[string]func(c *converter, i int) (int, error)

// opHints says what an unsupported operator probably is, and what to do.
var opHints = map[string]string{
	"ReduceMean": "probably an nn.LayerNorm, which torch.onnx exports before opset 17 as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div; " +
		"export at opset 17 (torch.onnx.export(..., opset_version=17)), which keeps it as one LayerNormalization node",
	"Softmax": "a Softmax as the last layer is not needed: the cross_entropy loss already applies log-softmax to the model's output, " +
		"so export the model without it (e.g. model[:-1]) and import with --loss cross_entropy",
	"LogSoftmax": "a LogSoftmax as the last layer is not needed: the cross_entropy loss already applies log-softmax to the model's output, " +
		"so export the model without it (e.g. model[:-1]) and import with --loss cross_entropy",
}

func init() {
	act := func(kind string) func(c *converter, i int) (int, error) {
		return func(c *converter, i int) (int, error) {
			if err := c.chainInput(i, 0); err != nil {
				return 0, err
			}
			c.add(nn.LayerSpec{Type: kind}, i)
			return 1, nil
		}
	}
	opHandlers = map[string]func(c *converter, i int) (int, error){
		"Constant":           (*converter).constantNode,
		"Gemm":               (*converter).gemm,
		"MatMul":             (*converter).matmul,
		"Add":                (*converter).addNode,
		"Relu":               act("relu"),
		"Tanh":               act("tanh"),
		"Sigmoid":            (*converter).sigmoid,
		"LeakyRelu":          (*converter).leakyRelu,
		"Softplus":           (*converter).softplus,
		"Gelu":               (*converter).gelu,
		"Div":                (*converter).geluErf,
		"BatchNormalization": (*converter).batchNorm,
		"Flatten":            (*converter).flatten,
		"Reshape":            (*converter).reshape,
		"Identity":           (*converter).identity,
		"Dropout":            (*converter).dropout,
		"Transpose":          (*converter).transpose,
		"Mul":                (*converter).mul,
		"Conv":               (*converter).conv,
		"MaxPool":            (*converter).maxPool,
		"AveragePool":        (*converter).avgPool,
		"Pad":                (*converter).pad,
		"GlobalAveragePool":  (*converter).globalAvgPool,
		"LayerNormalization": (*converter).layerNorm,
	}
}

func (c *converter) node(i int) (int, error) {
	n := c.nodes[i]
	op := n.GetOpType()
	if len(n.GetOutput()) == 0 || n.GetOutput()[0] == "" {
		return 0, fmt.Errorf("%w: a node without an output", ErrFormat)
	}
	if n.GetDomain() != "" && n.GetDomain() != "ai.onnx" {
		return 0, fmt.Errorf("%w: operator domain %q (only the default ONNX domain is read)", ErrUnsupported, n.GetDomain())
	}
	if op != "Constant" && c.cur != c.start && c.users[c.cur] > 1 && reads(n, c.cur) {
		// The chain value feeds two branches: a residual block when they
		// merge in an Add.
		step, ok, err := c.residual(i)
		if ok || err != nil {
			return step, err
		}
	}
	h, ok := opHandlers[op]
	if !ok && opHints[op] != "" {
		return 0, fmt.Errorf("%w: operator %s: %s", ErrUnsupported, op, opHints[op])
	}
	if !ok {
		return 0, fmt.Errorf("%w: operator %s (supported: Gemm, MatMul+Add, Conv, MaxPool, AveragePool, GlobalAveragePool, Relu, LeakyRelu, Tanh, Sigmoid, Gelu or its erf decomposition, Softplus, BatchNormalization, LayerNormalization, Add of two branches (residual), Mul by a scalar parameter (residual scale), Flatten, Reshape to [N, -1], Identity, Dropout)", ErrUnsupported, op)
	}
	if c.pending >= 0 && op != "Add" && op != "Constant" {
		c.pending = -1 // the MatMul's linear has no bias
	}
	return h(c, i)
}

// add appends a layer and moves the chain to node i's first output.
//
// The shape of one example after the layer is nn.BuildLayer's; a layer
// that does not fit the shape before it (weights for another architecture)
// is recorded in c.err, which the node loop returns.
func (c *converter) add(l nn.LayerSpec, i int) {
	c.layers = append(c.layers, l)
	c.layerNode = append(c.layerNode, i)
	c.cur = c.nodes[i].GetOutput()[0]
	if l.Type == "linear" && l.Bias != nil && !*l.Bias {
		// A MatMul's linear whose bias (an Add) may still follow: the
		// shape does not depend on it.
		l.Bias = nil
	}
	_, out, err := nn.BuildLayer(l, c.curDim)
	if err != nil {
		if c.err == nil {
			c.err = fmt.Errorf("%w: layer %d (%s) does not fit the shape [N, %v] before it (wrong architecture for these weights?): %v", ErrUnsupported, len(c.layers)-1, l.Type, c.curDim, err)
		}
		return
	}
	c.curDim = out
	c.width = numel(out)
}

// chainInput checks that input k of node i is the chain value and that the
// chain value is read by no other node (the graph is a chain).
func (c *converter) chainInput(i, k int) error {
	n := c.nodes[i]
	if len(n.GetInput()) <= k || n.GetInput()[k] != c.cur {
		return fmt.Errorf("%w: input %d is not the previous layer's output %q (the graph must be a chain)", ErrUnsupported, k, c.cur)
	}
	if c.users[c.cur] > 1 && c.cur != c.start {
		return fmt.Errorf("%w: %q is read by %d nodes: a branching graph whose branches do not merge in an Add (a residual block is shortcut(h) + body(h))", ErrUnsupported, c.cur, c.users[c.cur])
	}
	return nil
}

// param resolves a node input that must be known at import time.
func (c *converter) param(name string) (*constant, error) {
	if k, ok := c.consts[name]; ok {
		return k, nil
	}
	t, ok := c.inits[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q is neither an initialiser nor a constant (weights computed from the input are not read)", ErrUnsupported, name)
	}
	shape, data, err := tensorValues(t)
	if err != nil {
		return nil, err
	}
	k := &constant{shape: shape, data: data, source: name, raw: rawName.MatchString(name) && !strings.Contains(name, "::")}
	c.consts[name] = k
	return k, nil
}

// setParam stores a tensor of layer index li under its state_dict name.
func (c *converter) setParam(li int, name string, k *constant, shape []int) error {
	if numel(shape) != len(k.data) {
		return fmt.Errorf("%w: %s (%s) has %d elements, layer %d needs %s %v", ErrUnsupported, name, k.source, len(k.data), li, name, shape)
	}
	key := nn.ParamKey(li, name)
	c.m.State[key] = &nn.Tensor{Shape: append([]int(nil), shape...), Data: k.data}
	c.m.Source[key] = k.source
	if !k.raw && !strings.HasPrefix(k.source, "absent") {
		c.m.Derived = append(c.m.Derived, k.source)
	}
	return nil
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func attrs(n *pb.NodeProto) map[string]*pb.AttributeProto {
	out := map[string]*pb.AttributeProto{}
	for _, a := range n.GetAttribute() {
		out[a.GetName()] = a
	}
	return out
}

func attrInt(n *pb.NodeProto, name string, def int64) int64 {
	if a, ok := attrs(n)[name]; ok {
		return a.GetI()
	}
	return def
}

func attrFloat(n *pb.NodeProto, name string, def float64) float64 {
	if a, ok := attrs(n)[name]; ok {
		return float64(a.GetF())
	}
	return def
}

func (c *converter) constantNode(i int) (int, error) {
	n := c.nodes[i]
	a, ok := attrs(n)["value"]
	if !ok || a.GetT() == nil || len(n.GetOutput()) != 1 {
		return 0, fmt.Errorf("%w: a Constant without a tensor value (value_float and friends are not read)", ErrUnsupported)
	}
	shape, data, err := tensorValues(a.GetT())
	if err != nil {
		return 0, err
	}
	c.consts[n.GetOutput()[0]] = &constant{shape: shape, data: data, source: "Constant " + n.GetName()}
	return 1, nil
}

// identity aliases an initialiser (torch.onnx's merged initialisers) or
// passes the chain through.
func (c *converter) identity(i int) (int, error) {
	n := c.nodes[i]
	if len(n.GetInput()) != 1 || len(n.GetOutput()) != 1 {
		return 0, fmt.Errorf("%w: Identity with %d inputs", ErrUnsupported, len(n.GetInput()))
	}
	if n.GetInput()[0] == c.cur {
		if err := c.chainInput(i, 0); err != nil {
			return 0, err
		}
		c.cur = n.GetOutput()[0]
		return 1, nil
	}
	k, err := c.param(n.GetInput()[0])
	if err != nil {
		return 0, err
	}
	c.consts[n.GetOutput()[0]] = k
	return 1, nil
}

func (c *converter) dropout(i int) (int, error) {
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	c.cur = c.nodes[i].GetOutput()[0]
	c.m.Notes = appendOnce(c.m.Notes, "Dropout nodes are read as the identity (evaluation mode)")
	return 1, nil
}

func appendOnce(notes []string, s string) []string {
	for _, n := range notes {
		if n == s {
			return notes
		}
	}
	return append(notes, s)
}

// transpose of a 2-D initialiser (perm [1, 0]) is a known weight.
func (c *converter) transpose(i int) (int, error) {
	n := c.nodes[i]
	if len(n.GetInput()) != 1 || n.GetInput()[0] == c.cur {
		return 0, fmt.Errorf("%w: Transpose of an activation", ErrUnsupported)
	}
	k, err := c.param(n.GetInput()[0])
	if err != nil {
		return 0, err
	}
	if len(k.shape) != 2 {
		return 0, fmt.Errorf("%w: Transpose of a %d-D tensor", ErrUnsupported, len(k.shape))
	}
	if p := attrs(n)["perm"]; p != nil && !(len(p.GetInts()) == 2 && p.GetInts()[0] == 1 && p.GetInts()[1] == 0) {
		return 0, fmt.Errorf("%w: Transpose with perm %v", ErrUnsupported, p.GetInts())
	}
	c.consts[n.GetOutput()[0]] = &constant{shape: []int{k.shape[1], k.shape[0]}, data: transposed(k.data, k.shape[0], k.shape[1]), source: "transpose(" + k.source + ")", raw: k.raw}
	return 1, nil
}

// transposed returns the [c, r] transpose of the row-major [r, c] matrix d.
func transposed(d []float64, r, cols int) []float64 {
	out := make([]float64, len(d))
	for a := 0; a < r; a++ {
		for b := 0; b < cols; b++ {
			out[b*r+a] = d[a*cols+b]
		}
	}
	return out
}

func (c *converter) gemm(i int) (int, error) {
	n := c.nodes[i]
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if len(c.curDim) != 1 {
		return 0, fmt.Errorf("%w: Gemm on an input of shape [N, %v] (flatten first)", ErrUnsupported, c.curDim)
	}
	if attrInt(n, "transA", 0) != 0 || attrFloat(n, "alpha", 1) != 1 || attrFloat(n, "beta", 1) != 1 {
		return 0, fmt.Errorf("%w: Gemm with transA=%d alpha=%v beta=%v (torch.nn.Linear gives 0, 1, 1)", ErrUnsupported, attrInt(n, "transA", 0), attrFloat(n, "alpha", 1), attrFloat(n, "beta", 1))
	}
	if len(n.GetInput()) < 2 {
		return 0, fmt.Errorf("%w: Gemm without B", ErrUnsupported)
	}
	w, err := c.param(n.GetInput()[1])
	if err != nil {
		return 0, err
	}
	if len(w.shape) != 2 {
		return 0, fmt.Errorf("%w: Gemm weight %s of shape %v", ErrUnsupported, w.source, w.shape)
	}
	if attrInt(n, "transB", 0) == 0 { // B is [in, out]: the weight is its transpose
		w = &constant{shape: []int{w.shape[1], w.shape[0]}, data: transposed(w.data, w.shape[0], w.shape[1]), source: "transpose(" + w.source + ")", raw: w.raw}
	}
	out, in := w.shape[0], w.shape[1]
	if in != c.width {
		return 0, fmt.Errorf("%w: weight %s is [%d, %d] but the previous layer gives %d features (wrong architecture for these weights?)", ErrUnsupported, w.source, out, in, c.width)
	}
	li := len(c.layers)
	hasBias := len(n.GetInput()) > 2 && n.GetInput()[2] != ""
	l := nn.LayerSpec{Type: "linear", In: in, Out: out}
	if !hasBias {
		f := false
		l.Bias = &f
	}
	if err := c.setParam(li, "weight", w, []int{out, in}); err != nil {
		return 0, err
	}
	if hasBias {
		b, err := c.param(n.GetInput()[2])
		if err != nil {
			return 0, err
		}
		if numel(b.shape) != out {
			return 0, fmt.Errorf("%w: Gemm bias %s of shape %v for %d outputs (broadcast biases are not read)", ErrUnsupported, b.source, b.shape, out)
		}
		if err := c.setParam(li, "bias", b, []int{out}); err != nil {
			return 0, err
		}
	}
	c.add(l, i)
	return 1, nil
}

func (c *converter) matmul(i int) (int, error) {
	n := c.nodes[i]
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if len(c.curDim) != 1 {
		return 0, fmt.Errorf("%w: MatMul on an input of shape [N, %v] (flatten first)", ErrUnsupported, c.curDim)
	}
	if len(n.GetInput()) != 2 {
		return 0, fmt.Errorf("%w: MatMul with %d inputs", ErrFormat, len(n.GetInput()))
	}
	w, err := c.param(n.GetInput()[1])
	if err != nil {
		return 0, err
	}
	if len(w.shape) != 2 {
		return 0, fmt.Errorf("%w: MatMul weight %s of shape %v", ErrUnsupported, w.source, w.shape)
	}
	in, out := w.shape[0], w.shape[1]
	if in != c.width {
		return 0, fmt.Errorf("%w: weight %s is [%d, %d] (x·W) but the previous layer gives %d features (wrong architecture for these weights?)", ErrUnsupported, w.source, in, out, c.width)
	}
	wt := &constant{shape: []int{out, in}, data: transposed(w.data, in, out), source: "transpose(" + w.source + ")", raw: w.raw}
	if strings.HasPrefix(w.source, "transpose(") { // Transpose(param) then MatMul: the raw weight
		wt.source = strings.TrimSuffix(strings.TrimPrefix(w.source, "transpose("), ")")
	}
	li := len(c.layers)
	f := false
	if err := c.setParam(li, "weight", wt, []int{out, in}); err != nil {
		return 0, err
	}
	c.add(nn.LayerSpec{Type: "linear", In: in, Out: out, Bias: &f}, i)
	c.pending = li
	return 1, nil
}

// addNode is the bias of a preceding MatMul; other Adds are refused.
func (c *converter) addNode(i int) (int, error) {
	n := c.nodes[i]
	if len(n.GetInput()) != 2 {
		return 0, fmt.Errorf("%w: Add with %d inputs", ErrUnsupported, len(n.GetInput()))
	}
	a, b := n.GetInput()[0], n.GetInput()[1]
	if a != c.cur && b != c.cur {
		return 0, fmt.Errorf("%w: Add that does not read the previous layer's output %q", ErrUnsupported, c.cur)
	}
	other := b
	k := 0
	if b == c.cur {
		other, k = a, 1
	}
	if _, isConst := c.consts[other]; !isConst {
		if _, isInit := c.inits[other]; !isInit {
			return 0, fmt.Errorf("%w: Add of two activations that is not where two branches of one value merge (a residual block is shortcut(h) + body(h))", ErrUnsupported)
		}
	}
	if c.pending < 0 {
		return 0, fmt.Errorf("%w: Add of a constant not following a MatMul (no layer type adds a constant)", ErrUnsupported)
	}
	if err := c.chainInput(i, k); err != nil {
		return 0, err
	}
	bias, err := c.param(other)
	if err != nil {
		return 0, err
	}
	l := &c.layers[c.pending]
	if numel(bias.shape) != l.Out {
		return 0, fmt.Errorf("%w: bias %s of shape %v after a MatMul with %d outputs", ErrUnsupported, bias.source, bias.shape, l.Out)
	}
	if err := c.setParam(c.pending, "bias", bias, []int{l.Out}); err != nil {
		return 0, err
	}
	l.Bias = nil
	c.pending = -1
	c.cur = n.GetOutput()[0]
	return 1, nil
}

// mul: a Mul by a scalar parameter is residual's gain; other Muls (outside
// the GELU decomposition) are refused.
func (c *converter) mul(i int) (int, error) {
	n := c.nodes[i]
	for _, in := range n.GetInput() {
		if in == c.cur {
			continue
		}
		if _, ok := c.inits[in]; ok {
			return 0, fmt.Errorf("%w: Mul by a parameter outside a residual block (a scalar parameter is read as the residual's scale only on the body's output just before the Add)", ErrUnsupported)
		}
	}
	return 0, fmt.Errorf("%w: Mul outside a GELU decomposition", ErrUnsupported)
}

// sigmoid is an activation, unless its input is also multiplied by its
// output: x·σ(x) is SiLU, which is refused by name.
func (c *converter) sigmoid(i int) (int, error) {
	n := c.nodes[i]
	if len(n.GetInput()) == 1 && n.GetInput()[0] == c.cur && len(n.GetOutput()) == 1 {
		for _, m := range c.nodes[i+1:] {
			in := m.GetInput()
			if m.GetOpType() == "Mul" && len(in) == 2 && (in[0] == c.cur && in[1] == n.GetOutput()[0] || in[1] == c.cur && in[0] == n.GetOutput()[0]) {
				return 0, fmt.Errorf("%w: x·Sigmoid(x) is SiLU (nn.SiLU), an activation this build does not support yet", ErrUnsupported)
			}
		}
	}
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	c.add(nn.LayerSpec{Type: "sigmoid"}, i)
	return 1, nil
}

func (c *converter) leakyRelu(i int) (int, error) {
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	s := attrFloat(c.nodes[i], "alpha", 0.01)
	// ONNX stores float32: use the float64 nearest to the decimal PyTorch
	// was given when it prints shortest as float32 (0.2, not 0.20000000298).
	s = shortest32(s)
	c.add(nn.LayerSpec{Type: "leaky_relu", Slope: &s}, i)
	return 1, nil
}

// shortest32 is the float64 value of the shortest decimal that rounds to the
// float32 v (so an exported 0.2 is read back as 0.2).
func shortest32(v float64) float64 {
	var f float64
	fmt.Sscan(fmt.Sprint(float32(v)), &f)
	return f
}

func (c *converter) softplus(i int) (int, error) {
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	c.add(nn.LayerSpec{Type: "softplus"}, i)
	c.m.Notes = appendOnce(c.m.Notes, "ONNX Softplus has no threshold: read as torch.nn.Softplus(beta=1, threshold=20), which is linear above 20")
	return 1, nil
}

func (c *converter) gelu(i int) (int, error) {
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	approx := "none"
	if a, ok := attrs(c.nodes[i])["approximate"]; ok {
		approx = string(a.GetS())
	}
	if approx != "none" && approx != "tanh" {
		return 0, fmt.Errorf("%w: Gelu approximate=%q", ErrUnsupported, approx)
	}
	c.add(nn.LayerSpec{Type: "gelu", Approximate: approx}, i)
	return 1, nil
}

// geluErf matches x → Div(x, √2) → Erf → Add(·, 1) → Mul(x, ·) → Mul(·, 0.5),
// torch.onnx's export of nn.GELU() (exact) before opset 20, with Constant
// nodes in between; it returns how many nodes it consumed.
func (c *converter) geluErf(i int) (int, error) {
	x := c.cur
	fail := fmt.Errorf("%w: Div outside the erf decomposition of GELU (x/√2 → Erf → +1 → ·x → ·0.5)", ErrUnsupported)
	var seq []int // indices of the five non-Constant nodes
	j := i
	for ; j < len(c.nodes) && len(seq) < 5; j++ {
		if c.nodes[j].GetOpType() == "Constant" {
			if _, err := c.constantNode(j); err != nil {
				return 0, err
			}
			continue
		}
		if len(c.nodes[j].GetOutput()) == 0 {
			return 0, fail
		}
		seq = append(seq, j)
	}
	if len(seq) < 5 {
		return 0, fail
	}
	want := []string{"Div", "Erf", "Add", "Mul", "Mul"}
	for k, s := range seq {
		if c.nodes[s].GetOpType() != want[k] {
			return 0, fail
		}
	}
	out := func(k int) string { return c.nodes[seq[k]].GetOutput()[0] }
	in := func(k int) []string { return c.nodes[seq[k]].GetInput() }
	isConst := func(name string, v, tol float64) bool {
		k, err := c.param(name)
		return err == nil && len(k.data) == 1 && math.Abs(k.data[0]-v) <= tol
	}
	other := func(ins []string, v string) (string, bool) {
		if len(ins) != 2 {
			return "", false
		}
		if ins[0] == v {
			return ins[1], true
		}
		if ins[1] == v {
			return ins[0], true
		}
		return "", false
	}
	ok := len(in(0)) == 2 && in(0)[0] == x && isConst(in(0)[1], math.Sqrt2, 1e-6)
	ok = ok && len(in(1)) == 1 && in(1)[0] == out(0)
	if o, found := other(in(2), out(1)); !ok || !found || !isConst(o, 1, 0) {
		return 0, fail
	}
	if o, found := other(in(3), out(2)); !found || o != x {
		return 0, fail
	}
	if o, found := other(in(4), out(3)); !found || !isConst(o, 0.5, 0) {
		return 0, fail
	}
	for k := 0; k < 4; k++ {
		if c.users[out(k)] != 1 {
			return 0, fmt.Errorf("%w: an intermediate value of the GELU decomposition is read elsewhere", ErrUnsupported)
		}
	}
	if c.users[x] != 2 {
		return 0, fail
	}
	c.layers = append(c.layers, nn.LayerSpec{Type: "gelu"})
	c.layerNode = append(c.layerNode, i)
	c.cur = out(4)
	return seq[4] - i + 1, nil
}

func (c *converter) batchNorm(i int) (int, error) {
	n := c.nodes[i]
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if len(n.GetInput()) != 5 {
		return 0, fmt.Errorf("%w: BatchNormalization with %d inputs", ErrUnsupported, len(n.GetInput()))
	}
	typ, f := "batchnorm1d", c.width
	switch len(c.curDim) {
	case 1:
	case 3:
		typ, f = "batchnorm2d", c.curDim[0]
	default:
		return 0, fmt.Errorf("%w: BatchNormalization on [N, %v] (batchnorm1d reads [N, C], batchnorm2d [N, C, H, W])", ErrUnsupported, c.curDim)
	}
	li := len(c.layers)
	for k, name := range []string{"weight", "bias", "running_mean", "running_var"} {
		p, err := c.param(n.GetInput()[k+1])
		if err != nil {
			return 0, err
		}
		if err := c.setParam(li, name, p, []int{f}); err != nil {
			return 0, err
		}
	}
	key := nn.ParamKey(li, "num_batches_tracked")
	c.m.State[key] = &nn.Tensor{Shape: []int{}, Data: []float64{0}}
	c.m.Source[key] = "absent (0)"
	c.m.Notes = appendOnce(c.m.Notes, "ONNX has no num_batches_tracked: written as 0 (a buffer, never interpolated)")
	if attrInt(n, "training_mode", 0) != 0 || len(n.GetOutput()) > 1 {
		if !c.opt.AllowTrainingBatchNorm {
			return 0, fmt.Errorf("%w: %s", ErrTrainingBatchNorm, TrainingBatchNormReason)
		}
		c.m.TrainingBatchNorm = true
		c.m.Notes = appendOnce(c.m.Notes, TrainingBatchNormNote)
	}
	eps := shortest32(attrFloat(n, "epsilon", 1e-5))
	mom := 1 - shortest32(attrFloat(n, "momentum", 0.9)) // ONNX's momentum is 1 − PyTorch's
	mom = shortest32(mom)
	c.m.BatchNormNodes++
	c.add(nn.LayerSpec{Type: typ, Features: f, Eps: &eps, Momentum: &mom}, i)
	return 1, nil
}

func (c *converter) flatten(i int) (int, error) {
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if ax := attrInt(c.nodes[i], "axis", 1); ax != 1 {
		return 0, fmt.Errorf("%w: Flatten with axis %d (nn.Flatten gives 1)", ErrUnsupported, ax)
	}
	c.add(nn.LayerSpec{Type: "flatten"}, i)
	return 1, nil
}

// reshape to [N, −1] (or [N, features]) is a flatten; others are refused.
func (c *converter) reshape(i int) (int, error) {
	n := c.nodes[i]
	if err := c.chainInput(i, 0); err != nil {
		return 0, err
	}
	if len(n.GetInput()) != 2 {
		return 0, fmt.Errorf("%w: Reshape with %d inputs", ErrUnsupported, len(n.GetInput()))
	}
	s, err := c.param(n.GetInput()[1])
	if err != nil {
		return 0, fmt.Errorf("%w: Reshape to a shape computed in the graph (export with nn.Flatten, or x.reshape(-1, features))", ErrUnsupported)
	}
	flat := len(s.data) == 2 && (s.data[0] == 0 || s.data[0] == -1) && (s.data[1] == -1 || s.data[1] == float64(c.width))
	if !flat {
		return 0, fmt.Errorf("%w: Reshape to %v is not a flatten to [N, %d]", ErrUnsupported, s.data, c.width)
	}
	c.add(nn.LayerSpec{Type: "flatten"}, i)
	return 1, nil
}

// checkFold refuses (or, with AllowFolded, notes) a graph whose Gemm weights
// are not raw parameters while it has no BatchNormalization node.
func (c *converter) checkFold(opt Options) error {
	var suspect []string
	for k, src := range c.m.Source {
		if strings.HasSuffix(k, ".weight") || strings.HasSuffix(k, ".bias") {
			if strings.Contains(src, "onnx::Gemm") || strings.Contains(src, "onnx::Conv") {
				suspect = append(suspect, src)
			}
		}
	}
	if len(suspect) == 0 {
		return nil
	}
	msg := fmt.Sprintf("weights %s are constants computed by the exporter, not raw parameters: an eval-mode torch.onnx.export may have folded a BatchNorm into them, and the line between folded graphs is not the line between the trained parameters", strings.Join(suspect, ", "))
	if c.m.BatchNormNodes == 0 && !opt.AllowFolded {
		return fmt.Errorf("%w: %s. Import the .pt state_dicts (the raw parameters and running statistics); to keep BatchNorm nodes, call model.eval() and export with training=torch.onnx.TrainingMode.PRESERVE (torch 1.13 folds BatchNorm2d into Conv in every evaluation-mode export, with or without do_constant_folding; TrainingMode.TRAINING keeps nodes but corrupts the running statistics); --allow-folded analyses the folded parameterisation anyway", ErrFolded, msg)
	}
	c.m.Notes = append(c.m.Notes, "FOLDED PARAMETERISATION: "+msg)
	return nil
}

// tensorValues decodes an initialiser's values as float64 (floating and
// integer types), refusing external data and checking the element count
// against dims before allocating.
func tensorValues(t *pb.TensorProto) ([]int, []float64, error) {
	name := t.GetName()
	if t.GetDataLocation() == pb.TensorProto_EXTERNAL || len(t.GetExternalData()) > 0 {
		return nil, nil, fmt.Errorf("%w: initialiser %q has external data (save the model with its data inside the .onnx file)", ErrUnsupported, name)
	}
	shape := make([]int, len(t.GetDims()))
	n := uint64(1)
	for k, d := range t.GetDims() {
		if d < 0 || d > 1<<40 {
			return nil, nil, fmt.Errorf("%w: initialiser %q dims %v", ErrFormat, name, t.GetDims())
		}
		shape[k] = int(d)
		n *= uint64(d)
		if n > 1<<40 {
			return nil, nil, fmt.Errorf("%w: initialiser %q dims %v: too many elements", ErrFormat, name, t.GetDims())
		}
	}
	dt := map[pb.TensorProto_DataType]string{
		pb.TensorProto_FLOAT: "F32", pb.TensorProto_DOUBLE: "F64", pb.TensorProto_FLOAT16: "F16",
		pb.TensorProto_BFLOAT16: "BF16", pb.TensorProto_INT64: "I64", pb.TensorProto_INT32: "I32",
	}[pb.TensorProto_DataType(t.GetDataType())]
	if dt == "" {
		return nil, nil, fmt.Errorf("%w: initialiser %q has data type %v", ErrUnsupported, name, pb.TensorProto_DataType(t.GetDataType()))
	}
	if raw := t.GetRawData(); len(raw) > 0 || n == 0 {
		if need := n * uint64(safetensors.DTypeSize(dt)); uint64(len(raw)) != need {
			return nil, nil, fmt.Errorf("%w: initialiser %q: dims %v of %s need %d bytes, raw_data holds %d", ErrFormat, name, t.GetDims(), dt, need, len(raw))
		}
		f, iv, err := safetensors.DecodeValues(dt, raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: initialiser %q: %v", ErrFormat, name, err)
		}
		if f == nil {
			f = make([]float64, len(iv))
			for k, v := range iv {
				f[k] = float64(v)
			}
		}
		return shape, f, nil
	}
	var f []float64
	switch dt {
	case "F32":
		for _, v := range t.GetFloatData() {
			f = append(f, float64(v))
		}
	case "F64":
		f = append(f, t.GetDoubleData()...)
	case "I64":
		for _, v := range t.GetInt64Data() {
			f = append(f, float64(v))
		}
	case "I32":
		for _, v := range t.GetInt32Data() {
			f = append(f, float64(v))
		}
	case "F16", "BF16":
		for _, v := range t.GetInt32Data() {
			if dt == "F16" {
				f = append(f, safetensors.F16ToFloat64(uint16(v)))
			} else {
				f = append(f, safetensors.BF16ToFloat64(uint16(v)))
			}
		}
	}
	if uint64(len(f)) != n {
		return nil, nil, fmt.Errorf("%w: initialiser %q: dims %v need %d values, found %d", ErrFormat, name, t.GetDims(), n, len(f))
	}
	return shape, f, nil
}
