package nn

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/interval"
)

// This file holds the properties a layer declares so that the packages
// outside nn never ask what concrete type a layer is (docs/architecture.md,
// "Layers"). Each is a small optional interface; Model.Require checks up
// front that every layer declares the ones an analysis needs, and refuses
// the model with an error naming the layer and the missing rule.

// AffineInAlpha is a layer whose output, on an input that does not depend
// on α, is affine in α: z(α) = A + αB with A = f(x; θ0) and B the
// α-derivative (THEORY.md §2, first layer). Its Jet on a Const input has a
// zero acceleration, so the functionspace first-layer cache may keep A and
// B once; ConstProducts encloses A and B for the certificate (THEORY.md §7).
type AffineInAlpha interface {
	Layer
	// ConstProducts returns A = W0 x + b0 and B = ΔW x + Δb, each [N, Out],
	// for a point input x [N, In]; p is the layer's parameter box at α = 0.
	ConstProducts(p *ParamBox, x interval.Matrix) (a, b interval.Matrix)
}

// KinkSites is declared by every layer a kink analysis walks through:
// whether the layer's jet rule has corners, where its output's derivative
// in α jumps (the ReLU family where an input crosses 0: σ′ jumps, and γ′
// with it; max-pool where a window's arg-max changes; THEORY.md §2–§3, §9).
// A kinked layer declares where and how through Switching (or
// PiecewiseLinear, which SwitchingOf turns into one).
type KinkSites interface {
	Layer
	// Kinked reports whether the layer has corners.
	Kinked() bool
}

// PiecewiseLinear is a kinked layer acting unit-wise as σ(z) = on·z for
// z > 0 and off·z for z < 0 (relu: 1, 0; leaky_relu: 1, slope). Its
// one-sided jets at a crossing are those of the two slopes; SwitchingOf
// gives its Switching rule (one unit per input element, switching
// function ±z).
type PiecewiseLinear interface {
	KinkSites
	// Slopes returns σ′ on the active (z > 0) and inactive (z < 0) side.
	Slopes() (on, off float64)
}

// Jumps is declared by layers whose output may be discontinuous in their
// input: softplus switches to its linear branch above PyTorch's threshold,
// where the value jumps by log1p(exp(−threshold))/β (IJet.Jump).
type Jumps interface {
	MayJump() bool
}

// MayJump reports whether some layer of m declares that its output may be
// discontinuous in its input (Jumps: softplus at PyTorch's threshold), so
// that L need not be the integral of L′ along the line.
func (m *Model) MayJump() bool {
	jumps := false
	_ = m.WalkSites(func(_ Site, l Layer) error {
		if j, ok := l.(Jumps); ok && j.MayJump() {
			jumps = true
		}
		return nil
	})
	return jumps
}

// MayKink reports whether some layer of m, at any depth, declares corners
// (KinkSites.Kinked: ReLU-family units crossing 0), where the output paths
// γ_i are not differentiable and the Gauss length gains corner angles
// (THEORY.md §3).
func (m *Model) MayKink() bool {
	kinked := false
	_ = m.WalkSites(func(_ Site, l Layer) error {
		if k, ok := l.(KinkSites); ok && k.Kinked() {
			kinked = true
		}
		return nil
	})
	return kinked
}

// Identity is declared by layers that may be the identity map on values
// (identity, flatten); IsIdentity reports whether this one is.
type Identity interface {
	IsIdentity() bool
}

// RowJetter is a layer with parameters and its own per-row-α jet rule: row
// r of the output jet is the layer's jet at α = alphas[r], parameters
// p0 + α·dp (THEORY.md §3, one-sided jets at every example's own kink).
type RowJetter interface {
	Layer
	JetRows(p0, dp []*Tensor, alphas []float64, in *Jet) *Jet
}

// BatchStatistics is a layer that normalises with statistics of a batch
// (BatchNorm). Its Jet uses the running statistics (bn_policy
// interpolate); under bn_policy recompute the analyses pass it the
// statistics jet of a reference batch instead, in each precision
// (THEORY.md §2, §7).
type BatchStatistics interface {
	Layer
	// JetStats is Jet with the statistics jet st.
	JetStats(p, dp []*Tensor, st *StatsJet, in *Jet) *Jet
	// JetStats32 is JetStats in float32.
	JetStats32(p, dp []*Tensor32, st *StatsJet, in *Jet32) *Jet32
	// IntervalJetStats is the interval rule with the enclosed statistics st.
	IntervalJetStats(p *ParamBox, st *IStats, in *IJet) *IJet
	// BatchStats is the `recompute` statistics jet of a reference batch
	// whose input to the layer has the jet in (biased variance; per
	// feature for batchnorm1d, per channel over N·H·W for batchnorm2d).
	BatchStats(in *Jet) *StatsJet
	// IntervalStats encloses BatchStats over an α-interval.
	IntervalStats(in *IJet) *IStats
}

