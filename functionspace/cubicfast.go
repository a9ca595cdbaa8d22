package functionspace

import (
	"math"
	"math/bits"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// switchJumps are the first-layer switches of one chunk's kinks inside one
// grid interval (polyJets): switch r flips first-layer unit units[r] at
// α = alphas[r], changing that unit's output jet by (dz, dv, da)[r]
// (nn.UnitInput.UnitSwitch); jrow maps an example's unit to its r.
type switchJumps struct {
	units      []int
	alphas     []float64
	dz, dv, da []float64
}

// jumpElem is element v of polyPlan.columnJumps' row for the switch of
// first-layer unit u at α = al with output change (dz, dv, da): the change
// of the second kinked layer's input v (value, velocity, acceleration),
// with the same arithmetic as columnJumps, term by term.
func (pl *polyPlan) jumpElem(al float64, u, v int, dz, dv, da float64) (z, zd, zdd float64) {
	out := pl.width
	a, b := pl.w0T[u*out+v], pl.dwT[u*out+v]
	z = dz*a + al*(dz*b)
	zd = dz*b + dv*a + al*(dv*b)
	zdd = 2*(dv*b) + da*a + al*(da*b)
	return z, zd, zdd
}

// fastTables fills what cubicFast needs beyond polyPlan: the largest
// |W0| and |ΔW| entry of every column of the mid layer (colMaxA, colMaxB,
// [In]: a bound of a first-layer switch's effect on every unit of the
// second kinked layer's input) and the output layer's weights stacked as
// [W0; ΔW] [2K, width] (wcat: one product gives both layers' images of a
// row).
func (pl *polyPlan) fastTables() {
	out := pl.width
	in := len(pl.w0T) / out
	pl.colMaxA, pl.colMaxB = make([]float64, in), make([]float64, in)
	for u := 0; u < in; u++ {
		var ma, mb float64
		for _, x := range pl.w0T[u*out : (u+1)*out] {
			ma = math.Max(ma, math.Abs(x))
		}
		for _, x := range pl.dwT[u*out : (u+1)*out] {
			mb = math.Max(mb, math.Abs(x))
		}
		pl.colMaxA[u], pl.colMaxB[u] = ma, mb
	}
	k := pl.outP0[0].Shape[0]
	cat := make([]float64, 2*k*out)
	copy(cat, pl.outP0[0].Data)
	copy(cat[k*out:], pl.outDP[0].Data)
	pl.wcat = mat.NewDense(2*k, out, cat)
}

// fastWS is cubicFast's reusable storage: the block's rows and their
// products, the pattern's slopes and the candidates' index per unit.
type fastWS struct {
	cm, y, sl []float64
	pos       []int
}

// fastWS takes a workspace for width w from the plan's pool (Put it back
// with pos all −1).
func (pl *polyPlan) fastWS(w int) *fastWS {
	if ws, ok := pl.fast.Get().(*fastWS); ok {
		return ws
	}
	ws := &fastWS{cm: make([]float64, 0, (cubicBlockRows+64)*w), sl: make([]float64, w), pos: make([]int, w)}
	for v := range ws.pos {
		ws.pos[v] = -1
	}
	return ws
}

// cubicBlockRows is the number of rows (one per example, two per
// first-layer switch) cubicFast collects before one product.
const cubicBlockRows = 256

// cubicFast is cubicJets without its work over the whole width of the
// second kinked layer at every kink (the same jets up to rounding; it
// applies where polyPlan has an output layer and a Dense mid layer, the
// second kinked layer being unit-wise, nn.SwitchingOf of a PiecewiseLinear
// layer). Per example and grid interval [a, b]:
//
//   - Candidates. Between two kinks each unit v of z₂ (the second kinked
//     layer's input) is the grid point's quadratic plus the jumps of the
//     first-layer switches so far, so |z₂ᵥ(α)| ≥ |zᵥ| − |żᵥ|h − |z̈ᵥ|h²/2 − J
//     on [a, b] (h = b − a), with J the sum over the example's first-layer
//     switches in the interval of a bound of their jump on any unit
//     (colMaxA, colMaxB; |dz|, |dv|, |da| and h). A unit whose bound
//     exceeds 0 by a margin (1e-9 of the magnitudes, far above the
//     rounding of the carried values) keeps its side on the whole interval:
//     the branch rule (Branches) gives at every kink the branch it has at
//     a, so cubicJets' checks of the pattern cannot fail there. Only the
//     other units (the candidates, and the kink's own second-layer units)
//     are carried and checked kink by kink, with cubicJets' arithmetic.
//   - Restarts. Where a candidate's branch at a kink differs from the
//     carried pattern (a crossing located on the other side of a kink, two
//     crossings of one unit inside one interval), the example is handed to
//     cubicJets whole (rare).
//   - Jumps. A first-layer switch of unit u at a kink k changes h₂ = D z₂
//     by D applied to a combination of column u of W0 and ΔW of the mid
//     layer (jumpElem's coefficients, shifted to k by Taylor's formula);
//     the output layer's image of both masked columns, under W0 and ΔW,
//     comes from one product per block of examples ([rows, width] ×
//     wcatᵀ), and the velocity, acceleration and γ‴ jumps are their
//     combinations (nn.Dense.JumpRows' rule). The γ‴ at a (3ΔW·D z̈₂) is
//     one more row of the same product. A kink's own second-layer switches
//     are one-hot jumps, as in cubicJets.
//
// It fills pend[n].ks and pend[n].r0 and returns the jets (velocity and
// acceleration rows; values 0, as cubicJets) and the number of output
// rows counted as cubicJets counts them.
func (p *Path) cubicFast(pl *polyPlan, pa *gridPoint, b float64, pend []pendingKinks, gss [][][]crossing, jrow []map[int]int, sj switchJumps, R int) (*nn.Jet, int) {
	a, w, K := pa.alpha, pl.width, p.K
	h := b - a
	slope := func(br int) float64 {
		if br == 1 {
			return pl.on
		}
		return pl.off
	}
	res := &nn.Jet{N: R, M: mat.NewDense(3*R, K, nil)}
	r := 0
	for n := range pend {
		pd := &pend[n]
		pd.r0 = r
		pd.ks = pd.ks[:0]
		for _, grp := range gss[n] {
			pd.ks = append(pd.ks, grp[0].alpha)
		}
		r += 2 * len(gss[n])
	}
	// A first-layer switch's jump at a kink: h₂ changes by
	// D⊙(ca_q·w0ᵤ + cb_q·Δwᵤ) in part q (value, velocity, acceleration),
	// the two masked columns in rows row and row+1 of the block.
	type swRec struct {
		row    int
		ca, cb [3]float64
	}
	type ohRec struct {
		v          int
		dz, dv, da float64
	}
	type kinkRec struct{ sw0, sw1, oh0, oh1 int } // the right side's jumps
	type exRec struct{ n, start, k0 int }         // pend index, row of ḧ₂ at a (−1: pa.g3), first kinkRec
	type ownSw struct{ v, j, to int }             // unit, its candidate index, branch after
	var (
		sws   []swRec
		ohs   []ohRec
		kinks []kinkRec
		exs   []exRec
		ws    = pl.fastWS(w)
		cm    = ws.cm[:0] // the block's rows [rows, w]
		ybuf  = ws.y
		rows  int
		slow  []int
		extra int
	)
	newRow := func() int {
		need := (rows + 1) * w
		if need > cap(cm) {
			nc := make([]float64, need, 2*need)
			copy(nc, cm)
			cm = nc
		}
		cm = cm[:need]
		rows++
		return rows - 1
	}
	row := func(q int) []float64 { return cm[q*w : (q+1)*w] }
	v1, v2, g3 := make([]float64, K), make([]float64, K), make([]float64, K)
	w0, dw := pl.outP0[0].Data, pl.outDP[0].Data // [K, w], row-major
	flush := func() {
		if len(exs) == 0 {
			return
		}
		var Y *mat.Dense // no rows: no first-layer switch, γ‴ from the grid point
		if rows > 0 {
			if cap(ybuf) < rows*2*K {
				ybuf = make([]float64, rows*2*K)
			}
			Y = mat.NewDense(rows, 2*K, ybuf[:rows*2*K])
			Y.Mul(mat.NewDense(rows, w, cm[:rows*w]), pl.wcat.T())
		}
		for _, e := range exs {
			pd := &pend[e.n]
			copy(v1, pa.s.Velocity.RawRowView(pd.i))
			copy(v2, pa.s.Acceleration.RawRowView(pd.i))
			if e.start >= 0 {
				for c, x := range Y.RawRowView(e.start)[K:] {
					g3[c] = 3 * x
				}
			} else {
				copy(g3, pa.g3.RawRowView(pd.i))
			}
			at, kr := a, e.k0
			for g, k := range pd.ks {
				for s := 0; s < 2; s++ {
					r := pd.r0 + 2*g + s
					if t := k - at; t != 0 {
						for c := range v1 {
							v1[c] += t*v2[c] + t*t/2*g3[c]
							v2[c] += t * g3[c]
						}
					}
					at = k
					if s == 1 {
						rec := kinks[kr]
						kr++
						for _, sw := range sws[rec.sw0:rec.sw1] {
							ya, yb := Y.RawRowView(sw.row), Y.RawRowView(sw.row+1)
							for c := range v1 {
								pA, qA, pB, qB := ya[c], ya[K+c], yb[c], yb[K+c]
								// W0·d_q and ΔW·d_q of the jump's parts, combined
								// as nn.Dense.JumpRows combines them at α = k
								w1, d0, d1 := sw.ca[1]*pA+sw.cb[1]*pB, sw.ca[0]*qA+sw.cb[0]*qB, sw.ca[1]*qA+sw.cb[1]*qB
								w2, d2 := sw.ca[2]*pA+sw.cb[2]*pB, sw.ca[2]*qA+sw.cb[2]*qB
								v1[c] += d0 + w1 + k*d1
								v2[c] += 2*d1 + w2 + k*d2
								g3[c] += 3 * d2
							}
						}
						for _, o := range ohs[rec.oh0:rec.oh1] {
							addOneHotJump(v1, v2, g3, w0, dw, w, o.v, k, o.dz, o.dv, o.da)
						}
					}
					copy(res.M.RawRowView(R+r), v1)
					copy(res.M.RawRowView(2*R+r), v2)
				}
			}
		}
		rows, sws, ohs, kinks, exs = 0, sws[:0], ohs[:0], kinks[:0], exs[:0]
		cm = cm[:0]
	}
	sl := ws.sl // the slopes of the carried pattern
	slopes := [2]float64{pl.off, pl.on}
	var Dc []int // the carried pattern on the candidates
	var one [1]int
	pos := ws.pos // a unit's candidate index, −1 for none (restored on return)
	var (
		cand                               []int
		c0, c1, c2, l0, l1, l2, x0, x1, x2 []float64
		brc, brr                           []int
		own                                []ownSw
	)
	grow := func(s []float64, n int) []float64 {
		if cap(s) < n {
			return make([]float64, n)
		}
		return s[:n]
	}
	for n := range pend {
		pd := &pend[n]
		i := pd.i
		Z, Zd, Zdd := pa.jetRow(pl.last, i)
		// J: a bound of the first-layer jumps' total effect on any unit
		var J float64
		for _, c := range pd.cs {
			if c.layer != pl.aff {
				continue
			}
			q := jrow[n][c.unit]
			u := sj.units[q]
			A, B := pl.colMaxA[u], pl.colMaxB[u]
			dz, dv, da := math.Abs(sj.dz[q]), math.Abs(sj.dv[q]), math.Abs(sj.da[q])
			J += (dz+dv*h+da*h*h/2)*(A+math.Abs(sj.alphas[q])*B) + (dz*h+dv*h*h)*B
		}
		// The branches at a (cubicJets' Branches with z̈: the grid
		// point's, without it, where z or ż is not 0), their slopes,
		// ḧ₂ = D z̈₂ and the candidates.
		nw := (w + 63) / 64
		bitsPa := pa.bits[pl.last][i*nw : (i+1)*nw] // the branches at a (set wherever pl is)
		rows0, start := rows, -1
		cand, Dc = cand[:0], Dc[:0]
		brAt := func(v int) int {
			if Z[v] == 0 && Zd[v] == 0 {
				pl.swLast.Branches(Z[v:v+1], Zd[v:v+1], Zdd[v:v+1], one[:])
				return one[0]
			}
			return int(bitsPa[v>>6]>>(v&63)) & 1
		}
		var srow []float64 // ḧ₂ = D z̈₂ at a, unless the grid point has γ‴ (fastPoint)
		if pa.g3 == nil {
			start = newRow()
			srow = row(start)
			for v, zdd := range Zdd {
				srow[v] = slope(brAt(v)) * zdd
			}
		}
		// the candidates, 64 units at a time: a mask without a branch
		// per unit, then its set bits
		h2 := h * h / 2
		for q := 0; q < nw; q++ {
			hi := min(q*64+64, w)
			zq, zdq, zddq := Z[q*64:hi], Zd[q*64:hi], Zdd[q*64:hi]
			zdq, zddq = zdq[:len(zq)], zddq[:len(zq)]
			var m uint64
			for t, z := range zq {
				az, azd, azdd := math.Abs(z), math.Abs(zdq[t]), math.Abs(zddq[t])
				var c uint64
				if az-azd*h-azdd*h2 <= J+1e-9*(az+azd*h+azdd*h2+J) {
					c = 1
				}
				m |= c << t
			}
			for ; m != 0; m &= m - 1 {
				v := q*64 + bits.TrailingZeros64(m)
				pos[v] = len(cand)
				cand, Dc = append(cand, v), append(Dc, brAt(v))
			}
		}
		slValid := false // sl holds the pattern's slopes (else filled at the first switch)
		for _, c := range pd.cs {
			if c.layer == pl.last && pos[c.unit] < 0 {
				v := c.unit
				pos[v] = len(cand)
				bv := int(bitsPa[v>>6]>>(v&63)) & 1 // z ≠ 0 here: not a candidate above
				cand, Dc = append(cand, v), append(Dc, bv)
			}
		}
		nc := len(cand)
		c0, c1, c2 = grow(c0, nc), grow(c1, nc), grow(c2, nc)
		l0, l1, l2 = grow(l0, nc), grow(l1, nc), grow(l2, nc)
		x0, x1, x2 = grow(x0, nc), grow(x1, nc), grow(x2, nc)
		if cap(brc) < nc {
			brc, brr = make([]int, nc), make([]int, nc)
		}
		brc, brr = brc[:nc], brr[:nc]
		for j, v := range cand {
			c0[j], c1[j], c2[j] = Z[v], Zd[v], Zdd[v]
		}
		isOwn := func(v int) bool {
			for _, o := range own {
				if o.v == v {
					return true
				}
			}
			return false
		}
		ok := true
		sw0, oh0, k0, ex := len(sws), len(ohs), len(kinks), 0
		at := a
	kinkLoop:
		for _, grp := range gss[n] {
			k := grp[0].alpha
			t := k - at
			hh := t * t / 2
			for j := range cand { // taylor2, on the candidates
				l0[j] = c0[j] + t*c1[j] + hh*c2[j]
				l1[j] = c1[j] + t*c2[j]
				l2[j] = c2[j]
			}
			own = own[:0]
			hasAff := false
			for _, c := range grp {
				if c.layer == pl.aff {
					hasAff = true
					continue
				}
				// the left side forced to its branch before: a carried
				// pattern without it (cubicJets restarts), or a unit
				// switching twice at one kink, goes to cubicJets
				if Dc[pos[c.unit]] != c.from || isOwn(c.unit) {
					ok = false
					break kinkLoop
				}
				own = append(own, ownSw{c.unit, pos[c.unit], c.to})
			}
			pl.swLast.Branches(l0, l1, l2, brc)
			for j, v := range cand {
				if brc[j] != Dc[j] && !isOwn(v) {
					ok = false
					break kinkLoop
				}
			}
			// the right side: the first-layer jumps, on the candidates
			copy(x0, l0)
			copy(x1, l1)
			copy(x2, l2)
			for _, c := range grp {
				if c.layer != pl.aff {
					continue
				}
				q := jrow[n][c.unit]
				s := k - c.alpha
				for j, v := range cand {
					jz, jzd, jzdd := pl.jumpElem(sj.alphas[q], sj.units[q], v, sj.dz[q], sj.dv[q], sj.da[q])
					x0[j] += jz + s*jzd + s*s/2*jzdd
					x1[j] += jzd + s*jzdd
					x2[j] += jzdd
				}
			}
			if hasAff {
				pl.swLast.Branches(x0, x1, x2, brr)
			} else {
				copy(brr, brc)
			}
			for _, o := range own {
				brr[o.j] = o.to
			}
			for j, v := range cand {
				if brr[j] != Dc[j] && !isOwn(v) {
					ok = false
					break kinkLoop
				}
			}
			kr := kinkRec{sw0: len(sws), oh0: len(ohs)}
			if hasAff {
				ex++
				if !slValid {
					// the pattern's slopes: the point's bits, the
					// candidates' carried branches
					for v := range sl {
						sl[v] = slopes[bitsPa[v>>6]>>(v&63)&1]
					}
					for j, v := range cand {
						sl[v] = slope(Dc[j])
					}
					slValid = true
				}
				for _, c := range grp {
					if c.layer != pl.aff {
						continue
					}
					q := jrow[n][c.unit]
					u, al, dz, dv, da := sj.units[q], sj.alphas[q], sj.dz[q], sj.dv[q], sj.da[q]
					s := k - c.alpha
					// jumpElem's coefficients of w0ᵤ and Δwᵤ, at the
					// switch's α and shifted to k
					a0, a1, a2 := dz, dv, da
					b0, b1, b2 := al*dz, dz+al*dv, 2*dv+al*da
					rec := swRec{
						ca: [3]float64{a0 + s*a1 + s*s/2*a2, a1 + s*a2, a2},
						cb: [3]float64{b0 + s*b1 + s*s/2*b2, b1 + s*b2, b2},
					}
					rec.row = newRow()
					newRow()
					ra, rb := row(rec.row), row(rec.row+1)
					wa, wb := pl.w0T[u*w:(u+1)*w], pl.dwT[u*w:(u+1)*w]
					for v, s := range sl {
						ra[v] = s * wa[v]
						rb[v] = s * wb[v]
					}
					sws = append(sws, rec)
				}
				// own units: d = s_to·z_r − s_from·z_l = s_from·(z_r − z_l) + (s_to − s_from)·z_r
				for _, o := range own {
					ds := slope(o.to) - slope(Dc[o.j])
					ohs = append(ohs, ohRec{o.v, ds * x0[o.j], ds * x1[o.j], ds * x2[o.j]})
				}
			} else {
				for _, o := range own {
					ds := slope(o.to) - slope(Dc[o.j])
					ohs = append(ohs, ohRec{o.v, ds * l0[o.j], ds * l1[o.j], ds * l2[o.j]})
				}
			}
			kr.sw1, kr.oh1 = len(sws), len(ohs)
			kinks = append(kinks, kr)
			for _, o := range own {
				Dc[o.j] = o.to
				if slValid {
					sl[o.v] = slope(o.to)
				}
			}
			c0, x0 = x0, c0
			c1, x1 = x1, c1
			c2, x2 = x2, c2
			at = k
		}
		own = own[:0]
		for _, v := range cand {
			pos[v] = -1
		}
		if !ok {
			rows, sws, ohs, kinks = rows0, sws[:sw0], ohs[:oh0], kinks[:k0]
			cm = cm[:rows*w]
			slow = append(slow, n)
			continue
		}
		extra += ex
		exs = append(exs, exRec{n, start, k0})
		if rows >= cubicBlockRows {
			flush()
		}
	}
	flush()
	ws.cm, ws.y = cm[:0], ybuf
	pl.fast.Put(ws)
	if len(slow) > 0 {
		extra += p.cubicSlow(pl, pa, pend, gss, jrow, sj, slow, res)
	}
	return res, extra
}

// cubicSlow evaluates by cubicJets the examples pend[n], n in slow, that
// cubicFast hands over, and copies their jets into res at their rows
// (pend[n].r0, set by cubicFast). It returns cubicJets' row count.
func (p *Path) cubicSlow(pl *polyPlan, pa *gridPoint, pend []pendingKinks, gss [][][]crossing, jrow []map[int]int, sj switchJumps, slow []int, res *nn.Jet) int {
	sub := make([]pendingKinks, len(slow))
	subG := make([][][]crossing, len(slow))
	subJ := make([]map[int]int, len(slow))
	var units []int
	var jal, dz, dv, da []float64
	subR := 0
	for q, n := range slow {
		sub[q] = pendingKinks{i: pend[n].i, cs: pend[n].cs}
		subG[q] = gss[n]
		m := map[int]int{}
		for u, r := range jrow[n] {
			m[u] = len(units)
			units = append(units, sj.units[r])
			jal, dz, dv, da = append(jal, sj.alphas[r]), append(dz, sj.dz[r]), append(dv, sj.dv[r]), append(da, sj.da[r])
		}
		subJ[q] = m
		subR += 2 * len(gss[n])
	}
	var jm *mat.Dense
	nj := len(units)
	if nj > 0 {
		jm = pl.columnJumps(jal, units, dz, dv, da)
	}
	jumpAt := func(r int) (z, zd, zdd []float64) {
		return jm.RawRowView(r), jm.RawRowView(nj + r), jm.RawRowView(2*nj + r)
	}
	jet, extra := p.cubicJets(pl, pa, sub, subG, subJ, jumpAt, subR)
	R := res.N
	for q, n := range slow {
		for g := 0; g < 2*len(gss[n]); g++ {
			copy(res.M.RawRowView(R+pend[n].r0+g), jet.M.RawRowView(subR+sub[q].r0+g))
			copy(res.M.RawRowView(2*R+pend[n].r0+g), jet.M.RawRowView(2*subR+sub[q].r0+g))
		}
	}
	return extra
}

// fastPoint computes what cubicFast would compute per interval from the
// grid point g for the rows of in (the second kinked layer's input jet of
// the chunk starting at example lo, just copied into g): γ‴ at the point
// (g.g3: 3ΔW·ḧ₂, ḧ₂ = D z̈₂ with D the layer's branches by its rule with
// z̈₂, as cubicFast's start row would) by one product for the chunk,
// through ΔW only: once per point instead of once per interval starting
// there (fine and coarse) and example with kinks.
func (p *Path) fastPoint(pl *polyPlan, g *gridPoint, lo int, in *nn.Jet) {
	n, w := in.N, pl.width
	hdd, _ := pl.hdd.Get().(*mat.Dense)
	if hdd == nil {
		hdd = mat.NewDense(n, w, nil)
	} else if r, _ := hdd.Dims(); r != n {
		hdd = mat.NewDense(n, w, nil)
	}
	nw := (w + 63) / 64
	for r := 0; r < n; r++ {
		// the branches (bits, without z̈) and ḧ₂ (with it), one pass
		z, zd, zdd := in.Value().RawRowView(r), in.Velocity().RawRowView(r), in.Acceleration().RawRowView(r)
		enterBitsAcc(g.bits[pl.last][(lo+r)*nw:(lo+r+1)*nw], hdd.RawRowView(r), z, zd, zdd, pl.on, pl.off)
	}
	g3 := g.g3.Slice(lo, lo+n, 0, p.K).(*mat.Dense)
	g3.Mul(hdd, pl.outDP[0].Matrix().T())
	g3.Scale(3, g3)
	pl.hdd.Put(hdd)
}
