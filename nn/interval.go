package nn

import (
	"math"
	"sync"

	"github.com/certify-mli/certify/interval"
)

// IJet encloses, for N examples and every α in an interval, a layer's
// activations h(α) [N, D] and their α-derivatives ḣ(α), ḧ(α) (THEORY.md §2
// and §7): V ∋ h(α), D1 ∋ ḣ(α), D2 ∋ ḧ(α) entrywise for all α in the interval.
// Order is the highest derivative enclosed (0, 1 or 2; D1, D2 are unset
// above it). A Const jet does not depend on α (the network input): only V is set.
//
// Kink[i] is set when some ReLU-family pre-activation interval of example i
// straddles 0 (or a softplus input crosses PyTorch's threshold) in this or an
// earlier layer: example i's output path may then fail to be C² on the
// α-interval, its D1 enclosure is the hull of the one-sided derivatives, and
// its D2 is meaningless (a mean-value form over such an interval is unsound).
type IJet struct {
	N, D  int
	Order int
	Const bool
	V     interval.Matrix
	D1    interval.Matrix
	D2    interval.Matrix
	Kink  []bool
	// Jump[i] is set when example i's output path may be discontinuous on
	// the α-interval: a softplus input may cross PyTorch's threshold, where
	// the unit's value jumps by log1p(exp(−threshold))/β (a jump is also a
	// Kink). V still encloses both sides; D1 encloses the one-sided
	// derivatives but ∫L′ no longer bounds the change of the loss. A nil
	// Jump means no jump.
	Jump []bool
	// DK, when set (HasDK), is the jump term of a slope enclosure of ḣ
	// that holds across kinks (issue 13): for every example i, unit q and
	// all α, β in the interval,
	//
	//	ḣ(α) − ḣ(β) ∈ D2·(α − β) + DK      (entrywise),
	//
	// where ḣ is either one-sided derivative at a kink. For an example
	// without a kink DK is (up to rounding) 0 and D2 ⊇ ḧ as above; for a
	// kinked one D2 then encloses the almost-everywhere second derivative
	// (a ReLU's σ″ = 0 off its kink) and DK the jumps of ḣ, which a unit
	// that may cross a kink adds (σ′ switching by at most (1 − slope)·|ż|)
	// and every later layer maps linearly. A layer rule that does not
	// compute it leaves DK unset: its output's kinked examples then have a
	// meaningless D2, as documented for Kink. Only enclosed with Order 2.
	DK interval.Matrix
}

// HasDK reports whether the jet carries the jump term DK (Order 2 with DK
// set): D2·(α − β) + DK then encloses ḣ(α) − ḣ(β) for kinked examples too.
func (j *IJet) HasDK() bool {
	return j != nil && !j.Const && j.Order >= 2 && j.D2.Lo != nil && j.DK.Lo != nil
}

// anyKink reports whether some example of j is marked Kink.
func (j *IJet) anyKink() bool {
	for _, k := range j.Kink {
		if k {
			return true
		}
	}
	return false
}

// Jumped reports whether example i may jump on the interval (Jump[i]).
func (j *IJet) Jumped(i int) bool { return j.Jump != nil && j.Jump[i] }

// NewConstIJet wraps the inputs x [N, D] (exact float64) as a Const jet.
func NewConstIJet(n, d int, x []float64, order int) *IJet {
	return &IJet{N: n, D: d, Order: order, Const: true, V: interval.PointMatrix(n, d, x), Kink: make([]bool, n), Jump: make([]bool, n)}
}

// ParamBox encloses one layer's parameters over an α-interval Alpha: for
// every tensor j (Params order, nil when absent) and every α ∈ Alpha,
// θ0 + αδ ∈ Mid[j] ± Rad[j] entrywise. Theta0 and Delta are θ0 and δ
// (exact; δ is the float64 direction the path stores, THEORY.md §1).
type ParamBox struct {
	Alpha                   interval.I
	Theta0, Delta, Mid, Rad []*Tensor
	// Line, when not nil, caches the point Weights of Delta's tensors
	// (DeltaWeights): δ is the same for every box of one line, so the
	// caller that builds many boxes of a line shares one cache between
	// them (issue 12, acc-share round). nil: built on every use.
	Line *WeightsCache
	// Split marks a box without Mid and Rad (NewSplitBox): a rule that
	// supports it (Dense, values only) encloses W(α)h as W0·h + α·(ΔW·h)
	// with the exact point matrices θ0 and δ, whose Weights the Line caches
	// once for the whole line, so the box costs nothing to build.
	Split bool
	// own caches the Weights of Mid ± Rad (BoxWeights), shared by every
	// pass and chunk evaluated with this box; nil (a box built as a
	// literal): built on every use.
	own *WeightsCache
}

// WeightsCache holds interval.Weights built from parameter tensors, one per
// tensor, each built on first use (the midpoint–radius form MulNT
// multiplies by: building it reads and writes three times the tensor's
// size, as much as a product with a few rows). Safe for concurrent use;
// the zero value is empty and ready.
type WeightsCache struct {
	mu sync.Mutex
	m  map[any]*cachedWeights // a *Tensor, or a key naming another form of one (transposedKey)
}