// BatchStats implements BatchStatistics: BatchStatsJet(in, false).
func (b *BatchNorm) BatchStats(in *Jet) *StatsJet { return BatchStatsJet(in, false) }

// IntervalStats implements BatchStatistics: IntervalBatchStats(in).
func (b *BatchNorm) IntervalStats(in *IJet) *IStats { return IntervalBatchStats(in) }

// FLOPCounter is a layer that reports the floating-point operations of its
// matrix products in one jet pass (for benchmarks; layers without products
// do not declare it).
type FLOPCounter interface {
	// JetFLOPs is the count for a jet of n examples; constInput: the input
	// does not depend on α (value rows only).
	JetFLOPs(n int, constInput bool) float64
}

// Shaper is a layer whose output has an image shape of its own (conv2d,
// the pools): OutShape is one example's output shape [C, H, W], PyTorch's
// layout, with OutSize its product. Build threads it to the next layer
// (LayerSpec.InShape).
type Shaper interface {
	OutShape() []int
}

// InitDrawn is a layer whose weight (its first Params entry) and optional
// bias (its second) Init draws by an initialisation scheme (linear,
// conv2d): InitFans gives PyTorch's fan_in and fan_out of the weight and
// whether the bias is present.
type InitDrawn interface {
	InitFans() (fanIn, fanOut int, hasBias bool)
}

// InitFans implements InitDrawn: fan_in = In, fan_out = Out.
func (d *Dense) InitFans() (fanIn, fanOut int, hasBias bool) { return d.In, d.Out, d.HasBias }

// ParamResetter is a layer whose parameters start at fixed values, not
// drawn by an initialisation scheme (PyTorch's reset_parameters); Init
// takes them from ResetParams, one tensor per Params entry.
type ParamResetter interface {
	ResetParams() []*Tensor
}

// Rule is an interpretation of the layers an analysis needs.
type Rule int

const (
	// RuleJet32 is the float32 jet (Jet32Layer).
	RuleJet32 Rule = iota
	// RuleInterval is the interval jet (IntervalLayer).
	RuleInterval
	// RuleKinks is the kink declaration (KinkSites; when Kinked, a
	// Switching rule, SwitchingOf, and no parameters).
	RuleKinks
	// RulePerRow is the per-row-α jet: RowJetter, or a layer without
	// parameters (its Jet does not depend on α).
	RulePerRow
)

// String returns the rule's name and the interface that provides it.
func (r Rule) String() string {
	switch r {
	case RuleJet32:
		return "float32 jet rule (nn.Jet32Layer)"
	case RuleInterval:
		return "interval jet rule (nn.IntervalLayer)"
	case RuleKinks:
		return "kink declaration (nn.KinkSites; nn.Switching or nn.PiecewiseLinear, and no parameters, when kinked)"
	case RulePerRow:
		return "per-row jet rule (nn.RowJetter)"
	}
	return fmt.Sprintf("Rule(%d)", int(r))
}

// Has reports whether l provides rule r.
func Has(l Layer, r Rule) bool {
	switch r {
	case RuleJet32:
		_, ok := l.(Jet32Layer)
		return ok
	case RuleInterval:
		_, ok := l.(IntervalLayer)
		return ok
	case RuleKinks:
		k, ok := l.(KinkSites)
		if !ok {
			return false
		}
		if k.Kinked() {
			_, ok = SwitchingOf(l)
			ok = ok && len(l.Params()) == 0
		}
		return ok
	case RulePerRow:
		if _, ok := l.(RowJetter); ok {
			return true
		}
		return len(l.Params()) == 0
	}
	return false
}

// Require checks that every layer, at any depth (the sub-layers of blocks
// included, Model.WalkSites), provides every rule and returns an error
// naming each layer (its place, e.g. layers[2] or layers[2].body[1], and
// type) and the rule it lacks, or nil. A block has a rule when all its
// sub-layers have it (its own rule composes theirs).
func (m *Model) Require(rules ...Rule) error {
	var missing []string
	_ = m.WalkSites(func(s Site, l Layer) error {
		for _, r := range rules {
			if !Has(l, r) {
				missing = append(missing, fmt.Sprintf("%s (%s) has no %s", s.Name, l.Type(), r))
			}
		}
		return nil
	})
	if missing == nil {
		return nil
	}
	return fmt.Errorf("nn: %s", strings.Join(missing, "; "))
}

