package functionspace

import (
	"sort"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// jumpable reports whether Path.sideJets may carry the right-sided jet at
// a kink from the left-sided one (carryJumps) instead of evaluating a
// second row: the model is one chain of leaf layers (no residual block,
// so that site s is layer s and its output the input of site s+1), no
// kinked layer may tie (nn.Ties: every unit of every kinked layer is then
// forced to its branch just before or just after the kink, and those
// differ between the two sides), and BatchNorm does not use the
// `recompute` policy (its rows are normalised by a reference pass, not by
// the layer's own rule). Otherwise both sides are evaluated (the general
// path).
func (p *Path) jumpable() bool {
	return !p.noJumps && p.ref == nil && !p.mayTie() && p.chain()
}

// chain reports whether the model has no residual block: site s is then
// top-level layer s.
func (p *Path) chain() bool {
	for _, l := range p.Model.Layers {
		if _, ok := l.(nn.Block); ok {
			return false
		}
	}
	return true
}

// unitSite reports whether switchInputs may evaluate only the switch
// unit's own input element at kinked site s (rule sw): a chain model
// whose rule at s reads unit u from input element u (nn.UnitInput), fed
// by a layer that evaluates single output elements (nn.UnitJetter) and is
// not the first layer (whose cached products serve instead).
func (p *Path) unitSite(s int, sw nn.Switching) bool {
	if p.noJumps || s < 2 || !p.chain() {
		return false
	}
	if ui, ok := sw.(nn.UnitInput); !ok || !ui.UnitInput() {
		return false
	}
	_, ok := p.Model.Layers[s-1].(nn.UnitJetter)
	return ok
}

// switchInputs evaluates the input jet of the kinked site of every
// crossing cs[r] (example rows[r] at alphas[r]) and returns at(r), the
// value and velocity rows of that input for crossing r (valid until the
// next call of at). Where the site's rule reads only its unit's own input
// element and the layer feeding it evaluates single elements (unitSite),
// a prefix pass up to that layer and the one element suffice (the other
// elements are 0): a Newton step on a deeper ReLU unit then costs no
// matrix product of that layer. Other crossings get complete rows from
// one per-row pass.
func (p *Path) switchInputs(rows []int, alphas []float64, cs []crossing) func(r int) (x, xd []float64) {
	sws := p.switchings()
	sites := p.siteLayers()
	type unitRes struct{ z, zd []float64 }
	byRow := make([]int, len(rows)) // index among the rows of its group
	unitGroups := map[int][]int{}
	var full []int
	for r, c := range cs {
		if p.unitSite(c.layer, sws[c.layer]) {
			byRow[r] = len(unitGroups[c.layer])
			unitGroups[c.layer] = append(unitGroups[c.layer], r)
			continue
		}
		byRow[r] = len(full)
		full = append(full, r)
	}
	res := map[int]unitRes{}
	for s, rs := range unitGroups {
		er, al, us := make([]int, len(rs)), make([]float64, len(rs)), make([]int, len(rs))
		for k, r := range rs {
			er[k], al[k], us[k] = rows[r], alphas[r], cs[r].unit
		}
		in := p.rowPass(er, al, nil, nil, nil, s-1)
		z, zd, _ := p.Model.Layers[s-1].(nn.UnitJetter).JetUnitRows(p.Model.LayerParams(p.Theta0, s-1), p.Model.LayerParams(p.Delta, s-1), al, in, us)
		res[s] = unitRes{z, zd}
	}
	// The other crossings by the top-level layer after the one holding
	// their site: a prefix pass stops there (the layers after a
	// crossing's site do not change its input), each distinct (example,
	// α) once, read in place (no copy per crossing of every kinked
	// layer's rows, as rowPass would spread).
	byStop := map[int][]int{}
	var stops []int
	for _, r := range full {
		st := p.stopAfter(cs[r].layer)
		if byStop[st] == nil {
			stops = append(stops, st)
		}
		byStop[st] = append(byStop[st], r)
	}
	preOf := make([]map[int]*nn.Jet, len(rows))
	for _, st := range stops {
		rs := byStop[st]
		er, al := make([]int, len(rs)), make([]float64, len(rs))
		for k, r := range rs {
			er[k], al[k] = rows[r], alphas[r]
		}
		ur, ua, idx := distinctRows(er, al)
		pre := map[int]*nn.Jet{}
		for k, r := range rs {
			byRow[r], preOf[r] = idx[k], pre
		}
		p.rowPassDistinct(ur, ua, nil, pre, nil, st)
	}
	scratch := map[int][2][]float64{}
	last := map[int]int{}
	return func(r int) (x, xd []float64) {
		c := cs[r]
		u, ok := res[c.layer]
		if !ok {
			in := preOf[r][c.layer]
			return in.Value().RawRowView(byRow[r]), in.Velocity().RawRowView(byRow[r])
		}
		sc, ok := scratch[c.layer]
		if !ok {
			w := sites[c.layer].InSize()
			sc = [2][]float64{make([]float64, w), make([]float64, w)}
			scratch[c.layer] = sc
		}
		if e, ok := last[c.layer]; ok {
			sc[0][e], sc[1][e] = 0, 0
		}
		sc[0][c.unit], sc[1][c.unit] = u.z[byRow[r]], u.zd[byRow[r]]
		last[c.layer] = c.unit
		return sc[0], sc[1]
	}
}

// carryJumps returns the change of the output jet [3m, K] from the
// left-sided to the right-sided jet at m kinks of one switch each: kink q
// is the switch cs[q], whose left-sided jet is row sel[q] of a rowPass
// (at α = alphas[sel[q]], the switch's unit forced to its branch before)
// with output out and the input jet of every leaf in trace.
//
// The right-sided jet differs from the left-sided one only by the switch:
// at the kinked site the switching layer's output changes (for the ReLU
// family in one element, by (s⁺ − s⁻)·(z, ż, z̈) of the unit; z is 0 at the
// kink up to its location's rounding), and every later layer carries that
// change by its own rule (THEORY.md §2): a layer declaring nn.UnitJumps
// by one column of its weights while the change is one element per row (a
// ReLU kink's rank-one jump through the downstream Jacobian), an
// nn.AffineJet layer by its linear map, a kinked layer by its switching
// rule on the changed input, any other layer by its per-row rule on the
// changed input minus its left-sided output. The result equals the
// difference of the two one-sided passes up to rounding, without the
// layers before the kink and, for affine layers, without their full
// products.
func (p *Path) carryJumps(sel []int, alphas []float64, cs []crossing, trace map[int]*nn.Jet, out *nn.Jet) *nn.Jet {
	m := len(sel)
	res := &nn.Jet{N: m, M: mat.NewDense(3*m, p.K, nil)}
	bySite := map[int][]int{}
	var sites []int
	for q, c := range cs {
		if bySite[c.layer] == nil {
			sites = append(sites, c.layer)
		}
		bySite[c.layer] = append(bySite[c.layer], q)
	}
	sort.Ints(sites)
	layers := p.Model.Layers
	sws := p.switchings()
	next := func(t int) *nn.Jet {
		if t+1 < len(layers) {
			return trace[t+1]
		}
		return out
	}
	for _, s := range sites {
		qs := bySite[s]
		idx, als := make([]int, len(qs)), make([]float64, len(qs))
		fr := make([]nn.Force, len(qs))
		for k, q := range qs {
			idx[k], als[k] = sel[q], alphas[sel[q]]
			fr[k] = nn.Force{Row: k, Unit: cs[q].unit, Branch: cs[q].to}
		}
		t := s + 1
		var d *nn.Jet
		if ui, ok := sws[s].(nn.UnitInput); ok && ui.UnitInput() {
			// one output element changes: read the unit's input element
			// from the pass and start from the one-element change
			in := trace[s]
			n := in.N
			units := make([]int, len(qs))
			dz, dv, da := make([]float64, len(qs)), make([]float64, len(qs)), make([]float64, len(qs))
			for k, q := range qs {
				u, r := cs[q].unit, sel[q]
				units[k] = u
				dz[k], dv[k], da[k] = ui.UnitSwitch(u, cs[q].from, cs[q].to, in.M.At(r, u), in.M.At(n+r, u), in.M.At(2*n+r, u))
			}
			for ; t < len(layers) && isIdentity(layers[t]); t++ {
			}
			if t == len(layers) {
				d = oneHotJet(units, dz, dv, da, p.K)
			} else if uj, ok := layers[t].(nn.UnitJumps); ok {
				d = uj.JumpUnitRows(p.Model.LayerParams(p.Theta0, t), p.Model.LayerParams(p.Delta, t), als, units, dz, dv, da)
				t++
			} else {
				d = oneHotJet(units, dz, dv, da, layers[s].OutSize())
			}
		} else {
			d = jetSub(sws[s].JetForced(gatherJet(trace[s], idx), fr), gatherJet(next(s), idx))
		}
		for ; t < len(layers); t++ {
			d = p.carryLayer(t, layers[t], sws[t], d, idx, als, trace[t], next(t))
		}
		for k, q := range qs {
			for part := 0; part < 3; part++ {
				copy(res.M.RawRowView(part*m+q), d.M.RawRowView(part*len(qs)+k))
			}
		}
	}
	return res
}

// carryLayer carries the change d [3n, InSize] of the input jet of layer
// t (switching rule sw, nil if not kinked) through it (see carryJumps):
// rows idx of the pass whose input and output jets of the layer are in and
// outJ, row r at α = als[r].
func (p *Path) carryLayer(t int, layer nn.Layer, sw nn.Switching, d *nn.Jet, idx []int, als []float64, in, outJ *nn.Jet) *nn.Jet {
	if isIdentity(layer) {
		return d
	}
	p0, dp := p.Model.LayerParams(p.Theta0, t), p.Model.LayerParams(p.Delta, t)
	if sw != nil {
		return jetSub(sw.JetForced(jetAdd(gatherJet(in, idx), d), nil), gatherJet(outJ, idx))
	}
	if u, ok := layer.(nn.UnitJumps); ok {
		if units, dz, dv, da, ok := oneHot(d); ok {
			return u.JumpUnitRows(p0, dp, als, units, dz, dv, da)
		}
	}
	if a, ok := layer.(nn.AffineJet); ok {
		return a.JumpRows(p0, dp, als, d)
	}
	right := jetAdd(gatherJet(in, idx), d)
	var y *nn.Jet
	if r, ok := layer.(nn.RowJetter); ok {
		y = r.JetRows(p0, dp, als, right)
	} else {
		y = layer.Jet(nil, nil, right) // no parameters (nn.RulePerRow): its jet does not depend on α
	}
	return jetSub(y, gatherJet(outJ, idx))
}

// oneHot reports whether every row of d has at most one element non-zero
// in any of its value, velocity and acceleration, and returns that
// element (0 for a zero row) and its three changes per row.
func oneHot(d *nn.Jet) (units []int, dz, dv, da []float64, ok bool) {
	n := d.N
	units = make([]int, n)
	dz, dv, da = make([]float64, n), make([]float64, n), make([]float64, n)
	for r := 0; r < n; r++ {
		z, zd, zdd := d.M.RawRowView(r), d.M.RawRowView(n+r), d.M.RawRowView(2*n+r)
		found := false
		for c := range z {
			if z[c] == 0 && zd[c] == 0 && zdd[c] == 0 {
				continue
			}
			if found {
				return nil, nil, nil, nil, false
			}
			found = true
			units[r], dz[r], dv[r], da[r] = c, z[c], zd[c], zdd[c]
		}
	}
	return units, dz, dv, da, true
}

// oneHotJet returns the jet [3n, w] whose row r is zero but in element
// units[r], where its value, velocity and acceleration are dz[r], dv[r],
// da[r].
func oneHotJet(units []int, dz, dv, da []float64, w int) *nn.Jet {
	n := len(units)
	j := &nn.Jet{N: n, M: mat.NewDense(3*n, w, nil)}
	for r, u := range units {
		j.M.Set(r, u, dz[r])
		j.M.Set(n+r, u, dv[r])
		j.M.Set(2*n+r, u, da[r])
	}
	return j
}

// gatherJet returns the rows idx of jet j (value, velocity and acceleration
// of each) as a new jet [3·len(idx), width].
func gatherJet(j *nn.Jet, idx []int) *nn.Jet {
	n, m := j.N, len(idx)
	_, w := j.M.Dims()
	out := &nn.Jet{N: m, M: mat.NewDense(3*m, w, nil)}
	for part := 0; part < 3; part++ {
		for k, r := range idx {
			copy(out.M.RawRowView(part*m+k), j.M.RawRowView(part*n+r))
		}
	}
	return out
}

// jetAdd returns a + b, jetSub a − b (new jets of a's shape).
func jetAdd(a, b *nn.Jet) *nn.Jet {
	out := &nn.Jet{N: a.N, M: mat.NewDense(a.M.RawMatrix().Rows, a.M.RawMatrix().Cols, nil)}
	out.M.Add(a.M, b.M)
	return out
}

func jetSub(a, b *nn.Jet) *nn.Jet {
	out := &nn.Jet{N: a.N, M: mat.NewDense(a.M.RawMatrix().Rows, a.M.RawMatrix().Cols, nil)}
	out.M.Sub(a.M, b.M)
	return out
}

// stopAfter is the stop of a prefix pass (rowPass) that evaluates kinked
// site s and no further top-level layer: the index of the top-level layer
// after the one holding s (a residual block is evaluated whole), or −1
// where that is the end of the model or the pass could not stop there
// (before the cached first layer).
func (p *Path) stopAfter(s int) int {
	n := len(p.Model.Layers)
	t := 0
	for t+1 < n && p.Model.FirstSite(t+1) <= s {
		t++
	}
	if t+1 >= n || t+1 < 2 {
		return -1
	}
	return t + 1
}