type cachedWeights struct {
	once sync.Once
	w    *interval.Weights
}

// get returns the Weights cached under key, calling build the first time;
// with c nil it calls build every time.
func (c *WeightsCache) get(key any, build func() *interval.Weights) *interval.Weights {
	if c == nil {
		return build()
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[any]*cachedWeights{}
	}
	e := c.m[key]
	if e == nil {
		e = &cachedWeights{}
		c.m[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.w = build() })
	return e.w
}

// BoxWeights returns interval.NewWeights(rows, cols, Mid[j], Rad[j]): the
// enclosure of tensor j over Alpha as a [rows, cols] matrix (rows·cols its
// size), built once per box and shared by every pass and chunk that uses
// the box (the same values as building it each time).
func (p *ParamBox) BoxWeights(j, rows, cols int) *interval.Weights {
	return p.own.get(p.Mid[j], func() *interval.Weights {
		return interval.NewWeights(rows, cols, p.Mid[j].Data, p.Rad[j].Data)
	})
}

// Theta0Weights returns interval.NewWeights(rows, cols, Theta0[j], nil):
// θ0's tensor j as an exact [rows, cols] matrix, built once per Line (as
// DeltaWeights).
func (p *ParamBox) Theta0Weights(j, rows, cols int) *interval.Weights {
	return p.Line.get(p.Theta0[j], func() *interval.Weights {
		return interval.NewWeights(rows, cols, p.Theta0[j].Data, nil)
	})
}

// NewSplitBox returns a box over alpha without Mid and Rad (Split): only
// rules that support it may take it (Dense.IntervalJet with a jet of
// order 0), and they read θ0 and δ through line's cached point Weights.
func NewSplitBox(theta0, delta []*Tensor, alpha interval.I, line *WeightsCache) *ParamBox {
	return &ParamBox{Alpha: alpha, Theta0: theta0, Delta: delta, Line: line, Split: true}
}

// DeltaWeights returns interval.NewWeights(rows, cols, Delta[j], nil): δ's
// tensor j as an exact [rows, cols] matrix, built once per Line (every box
// of the line shares it) or, without a Line, on every call.
func (p *ParamBox) DeltaWeights(j, rows, cols int) *interval.Weights {
	return p.Line.get(p.Delta[j], func() *interval.Weights {
		return interval.NewWeights(rows, cols, p.Delta[j].Data, nil)
	})
}

// NewParamBox encloses θ0 + αδ for α ∈ alpha: Mid = fl(θ0 + c·δ) with c the
// interval's midpoint, and Rad = |δ|·r + 4u(|c·δ| + |Mid|) rounded up, where
// r bounds |α − c| and the second term bounds the two roundings of Mid.
func NewParamBox(theta0, delta []*Tensor, alpha interval.I) *ParamBox {
	c := alpha.Mid()
	r := interval.Up(max(interval.Up(alpha.Hi-c), interval.Up(c-alpha.Lo)))
	b := &ParamBox{Alpha: alpha, Theta0: theta0, Delta: delta,
		Mid: make([]*Tensor, len(theta0)), Rad: make([]*Tensor, len(theta0)), own: &WeightsCache{}}
	const u4 = 0x1p-51
	for j, t0 := range theta0 {
		if t0 == nil {
			continue
		}
		d := delta[j]
		m, rd := NewTensor(t0.Shape...), NewTensor(t0.Shape...)
		for k, v := range t0.Data {
			cd := c * d.Data[k]
			m.Data[k] = v + cd
			e := interval.Up(u4 * (math.Abs(cd) + math.Abs(m.Data[k])))
			rd.Data[k] = interval.Up(interval.Up(math.Abs(d.Data[k])*r) + e + 0x1p-1060)
		}
		b.Mid[j], b.Rad[j] = m, rd
	}
	return b
}

// IntervalLayer is a layer with an interval rule: it maps an enclosure of
// its input jet over an α-interval to an enclosure of its output jet, given
// its parameters enclosed over the same interval (THEORY.md §7).
type IntervalLayer interface {
	IntervalJet(p *ParamBox, in *IJet) *IJet
}

// IntervalBlock is an IntervalLayer made of branches of sub-layers (a
// residual block) that exposes its sub-layers' enclosures: IntervalJetHook
// is IntervalJet with after (when not nil) applied to the output of
// sub-layer k of branch b before the next sub-layer reads it; after may
// return a tighter enclosure of the same jet (the certificate's centred
// form inside the block, issue 13).
type IntervalBlock interface {
	IntervalLayer
	IntervalJetHook(p *ParamBox, in *IJet, after func(b, k int, j *IJet) *IJet) *IJet
	// IntervalJetLeaves is IntervalJetHook with leaf (when not nil)
	// evaluating each sub-layer in place of its own interval rule (a
	// nested BatchNorm under bn_policy recompute).
	IntervalJetLeaves(p *ParamBox, in *IJet, leaf func(b, k int, l Layer, box *ParamBox, in *IJet) *IJet, after func(b, k int, j *IJet) *IJet) *IJet
}

var _ IntervalBlock = (*Residual)(nil)
