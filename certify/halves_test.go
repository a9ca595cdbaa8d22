package certify

import (
	"context"
	"math"
	"math/big"
	"sort"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
)

// ratUp returns the nearest float64 at or above r.
func ratUp(r *big.Rat) float64 {
	f, exact := r.Float64()
	if !exact && new(big.Rat).SetFloat64(f).Cmp(r) < 0 {
		f = math.Nextafter(f, math.Inf(1))
	}
	return f
}

// ratDown returns the nearest float64 at or below r.
func ratDown(r *big.Rat) float64 {
	f, exact := r.Float64()
	if !exact && new(big.Rat).SetFloat64(f).Cmp(r) > 0 {
		f = math.Nextafter(f, math.Inf(-1))
	}
	return f
}

// TestUpperRiseHalvesSound (issue 13, halves): on a piecewise-linear L
// (nodes at every leaf's ends and midpoint and at random α inside each
// half, values exact in math/big), with every Leaf field Bound reads a
// valid bound of it (Rise, RiseLeft, RiseRight, Integral, sup L′ over the
// leaf, the enclosures of L at the ends and the midpoint, each with
// random slack; some ends, midpoints and half rises unknown (±Inf, NaN),
// some leaves jump leaves bounded by LR), the half-leaves' bound
// (upperRiseHalves) is never below the exact Δ; riseBound's result is the
// smaller of it and the whole leaves' bound (never above the latter), and
// its run is a valid range of leaf indices. It fails when both halves take
// RiseRight, when LC's radius is dropped (lo = hi = its midpoint), or when
// a half takes the whole leaf's negative end.
func TestUpperRiseHalvesSound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 10).Draw(t, "n")
		scale := math.Pow(10, float64(rapid.IntRange(-12, 2).Draw(t, "scale")))
		val := func(name string) float64 { return rapid.Float64Range(-1, 1).Draw(t, name) * scale }
		slack := func(name string) float64 {
			if rapid.Bool().Draw(t, name+"0") {
				return 0
			}
			return rapid.Float64Range(0, 1).Draw(t, name) * scale * math.Pow(10, float64(rapid.IntRange(-14, 0).Draw(t, name+"e")))
		}
		type node struct{ a, v float64 }
		var nodes []node
		atA, atC := make([]int, n+1), make([]int, n)
		// a leaf is linear in α (v0 + s·(α − a)) or random at its nodes;
		// a linear leaf's sup L′ is its change over its width, so a
		// wrong negative end shows
		next := val("x") // L at the next leaf's start
		for k := 0; k < n; k++ {
			a, b := float64(k)/float64(n), float64(k+1)/float64(n)
			c := 0.5*a + 0.5*b
			v0 := next
			var s float64
			linear := rapid.IntRange(0, 3).Draw(t, "linear") == 0
			if linear {
				s = val("s") / (b - a)
			}
			v := func(x float64, name string) float64 {
				if linear {
					return v0 + s*(x-a)
				}
				return val(name)
			}
			inner := func(lo, hi float64) {
				q := rapid.IntRange(0, 2).Draw(t, "inner")
				for j := 1; j <= q; j++ {
					if x := lo + (hi-lo)*float64(j)/float64(q+1); x > lo && x < hi && x > nodes[len(nodes)-1].a {
						nodes = append(nodes, node{x, v(x, "y")})
					}
				}
			}
			atA[k] = len(nodes)
			nodes = append(nodes, node{a, v0})
			inner(a, c)
			atC[k] = len(nodes)
			nodes = append(nodes, node{c, v(c, "c")})
			inner(c, b)
			next = v(b, "x")
		}
		atA[n] = len(nodes)
		nodes = append(nodes, node{1, next})
		rat := func(x float64) *big.Rat { return new(big.Rat).SetFloat64(x) }
		rise := func(i, j int) *big.Rat { // max over i ≤ p < q ≤ j of v_q − v_p, ≥ 0
			best := new(big.Rat)
			for p := i; p <= j; p++ {
				for q := p + 1; q <= j; q++ {
					if d := new(big.Rat).Sub(rat(nodes[q].v), rat(nodes[p].v)); d.Cmp(best) > 0 {
						best = d
					}
				}
			}
			return best
		}
		maxSlope := func(i, j int) *big.Rat {
			var best *big.Rat
			for p := i; p < j; p++ {
				s := new(big.Rat).Sub(rat(nodes[p+1].v), rat(nodes[p].v))
				s.Quo(s, new(big.Rat).Sub(rat(nodes[p+1].a), rat(nodes[p].a)))
				if best == nil || s.Cmp(best) > 0 {
					best = s
				}
			}
			return best
		}
		enclose := func(v float64, name string) interval.I {
			if rapid.IntRange(0, 3).Draw(t, name+"unknown") == 0 {
				return wholeLine
			}
			return interval.I{Lo: interval.Down(v - slack(name+"lo")), Hi: interval.Up(v + slack(name+"hi"))}
		}
		halfRise := func(i, j int, name string) float64 {
			switch rapid.IntRange(0, 7).Draw(t, name+"kind") {
			case 0:
				return math.NaN()
			case 1:
				return math.Inf(1)
			}
			return interval.Up(ratUp(rise(i, j)) + slack(name))
		}
		ends := make([]interval.I, n+1)
		for j := range ends {
			ends[j] = enclose(nodes[atA[j]].v, "end")
		}
		leaves := make([]*Leaf, n)
		for k := range leaves {
			i, c, j := atA[k], atC[k], atA[k+1]
			l := &Leaf{A: nodes[i].a, B: nodes[j].a, LA: ends[k], LB: ends[k+1], LC: enclose(nodes[c].v, "mid"),
				DL: interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}}
			if rapid.Bool().Draw(t, "slope") {
				s := maxSlope(i, j)
				if s.Sign() <= 0 && rapid.Bool().Draw(t, "zero") {
					l.DL.Hi = 0
				} else {
					l.DL.Hi = interval.Up(ratUp(s) + slack("slope"))
				}
			}
			l.Rise = interval.Up(ratUp(rise(i, j)) + slack("rise"))
			l.RiseLeft, l.RiseRight = halfRise(i, c, "left"), halfRise(c, j, "right")
			l.Integral = math.Inf(1)
			if rapid.Bool().Draw(t, "integral") {
				l.Integral = interval.Up(ratUp(new(big.Rat).Sub(rat(nodes[j].v), rat(nodes[i].v))) + slack("int"))
			}
			if rapid.IntRange(0, 7).Draw(t, "jump") == 0 {
				lo, hi := nodes[i].v, nodes[i].v
				for p := i; p <= j; p++ {
					lo, hi = min(lo, nodes[p].v), max(hi, nodes[p].v)
				}
				l.Jump, l.LR = true, interval.I{Lo: interval.Down(lo - slack("lr")), Hi: interval.Up(hi + slack("lr"))}
			}
			leaves[k] = l
		}
		end, in := leafBounds(leaves)
		exact := rise(0, len(nodes)-1)
		h, hf, hl := upperRiseHalves(leaves, end, in)
		if new(big.Rat).SetFloat64(h).Cmp(exact) < 0 && !math.IsNaN(h) {
			t.Fatalf("upperRiseHalves %v below the exact Δ %v (run %d..%d)", h, exact.FloatString(20), hf, hl)
		}
		if !(hf >= 0 && hf <= hl && hl < n) && !(hf == 0 && hl == -1 && h == 0) {
			t.Fatalf("run %d..%d of %d leaves (bound %v)", hf, hl, n, h)
		}
		lo, hi := leafEnds(leaves)
		whole, _, _ := upperRiseEnds(end, in, lo, hi)
		m := &Monotonicity{}
		up, f, l := m.riseBound(leaves, end, in)
		if !(up <= whole) || (h < whole && up != h) || m.upperWhole != whole {
			t.Fatalf("riseBound %v (run %d..%d): whole leaves %v, halves %v", up, f, l, whole, h)
		}
		if new(big.Rat).SetFloat64(up).Cmp(exact) < 0 {
			t.Fatalf("riseBound %v below the exact Δ %v", up, exact.FloatString(20))
		}
	})
}

