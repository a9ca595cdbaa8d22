package certify

import (
	"context"
	"math"
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"pgregory.net/rapid"
)

// TestSettledExamplesDropOut: a leaf split from a parent on which some
// examples are settled (sup ℓ_i′ ≤ 0) reuses the parent's per-example
// bounds for them (issue 12, item 2), and its enclosures stay sound: L′ in
// float64 at random points of the child lies in its DL, the rise L(b) −
// L(a) is below its Integral and Rise, L at its midpoint lies in LC; and
// its DL overlaps the parent's (both enclose L′ on the child). The child's
// DL is not required to lie inside the parent's: the centred and slope forms
// are taken about each leaf's own midpoint, so they are not inclusion
// monotone (a replayed case had the child's sup L′ 1.1e-3 relative above its
// parent's). Over the run, some rows are reused.
func TestSettledExamplesDropOut(t *testing.T) {
	reused := 0
	rapid.Check(t, func(t *rapid.T) {
		p := randomCertPath(t)
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		if e.jumps {
			t.Skip("drop-out is off where L may jump")
		}
		e.dropSettled = true
		e.point(1, true) // per-example ℓ′(1), for a leaf that ends at 1
		a := rapid.Float64Range(0, 0.9).Draw(t, "a")
		w := rapid.SampledFrom([]float64{1e-4, 0.01, 0.05, 0.1}).Draw(t, "width")
		b := a + w
		par := &Leaf{A: a, B: b}
		if err := e.evalLeaves(context.Background(), []*Leaf{par}, 2); err != nil {
			t.Fatal(err)
		}
		m := 0.5*a + 0.5*b
		x, y := &Leaf{A: a, B: m, parent: par.kept}, &Leaf{A: m, B: b, parent: par.kept}
		before := e.rowsReused
		if err := e.evalLeaves(context.Background(), []*Leaf{x, y}, rapid.IntRange(1, 3).Draw(t, "workers")); err != nil {
			t.Fatal(err)
		}
		if par.kept != nil {
			if e.rowsReused-before != 2*par.kept.examples {
				t.Fatalf("%d rows reused, want 2·%d", e.rowsReused-before, par.kept.examples)
			}
			reused += par.kept.examples
		}
		slack := func(v float64) float64 { return 1e-10 * (1 + math.Abs(v)) }
		for _, l := range []*Leaf{x, y} {
			checkChildLeaf(t, p, l)
			if l.DL.Lo > par.DL.Hi+slack(par.DL.Hi) || l.DL.Hi < par.DL.Lo-slack(par.DL.Lo) {
				t.Fatalf("child [%v, %v] L′ ∈ [%v, %v] misses the parent's [%v, %v]: one of them does not enclose L′", l.A, l.B, l.DL.Lo, l.DL.Hi, par.DL.Lo, par.DL.Hi)
			}
		}
	})
	if reused == 0 {
		t.Error("no example was ever settled and reused: the drop-out was not exercised")
	}
	t.Logf("%d (leaf, example) pairs reused", reused)
}

// TestDropOutKeepsVerdicts: on random networks the certificate with
// settled examples dropping out and the one without agree: neither
// contradicts the other's bounds (lower ≤ the other's upper), and the
// verdicts never conflict (certified_monotone against non_monotone).
func TestDropOutKeepsVerdicts(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := randomCertPath(t)
		tol := rapid.SampledFrom([]float64{0, 1e-6, 1e-3}).Draw(t, "tol")
		o := CertifyOptions{Tolerance: tol, MaxIntervals: 256, Workers: 1}
		run := func(drop bool) *Certificate {
			ip, err := NewIntervalPath(p)
			if err != nil {
				t.Fatal(err)
			}
			o := o
			o.defaults()
			m := NewMonotonicity(o)
			if err := BranchAndBound(context.Background(), ip, dropSwitch{m, drop}, o); err != nil {
				t.Fatal(err)
			}
			return m.Cert
		}
		on, off := run(true), run(false)
		if on.DeltaLower > off.DeltaUpper || off.DeltaLower > on.DeltaUpper {
			t.Fatalf("bounds disagree: with drop-out [%v, %v], without [%v, %v]", on.DeltaLower, on.DeltaUpper, off.DeltaLower, off.DeltaUpper)
		}
		if (on.Verdict == CertifiedMonotone && off.Verdict == NonMonotone) || (on.Verdict == NonMonotone && off.Verdict == CertifiedMonotone) {
			t.Fatalf("verdicts conflict: with drop-out %s, without %s", on.Verdict, off.Verdict)
		}
	})
}

