package certify

import (
	"context"
	"math"
	"testing"

	"github.com/certify-mli/certify/interval"
	"pgregory.net/rapid"
)

// bisectEnds returns the ends of [a, b] bisected d times (0.5·x + 0.5·y
// at every level), recursively: the oracle for splitLeaf.
func bisectEnds(a, b float64, d int) []float64 {
	if d == 0 {
		return []float64{a, b}
	}
	m := 0.5*a + 0.5*b
	l := bisectEnds(a, m, d-1)
	return append(l[:len(l)-1], bisectEnds(m, b, d-1)...)
}

// TestSplitLeafParts: splitLeaf's parts have the ends of repeated
// bisection, cover the leaf in order, inherit L at the parent's ends and
// midpoint (LA, LB, LC) and nowhere else, and share the parent's kept rows.
func TestSplitLeafParts(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.Float64Range(0, 0.99).Draw(t, "a")
		b := a + rapid.Float64Range(1e-6, 1-a).Draw(t, "w")
		d := rapid.IntRange(0, 4).Draw(t, "d")
		kr := &keptRows{}
		l := &Leaf{A: a, B: b, LA: interval.I{Lo: 1, Hi: 1}, LB: interval.I{Lo: 2, Hi: 2}, LC: interval.I{Lo: 3, Hi: 3}, kept: kr}
		if d > 0 {
			l.Ways = 1 << d
		}
		kids := splitLeaf(l)
		want := bisectEnds(a, b, max(d, 1))
		if len(kids) != len(want)-1 {
			t.Fatalf("%d parts, want %d", len(kids), len(want)-1)
		}
		mid := 0.5*a + 0.5*b
		for i, k := range kids {
			if k.A != want[i] || k.B != want[i+1] {
				t.Fatalf("part %d is [%v, %v], want [%v, %v]", i, k.A, k.B, want[i], want[i+1])
			}
			if k.parent != kr {
				t.Fatalf("part %d does not share the parent's kept rows", i)
			}
			for _, e := range []struct {
				x float64
				v interval.I
			}{{k.A, k.LA}, {k.B, k.LB}} {
				var w interval.I
				switch e.x {
				case a:
					w = l.LA
				case b:
					w = l.LB
				case mid:
					w = l.LC
				default:
					w = wholeLine
				}
				if e.v != w {
					t.Fatalf("part %d: L at %v is %v, want %v", i, e.x, e.v, w)
				}
			}
		}
	})
}

// waysCounter is the monotonicity objective counting the multi-way splits
// (Leaf.Ways > 2) its Split chooses.
type waysCounter struct {
	*Monotonicity
	n *int
}

func (w waysCounter) Split(leaves []*Leaf, budget int) ([]int, string) {
	s, why := w.Monotonicity.Split(leaves, budget)
	added := 0
	for _, k := range s {
		if leaves[k].Ways > 2 {
			*w.n++
		}
		added += max(leaves[k].Ways, 2) - 1
	}
	if added > budget {
		panic("splitWays exceeded the budget")
	}
	return s, why
}

// TestSplitWaysCertificateSound: on random small ResNets the certificate
// with multi-way splits (splitWays, keepKinked nets) is never
// certified_monotone when a dense grid of 400 α rises above the tolerance,
// its upper bound covers the grid's Δ, it never holds more leaves than the
// budget, and some leaves were split more than two ways over the run.
func TestSplitWaysCertificateSound(t *testing.T) {
	multi := 0
	rapid.Check(t, func(t *rapid.T) {
		p := randomConvResidualPath(t)
		ip, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		tol := rapid.SampledFrom([]float64{1e-7, 1e-5, 1e-3}).Draw(t, "tol")
		o := CertifyOptions{Tolerance: tol, MaxIntervals: rapid.IntRange(16, 160).Draw(t, "budget"), InitialIntervals: 4, Workers: 2}
		o.defaults()
		m := NewMonotonicity(o)
		if err := BranchAndBound(context.Background(), ip, waysCounter{m, &multi}, o); err != nil {
			t.Fatal(err)
		}
		cert := m.Cert
		if cert.Leaves > o.MaxIntervals {
			t.Fatalf("%d leaves, budget %d", cert.Leaves, o.MaxIntervals)
		}
		loss := make([]float64, 400)
		for j := range loss {
			loss[j] = p.At(float64(j) / 399).Loss
		}
		d := Delta(loss)
		re := 2 * RoundingError(loss[0], p.N)
		if d > tol+re && cert.Verdict == CertifiedMonotone {
			t.Fatalf("certified with grid Δ = %v > tolerance %v", d, tol)
		}
		if cert.DeltaUpper < d-re || math.IsNaN(cert.DeltaUpper) {
			t.Fatalf("upper bound %v below grid Δ %v", cert.DeltaUpper, d)
		}
	})
	if multi == 0 {
		t.Error("no leaf was split more than two ways: splitWays was not exercised")
	}
	t.Logf("%d multi-way splits", multi)
}
