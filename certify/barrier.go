package certify

import (
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
)

// BarrierOptions set CertifyBarrier; zero values choose the defaults.
type BarrierOptions struct {
	// Gap stops the search once Upper − Lower ≤ Gap (loss units). Default
	// 1e-6·(1 + max(|L(0)|, |L(1)|)).
	Gap float64
	// MaxIntervals is the budget of leaf α-intervals (default 4096).
	MaxIntervals int
	// MinWidth is the narrowest leaf that is still split (default 1e-9).
	MinWidth float64
	// InitialIntervals is the number of equal leaves the search starts from (default 32).
	InitialIntervals int
	// Workers is the number of concurrent passes (default runtime.GOMAXPROCS(0)).
	Workers int
	// Progress, if not nil, is told the stage ("barrier"), the leaves so
	// far and the budget.
	Progress func(stage string, done, total int)
}

// BarrierCertificate is the outcome of CertifyBarrier: rigorous bounds on
// the loss barrier B = max_{α∈[0,1]} g(α), g(α) = L(α) − ((1−α)L(0) + αL(1))
// (THEORY.md §10, the convexity gap of the loss along the line).
type BarrierCertificate struct {
	// Lower ≤ B ≤ Upper. Lower is a proven lower bound on g at the point
	// WitnessAlpha (interval arithmetic: lower(L(α)) − upper(chord(α))),
	// never below 0 (g(0) = g(1) = 0 exactly); Upper is the largest upper
	// bound of g over the final leaves. Upper is +Inf (null in JSON) when
	// an enclosure overflowed.
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	// WitnessAlpha is the α at which g ≥ Lower is proven (0 when Lower is
	// 0 from the endpoints), and WitnessLoss encloses L there.
	WitnessAlpha float64    `json:"witness_alpha"`
	WitnessLoss  [2]float64 `json:"witness_loss"`
	// Loss0 and Loss1 enclose L(0) and L(1).
	Loss0 [2]float64 `json:"loss_0"`
	Loss1 [2]float64 `json:"loss_1"`
	// Gap is the stopping gap used; Converged is set when Upper − Lower ≤ Gap.
	Gap       float64 `json:"gap"`
	Converged bool    `json:"converged"`
	// Reason says why the search stopped before converging (the budget,
	// the narrowest width); empty when converged.
	Reason string `json:"reason,omitempty"`
	Leaves int    `json:"leaves"`
	// JumpLeaves counts final leaves where L may jump (a softplus input
	// crossing PyTorch's threshold); their bound uses the enclosure of L
	// over the leaf, which holds on both sides of a jump.
	JumpLeaves  int     `json:"jump_leaves"`
	Evaluations int     `json:"evaluations"`
	Examples    int     `json:"examples"`
	Seconds     float64 `json:"seconds"`
	// Notes records conditions the bounds depend on.
	Notes []string `json:"notes,omitempty"`
}

// MarshalJSON writes a bound that is not finite (an enclosure overflowed)
// as null, so the JSON stays valid.
func (c *BarrierCertificate) MarshalJSON() ([]byte, error) {
	type plain BarrierCertificate
	finite := func(v float64) *float64 {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		*plain
		Lower *float64 `json:"lower"`
		Upper *float64 `json:"upper"`
	}{(*plain)(c), finite(c.Lower), finite(c.Upper)})
}

// CertifyBarrier bounds the loss barrier of path p rigorously (THEORY.md
// §10): B = max over α ∈ [0, 1] of g(α) = L(α) − ((1−α)L(0) + αL(1)), the
// largest excess of the loss over its chord, with L along the path's line
// (functionspace.Line: θ0 → θT, or two trained networks θA → θB). It runs
// BranchAndBound with the BarrierObjective on the path's IntervalPath: on a
// leaf [a, b] with midpoint c, g is bounded above by the mean-value form
// g(c) + (L′([a, b]) − (L(1) − L(0)))·([a, b] − c) and by
// sup L([a, b]) − min(chord(a), chord(b)) (the only bound where L may jump);
// g(c) ≥ lower(L(c)) − upper(chord(c)) is a proven value at a point. It
// splits the leaves whose upper bound exceeds the best proven value until
// Upper − Lower ≤ o.Gap, the budget is spent or the leaves are at the
// narrowest width (Converged false, Reason says which). It returns
// ctx.Err() when cancelled, an error when a layer has no interval rule,
// and an error wrapping ErrContradiction when Lower > Upper.
func CertifyBarrier(ctx context.Context, p *functionspace.Path, o BarrierOptions) (*BarrierCertificate, error) {
	start := time.Now()
	ip, err := NewIntervalPath(p)
	if err != nil {
		return nil, err
	}
	co := CertifyOptions{MaxIntervals: o.MaxIntervals, MinWidth: o.MinWidth, InitialIntervals: o.InitialIntervals, Workers: o.Workers, Progress: o.Progress}
	co.defaults()
	b := &BarrierObjective{Gap: o.Gap, MinWidth: co.MinWidth, MaxIntervals: co.MaxIntervals, MinBatch: splitBatch} // not the worker count: the same bounds on every machine
	if err := BranchAndBound(ctx, ip, b, co); err != nil {
		return nil, err
	}
	b.Cert.Seconds = time.Since(start).Seconds()
	return b.Cert, nil
}