// Walk calls visit for every top-level layer in order, from layer from on,
// and stops at the first error, which it returns. It is the one walk of the
// passes that treat each top-level layer as a whole (forward, the traced and
// training forward, the float64, float32 and interval jet passes): a block
// (Block, a residual) is visited once and its own rules compose those of its
// sub-layers. The analyses that must see inside blocks (kink sites, the
// per-row pass, the rule checks) descend with WalkSites and DescendJet. For a
// sequential model without blocks the two walks visit the same layers with
// the same indices.
func (m *Model) Walk(from int, visit func(i int, l Layer) error) error {
	for i := from; i < len(m.Layers); i++ {
		if err := visit(i, m.Layers[i]); err != nil {
			return err
		}
	}
	return nil
}

// Block is a composite layer whose sub-layers sit in named sequences (a
// residual block's body and shortcut). Model.WalkSites descends into it, so
// that a ReLU inside a block is a kink site like any other, and the per-row
// pass (functionspace) evaluates the branches sub-layer by sub-layer and
// joins them with CombineRows.
type Block interface {
	Layer
	// Branches returns the named sequences; each starts from the block's
	// input. Sub-layer j of branch b has the state_dict prefix
	// "<block key>.<b.Name>.<j>".
	Branches() []Branch
	// OwnParams lists the block's own tensors (not its sub-layers'), a
	// prefix of Params (residual: "scale").
	OwnParams() []Param
	// SubParams returns the tensors of sub-layer j of branch b (Params
	// order of the sub-layer, nil for absent ones) from the block's p.
	SubParams(p []*Tensor, b, j int) []*Tensor
	// Combine joins the branches' output jets into the block's output jet
	// (the block's Jet after its branches); p, dp are the block's tensors
	// at α and δ.
	Combine(p, dp []*Tensor, body, shortcut *Jet) *Jet
	// CombineRows is Combine with row i at α = alphas[i]; p0 and dp are
	// the block's tensors at θ0 and δ.
	CombineRows(p0, dp []*Tensor, alphas []float64, body, shortcut *Jet) *Jet
}

// DescendJet applies layer l (tensors p at α and dp = δ, or θ0 and δ for a
// per-row pass) to the jet in, descending into blocks: every leaf layer goes
// through leaf(site, layer, p, dp, in) with its own tensors and its site
// index (Site.Index; site is that of l's first leaf), and every block joins
// its branches with join(block, p, dp, body, shortcut) (Block.Combine or
// CombineRows). It returns the output jet and the site index after l's last
// leaf. It is how a pass sees the pre-activation of a ReLU inside a block.
func DescendJet(l Layer, site int, p, dp []*Tensor, in *Jet,
	leaf func(site int, l Layer, p, dp []*Tensor, in *Jet) *Jet,
	join func(b Block, p, dp []*Tensor, body, shortcut *Jet) *Jet) (*Jet, int) {
	b, ok := l.(Block)
	if !ok {
		return leaf(site, l, p, dp, in), site + 1
	}
	var outs []*Jet
	for bi, br := range b.Branches() {
		j := in
		for k, sl := range br.Layers {
			j, site = DescendJet(sl, site, b.SubParams(p, bi, k), b.SubParams(dp, bi, k), j, leaf, join)
		}
		outs = append(outs, j)
	}
	return join(b, p, dp, outs[0], outs[1]), site
}

// FirstSite returns the site index (Site.Index) of the first leaf of
// top-level layer i; len(sites) for i = len(m.Layers). For a model without
// blocks it is i.
func (m *Model) FirstSite(i int) int {
	n := 0
	for k := 0; k < i && k < len(m.Layers); k++ {
		n += countSites(m.Layers[k])
	}
	return n
}

func countSites(l Layer) int {
	b, ok := l.(Block)
	if !ok {
		return 1
	}
	n := 0
	for _, br := range b.Branches() {
		for _, sl := range br.Layers {
			n += countSites(sl)
		}
	}
	return n
}

// Branch is one named sequence of a Block.
type Branch struct {
	Name   string
	Layers []Layer
}

// AbsentParams is declared by layers one of whose Params entries may be
// absent from the state (a linear layer built with bias false): such a
// tensor is not expected in a checkpoint and is passed as nil.
type AbsentParams interface {
	ParamAbsent(name string) bool
}

// ParamAbsent implements AbsentParams: the bias of a layer without one.
func (d *Dense) ParamAbsent(name string) bool { return name == "bias" && !d.HasBias }

func paramAbsent(l Layer, name string) bool {
	a, ok := l.(AbsentParams)
	return ok && a.ParamAbsent(name)
}

// Site is one leaf layer of a model (not a Block) reached by WalkSites.
type Site struct {
	// Index counts the leaves in walk order (depth first; a block's body
	// before its shortcut). For a model without blocks it is the index in
	// Model.Layers.
	Index int
	// Top is the index in Model.Layers of the top-level layer holding it.
	Top int
	// Key is the state_dict prefix of its tensors: "3", "3.body.1".
	Key string
	// Name is its place for messages: "layers[3]", "layers[3].body[1]".
	Name string
}

