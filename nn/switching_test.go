package nn

import (
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"
)

// TestSwitchingRules checks the switching rules of max-pool and of the
// ReLU family (through SwitchingOf) on random jets with many ties (values
// and velocities drawn from {−1, 0, 1}): the branch of every unit is the
// one the layer's Jet selects (its output triple is the branch's input
// triple), every switching function of that branch is lexicographically
// ≥ 0 in (S, SD, SDD) and there is one per rival (the window's other
// inputs; the other side); JetForced without forces is Jet, and a forced
// branch gives that branch's triple in that row only.
func TestSwitchingRules(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := rapid.IntRange(1, 2).Draw(t, "C")
		h := rapid.IntRange(2, 5).Draw(t, "H")
		w := rapid.IntRange(2, 5).Draw(t, "W")
		var l Layer
		if rapid.Bool().Draw(t, "relu") {
			l = &Activation{Kind: rapid.SampledFrom([]ActivationKind{ReLU, LeakyReLU}).Draw(t, "kind"), Width: c * h * w, Slope: 0.1}
		} else {
			k := rapid.IntRange(1, min(3, h, w)).Draw(t, "k")
			ls := LayerSpec{Type: "maxpool2d", Kernel: IntPair{k}, Stride: IntPair{rapid.IntRange(1, 2).Draw(t, "s")}, Padding: IntPair{rapid.IntRange(0, k/2).Draw(t, "p")}}
			var err error
			if l, _, err = BuildLayer(ls, []int{c, h, w}); err != nil {
				t.Skip(err)
			}
		}
		sw, ok := SwitchingOf(l)
		if !ok || !Has(l, RuleKinks) {
			t.Fatalf("%s: no switching rule", l.Type())
		}
		n := rapid.IntRange(1, 3).Draw(t, "n")
		in := &Jet{N: n, M: mat.NewDense(3*n, l.InSize(), nil)}
		raw := in.M.RawMatrix().Data
		for q := range raw {
			raw[q] = float64(rapid.IntRange(-1, 1).Draw(t, "x"))
		}
		out := l.Jet(nil, nil, in)
		free := sw.JetForced(in, nil)
		if !mat.Equal(out.M, free.M) {
			t.Fatalf("%s: JetForced without forces differs from Jet", l.Type())
		}
		ns := sw.Switches()
		br := make([]int, ns)
		for r := 0; r < n; r++ {
			x, xd, xdd := in.M.RawRowView(r), in.M.RawRowView(n+r), in.M.RawRowView(2*n+r)
			sw.Branches(x, xd, xdd, br)
			for u, b := range br {
				gs := sw.Gaps(nil, u, b, x, xd, xdd)
				for _, g := range gs {
					if g.Rival == b || g.S < 0 || (g.S == 0 && (g.SD < 0 || (g.SD == 0 && g.SDD < 0))) {
						t.Fatalf("%s row %d unit %d branch %d: gap %+v is not ≥ 0 against a rival", l.Type(), r, u, b, g)
					}
				}
				if mp, ok := l.(*MaxPool2d); ok {
					q := u % (mp.OH * mp.OW)
					size := (mp.H1[q] - mp.H0[q]) * (mp.W1[q] - mp.W0[q])
					if len(gs) != size-1 {
						t.Fatalf("window %d of %d inputs: %d gaps", u, size, len(gs))
					}
					for part := 0; part < 3; part++ {
						if got, want := out.M.At(part*n+r, u), in.M.At(part*n+r, b); got != want {
							t.Fatalf("window %d: Jet part %d %v, branch %d has %v", u, part, got, b, want)
						}
					}
				} else if len(gs) != 1 {
					t.Fatalf("unit %d: %d gaps, want 1", u, len(gs))
				}
			}
		}
		// Force one unit of one row to a rival branch.
		r := rapid.IntRange(0, n-1).Draw(t, "row")
		u := rapid.IntRange(0, ns-1).Draw(t, "unit")
		x, xd, xdd := in.M.RawRowView(r), in.M.RawRowView(n+r), in.M.RawRowView(2*n+r)
		sw.Branches(x, xd, xdd, br)
		gs := sw.Gaps(nil, u, br[u], x, xd, xdd)
		if len(gs) == 0 {
			return // a window of one input
		}
		rival := rapid.SampledFrom(gs).Draw(t, "rival").Rival
		forced := sw.JetForced(in, []Force{{Row: r, Unit: u, Branch: rival}})
		for part := 0; part < 3; part++ {
			for rr := 0; rr < n; rr++ {
				for uu := 0; uu < ns; uu++ {
					got, want := forced.M.At(part*n+rr, uu), out.M.At(part*n+rr, uu)
					if rr == r && uu == u {
						want = in.M.At(part*n+rr, rival) // max-pool: the rival input's triple
						if _, ok := l.(*MaxPool2d); !ok {
							on, off := l.(PiecewiseLinear).Slopes()
							k := off
							if rival == 1 {
								k = on
							}
							want = k * in.M.At(part*n+rr, uu)
						}
					}
					if got != want {
						t.Fatalf("%s forced row %d unit %d to %d: part %d row %d unit %d is %v, want %v", l.Type(), r, u, rival, part, rr, uu, got, want)
					}
				}
			}
		}
	})
}