// halvesCheck is the monotonicity objective checking the half-leaves on a
// real path: at every Bound the half-leaves' bound covers the dense
// grid's Δ and DeltaUpper is not above the whole leaves' bound; at Finish,
// on the final leaves with the largest half rises, L(c) ∈ LC and the
// float64 rises inside each half stay within RiseLeft, RiseRight.
type halvesCheck struct {
	*Monotonicity
	t       *rapid.T
	p       *functionspace.Path
	d, re   float64 // the grid's Δ and its rounding allowance
	checked *int    // half-leaves checked against dense rises
	smaller *int    // Bound calls where the halves' bound was the smaller
}

func (h halvesCheck) Bound(leaves []*Leaf) {
	h.Monotonicity.Bound(leaves)
	m := h.Monotonicity
	if m.upperHalves < h.d-h.re {
		h.t.Fatalf("half-leaves' bound %v below the grid's Δ %v", m.upperHalves, h.d)
	}
	if !(m.Cert.DeltaUpper <= m.upperWhole) {
		h.t.Fatalf("delta_upper %v above the whole leaves' bound %v", m.Cert.DeltaUpper, m.upperWhole)
	}
	if m.upperHalves < m.upperWhole {
		*h.smaller++
	}
	if !(m.first >= 0 && m.first <= m.last && m.last < len(leaves)) && !(m.first == 0 && m.last == -1) {
		h.t.Fatalf("run %d..%d of %d leaves", m.first, m.last, len(leaves))
	}
}

