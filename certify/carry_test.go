package certify

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// carryNet draws a small two-hidden-layer MLP (relu or leaky_relu, the
// carried second layer's shape) with random θ0 and θT, and on request the
// cases the carry must get right: θT = θ0, a dead first-layer unit (zero
// weights, bias −1), and example 0's input 0 with unit 0's pre-activation
// z = −k/8 + α exactly (its kink at α = k/8, a dyadic the leaf ends may
// hit exactly). It returns the path and the kink (NaN when none).
func carryNet(t *rapid.T) (*functionspace.Path, float64) {
	act := rapid.SampledFrom([]string{"relu", "leaky_relu"}).Draw(t, "act")
	loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
	in := rapid.IntRange(1, 3).Draw(t, "in")
	h1 := rapid.IntRange(1, 6).Draw(t, "h1")
	h2 := rapid.IntRange(1, 6).Draw(t, "h2")
	k := rapid.IntRange(2, 3).Draw(t, "k")
	m, err := nn.Build(nn.MLPSpec([]int{in, h1, h2, k}, act, loss))
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	scale := rapid.Float64Range(0.5, 3).Draw(t, "scale")
	s0, _ := nn.Init(m, "pytorch", scale, seed)
	sT, _ := nn.Init(m, "pytorch", scale, seed+1)
	flat := rapid.Bool().Draw(t, "flat")
	if flat {
		sT = s0.Clone()
	}
	w0, b0 := s0[nn.ParamKey(0, "weight")], s0[nn.ParamKey(0, "bias")]
	wT, bT := sT[nn.ParamKey(0, "weight")], sT[nn.ParamKey(0, "bias")]
	if h1 > 1 && rapid.Bool().Draw(t, "dead unit") {
		u := h1 - 1
		for j := 0; j < in; j++ {
			w0.Data[u*in+j], wT.Data[u*in+j] = 0, 0
		}
		b0.Data[u], bT.Data[u] = -1, -1
	}
	n := rapid.IntRange(1, 5).Draw(t, "n")
	rng := rand.New(rand.NewPCG(seed, 3))
	x, tg := testnets.RandomData(rng, n, in, k, loss, 2)
	kink := math.NaN()
	if !flat && rapid.Bool().Draw(t, "exact kink") {
		q := rapid.IntRange(0, 8).Draw(t, "kink eighths")
		kink = float64(q) / 8
		for j := 0; j < in; j++ {
			x.Set(0, j, 0)
		}
		b0.Data[0], bT.Data[0] = -kink, 1-kink // z = −kink + α exactly
	}
	p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: rapid.IntRange(1, 4).Draw(t, "chunk")})
	if err != nil {
		t.Fatal(err)
	}
	return p, kink
}

// denseJet evaluates in float64, for example row x at α, the dense
// layer's output z₂ and its α-derivative, with the first activation's
// derivative at an exact kink taken from side (+1 the active slope, −1
// the inactive one), and the network's outputs γ and γ′ the same way (the
// second activation's derivative at 0 from the same side).
func denseJet(p *functionspace.Path, on, off float64, row []float64, alpha float64, side int) (z2, dz2, g, dg []float64) {
	affine := func(layer int, h, dh []float64) (z, dz []float64) {
		w0, b0 := p.Theta0[nn.ParamKey(layer, "weight")], p.Theta0[nn.ParamKey(layer, "bias")]
		dw, db := p.Delta[nn.ParamKey(layer, "weight")], p.Delta[nn.ParamKey(layer, "bias")]
		in, out := len(h), len(b0.Data)
		z, dz = make([]float64, out), make([]float64, out)
		for o := 0; o < out; o++ {
			s, d := b0.Data[o]+alpha*db.Data[o], db.Data[o]
			for j := 0; j < in; j++ {
				w := w0.Data[o*in+j] + alpha*dw.Data[o*in+j]
				s += w * h[j]
				d += dw.Data[o*in+j]*h[j] + w*dh[j]
			}
			z[o], dz[o] = s, d
		}
		return z, dz
	}
	act := func(z, dz []float64) (h, dh []float64) {
		h, dh = make([]float64, len(z)), make([]float64, len(z))
		for u, v := range z {
			s := on
			if v < 0 || (v == 0 && side < 0) {
				s = off
			}
			h[u], dh[u] = s*v, s*dz[u]
		}
		return h, dh
	}
	z1, dz1 := affine(0, row, make([]float64, len(row)))
	h1, dh1 := act(z1, dz1)
	z2, dz2 = affine(2, h1, dh1)
	h2, dh2 := act(z2, dz2)
	g, dg = affine(4, h2, dh2)
	return z2, dz2, g, dg
}

