package nn

import (
	"fmt"
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
// whether the layer's jet rule has corners where an input unit crosses 0
// (the ReLU family: σ′ jumps, and γ′ with it; THEORY.md §2–§3).
type KinkSites interface {
	Layer
	// Kinked reports whether some input unit's crossing of 0 is a corner.
	Kinked() bool
}

// PiecewiseLinear is a kinked layer acting unit-wise as σ(z) = on·z for
// z > 0 and off·z for z < 0 (relu: 1, 0; leaky_relu: 1, slope). Its
// one-sided jets at a crossing are those of the two slopes.
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
	for _, l := range m.Layers {
		if j, ok := l.(Jumps); ok && j.MayJump() {
			return true
		}
	}
	return false
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
}

// FLOPCounter is a layer that reports the floating-point operations of its
// matrix products in one jet pass (for benchmarks; layers without products
// do not declare it).
type FLOPCounter interface {
	// JetFLOPs is the count for a jet of n examples; constInput: the input
	// does not depend on α (value rows only).
	JetFLOPs(n int, constInput bool) float64
}

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
	// RuleKinks is the kink declaration (KinkSites; PiecewiseLinear when
	// Kinked).
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
		return "kink declaration (nn.KinkSites, nn.PiecewiseLinear when kinked)"
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
			_, ok = l.(PiecewiseLinear)
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

// Require checks that every layer provides every rule and returns an error
// naming each layer (index and type) and the rule it lacks, or nil.
func (m *Model) Require(rules ...Rule) error {
	var missing []string
	for i, l := range m.Layers {
		for _, r := range rules {
			if !Has(l, r) {
				missing = append(missing, fmt.Sprintf("layers[%d] (%s) has no %s", i, l.Type(), r))
			}
		}
	}
	if missing == nil {
		return nil
	}
	return fmt.Errorf("nn: %s", strings.Join(missing, "; "))
}

// Walk calls visit for every layer in order, from layer from on, and stops
// at the first error, which it returns. It is the one walk over a model's
// layers; a block with named sub-blocks (a residual body and shortcut) will
// descend into them here.
func (m *Model) Walk(from int, visit func(i int, l Layer) error) error {
	for i := from; i < len(m.Layers); i++ {
		if err := visit(i, m.Layers[i]); err != nil {
			return err
		}
	}
	return nil
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
)
