package certify

import (
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// exactCoefs returns, in math/big (4000 bits: exact for these sums of
// products of float64), the carried second layer's coefficients A, BC, E
// (carryPlan) of example row x for the units with the given slopes (0
// where the unit is left out: a crossing unit or slope 0): the real
// quadratic the derived coefficients must enclose.
func exactCoefs(w0, dw1, b01, db1, w02, dw2, b02, db2 []float64, row []float64, slope []float64) (A, BC, E []*big.Float) {
	const prec = 4000
	nf := func(v float64) *big.Float { return new(big.Float).SetPrec(prec).SetFloat64(v) }
	mul := func(x, y *big.Float) *big.Float { return new(big.Float).SetPrec(prec).Mul(x, y) }
	add := func(x, y *big.Float) *big.Float { return new(big.Float).SetPrec(prec).Add(x, y) }
	in, h1 := len(row), len(b01)
	a, b := make([]*big.Float, h1), make([]*big.Float, h1)
	for u := 0; u < h1; u++ {
		a[u], b[u] = nf(b01[u]), nf(db1[u])
		for j := 0; j < in; j++ {
			a[u] = add(a[u], mul(nf(w0[u*in+j]), nf(row[j])))
			b[u] = add(b[u], mul(nf(dw1[u*in+j]), nf(row[j])))
		}
	}
	out := len(b02)
	for o := 0; o < out; o++ {
		ao, bco, eo := nf(b02[o]), nf(db2[o]), nf(0)
		for u := 0; u < h1; u++ {
			if slope[u] == 0 {
				continue
			}
			sa, sb := mul(nf(slope[u]), a[u]), mul(nf(slope[u]), b[u])
			ao = add(ao, mul(nf(w02[o*h1+u]), sa))
			bco = add(bco, add(mul(nf(w02[o*h1+u]), sb), mul(nf(dw2[o*h1+u]), sa)))
			eo = add(eo, mul(nf(dw2[o*h1+u]), sb))
		}
		A, BC, E = append(A, ao), append(BC, bco), append(E, eo)
	}
	return A, BC, E
}

// TestCarryCoefFromEncloses (issue 12, cert-scale): on random
// two-hidden-layer relu and leaky_relu MLPs (carryNet: θT = θ0, dead
// units and a kink at an exact dyadic α drawn too), coefficients derived
// from a parent leaf's by carryCoefFrom, over one to three generations of
// random sub-leaves (ends on the kink drawn), on all rows or a random
// subset:
//   - list as crossing every unit whose z₁ reaches 0 on the leaf (the
//     units the fresh carryCoef over the leaf lists; no fewer),
//   - enclose the exact coefficients (math/big) of the quadratic of the
//     units they do not list, each with the slope it has on the leaf,
//   - give jets (carryJet through jetCarry) that contain z₂ and ż₂ and the
//     network's outputs γ, γ′ evaluated densely in float64 at the leaf's
//     ends, its midpoint, its first-layer kinks (both sides) and random
//     points, as the fresh coefficients do (TestCarryEnclosureSound).
//
// It fails when a newly fixed unit's term is dropped or one of its four
// products takes the wrong weight column.
func TestCarryCoefFromEncloses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p, kink, e := carriedPath(t)
		on, off := e.carry.on, e.carry.off
		a := rapid.Float64Range(-0.2, 1.1).Draw(t, "a")
		w := rapid.SampledFrom([]float64{1e-3, 0.05, 0.4, 1.5}).Draw(t, "width")
		b := a + w
		if !math.IsNaN(kink) && rapid.Bool().Draw(t, "parent around the kink") {
			a, b = kink-w/2, kink+w/2
		}
		w01, b01 := p.Theta0[nn.ParamKey(0, "weight")].Data, p.Theta0[nn.ParamKey(0, "bias")].Data
		dw1, db1 := p.Delta[nn.ParamKey(0, "weight")].Data, p.Delta[nn.ParamKey(0, "bias")].Data
		w02, b02 := p.Theta0[nn.ParamKey(2, "weight")].Data, p.Theta0[nn.ParamKey(2, "bias")].Data
		dw2, db2 := p.Delta[nn.ParamKey(2, "weight")].Data, p.Delta[nn.ParamKey(2, "bias")].Data
		for c, ch := range e.chunks {
			n := ch[1] - ch[0]
			var rows []int32 // nil: all rows
			if n > 1 && rapid.Bool().Draw(t, "subset") {
				for r := 0; r < n; r++ {
					if rapid.Bool().Draw(t, "row") {
						rows = append(rows, int32(r))
					}
				}
				if len(rows) == 0 {
					rows = []int32{int32(n - 1)}
				}
			}
			cf := e.carryCoef(c, interval.I{Lo: a, Hi: b}, rows)
			la, lb := a, b
			gens := rapid.IntRange(1, 3).Draw(t, "generations")
			for g := 0; g < gens; g++ {
				switch rapid.IntRange(0, 3).Draw(t, "child") {
				case 0:
					lb = 0.5*la + 0.5*lb
				case 1:
					la = 0.5*la + 0.5*lb
				case 2:
					if !math.IsNaN(kink) && la <= kink && kink <= lb {
						if rapid.Bool().Draw(t, "side") {
							lb = kink
						} else {
							la = kink
						}
					}
				default:
					u, v := rapid.Float64Range(0, 1).Draw(t, "u"), rapid.Float64Range(0, 1).Draw(t, "v")
					la, lb = la+(lb-la)*min(u, v), la+(lb-la)*max(u, v)
				}
				cf = e.carryCoefFrom(cf, c, interval.I{Lo: la, Hi: lb}, rows)
			}
			ab := interval.I{Lo: la, Hi: lb}
			fresh := e.carryCoef(c, ab, rows)
			nr := n
			if rows != nil {
				nr = len(rows)
			}
			for i := 0; i < nr; i++ {
				r := i
				if rows != nil {
					r = int(rows[i])
				}
				listed := map[int32]bool{}
				for _, u := range cf.cross[i] {
					listed[u] = true
				}
				for _, u := range fresh.cross[i] {
					if !listed[u] {
						t.Fatalf("row %d: unit %d reaches its kink on [%v, %v] but the derived coefficients take it as fixed", r, u, la, lb)
					}
				}
				row := p.X.RawRowView(ch[0] + r)
				k0 := denseJetFirst(p, row)
				slope := make([]float64, len(k0))
				for u := range k0 {
					if listed[int32(u)] {
						continue
					}
					// fixed on the leaf: the sign of z₁ anywhere on it
					zm := k0[u][1] + (0.5*la+0.5*lb)*k0[u][2]
					slope[u] = on
					if zm < 0 {
						slope[u] = off
					}
				}
				A, BC, E := exactCoefs(w01, dw1, b01, db1, w02, dw2, b02, db2, row, slope)
				m := cf.A.Cols
				for o := 0; o < m; o++ {
					q := i*m + o
					for _, x := range []struct {
						name string
						enc  interval.Matrix
						v    *big.Float
					}{{"A", cf.A, A[o]}, {"BC", cf.BC, BC[o]}, {"E", cf.E, E[o]}} {
						lo := new(big.Float).SetPrec(4000).SetFloat64(x.enc.Lo[q])
						hi := new(big.Float).SetPrec(4000).SetFloat64(x.enc.Hi[q])
						if lo.Cmp(x.v) > 0 || hi.Cmp(x.v) < 0 {
							f, _ := x.v.Float64()
							t.Fatalf("row %d output %d: the exact %s = %v is outside the derived [%v, %v] on [%v, %v] (%d generations)", r, o, x.name, f, x.enc.Lo[q], x.enc.Hi[q], la, lb, gens)
						}
					}
				}
			}
			// the jets from the derived coefficients contain the dense values
			var z2j *nn.IJet
			out := e.jetCarry(c, ab, e.boxes(ab), 1, rows, func(i int, j *nn.IJet) *nn.IJet {
				if i == e.carry.dense {
					z2j = j
				}
				return j
			}, nil, nil, cf, nil)
			slack := func(v float64) float64 { return 1e-9 * (1 + math.Abs(v)) }
			inside := func(m interval.Matrix, r, q int, v float64) bool {
				k := r*m.Cols + q
				return m.Lo[k]-slack(v) <= v && v <= m.Hi[k]+slack(v)
			}
			for i := 0; i < nr; i++ {
				r := i
				if rows != nil {
					r = int(rows[i])
				}
				row := p.X.RawRowView(ch[0] + r)
				alphas := []float64{la, lb, 0.5*la + 0.5*lb, la + (lb-la)*rapid.Float64Range(0, 1).Draw(t, "at")}
				for _, k := range denseJetFirst(p, row) {
					if al := k[0]; !math.IsNaN(al) && la <= al && al <= lb {
						alphas = append(alphas, al)
					}
				}
				for _, al := range alphas {
					for _, side := range []int{1, -1} {
						z2, dz2, g, dg := denseJet(p, on, off, row, al, side)
						for q := range z2 {
							if !inside(z2j.V, i, q, z2[q]) || !inside(z2j.D1, i, q, dz2[q]) {
								t.Fatalf("row %d unit %d at α=%v: z₂ = %v, ż₂ = %v outside [%v, %v], [%v, %v] from derived coefficients over [%v, %v]",
									r, q, al, z2[q], dz2[q], z2j.V.Lo[i*z2j.D+q], z2j.V.Hi[i*z2j.D+q], z2j.D1.Lo[i*z2j.D+q], z2j.D1.Hi[i*z2j.D+q], la, lb)
							}
						}
						for q := range g {
							if !inside(out.V, i, q, g[q]) || !inside(out.D1, i, q, dg[q]) {
								t.Fatalf("row %d output %d at α=%v: γ = %v, γ′ = %v outside [%v, %v], [%v, %v]",
									r, q, al, g[q], dg[q], out.V.Lo[i*out.D+q], out.V.Hi[i*out.D+q], out.D1.Lo[i*out.D+q], out.D1.Hi[i*out.D+q])
							}
						}
					}
				}
			}
		}
	})
}