// TestCarryEnclosureSound: on random two-hidden-layer relu and leaky_relu
// MLPs, the carried jets of the second dense layer's output over a random
// leaf (kinks on its ends, θT = θ0 and dead units drawn too) contain z₂
// and ż₂ evaluated densely in float64 at the leaf's ends, at every
// first-layer kink inside and at random points (both one-sided
// derivatives at a kink), their slope form D2·(α − β) + DK contains
// ż₂(α) − ż₂(β), the midpoint's jet from the leaf's coefficients contains
// the values there, and the network's outputs γ, γ′ over the leaf (the
// later layers' interval rules on the carried jet) contain the dense
// outputs. Slack 1e-9 relative covers the dense evaluation's own rounding.
func TestCarryEnclosureSound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p, kink, e := carriedPath(t)
		on, off := e.carry.on, e.carry.off
		a := rapid.Float64Range(-0.2, 1.1).Draw(t, "a")
		w := rapid.SampledFrom([]float64{0, 1e-6, 1e-3, 0.05, 0.4, 1.5}).Draw(t, "width")
		b := a + w
		if !math.IsNaN(kink) {
			switch rapid.IntRange(0, 2).Draw(t, "kink at") {
			case 0:
				a, b = kink, kink+w
			case 1:
				a, b = kink-w, kink
			}
		}
		ab := interval.I{Lo: a, Hi: b}
		mid := 0.5*a + 0.5*b
		for c, ch := range e.chunks {
			var z2j, z2c *nn.IJet
			grab := func(dst **nn.IJet) func(i int, j *nn.IJet) *nn.IJet {
				return func(i int, j *nn.IJet) *nn.IJet {
					if i == e.carry.dense {
						*dst = j
					}
					return j
				}
			}
			cf := e.carryCoef(c, ab, nil)
			var lean *carryLean // the first activation on every unit, or on the crossing ones only
			if rapid.Bool().Draw(t, "lean") {
				// the left-end form, as centredJets applies it: on leaves
				// [0, w] with w > 0, where α = 0's left side is off the leaf
				lean = &carryLean{start: a == 0 && b > 0 && rapid.Bool().Draw(t, "start form")}
			}
			out := e.jetCarry(c, ab, e.boxes(ab), 2, nil, grab(&z2j), nil, nil, cf, lean)
			if !z2j.HasDK() {
				t.Fatal("the carried jet of order 2 has no jump term DK")
			}
			e.jetCarry(c, interval.Point(mid), e.boxes(interval.Point(mid)), 1, nil, grab(&z2c), nil, nil, cf, lean)
			slack := func(v float64) float64 { return 1e-9 * (1 + math.Abs(v)) }
			in := func(m interval.Matrix, r, q int, v float64) bool {
				k := r*m.Cols + q
				return m.Lo[k]-slack(v) <= v && v <= m.Hi[k]+slack(v)
			}
			for r := 0; r < ch[1]-ch[0]; r++ {
				row := p.X.RawRowView(ch[0] + r)
				alphas := []float64{a, b, mid}
				for q := 0; q < 3; q++ {
					alphas = append(alphas, a+(b-a)*rapid.Float64Range(0, 1).Draw(t, "u"))
				}
				// every first-layer kink of this example inside the leaf
				z0 := denseJetFirst(p, row)
				for u := range z0 {
					if al := z0[u][0]; !math.IsNaN(al) && a <= al && al <= b {
						alphas = append(alphas, al)
					}
				}
				type sample struct {
					al  float64
					dz2 []float64
				}
				var seen []sample
				for _, al := range alphas {
					for _, side := range []int{1, -1} {
						if side == -1 && al == 0 && lean != nil && lean.start {
							continue // the left derivative at α = 0: not on the leaf [0, w]
						}
						z2, dz2, g, dg := denseJet(p, on, off, row, al, side)
						for q := range z2 {
							if !in(z2j.V, r, q, z2[q]) || !in(z2j.D1, r, q, dz2[q]) {
								t.Fatalf("example %d unit %d at α=%v (side %d): z₂ = %v, ż₂ = %v outside V [%v, %v], D1 [%v, %v] over [%v, %v]",
									ch[0]+r, q, al, side, z2[q], dz2[q], z2j.V.Lo[r*z2j.D+q], z2j.V.Hi[r*z2j.D+q], z2j.D1.Lo[r*z2j.D+q], z2j.D1.Hi[r*z2j.D+q], a, b)
							}
						}
						for q := range g {
							if !in(out.V, r, q, g[q]) || !in(out.D1, r, q, dg[q]) {
								t.Fatalf("example %d output %d at α=%v: γ = %v, γ′ = %v outside [%v, %v], [%v, %v]",
									ch[0]+r, q, al, g[q], dg[q], out.V.Lo[r*out.D+q], out.V.Hi[r*out.D+q], out.D1.Lo[r*out.D+q], out.D1.Hi[r*out.D+q])
							}
						}
						for _, s := range seen { // the slope form across kinks
							for q := range dz2 {
								x := interval.Add(interval.Mul(z2j.D2.At(r, q), interval.Point(al-s.al)), z2j.DK.At(r, q))
								d := dz2[q] - s.dz2[q]
								if d < x.Lo-slack(dz2[q])-slack(s.dz2[q]) || d > x.Hi+slack(dz2[q])+slack(s.dz2[q]) {
									t.Fatalf("example %d unit %d: ż₂(%v) − ż₂(%v) = %v outside D2·Δα + DK = [%v, %v]", ch[0]+r, q, al, s.al, d, x.Lo, x.Hi)
								}
							}
						}
						seen = append(seen, sample{al, dz2})
					}
				}
				for _, side := range []int{1, -1} {
					z2, dz2, _, _ := denseJet(p, on, off, row, mid, side)
					for q := range z2 {
						if !in(z2c.V, r, q, z2[q]) || !in(z2c.D1, r, q, dz2[q]) {
							t.Fatalf("example %d unit %d at the midpoint %v: z₂ = %v, ż₂ = %v outside [%v, %v], [%v, %v]",
								ch[0]+r, q, mid, z2[q], dz2[q], z2c.V.Lo[r*z2c.D+q], z2c.V.Hi[r*z2c.D+q], z2c.D1.Lo[r*z2c.D+q], z2c.D1.Hi[r*z2c.D+q])
						}
					}
				}
			}
		}
	})
}

