package nn

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// Tensor is a dense float64 array in row-major order with a PyTorch shape
// (a dense weight is [out, in]). A scalar has an empty Shape and one element.
type Tensor struct {
	Shape []int
	Data  []float64
}

// NewTensor returns a zero tensor of the given shape.
func NewTensor(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float64, numel(shape))}
}

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float64(nil), t.Data...)}
}

// Matrix views a 2-D tensor [r, c] as a gonum matrix sharing its storage.
func (t *Tensor) Matrix() *mat.Dense {
	return mat.NewDense(t.Shape[0], t.Shape[1], t.Data)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// ShapeString formats a tensor shape as PyTorch prints it: "[8, 14, 14]".
func ShapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// State is a model's parameters and buffers keyed by PyTorch state_dict name
// ("0.weight", "0.bias", "1.running_mean", ...).
type State map[string]*Tensor

// Clone returns a deep copy of s.
func (s State) Clone() State {
	c := make(State, len(s))
	for k, v := range s {
		c[k] = v.Clone()
	}
	return c
}

// Names returns the keys of s in sorted order.
func (s State) Names() []string {
	names := make([]string, 0, len(s))
	for k := range s {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Param describes one tensor a layer owns: its local name ("weight"), shape,
// and whether it is a buffer (BatchNorm's running statistics) rather than a
// trainable parameter.
type Param struct {
	Name   string
	Shape  []int
	Buffer bool
}

// Layer is one layer of a sequential model acting on batches [N, InSize()]
// row-major. Its parameters are passed in the order of Params(); an optional
// parameter that is absent (a linear layer without bias) is nil.
type Layer interface {
	// Type is the model.json type name.
	Type() string
	InSize() int
	OutSize() int
	// Params lists the tensors the layer owns, in a fixed order.
	Params() []Param
	// Forward returns y = f(x; p), x [N, InSize], y [N, OutSize].
	Forward(p []*Tensor, x *mat.Dense) *mat.Dense
	// Backward returns dL/dx given the layer's input x, output y and dL/dy,
	// and adds dL/dp into grads (same order and shapes as Params; nil entries
	// for buffers and absent parameters).
	Backward(p []*Tensor, x, y, dy *mat.Dense, grads []*Tensor) *mat.Dense
	// Jet maps the second-order jet of the input along α to that of the output
	// (THEORY.md §2), given the parameters at α and their α-derivative dp = δ.
	Jet(p, dp []*Tensor, in *Jet) *Jet
}

// Jet holds, for N examples, the value h, the first derivative ḣ and the
// second derivative ḧ along α of a layer's activations, stacked as one matrix
// M [3N, D]: rows [0, N) are h, [N, 2N) are ḣ, [2N, 3N) are ḧ. A Jet whose
// input derivatives are known to vanish (the network input) has Const set and
// M [N, D] holding h only. WS, when not nil, is the workspace the layer rules
// take their output matrices from; they pass it on to their output jet.
type Jet struct {
	N     int
	M     *mat.Dense
	Const bool
	WS    *Workspace
}

// NewConstJet wraps a batch x [N, D] of inputs, which do not depend on α.
func NewConstJet(x *mat.Dense) *Jet {
	n, _ := x.Dims()
	return &Jet{N: n, M: x, Const: true}
}

// Value, Velocity and Acceleration return views [N, D] of the three parts.
// For a Const jet, Velocity and Acceleration are nil.
func (j *Jet) Value() *mat.Dense { return j.part(0) }

// Velocity is ḣ [N, D]; see Value.
func (j *Jet) Velocity() *mat.Dense { return j.part(1) }

// Acceleration is ḧ [N, D]; see Value.
func (j *Jet) Acceleration() *mat.Dense { return j.part(2) }

func (j *Jet) part(k int) *mat.Dense {
	if j.Const && k > 0 {
		return nil
	}
	_, d := j.M.Dims()
	return j.M.Slice(k*j.N, (k+1)*j.N, 0, d).(*mat.Dense)
}

// Model is a built Spec: its layers in order.
type Model struct {
	Spec   *Spec
	Layers []Layer
}

// Build constructs the layers of s, checking every field and that widths
// chain. Unknown types are refused with an error naming the layer and type.
func Build(s *Spec) (*Model, error) {
	m := &Model{Spec: s}
	shape := append([]int(nil), s.InputShape...)
	if err := checkExampleShape(shape); err != nil {
		return nil, fmt.Errorf("input_shape: %w", err)
	}
	for i, ls := range s.Layers {
		l, out, err := BuildLayer(ls, shape)
		if err != nil {
			return nil, &BuildError{Index: i, Prefix: &Model{Spec: s, Layers: m.Layers}, Err: err}
		}
		shape = out
		m.Layers = append(m.Layers, l)
	}
	return m, nil
}

// BuildError is Build's error for the top-level layer layers[Index] that
// does not fit the shape the layers before it give (or whose own fields are
// invalid). Prefix is the model of layers[0:Index], which did build: its
// Expected tensors let a reader of a run directory check those layers
// against the checkpoint, so that a wrong kernel whose shape chain still
// closes is blamed on itself rather than on a later layer (rundir.Read).
// Error reads "layers[Index]: Err", as before the type existed.
type BuildError struct {
	Index  int
	Prefix *Model
	Err    error
}

func (e *BuildError) Error() string { return fmt.Sprintf("layers[%d]: %v", e.Index, e.Err) }

// Unwrap returns the layer's own error.
func (e *BuildError) Unwrap() error { return e.Err }

// BuildLayer constructs one layer from its spec for inputs of one example's
// shape in ([C, H, W] for images, PyTorch's layout; [width] for flat
// inputs) and returns it with the shape of its output: OutShape for a layer
// that declares one (Shaper: conv2d, the pools), [OutSize] after flatten or
// a layer that changes the width, in otherwise (elementwise layers keep
// the image shape). A block that builds sub-layers (a residual body) calls
// it for each, threading the shape.
func BuildLayer(ls LayerSpec, in []int) (Layer, []int, error) {
	ls.inShape = in
	width := numel(in)
	if len(in) == 0 {
		width = 0
	}
	l, err := newLayer(ls, width)
	if err != nil {
		return nil, nil, err
	}
	out := ShapeAfter(l, in)
	if err := checkExampleShape(out); err != nil {
		return nil, nil, fmt.Errorf("%s: output: %w", ls.Type, err)
	}
	return l, out, nil
}

// MaxExampleElements bounds the number of values of one example at the
// input and after every layer: 2^24 (128 MiB of float64 per example,
// about 20 times an ImageNet ResNet's widest activation [64, 112, 112]). A
// model.json beyond it is refused by Build rather than exhausting memory
// (a layer's index tables grow with its output) or overflowing the size
// arithmetic.
const MaxExampleElements = 1 << 24

// checkExampleShape refuses a shape of one example with more than
// MaxExampleElements values (checked factor by factor, so that the
// product cannot overflow).
func checkExampleShape(shape []int) error {
	n := 1
	for _, d := range shape {
		if d > MaxExampleElements || n*d > MaxExampleElements {
			return fmt.Errorf("shape %s has more than 2^24 values per example (nn.MaxExampleElements)", ShapeString(shape))
		}
		n *= d
	}
	return nil
}

func isShaper(l Layer) bool { _, ok := l.(Shaper); return ok }

// layerBuilders holds the layer types registered by their own files
// (registerLayer), the way a new layer type joins the build.
var layerBuilders = map[string]func(ls LayerSpec, width int) (Layer, error){}

// registerLayer adds a model.json layer type: keys are the model.json keys
// it reads besides "type" (any other key is refused by ReadSpec, naming
// it), a key written with a trailing "!" being one model.json must give
// (ReadSpec refuses its absence by name, where the zero value would
// otherwise reach build as, say, "out=0"); build constructs it from its
// LayerSpec and the previous layer's width, checking every field it reads.
// Called from the init of the layer's file; the name joins LayerTypes.
func registerLayer(name string, keys []string, build func(ls LayerSpec, width int) (Layer, error)) {
	if _, dup := layerBuilders[name]; dup {
		panic("nn: layer type " + name + " registered twice")
	}
	layerBuilders[name] = build
	all := []string{"type"}
	for _, k := range keys {
		if r, ok := strings.CutSuffix(k, "!"); ok {
			k = r
			requiredKeys[name] = append(requiredKeys[name], k)
		}
		all = append(all, k)
	}
	layerKeys[name] = all
	LayerTypes = append(LayerTypes, name)
}

func newLayer(ls LayerSpec, width int) (Layer, error) {
	if build, ok := layerBuilders[ls.Type]; ok {
		return build(ls, width)
	}
	switch ls.Type {
	case "":
		return nil, fmt.Errorf("type: missing")
	}
	hint := ""
	if strings.Contains(strings.ToLower(ls.Type), "dropout") {
		// the analysis is of the evaluation-mode network, where dropout is the identity
		hint = `; nn.Dropout is written {"type": "identity"}: dropout is the identity in evaluation mode, and the entry keeps the nn.Sequential's layer indices (docs/from-pytorch.md)`
	}
	return nil, fmt.Errorf("type: unsupported layer type %q (this build supports %s)%s", ls.Type, strings.Join(LayerTypes, ", "), hint)
}

// OutSize is the width of the model's output (K, the number of logits or targets).
func (m *Model) OutSize() int { return m.Layers[len(m.Layers)-1].OutSize() }

// ParamKey is the state_dict name of layer i's tensor called name.
func ParamKey(i int, name string) string { return strconv.Itoa(i) + "." + name }

// Expected lists every tensor a state must hold for this model: state_dict
// name to shape and whether it is a buffer. Absent biases are not listed.
func (m *Model) Expected() []Named {
	var out []Named
	for i, l := range m.Layers {
		for _, p := range l.Params() {
			if paramAbsent(l, p.Name) {
				continue
			}
			out = append(out, Named{Key: ParamKey(i, p.Name), Layer: i, Param: p})
		}
	}
	return out
}

// layerOf names the model.json layer that declares n, for errors: " (model.json's
// layers[i], type)"; "" for a model built without a spec.
func (m *Model) layerOf(n Named) string {
	if m.Spec == nil || n.Layer < 0 || n.Layer >= len(m.Spec.Layers) {
		return ""
	}
	return fmt.Sprintf(" (model.json's layers[%d], %s)", n.Layer, m.Spec.Layers[n.Layer].Type)
}

// Named is a Param with its state_dict key and the index of its top-level
// layer in model.json's layers.
type Named struct {
	Key   string
	Layer int
	Param
}

// FirstShapeMismatch returns the first of the model's Expected tensors that s
// holds with another shape, and the shape s has; ok is false when every
// tensor s holds of them has its expected shape (missing ones are not
// mismatches: Check reports them). Used to blame a model.json layer whose
// declared sizes disagree with the checkpoint (BuildError).
func (m *Model) FirstShapeMismatch(s State) (n Named, found []int, ok bool) {
	for _, n := range m.Expected() {
		if t, has := s[n.Key]; has && !sameShape(t.Shape, n.Shape) {
			return n, t.Shape, true
		}
	}
	return Named{}, nil, false
}

// BlameEarlierLayer adds to model.json's shape-chain error err (a
// *BuildError at layers[k], possibly wrapped) the first earlier layer whose
// declared sizes disagree with the checkpoint s read from path: a wrong
// conv kernel whose chain still closes surfaces only at a later layer (a
// linear's in), and the weights show where the disagreement starts. ok is
// false, and err is returned unchanged, when err is no such error or every
// earlier layer's tensors in s have their declared shapes. Used by the run
// directory's reader and by certify import.
func BlameEarlierLayer(err error, path string, s State) (_ error, ok bool) {
	var be *BuildError
	if !errors.As(err, &be) || be.Prefix == nil || len(be.Prefix.Layers) == 0 {
		return err, false
	}
	n, found, ok := be.Prefix.FirstShapeMismatch(s)
	if !ok {
		return err, false
	}
	return fmt.Errorf("%w; but the disagreement starts earlier: %s: %s has shape %s, where model.json's layers[%d] (%s) gives %s", err, path, n.Key, ShapeString(found), n.Layer, be.Prefix.Spec.Layers[n.Layer].Type, ShapeString(n.Shape)), true
}

// Check verifies that s holds exactly the tensors the model expects with the
// right shapes and finite values. source names the file in errors, e.g.
// "init.safetensors: 2.weight: expected shape [10, 64], found [64, 10]".
func (m *Model) Check(s State, source string) error {
	want := map[string]bool{}
	for _, n := range m.Expected() {
		want[n.Key] = true
		t, ok := s[n.Key]
		if !ok {
			return fmt.Errorf("%s: %s: missing (expected shape %s)%s", source, n.Key, ShapeString(n.Shape), foundKeys(s, n.Key))
		}
		if !sameShape(t.Shape, n.Shape) {
			return fmt.Errorf("%s: %s: expected shape %s, found %s%s", source, n.Key, ShapeString(n.Shape), ShapeString(t.Shape), m.layerOf(n))
		}
		for j, v := range t.Data {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s: %s: non-finite value %v at flat index %d", source, n.Key, v, j)
			}
		}
	}
	for _, k := range s.Names() {
		if !want[k] {
			return fmt.Errorf("%s: %s: unexpected tensor (the model has no such parameter)", source, k)
		}
	}
	return nil
}

// CheckBuffers refuses a checkpoint's BatchNorm buffers that no trained
// network has: a running_var below 0 (PyTorch evaluates it to NaN). The
// error names source, the tensor and the index. It is for checkpoints read
// from disk; states built along or beyond the line (per-layer passes) are
// not checkpoints and are not checked.
func CheckBuffers(s State, source string) error {
	for _, k := range s.Names() {
		if !strings.HasSuffix(k, ".running_var") {
			continue
		}
		for j, v := range s[k].Data {
			if v < 0 {
				return fmt.Errorf("%s: %s: negative variance %v at flat index %d (a BatchNorm running variance must be ≥ 0)", source, k, v, j)
			}
		}
	}
	return nil
}

func sameShape(a, b []int) bool {
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

// LayerParams returns layer i's tensors from s in Params order (nil for absent ones).
func (m *Model) LayerParams(s State, i int) []*Tensor {
	ps := m.Layers[i].Params()
	out := make([]*Tensor, len(ps))
	for j, p := range ps {
		out[j] = s[ParamKey(i, p.Name)]
	}
	return out
}

// Forward evaluates the model on a batch x [N, InputSize] and returns the
// outputs [N, K].
func (m *Model) Forward(s State, x *mat.Dense) *mat.Dense {
	h := x
	_ = m.Walk(0, func(i int, l Layer) error {
		h = l.Forward(m.LayerParams(s, i), h)
		return nil
	})
	return h
}

// ForwardTrace evaluates the model (evaluation mode) and keeps every layer's
// input: acts[0] = x, acts[i+1] = output of layer i. It is what Backward
// needs; for a model with BatchNorm, Backward is the training-mode gradient
// and wants the trace of ForwardTrain.
func (m *Model) ForwardTrace(s State, x *mat.Dense) []*mat.Dense {
	acts := make([]*mat.Dense, len(m.Layers)+1)
	acts[0] = x
	_ = m.Walk(0, func(i int, l Layer) error {
		acts[i+1] = l.Forward(m.LayerParams(s, i), acts[i])
		return nil
	})
	return acts
}

// ForwardTrain is ForwardTrace in training mode: layers implementing
// TrainForwarder (BatchNorm) normalise with the batch statistics and update
// their buffers in s (running statistics, num_batches_tracked). It is what
// Train uses before Backward; everything else (Forward, Jet, Evaluate) is
// evaluation mode.
func (m *Model) ForwardTrain(s State, x *mat.Dense) []*mat.Dense {
	acts := make([]*mat.Dense, len(m.Layers)+1)
	acts[0] = x
	_ = m.Walk(0, func(i int, l Layer) error {
		if t, ok := l.(TrainForwarder); ok {
			acts[i+1] = t.ForwardTrain(m.LayerParams(s, i), acts[i])
		} else {
			acts[i+1] = l.Forward(m.LayerParams(s, i), acts[i])
		}
		return nil
	})
	return acts
}

// HasTrainMode reports whether any layer, at any depth (WalkSites),
// behaves differently in training mode (implements TrainForwarder, e.g.
// batchnorm1d; a residual block only through its sub-layers).
func (m *Model) HasTrainMode() bool {
	train := false
	_ = m.WalkSites(func(_ Site, l Layer) error {
		if _, ok := l.(TrainForwarder); ok {
			train = true
		}
		return nil
	})
	return train
}

// Backward propagates dL/dy [N, K] through the trace from ForwardTrace and
// returns the gradients keyed like s (trainable parameters only).
func (m *Model) Backward(s State, acts []*mat.Dense, dy *mat.Dense) State {
	grads := State{}
	for i := len(m.Layers) - 1; i >= 0; i-- {
		l := m.Layers[i]
		ps := l.Params()
		p := m.LayerParams(s, i)
		g := make([]*Tensor, len(ps))
		for j, pp := range ps {
			if pp.Buffer || p[j] == nil {
				continue
			}
			g[j] = NewTensor(pp.Shape...)
			grads[ParamKey(i, pp.Name)] = g[j]
		}
		dy = l.Backward(p, acts[i], acts[i+1], dy, g)
	}
	return grads
}

// Trainable lists the state_dict keys of trainable parameters in model order.
func (m *Model) Trainable() []string {
	var keys []string
	for _, n := range m.Expected() {
		if !n.Buffer {
			keys = append(keys, n.Key)
		}
	}
	return keys
}

// Interpolate returns θα = θ0 + α(θT − θ0) for every tensor of the model
// (THEORY.md §1). Buffers are interpolated too; see the BatchNorm policies.
func Interpolate(theta0, thetaT State, alpha float64) State {
	out := make(State, len(theta0))
	for k, t0 := range theta0 {
		tT := thetaT[k]
		t := &Tensor{Shape: t0.Shape, Data: make([]float64, len(t0.Data))}
		for j := range t.Data {
			t.Data[j] = t0.Data[j] + alpha*(tT.Data[j]-t0.Data[j])
		}
		out[k] = t
	}
	return out
}

// Difference returns δ = θT − θ0 for every tensor.
func Difference(theta0, thetaT State) State {
	out := make(State, len(theta0))
	for k, t0 := range theta0 {
		tT := thetaT[k]
		t := &Tensor{Shape: t0.Shape, Data: make([]float64, len(t0.Data))}
		for j := range t.Data {
			t.Data[j] = tT.Data[j] - t0.Data[j]
		}
		out[k] = t
	}
	return out
}

// foundKeys describes, for a missing key, the keys the state holds: those
// ending in ".key" (a wrapper's prefix, e.g. DataParallel's "module.") with
// advice, otherwise the first few.
func foundKeys(s State, key string) string {
	var suffix, all []string
	for _, k := range s.Names() {
		if strings.HasSuffix(k, "."+key) {
			suffix = append(suffix, k)
		}
		all = append(all, k)
	}
	if len(suffix) > 0 {
		return fmt.Sprintf("; found %s — the keys carry a prefix: strip it, or use certify import, which strips module. and _orig_mod.", strings.Join(suffix, ", "))
	}
	if len(all) == 0 {
		return "; the file holds no tensors"
	}
	if len(all) > 6 {
		all = append(all[:6], fmt.Sprintf("… (%d tensors)", len(s)))
	}
	return "; found " + strings.Join(all, ", ")
}
