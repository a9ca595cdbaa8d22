package certify

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
)

// The crossing units' sums as cert-scale computed them, one sweep over the
// outputs per unit into per-output arrays (crossSums), kept as the oracle
// of crossRow, which must give the same enclosures bit for bit.

// crossTerm is one term of addTerms, prepared (term): the sum it goes to,
// whether its column is ΔW's (else W(α)'s), and its interval's float
// midpoint xm, radius xr, |xm| and |xm| + xr.
type crossTerm struct {
	mid, rad, abs []float64
	delta         bool
	xm, xr, ax    float64
	axr           float64
}

// term prepares the term x of sum which for addTerms, counting it; false
// for an exact zero (it adds nothing). A midpoint or radius that is not
// finite becomes 0 ± +Inf.
func (s *crossSums) term(x interval.I, which int, delta bool) (crossTerm, bool) {
	if x.Lo == 0 && x.Hi == 0 {
		return crossTerm{}, false
	}
	xm := 0.5*x.Lo + 0.5*x.Hi
	xr := interval.Up(max(x.Hi-xm, xm-x.Lo))
	if math.IsNaN(xm) || math.IsInf(xm, 0) || math.IsNaN(xr) || math.IsInf(xr, 0) {
		xm, xr = 0, math.Inf(1)
	}
	s.terms[which]++
	ax := math.Abs(xm)
	return crossTerm{mid: s.mid[which], rad: s.rad[which], abs: s.abs[which], delta: delta, xm: xm, xr: xr, ax: ax, axr: ax + xr}, true
}

// addTerms adds, for each prepared term ts[j] (interval x), column u of
// W(α) (ts[j].delta false; α ∈ alpha, cm the centre used) or of ΔW (delta
// true) times x to its sum, in one sweep over the outputs (the columns
// read once per output, not once per term; each sum receives its terms in
// the order of ts). For W(α) = (W0 + cm·ΔW) + (α − cm)·ΔW the term is
// (W0 + cm·ΔW)·xm plus at most (|W0| + |cm||ΔW|)·xr + |α − cm|·|ΔW|·(|xm| +
// xr); mid collects the first in float, rad the bounds, abs the
// magnitudes (|W0| + |cm||ΔW|)|xm| whose multiple bounds the float
// rounding of mid (addTo). For ΔW (exact) the term is ΔW·xm in mid, |ΔW|·xr
// in rad and |ΔW||xm| in abs.
func (s *crossSums) addTerms(pl *carryPlan, u int, alpha interval.I, cm float64, ts []crossTerm) {
	if len(ts) == 0 {
		return
	}
	m := pl.out
	w0, dw := pl.d.W0T[u*m:(u+1)*m], pl.d.DWT[u*m:(u+1)*m]
	t := max(math.Abs(alpha.Lo-cm), math.Abs(alpha.Hi-cm))
	t = interval.Up(t + t*0x1p-50) // |α − cm| for α ∈ alpha, rounded up
	acm := math.Abs(cm)
	for o, w := range w0 {
		d := dw[o]
		wc := w + cm*d
		ad := math.Abs(d)
		aw := math.Abs(w) + acm*ad
		td := t * ad
		for j := range ts {
			x := &ts[j]
			if x.delta {
				x.mid[o] += d * x.xm
				x.rad[o] += ad * x.xr
				x.abs[o] += ad * x.ax
			} else {
				x.mid[o] += wc * x.xm
				x.rad[o] += aw*x.xr + td*x.axr
				x.abs[o] += aw * x.ax
			}
		}
	}
}