// denseJetFirst returns, per first-layer unit of example row x, its kink
// α = −a/b (NaN when b = 0) and a, b of z = a + αb, in float64.
func denseJetFirst(p *functionspace.Path, row []float64) (k [][3]float64) {
	w0, b0 := p.Theta0[nn.ParamKey(0, "weight")], p.Theta0[nn.ParamKey(0, "bias")]
	dw, db := p.Delta[nn.ParamKey(0, "weight")], p.Delta[nn.ParamKey(0, "bias")]
	in := len(row)
	for u := range b0.Data {
		a, b := b0.Data[u], db.Data[u]
		for j := 0; j < in; j++ {
			a += w0.Data[u*in+j] * row[j]
			b += dw.Data[u*in+j] * row[j]
		}
		al := math.NaN()
		if b != 0 {
			al = -a / b
		}
		k = append(k, [3]float64{al, a, b})
	}
	return k
}

// TestCarryMulEncloses: carryMul's enclosure of X·Wᵀ contains the exact
// product (math/big, 200 bits) of random points of the interval matrix x
// and its ends, for random shapes and magnitudes (exact zeros and point
// rows included).
func TestCarryMulEncloses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n, k, m := rapid.IntRange(1, 4).Draw(t, "n"), rapid.IntRange(1, 40).Draw(t, "k"), rapid.IntRange(1, 5).Draw(t, "m")
		sc := math.Pow(10, rapid.Float64Range(-8, 8).Draw(t, "scale"))
		x := interval.NewMatrix(n, k)
		for q := range x.Lo {
			switch rapid.IntRange(0, 3).Draw(t, "kind") {
			case 0: // exact zero
			case 1: // a point
				v := sc * rapid.Float64Range(-1, 1).Draw(t, "v")
				x.Lo[q], x.Hi[q] = v, v
			default:
				v := sc * rapid.Float64Range(-1, 1).Draw(t, "v")
				r := sc * rapid.SampledFrom([]float64{1e-15, 1e-6, 0.1}).Draw(t, "r")
				x.Lo[q], x.Hi[q] = v-r, v+r
			}
		}
		w := make([]float64, m*k)
		for q := range w {
			w[q] = rapid.Float64Range(-1, 1).Draw(t, "w") * math.Pow(10, rapid.Float64Range(-3, 3).Draw(t, "ws"))
		}
		wn := make([]float64, m)
		for o := range wn {
			ss, zero := 0.0, true
			for _, v := range w[o*k : (o+1)*k] {
				ss += v * v
				zero = zero && v == 0
			}
			wn[o] = normUp(ss, k, zero)
		}
		got := carryMul(x, w, wn, m)
		for trial := 0; trial < 4; trial++ {
			xs := make([]float64, n*k)
			for q := range xs {
				f := rapid.Float64Range(0, 1).Draw(t, "f")
				if trial == 0 {
					f = 0
				} else if trial == 1 {
					f = 1
				}
				xs[q] = x.Lo[q] + f*(x.Hi[q]-x.Lo[q])
				xs[q] = math.Max(x.Lo[q], math.Min(x.Hi[q], xs[q]))
			}
			for i := 0; i < n; i++ {
				for o := 0; o < m; o++ {
					s := new(big.Float).SetPrec(2000)
					for j := 0; j < k; j++ {
						s.Add(s, new(big.Float).SetPrec(2000).Mul(big.NewFloat(xs[i*k+j]).SetPrec(2000), big.NewFloat(w[o*k+j]).SetPrec(2000)))
					}
					lo, hi := new(big.Float).SetFloat64(got.Lo[i*m+o]), new(big.Float).SetFloat64(got.Hi[i*m+o])
					if s.Cmp(lo) < 0 || s.Cmp(hi) > 0 {
						v, _ := s.Float64()
						t.Fatalf("entry (%d, %d): exact %v outside [%v, %v]", i, o, v, got.Lo[i*m+o], got.Hi[i*m+o])
					}
				}
			}
		}
	})
}