// TestCarryMulZeroRow: a row of carryMul's x that is exactly 0 (every
// unit crossing, or slope 0) gives exactly 0 in its row of the product,
// not ± the underflow and norm terms; other rows are unaffected.
func TestCarryMulZeroRow(t *testing.T) {
	x := interval.NewMatrix(2, 3)
	x.Lo[3], x.Hi[3] = 1, 1.5 // row 1: [1, 1.5] 0 0
	w := []float64{1, -2, 3, 0.5, 0.25, -1}
	wn := []float64{math.Sqrt(14) * (1 + 1e-15), math.Sqrt(1.3125) * (1 + 1e-15)}
	p := carryMul(x, w, wn, 2)
	for o := 0; o < 2; o++ {
		if p.Lo[o] != 0 || p.Hi[o] != 0 {
			t.Errorf("zero row, output %d: [%v, %v], want exactly 0", o, p.Lo[o], p.Hi[o])
		}
	}
	for o, want := range [][2]float64{{1, 1.5}, {0.5, 0.75}} {
		if lo, hi := p.Lo[2+o], p.Hi[2+o]; !(lo <= want[0] && want[1] <= hi) {
			t.Errorf("row 1, output %d: [%v, %v] does not hold [%v, %v]", o, lo, hi, want[0], want[1])
		}
	}
}