func (h halvesCheck) Finish(leaves []*Leaf, stop string) error {
	var ls []*Leaf
	for _, l := range leaves {
		if c := 0.5*l.A + 0.5*l.B; !l.Jump && knownEnd(l.LC) && c > l.A && c < l.B {
			ls = append(ls, l)
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Rise > ls[j].Rise })
	loss := func(a float64) float64 { return h.p.At(a).Loss }
	for _, l := range ls[:min(len(ls), 12)] {
		c := 0.5*l.A + 0.5*l.B
		lc := loss(c)
		re := 2 * RoundingError(lc, h.p.N)
		if lc < l.LC.Lo-re || lc > l.LC.Hi+re {
			h.t.Fatalf("L(%v) = %v outside LC %v", c, lc, l.LC)
		}
		for _, half := range []struct {
			a, b, bound float64
			name        string
		}{{l.A, c, l.RiseLeft, "RiseLeft"}, {c, l.B, l.RiseRight, "RiseRight"}} {
			const q = 9
			var v [q]float64
			for j := range v {
				v[j] = loss(half.a + (half.b-half.a)*float64(j)/(q-1))
			}
			for i := 0; i < q; i++ {
				for j := i + 1; j < q; j++ {
					if r := v[j] - v[i]; r > half.bound+re+2*RoundingError(v[j], h.p.N) {
						h.t.Fatalf("leaf [%v, %v]: L rises by %v inside [%v, %v], above %s %v (Rise %v)", l.A, l.B, r, half.a, half.b, half.name, half.bound, l.Rise)
					}
				}
			}
			*h.checked++
		}
	}
	return h.Monotonicity.Finish(leaves, stop)
}

// TestHalvesCertificateSound (issue 13, halves): on random small MLPs
// (randomCertPath) and small ResNets (randomConvResidualPath) the
// certificate with half-leaves is never certified_monotone when a dense
// grid of 400 α rises above the tolerance, its DeltaUpper and the
// half-leaves' bound alone cover the grid's Δ at every Bound, DeltaUpper
// is never above the whole leaves' bound on the same leaves, and on the
// final leaves the dense rises inside each half stay within RiseLeft and
// RiseRight (with L(c) ∈ LC).
func TestHalvesCertificateSound(t *testing.T) {
	checked, smaller, certified := 0, 0, 0
	rapid.Check(t, func(t *rapid.T) {
		var p *functionspace.Path
		if rapid.Bool().Draw(t, "resnet") {
			p = randomConvResidualPath(t)
		} else {
			p = randomCertPath(t)
		}
		ip, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		tol := rapid.SampledFrom([]float64{0, 1e-7, 1e-5, 1e-3, 1e-2}).Draw(t, "tol")
		o := CertifyOptions{Tolerance: tol, MaxIntervals: rapid.IntRange(16, 160).Draw(t, "budget"), InitialIntervals: rapid.SampledFrom([]int{4, 8}).Draw(t, "initial"), Workers: 2}
		o.defaults()
		loss := make([]float64, 400)
		for j := range loss {
			loss[j] = p.At(float64(j) / 399).Loss
		}
		d := Delta(loss)
		re := 2 * RoundingError(loss[0], p.N)
		m := NewMonotonicity(o)
		if err := BranchAndBound(context.Background(), ip, halvesCheck{m, t, p, d, re, &checked, &smaller}, o); err != nil {
			t.Fatal(err)
		}
		cert := m.Cert
		if d > tol+re && cert.Verdict == CertifiedMonotone {
			t.Fatalf("certified with grid Δ = %v > tolerance %v (bounds [%v, %v])", d, tol, cert.DeltaLower, cert.DeltaUpper)
		}
		if cert.DeltaUpper < d-re || math.IsNaN(cert.DeltaUpper) {
			t.Fatalf("upper bound %v below grid Δ %v", cert.DeltaUpper, d)
		}
		if cert.Verdict == CertifiedMonotone {
			certified++
		}
	})
	if checked == 0 || smaller == 0 {
		t.Errorf("%d half-leaves checked, %d bounds where the halves were the smaller: not exercised", checked, smaller)
	}
	t.Logf("%d half-leaves checked against dense rises; the halves' bound the smaller in %d Bound calls; %d certified_monotone", checked, smaller, certified)
}