// TestQuadRangeExact: quadRange contains p1·t + e·t² for random
// coefficients in their intervals and t in [tl, tr] (the vertex included
// when inside), and is tight: for point coefficients its ends are within
// 1e-10 (relative to the terms' size) of the exact range, found from the
// ends and the vertex in closed form.
func TestQuadRangeExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sc := math.Pow(10, rapid.Float64Range(-4, 4).Draw(t, "scale"))
		pc, pr := sc*rapid.Float64Range(-1, 1).Draw(t, "p"), sc*rapid.SampledFrom([]float64{0, 1e-9, 0.3}).Draw(t, "pr")
		ec, er := sc*rapid.Float64Range(-10, 10).Draw(t, "e"), sc*rapid.SampledFrom([]float64{0, 1e-9, 0.3}).Draw(t, "er")
		p1, e := interval.I{Lo: pc - pr, Hi: pc + pr}, interval.I{Lo: ec - er, Hi: ec + er}
		tl, tr := -rapid.Float64Range(0, 1).Draw(t, "tl"), rapid.Float64Range(0, 1).Draw(t, "tr")
		got := quadRange(p1, e, tl, tr)
		f := func(p, ee, x float64) float64 { return p*x + ee*x*x }
		check := func(p, ee, x float64) {
			v := f(p, ee, x)
			s := 1e-12 * (math.Abs(p*x) + math.Abs(ee*x*x))
			if v < got.Lo-s || v > got.Hi+s {
				t.Fatalf("p1=%v e=%v t=%v: %v outside [%v, %v]", p, ee, x, v, got.Lo, got.Hi)
			}
		}
		for q := 0; q < 20; q++ {
			p := p1.Lo + (p1.Hi-p1.Lo)*rapid.Float64Range(0, 1).Draw(t, "fp")
			ee := e.Lo + (e.Hi-e.Lo)*rapid.Float64Range(0, 1).Draw(t, "fe")
			check(p, ee, math.Min(tr, tl+(tr-tl)*rapid.Float64Range(0, 1).Draw(t, "ft")))
			check(p, ee, tl)
			check(p, ee, tr)
			if ee != 0 {
				if v := -p / (2 * ee); tl <= v && v <= tr {
					check(p, ee, v)
				}
			}
		}
		if pr == 0 && er == 0 && math.Abs(pc) > 1e-100 && math.Abs(ec) > 1e-100 { // tight (away from underflow): the exact range of a point quadratic
			cands := []float64{0, f(pc, ec, tl), f(pc, ec, tr)}
			if ec != 0 {
				if v := -pc / (2 * ec); tl <= v && v <= tr {
					cands = append(cands, f(pc, ec, v))
				}
			}
			lo, hi := cands[0], cands[0]
			for _, v := range cands {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			s := 1e-10*(math.Abs(pc)+math.Abs(ec)) + 1e-300
			if got.Lo < lo-s || got.Hi > hi+s {
				t.Fatalf("p1=%v e=%v on [%v, %v]: range [%v, %v] wider than the exact [%v, %v]", pc, ec, tl, tr, got.Lo, got.Hi, lo, hi)
			}
		}
	})
}