// dropSwitch is the monotonicity objective with the drop-out of settled
// examples switched on or off.
type dropSwitch struct {
	*Monotonicity
	drop bool
}

func (d dropSwitch) Begin(ip *IntervalPath, l0, l1 interval.I) error {
	err := d.Monotonicity.Begin(ip, l0, l1)
	ip.dropSettled = d.drop && !ip.jumps
	return err
}

// TestKinkedSettledDropOut: on random small ResNets (keepKinked) the
// examples settled on a parent leaf while kinked there drop out of its
// children too, with keepKinkedFrac drawn from 0 (every settled example)
// to 1, and the children's enclosures stay sound: L′ in float64 at random
// points of each child lies in its DL, L(b) − L(a) is below its Integral
// and the rise from its start below Rise, L at its midpoint lies in LC.
// Over the run some kinked rows are kept (the test fails otherwise: it
// would not exercise them).
func TestKinkedSettledDropOut(t *testing.T) {
	kinked := 0
	saved := keepKinkedFrac
	defer func() { keepKinkedFrac = saved }()
	rapid.Check(t, func(t *rapid.T) {
		p := randomConvResidualPath(t)
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		if !e.keepKinked {
			t.Fatal("a residual net without keepKinked")
		}
		e.dropSettled = true
		keepKinkedFrac = rapid.SampledFrom([]float64{0, 0.5, 1}).Draw(t, "frac")
		e.point(1, true) // per-example ℓ′(1), for a leaf that ends at 1
		a := rapid.Float64Range(0, 0.9).Draw(t, "a")
		w := rapid.SampledFrom([]float64{1e-3, 0.01, 0.05, 0.1}).Draw(t, "width")
		b := a + w
		par := &Leaf{A: a, B: b}
		if err := e.evalLeaves(context.Background(), []*Leaf{par}, 1); err != nil {
			t.Fatal(err)
		}
		if par.kept != nil {
			for _, ck := range par.kept.chunks {
				if ck == nil {
					continue
				}
				for q := range ck.rows {
					if ck.kink[q] {
						kinked++
					}
					if ck.dl[q].Hi > 0 {
						t.Fatalf("a kept row with sup ℓ_i′ = %v > 0", ck.dl[q].Hi)
					}
				}
			}
		}
		m := 0.5*a + 0.5*b
		x, y := &Leaf{A: a, B: m, parent: par.kept}, &Leaf{A: m, B: b, parent: par.kept}
		if err := e.evalLeaves(context.Background(), []*Leaf{x, y}, rapid.IntRange(1, 3).Draw(t, "workers")); err != nil {
			t.Fatal(err)
		}
		for _, l := range []*Leaf{x, y} {
			checkChildLeaf(t, p, l)
		}
	})
	if kinked == 0 {
		t.Error("no kinked example was ever kept: the kinked drop-out was not exercised")
	}
	t.Logf("%d kinked rows kept", kinked)
}

// checkChildLeaf checks a child leaf's enclosures against dense
// evaluation of p at four random α in it: L′ inside DL, the rise from A
// below Rise, L(B) − L(A) below Integral and L at the midpoint inside LC
// (each with a slack of 1e-10 of the value's scale).
func checkChildLeaf(t *rapid.T, p *functionspace.Path, l *Leaf) {
	slack := func(v float64) float64 { return 1e-10 * (1 + math.Abs(v)) }
	for q := 0; q < 4; q++ {
		al := l.A + (l.B-l.A)*rapid.Float64Range(0, 1).Draw(t, "u")
		d := p.At(al).DLoss
		if d < l.DL.Lo-slack(d) || d > l.DL.Hi+slack(d) {
			t.Fatalf("L′(%v) = %v outside the child's [%v, %v] on [%v, %v]", al, d, l.DL.Lo, l.DL.Hi, l.A, l.B)
		}
		// the rise over [A, al] is below Rise (any part of the leaf)
		if r := p.At(al).Loss - p.At(l.A).Loss; r > l.Rise+slack(r)+1e-12 {
			t.Fatalf("L(%v) − L(%v) = %v above Rise %v", al, l.A, r, l.Rise)
		}
	}
	if r := p.At(l.B).Loss - p.At(l.A).Loss; r > l.Integral+slack(r)+1e-12 {
		t.Fatalf("L(b) − L(a) = %v above the integral bound %v on [%v, %v]", r, l.Integral, l.A, l.B)
	}
	c := 0.5*l.A + 0.5*l.B
	if v := p.At(c).Loss; v < l.LC.Lo-slack(v) || v > l.LC.Hi+slack(v) {
		t.Fatalf("L(%v) = %v outside [%v, %v]", c, v, l.LC.Lo, l.LC.Hi)
	}
}