// BarrierObjective is the Objective of CertifyBarrier (THEORY.md §10): it
// bounds max_α g(α), g(α) = L(α) − ((1−α)L(0) + αL(1)). A leaf is settled
// when its upper bound on g does not exceed the best proven value; the
// witness is the leaf midpoint with the largest proven lower value of g.
// Cert is its result, complete after BranchAndBound returns.
type BarrierObjective struct {
	// Gap, MinWidth, MaxIntervals and MinBatch are as in BarrierOptions;
	// MinBatch is the fewest leaves split at once when available.
	Gap          float64
	MinWidth     float64
	MaxIntervals int
	MinBatch     int
	// Cert is the certificate being built; Seconds is left to the caller.
	Cert *BarrierCertificate

	ip     *IntervalPath
	l0, l1 interval.I
	up     []float64 // per leaf: upper bound of g over it
}

// Stage implements Objective: progress reports say "barrier".
func (b *BarrierObjective) Stage() string { return "barrier" }

// chord encloses (1 − α)L(0) + αL(1) at a float64 α ∈ [0, 1].
func (b *BarrierObjective) chord(alpha float64) interval.I {
	return interval.Add(interval.Mul(interval.Sub(interval.Point(1), interval.Point(alpha)), b.l0), interval.Mul(interval.Point(alpha), b.l1))
}

func (b *BarrierObjective) begin(ip *IntervalPath, l0, l1 interval.I) {
	b.ip, b.l0, b.l1 = ip, l0, l1
	b.Cert = &BarrierCertificate{Examples: ip.p.N, Loss0: [2]float64{l0.Lo, l0.Hi}, Loss1: [2]float64{l1.Lo, l1.Hi}}
	if !(b.Gap > 0) {
		m := max(math.Abs(0.5*l0.Lo+0.5*l0.Hi), math.Abs(0.5*l1.Lo+0.5*l1.Hi))
		if math.IsNaN(m) || math.IsInf(m, 0) {
			m = 0
		}
		b.Gap = 1e-6 * (1 + m)
	}
	b.Cert.Gap = b.Gap
	// g(0) = g(1) = 0 exactly: the endpoints are the first witness
	b.Cert.WitnessLoss = b.Cert.Loss0
}

// Constant implements Objective: on a one-point line L is constant, so
// g = 0 and B = 0.
func (b *BarrierObjective) Constant(ip *IntervalPath, l0, l1 interval.I) error {
	b.begin(ip, l0, l1)
	b.Cert.Converged = true
	b.Cert.Evaluations = ip.Evaluations()
	b.Cert.Notes = append(b.Cert.Notes, "the two ends are equal on every interpolated tensor (δ = 0 exactly): L is constant along the line, so the barrier is 0 without any leaf")
	return nil
}

// Begin implements Objective: it keeps the enclosures of L(0) and L(1)
// (the chord's ends) and sets the default gap from them.
func (b *BarrierObjective) Begin(ip *IntervalPath, l0, l1 interval.I) error {
	b.begin(ip, l0, l1)
	return nil
}