// TestCrossRowIdentical checks crossRow (the fused sweep, issue 12
// cert-5000) against the former per-unit sweeps (crossSums.term, addTerms,
// addTo) bit for bit, on random columns, terms (exact zeros, points, wide
// and non-finite intervals, ΔW and W(α) terms) and leaves.
func TestCrossRowIdentical(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.IntRange(1, 9).Draw(t, "out")
		nu := rapid.IntRange(1, 5).Draw(t, "units")
		in := nu + rapid.IntRange(0, 3).Draw(t, "other units")
		fl := func(name string) float64 {
			switch rapid.IntRange(0, 6).Draw(t, name+" kind") {
			case 0:
				return 0
			default:
				return rapid.Float64Range(-3, 3).Draw(t, name)
			}
		}
		d := &functionspace.CarriedLayer{In: in, Out: m, W0T: make([]float64, in*m), DWT: make([]float64, in*m)}
		for k := range d.W0T {
			d.W0T[k], d.DWT[k] = fl("w0"), fl("dw")
		}
		pl := &carryPlan{out: m, in: in, d: d}
		a := rapid.Float64Range(0, 1).Draw(t, "a")
		alpha := interval.I{Lo: a, Hi: a + rapid.SampledFrom([]float64{0, 1e-6, 0.01, 0.3}).Draw(t, "width")}
		cm := alpha.Lo
		if alpha.Lo != alpha.Hi {
			cm = 0.5*alpha.Lo + 0.5*alpha.Hi
		}
		iv := func(name string) interval.I {
			switch rapid.IntRange(0, 5).Draw(t, name+" kind") {
			case 0:
				return interval.I{}
			case 1:
				v := fl(name)
				return interval.I{Lo: v, Hi: v}
			case 2:
				return interval.I{Lo: math.Inf(-1), Hi: rapid.Float64Range(-1, 1).Draw(t, name)}
			default:
				lo := fl(name)
				return interval.I{Lo: lo, Hi: lo + rapid.Float64Range(0, 2).Draw(t, name+" w")}
			}
		}
		type unitIn struct {
			u     int
			xs    [6]interval.I
			which [6]int
			delta [6]bool
		}
		order := rapid.IntRange(0, 2).Draw(t, "order")
		var uis []unitIn
		for q := 0; q < nu; q++ {
			x := unitIn{u: q}
			v, d1, d2, k := iv("v"), iv("d1"), iv("d2"), iv("k")
			x.xs = [6]interval.I{v, v, d1, interval.Scale(2, d1), d2, k}
			x.which = [6]int{sumV, sumD1, sumD1, sumD2, sumD2, sumDK}
			x.delta = [6]bool{false, true, false, true, false, false}
			uis = append(uis, x)
		}
		nts := map[int]int{0: 1, 1: 3, 2: 6}[order]
		// the oracle: crossSums, one sweep per unit
		sum := newCrossSums(m)
		sum.reset()
		for _, x := range uis {
			var ts []crossTerm
			for j := 0; j < nts; j++ {
				if c, ok := sum.term(x.xs[j], x.which[j], x.delta[j]); ok {
					ts = append(ts, c)
				}
			}
			sum.addTerms(pl, x.u, alpha, cm, ts)
		}
		base := func() [nSums]interval.Matrix {
			var out [nSums]interval.Matrix
			for k := range out {
				out[k] = interval.NewMatrix(2, m)
				for q := range out[k].Lo {
					out[k].Lo[q] = rapid.Float64Range(-1, 0).Draw(t, "row lo")
					out[k].Hi[q] = out[k].Lo[q] + 1
				}
			}
			return out
		}
		want := base()
		got := [nSums]interval.Matrix{}
		for k := range want {
			got[k] = interval.Matrix{Rows: 2, Cols: m, Lo: append([]float64(nil), want[k].Lo...), Hi: append([]float64(nil), want[k].Hi...)}
			lo, hi := want[k].Row(1)
			sum.addTo(k, lo, hi)
		}
		// crossRow
		var terms [nSums]int
		var cu []crossUnit
		for _, x := range uis {
			c := crossUnit{w0: d.W0T[x.u*m : (x.u+1)*m], dw: d.DWT[x.u*m : (x.u+1)*m]}
			for j := 0; j < nts; j++ {
				c.push(x.xs[j], x.which[j], x.delta[j], &terms)
			}
			if c.nt > 0 {
				cu = append(cu, c)
			}
		}
		if terms != sum.terms {
			t.Fatalf("term counts %v, want %v", terms, sum.terms)
		}
		crossRow(cu, &terms, alpha, cm, 1, got)
		for k := range got {
			for q := range got[k].Lo {
				if math.Float64bits(got[k].Lo[q]) != math.Float64bits(want[k].Lo[q]) || math.Float64bits(got[k].Hi[q]) != math.Float64bits(want[k].Hi[q]) {
					t.Fatalf("sum %d entry %d: crossRow [%v, %v], per-unit sweeps [%v, %v]", k, q, got[k].Lo[q], got[k].Hi[q], want[k].Lo[q], want[k].Hi[q])
				}
			}
		}
	})
}

// crossBench builds a row of 18 crossing units with six terms each at
// width 1024 (the benchmark network's size, cert-scale's count of crossing
// units per example) for BenchmarkCrossRow and BenchmarkCrossSums.
func crossBench() (*carryPlan, []crossUnit, [nSums]int, [][6]crossTerm, *crossSums, [nSums]interval.Matrix) {
	const m, nu = 1024, 18
	d := &functionspace.CarriedLayer{In: nu, Out: m, W0T: make([]float64, nu*m), DWT: make([]float64, nu*m)}
	for k := range d.W0T {
		d.W0T[k], d.DWT[k] = math.Sin(float64(k)), math.Cos(float64(3*k))
	}
	pl := &carryPlan{out: m, in: nu, d: d}
	var terms [nSums]int
	var cu []crossUnit
	sum := newCrossSums(m)
	var old [][6]crossTerm
	for u := 0; u < nu; u++ {
		x := crossUnit{w0: d.W0T[u*m : (u+1)*m], dw: d.DWT[u*m : (u+1)*m]}
		iv := func(k int) interval.I { v := math.Sin(float64(u*7 + k)); return interval.I{Lo: v, Hi: v + 1e-9} }
		xs := [6]interval.I{iv(0), iv(0), iv(1), interval.Scale(2, iv(1)), iv(2), iv(3)}
		wh := [6]int{sumV, sumD1, sumD1, sumD2, sumD2, sumDK}
		dl := [6]bool{false, true, false, true, false, false}
		var ts [6]crossTerm
		for j := range xs {
			x.push(xs[j], wh[j], dl[j], &terms)
			ts[j], _ = sum.term(xs[j], wh[j], dl[j])
		}
		cu = append(cu, x)
		old = append(old, ts)
	}
	var dst [nSums]interval.Matrix
	for k := range dst {
		dst[k] = interval.NewMatrix(1, m)
	}
	return pl, cu, terms, old, sum, dst
}

func BenchmarkCrossRow(b *testing.B) {
	_, cu, terms, _, _, dst := crossBench()
	alpha := interval.I{Lo: 0.25, Hi: 0.28125}
	for i := 0; i < b.N; i++ {
		crossRow(cu, &terms, alpha, 0.265625, 0, dst)
	}
}

func BenchmarkCrossSums(b *testing.B) {
	pl, _, _, old, sum, dst := crossBench()
	alpha := interval.I{Lo: 0.25, Hi: 0.28125}
	for i := 0; i < b.N; i++ {
		sum.reset()
		for u := range old {
			for j := range old[u] {
				sum.terms[j%4]++
			}
			sum.addTerms(pl, u, alpha, 0.265625, old[u][:])
		}
		for k := range dst {
			lo, hi := dst[k].Row(0)
			sum.addTo(k, lo, hi)
		}
	}
}