// TestCarryEntryEncloses: carryEntry's enclosures contain the exact value
// (math/big, 2000 bits) of a + α·bc + α²·e and of bc + 2α·e for random
// coefficients in their intervals (ends included) and α = c + t at random
// t, the ends and the vertex, over 16 binades, a point α included; and
// they are tight: within 1e-9 (relative to the terms' size) of the
// interval version (quadRange), which is exact up to rounding.
func TestCarryEntryEncloses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sc := math.Pow(10, rapid.Float64Range(-8, 8).Draw(t, "scale"))
		iv := func(name string) interval.I {
			c := sc * rapid.Float64Range(-1, 1).Draw(t, name)
			r := sc * rapid.SampledFrom([]float64{0, 1e-15, 1e-9, 0.3}).Draw(t, name+"r")
			return interval.I{Lo: c - r, Hi: c + r}
		}
		a, bc, e := iv("a"), iv("bc"), iv("e")
		c := rapid.Float64Range(-0.2, 1.2).Draw(t, "c")
		tl, tr := 0.0, 0.0
		if rapid.Bool().Draw(t, "interval") {
			tl, tr = -rapid.Float64Range(0, 1).Draw(t, "tl"), rapid.Float64Range(0, 1).Draw(t, "tr")
		}
		v, d := carryEntry(a.Lo, a.Hi, bc.Lo, bc.Hi, e.Lo, e.Hi, c, tl, tr)
		bf := func(x float64) *big.Float { return new(big.Float).SetPrec(2000).SetFloat64(x) }
		check := func(av, bv, ev, tv float64) {
			al := new(big.Float).SetPrec(2000).Add(bf(c), bf(tv))
			z := new(big.Float).SetPrec(2000).Mul(al, bf(bv))
			z.Add(z, bf(av))
			z.Add(z, new(big.Float).SetPrec(2000).Mul(new(big.Float).SetPrec(2000).Mul(al, al), bf(ev)))
			dz := new(big.Float).SetPrec(2000).Mul(new(big.Float).SetPrec(2000).Mul(al, bf(2)), bf(ev))
			dz.Add(dz, bf(bv))
			if z.Cmp(bf(v.Lo)) < 0 || z.Cmp(bf(v.Hi)) > 0 {
				f, _ := z.Float64()
				t.Fatalf("a=%v bc=%v e=%v α=%v+%v: value %v outside [%v, %v]", av, bv, ev, c, tv, f, v.Lo, v.Hi)
			}
			if dz.Cmp(bf(d.Lo)) < 0 || dz.Cmp(bf(d.Hi)) > 0 {
				f, _ := dz.Float64()
				t.Fatalf("a=%v bc=%v e=%v α=%v+%v: derivative %v outside [%v, %v]", av, bv, ev, c, tv, f, d.Lo, d.Hi)
			}
		}
		pick := func(x interval.I, name string) float64 {
			switch rapid.IntRange(0, 2).Draw(t, name) {
			case 0:
				return x.Lo
			case 1:
				return x.Hi
			}
			return math.Max(x.Lo, math.Min(x.Hi, x.Lo+(x.Hi-x.Lo)*rapid.Float64Range(0, 1).Draw(t, name+"f")))
		}
		for q := 0; q < 10; q++ {
			av, bv, ev := pick(a, "pa"), pick(bc, "pb"), pick(e, "pe")
			check(av, bv, ev, tl)
			check(av, bv, ev, tr)
			check(av, bv, ev, math.Min(tr, tl+(tr-tl)*rapid.Float64Range(0, 1).Draw(t, "ft")))
			if ev != 0 { // the vertex in t: α* − c with α* = −bc/(2e)
				if ts := -bv/(2*ev) - c; tl <= ts && ts <= tr {
					check(av, bv, ev, ts)
				}
			}
		}
		// tightness against the interval version
		ref, _ := carryEntryInterval(a.Lo, a.Hi, bc.Lo, bc.Hi, e.Lo, e.Hi, c, tl, tr)
		mag := math.Abs(a.Lo) + math.Abs(a.Hi) + 2*(math.Abs(bc.Lo)+math.Abs(bc.Hi)) + 4*(math.Abs(e.Lo)+math.Abs(e.Hi))
		if v.Lo < ref.Lo-1e-9*mag || v.Hi > ref.Hi+1e-9*mag {
			t.Fatalf("value [%v, %v] looser than the interval version [%v, %v]", v.Lo, v.Hi, ref.Lo, ref.Hi)
		}
	})
}