// WalkSites calls visit for every leaf layer of m, descending into blocks
// (Block: a residual's body, then its shortcut, at any depth), in order,
// and stops at the first error, which it returns.
func (m *Model) WalkSites(visit func(s Site, l Layer) error) error {
	idx := 0
	return m.walkTree(func(key string, l Layer, top int, leaf bool) error {
		if !leaf {
			return nil
		}
		s := Site{Index: idx, Top: top, Key: key, Name: siteName(key)}
		idx++
		return visit(s, l)
	})
}

// siteName turns a key "3.body.1" into "layers[3].body[1]".
func siteName(key string) string {
	parts := strings.Split(key, ".")
	out := "layers[" + parts[0] + "]"
	for k := 1; k+1 < len(parts); k += 2 {
		out += "." + parts[k] + "[" + parts[k+1] + "]"
	}
	return out
}

// walkTree calls visit for every layer at any depth, blocks (leaf false)
// before their sub-layers, with its state_dict prefix and top-level index.
func (m *Model) walkTree(visit func(key string, l Layer, top int, leaf bool) error) error {
	var rec func(key string, l Layer, top int) error
	rec = func(key string, l Layer, top int) error {
		b, ok := l.(Block)
		if !ok {
			return visit(key, l, top, true)
		}
		if err := visit(key, l, top, false); err != nil {
			return err
		}
		for _, br := range b.Branches() {
			for j, sl := range br.Layers {
				if err := rec(key+"."+br.Name+"."+strconv.Itoa(j), sl, top); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for i, l := range m.Layers {
		if err := rec(strconv.Itoa(i), l, i); err != nil {
			return err
		}
	}
	return nil
}

// KeyParams returns the tensors of the layer l whose state_dict prefix is
// key (Site.Key) from s, in Params order (nil for absent ones).
func KeyParams(s State, key string, l Layer) []*Tensor {
	ps := l.Params()
	out := make([]*Tensor, len(ps))
	for j, p := range ps {
		out[j] = s[key+"."+p.Name]
	}
	return out
}

// HasBlocks reports whether some top-level layer is a Block (a residual).
func (m *Model) HasBlocks() bool {
	for _, l := range m.Layers {
		if _, ok := l.(Block); ok {
			return true
		}
	}
	return false
}

// Slopes implements PiecewiseLinear for the ReLU family.
func (a *Activation) Slopes() (on, off float64) {
	_, on, _ = a.Eval(1, false)
	_, off, _ = a.Eval(-1, false)
	return on, off
}

// IsIdentity implements Identity: identity and flatten.
func (a *Activation) IsIdentity() bool { return a.identity() }

// MayJump implements Jumps: softplus's threshold switch.
func (a *Activation) MayJump() bool { return a.Kind == Softplus }

// Kinked implements KinkSites: a linear layer has no corners.
func (d *Dense) Kinked() bool { return false }

// Kinked implements KinkSites: BatchNorm is smooth in its input.
func (b *BatchNorm) Kinked() bool { return false }

// JetFLOPs implements FLOPCounter: W·[h ḣ ḧ] and ΔW·[h ḣ], 2·3n·In·Out +
// 2·2n·In·Out; on a constant input W·h and ΔW·h, 2·2n·In·Out.
func (d *Dense) JetFLOPs(n int, constInput bool) float64 {
	io := float64(d.In) * float64(d.Out)
	if constInput {
		return 2 * 2 * float64(n) * io
	}
	return 2*3*float64(n)*io + 2*2*float64(n)*io
}

var (
	_ AffineInAlpha   = (*Dense)(nil)
	_ RowJetter       = (*Dense)(nil)
	_ KinkSites       = (*Dense)(nil)
	_ FLOPCounter     = (*Dense)(nil)
	_ PiecewiseLinear = (*Activation)(nil)
	_ Identity        = (*Activation)(nil)
	_ Jumps           = (*Activation)(nil)
	_ BatchStatistics = (*BatchNorm)(nil)
	_ RowJetter       = (*BatchNorm)(nil)
	_ KinkSites       = (*BatchNorm)(nil)
	_ ParamResetter   = (*BatchNorm)(nil)
)

// SplitValues is declared by a layer whose IntervalJet accepts a Split box
// (NewSplitBox, no Mid or Rad) for an order-0 jet: Dense (the split rule
// W0·h + α·(ΔW·h)) and Activation (it never reads its box). The accuracy
// bounds use Split boxes only when every layer after the cached one
// declares it (issue 12, acc-share round).
type SplitValues interface {
	Layer
	// TakesSplitBox reports that IntervalJet accepts a Split box at order 0.
	TakesSplitBox() bool
}

// TakesSplitBox implements SplitValues: the split rule (splitValues).
func (d *Dense) TakesSplitBox() bool { return true }

// TakesSplitBox implements SplitValues: an activation never reads its box.
func (a *Activation) TakesSplitBox() bool { return true }