// Bound implements Objective: per leaf the upper bound on g (the smaller
// of the mean-value form around the midpoint and sup L over the leaf
// minus the chord's minimum; only the latter where L may jump), Upper as
// their maximum, and Lower with its witness from the midpoints.
func (b *BarrierObjective) Bound(leaves []*Leaf) {
	c := b.Cert
	slope := interval.Sub(b.l1, b.l0) // L(1) − L(0)
	b.up = make([]float64, len(leaves))
	upper := 0.0
	for k, l := range leaves {
		m := 0.5*l.A + 0.5*l.B
		gm := interval.Sub(l.LC, b.chord(m))
		// lower bound: a proven value of g at the midpoint
		if gm.Lo > c.Lower {
			c.Lower, c.WitnessAlpha, c.WitnessLoss = gm.Lo, m, [2]float64{l.LC.Lo, l.LC.Hi}
		}
		ca, cb := b.chord(l.A), b.chord(l.B)
		u := interval.Up(l.LR.Hi - min(ca.Lo, cb.Lo))
		if !l.LR.Valid() || math.IsNaN(u) {
			u = math.Inf(1)
		}
		if !l.Jump {
			dg := interval.Sub(l.DL, slope)
			off := interval.I{Lo: interval.Down(l.A - m), Hi: interval.Up(l.B - m)}
			mv := interval.Up(gm.Hi + interval.Mul(dg, off).Hi)
			if !math.IsNaN(mv) {
				u = min(u, mv)
			}
		}
		b.up[k] = u
		if u > upper || math.IsNaN(u) {
			upper = u
		}
	}
	c.Upper = max(upper, c.Lower)
}

// Split implements Objective: once Upper − Lower ≤ Gap, none; otherwise
// the leaves whose upper bound exceeds Lower (they may hold a larger value
// of g), largest bound first, until the bounds above the midpoint between
// Lower and Upper are covered (at least MinBatch when available, at most
// budget), never narrower than MinWidth.
func (b *BarrierObjective) Split(leaves []*Leaf, budget int) ([]int, string) {
	c := b.Cert
	if c.Upper-c.Lower <= b.Gap {
		return nil, ""
	}
	if budget <= 0 {
		return nil, fmt.Sprintf("the budget of %d leaves (max_intervals) is spent", b.MaxIntervals)
	}
	var cs []int
	for k, l := range leaves {
		m := 0.5*l.A + 0.5*l.B
		if b.up[k] > c.Lower && l.B-l.A > 2*b.MinWidth && m > l.A && m < l.B {
			cs = append(cs, k)
		}
	}
	if len(cs) == 0 {
		return nil, fmt.Sprintf("every leaf that may hold the maximum is at the narrowest width (min_width %g)", b.MinWidth)
	}
	sort.SliceStable(cs, func(i, j int) bool { return b.up[cs[i]] > b.up[cs[j]] })
	half := c.Lower + 0.5*(c.Upper-c.Lower)
	var out []int
	for _, k := range cs {
		if len(out) >= budget || (b.up[k] <= half && len(out) >= b.MinBatch) {
			break
		}
		out = append(out, k)
	}
	sort.Ints(out)
	return out, ""
}

// Finish implements Objective: the leaves, jump leaves, evaluations,
// whether the gap was met, and the self-check Lower ≤ Upper.
func (b *BarrierObjective) Finish(leaves []*Leaf, stop string) error {
	c := b.Cert
	c.Leaves = len(leaves)
	for _, l := range leaves {
		if l.Jump {
			c.JumpLeaves++
		}
	}
	c.Evaluations = b.ip.Evaluations()
	c.Converged = c.Upper-c.Lower <= b.Gap
	if !c.Converged {
		c.Reason = stop
	}
	if b.ip.jumps {
		c.Notes = append(c.Notes, "softplus follows PyTorch (the identity where βz > threshold): L may jump where a softplus input crosses the threshold; on those leaves (jump_leaves) the upper bound uses the enclosure of L over the leaf")
	}
	if c.Lower > c.Upper {
		return fmt.Errorf("barrier: %w: lower bound %v above upper bound %v", ErrContradiction, c.Lower, c.Upper)
	}
	return nil
}

// SaveState implements ObjectiveState: BarrierObjective keeps nothing
// between rounds that Bound does not recompute from the leaves.
func (b *BarrierObjective) SaveState([]*Leaf) func(*gob.Encoder) error {
	return func(*gob.Encoder) error { return nil }
}

// RestoreState implements ObjectiveState.
func (b *BarrierObjective) RestoreState([]*Leaf, *gob.Decoder) error { return nil }