// TestCarryLeanIdentical checks that enclosing the first activation only at
// the carried coefficients' crossing units (carryFirst, issue 12 cert-5000)
// gives bit for bit the enclosures of the full rule over every unit: the
// certificate's leaf and midpoint passes (centredPass, the left-end form on
// leaves [0, w] included) and the accuracy search's passes of order 0 and
// 1 (outputsRowsCarry), on random carried MLPs and leaves.
func TestCarryLeanIdentical(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		_, kink, e := carriedPath(t)
		a := rapid.SampledFrom([]float64{0, 0, 0.125, 0.3, 0.5}).Draw(t, "a")
		if !math.IsNaN(kink) && rapid.Bool().Draw(t, "at the kink") {
			a = kink
		}
		w := rapid.SampledFrom([]float64{1e-6, 1e-3, 0.05, 0.4, 1}).Draw(t, "width")
		ab := interval.I{Lo: a, Hi: a + w}
		mid := 0.5*ab.Lo + 0.5*ab.Hi
		same := func(what string, x, y []interval.I) {
			for i := range x {
				if math.Float64bits(x[i].Lo) != math.Float64bits(y[i].Lo) || math.Float64bits(x[i].Hi) != math.Float64bits(y[i].Hi) {
					t.Fatalf("%s[%d]: lean %v, full %v", what, i, x[i], y[i])
				}
			}
			if len(x) != len(y) {
				t.Fatalf("%s: %d lean, %d full", what, len(x), len(y))
			}
		}
		sameM := func(what string, x, y interval.Matrix) {
			same(what, matI(x), matI(y))
		}
		sameB := func(what string, x, y []bool) {
			if len(x) != len(y) {
				t.Fatalf("%s: %d lean, %d full", what, len(x), len(y))
			}
			for i := range x {
				if x[i] != y[i] {
					t.Fatalf("%s[%d]: lean %v, full %v", what, i, x[i], y[i])
				}
			}
		}
		for c, ch := range e.chunks {
			n := ch[1] - ch[0]
			var rows []int32
			if n > 1 && rapid.Bool().Draw(t, "some rows") {
				for r := 0; r < n; r++ {
					if r%2 == 1 || r == 0 {
						rows = append(rows, int32(r))
					}
				}
			}
			run := func(full bool) (l, dl, d2l []interval.I, kink, jump []bool, lc, dlc, dk []interval.I, outs [2]*nn.IJet) {
				noLean = full
				defer func() { noLean = false }()
				l, dl, d2l, kink, jump, lc, dlc, dk = e.centredPass(c, ab, mid, e.leafBoxes(ab), e.leafBoxes(interval.Point(mid)), rows)
				cfs := e.carryCoefs(ab, nil)
				var rs [][]int32 // nil: every row of every chunk
				if rows != nil {
					rs = make([][]int32, len(e.chunks))
					rs[c] = rows
				}
				for order := 0; order <= 1; order++ {
					outs[order] = e.outputsRowsCarry(ab, e.leafBoxes(ab), order, rs, cfs)[c]
				}
				return
			}
			l1, dl1, d2l1, k1, j1, lc1, dlc1, dk1, o1 := run(false)
			l2, dl2, d2l2, k2, j2, lc2, dlc2, dk2, o2 := run(true)
			same("l", l1, l2)
			same("dl", dl1, dl2)
			same("d2l", d2l1, d2l2)
			sameB("kink", k1, k2)
			sameB("jump", j1, j2)
			same("lc", lc1, lc2)
			same("dlc", dlc1, dlc2)
			same("dk", dk1, dk2)
			for order := range o1 {
				sameM("V", o1[order].V, o2[order].V)
				if order >= 1 {
					sameM("D1", o1[order].D1, o2[order].D1)
				}
				sameB("outputs' kink", o1[order].Kink, o2[order].Kink)
			}
		}
	})
}

// matI lists the entries of m as intervals.
func matI(m interval.Matrix) []interval.I {
	out := make([]interval.I, len(m.Lo))
	for k := range out {
		out[k] = interval.I{Lo: m.Lo[k], Hi: m.Hi[k]}
	}
	return out
}

// carriedPath draws a carried MLP (carryNet) and its interval path, which
// must carry the second layer.
func carriedPath(t *rapid.T) (*functionspace.Path, float64, *IntervalPath) {
	p, kink := carryNet(t)
	e, err := NewIntervalPath(p)
	if err != nil {
		t.Fatal(err)
	}
	if e.carry == nil {
		t.Fatalf("a two-hidden-layer %s MLP has no carried second layer", p.Model.Layers[1].Type())
	}
	return p, kink, e
}