// TestHalvesClosedForm (issue 13, halves): two closed forms of the
// half-leaves' bound on three leaves of width 1/3.
//
// A flat L = 0 (enclosed exactly at every end and midpoint) with L′ ∈
// [−1, 1] and Rise = R on every leaf, R/2 on each half: the whole leaves
// bound Δ by 2R (Rise_f + Rise_{f+1} through a shared end), the halves by
// R (RiseRight_f + RiseLeft_{f+1}), and riseBound takes the latter.
//
// L linear on each leaf, 0 → 1 → 0.5 → 1.5 (L′ = 3, −1.5, 3; ends
// between the leaves unknown, midpoints known): Δ = 1.5 exactly, and the
// halves' bound is 1.5 up to rounding. A half of the falling leaf that
// took the whole leaf's end (−0.5) would count its fall twice (Δ ≤ 1.0).
func TestHalvesClosedForm(t *testing.T) {
	const R = 1e-3
	third := 1.0 / 3
	leaf := func(k int) *Leaf {
		a, b := float64(k)*third, float64(k+1)*third
		if k == 2 {
			b = 1
		}
		return &Leaf{A: a, B: b}
	}
	var flat []*Leaf
	for k := range 3 {
		l := leaf(k)
		l.DL, l.Rise, l.RiseLeft, l.RiseRight, l.Integral = interval.I{Lo: -1, Hi: 1}, R, R/2, R/2, math.Inf(1)
		l.LA, l.LB, l.LC = interval.Point(0), interval.Point(0), interval.Point(0)
		flat = append(flat, l)
	}
	end, in := leafBounds(flat)
	m := &Monotonicity{}
	up, f, l := m.riseBound(flat, end, in)
	if !(m.upperWhole >= 2*R) || !(m.upperHalves >= R && m.upperHalves <= R*(1+1e-15)) || up != m.upperHalves {
		t.Errorf("flat L: bound %v (run %d..%d), whole leaves %v (want 2R = %v), halves %v (want R = %v)", up, f, l, m.upperWhole, 2*R, m.upperHalves, R)
	}
	if f != l-1 && f != l {
		t.Errorf("flat L: run %d..%d, want one leaf or two adjacent", f, l)
	}

	vals := []float64{0, 1, 0.5, 1.5}
	var lin []*Leaf
	for k := range 3 {
		l := leaf(k)
		s := (vals[k+1] - vals[k]) * 3
		l.DL = interval.I{Lo: s, Hi: s}
		l.Rise = max(vals[k+1]-vals[k], 0)
		l.RiseLeft, l.RiseRight = l.Rise/2, l.Rise/2
		l.Integral = math.Inf(1)
		l.LA, l.LB, l.LC = wholeLine, wholeLine, interval.Point(0.5*vals[k]+0.5*vals[k+1])
		lin = append(lin, l)
	}
	lin[0].LA, lin[2].LB = interval.Point(0), interval.Point(1.5)
	end, in = leafBounds(lin)
	h, _, _ := upperRiseHalves(lin, end, in)
	if !(h >= 1.5 && h <= 1.5*(1+1e-14)) {
		t.Errorf("linear L: halves' bound %v, want Δ = 1.5 up to rounding", h)
	}
}
