package nn

import "gonum.org/v1/gonum/mat"

// AffineJet is declared by a layer whose per-row jet (RowJetter) is affine
// in its input jet, the bias terms its only constant part: for every input
// jet in and change d of it,
//
//	JetRows(in + d) = JetRows(in) + JumpRows(d)
//
// (THEORY.md §2: z = W(α)h + b(α), ż = ΔW h + W(α)ḣ + Δb,
// z̈ = 2ΔW ḣ + W(α)ḧ, linear in (h, ḣ, ḧ) but for b and Δb).
// functionspace carries the change of the one-sided jets across a kink
// through such a layer as this linear map instead of evaluating the layer
// again on the other side (the right-sided jet at a kink is the left-sided
// one plus the jump carried to the output; Path.sideJets). Dense and
// Conv2d declare it.
type AffineJet interface {
	RowJetter
	// JumpRows returns the change of the output jet [3n, OutSize] when the
	// input jet changes by d [3n, InSize] (value, velocity, acceleration
	// rows), row r at α = alphas[r]; p0 and dp are the layer's tensors at
	// α = 0 and δ. The result is freshly allocated.
	JumpRows(p0, dp []*Tensor, alphas []float64, d *Jet) *Jet
}

// UnitJumps is declared by an AffineJet layer that carries a change of a
// single input element per row at the cost of one column of its weights,
// O(OutSize) per row instead of a matrix product: the jump just after a
// ReLU-family unit switches (THEORY.md §2, a kink flips one unit's
// derivative, so the jump of the velocity is rank one). Dense declares it.
type UnitJumps interface {
	AffineJet
	// JumpUnitRows is JumpRows for a change d whose row r is zero except
	// in input element units[r], where its value, velocity and
	// acceleration change by dz[r], dv[r], da[r]. The result [3n, OutSize]
	// is freshly allocated.
	JumpUnitRows(p0, dp []*Tensor, alphas []float64, units []int, dz, dv, da []float64) *Jet
}

// JumpRows implements AffineJet: JetRows without the bias terms.
func (d *Dense) JumpRows(p0, dp []*Tensor, alphas []float64, in *Jet) *Jet {
	return d.JetRows([]*Tensor{p0[0], nil}, []*Tensor{dp[0], nil}, alphas, in)
}

// JumpUnitRows implements UnitJumps: with w0 and Δw the column units[r]
// of W0 and ΔW, z = dz·(w0 + α Δw), ż = dz·Δw + dv·(w0 + α Δw) and
// z̈ = 2 dv·Δw + da·(w0 + α Δw) (JetRows of the one-hot input).
func (d *Dense) JumpUnitRows(p0, dp []*Tensor, alphas []float64, units []int, dz, dv, da []float64) *Jet {
	n := len(units)
	w0, dw := p0[0].Data, dp[0].Data // [Out, In], row-major
	out := &Jet{N: n, M: mat.NewDense(3*n, d.Out, nil)}
	for r, u := range units {
		al := alphas[r]
		z, zd, zdd := out.M.RawRowView(r), out.M.RawRowView(n+r), out.M.RawRowView(2*n+r)
		for o := range z {
			a, b := w0[o*d.In+u], dw[o*d.In+u]
			z[o] = dz[r]*a + al*(dz[r]*b)
			zd[o] = dz[r]*b + dv[r]*a + al*(dv[r]*b)
			zdd[o] = 2*(dv[r]*b) + da[r]*a + al*(da[r]*b)
		}
	}
	return out
}

// JumpRows implements AffineJet: JetRows without the bias terms.
func (l *Conv2d) JumpRows(p0, dp []*Tensor, alphas []float64, in *Jet) *Jet {
	return l.JetRows([]*Tensor{p0[0], nil}, []*Tensor{dp[0], nil}, alphas, in)
}

// DenseWeights is declared by an AffineJet layer whose per-row jet is
// that of z = W(α)h + b(α) with W its tensor 0, [OutSize, InSize]
// row-major, and b its tensor 1 (nil for none): a caller may then read a
// column of W or multiply by ΔW itself (functionspace's carried Gauss
// length: γ‴ = 3ΔW·ḧ, one-hot jumps). Dense declares it.
type DenseWeights interface {
	AffineJet
	// DenseWeights reports whether the layer is z = W h + b as above.
	DenseWeights() bool
}

// DenseWeights implements DenseWeights: W is [Out, In], b [Out].
func (d *Dense) DenseWeights() bool { return true }

var (
	_ UnitJumps    = (*Dense)(nil)
	_ DenseWeights = (*Dense)(nil)
	_ AffineJet    = (*Conv2d)(nil)
)

// UnitJetter is declared by a RowJetter layer that evaluates single output
// elements of its per-row jet at the cost of their own weights, O(InSize)
// per row instead of a matrix product: what a Newton step on a ReLU-family
// unit's pre-activation needs (functionspace's grid Gauss length refines
// every deeper kink so). Dense declares it.
type UnitJetter interface {
	RowJetter
	// JetUnitRows returns the value, velocity and acceleration of output
	// element units[r] of row r of JetRows(p0, dp, alphas, in), each
	// [len(units)].
	JetUnitRows(p0, dp []*Tensor, alphas []float64, in *Jet, units []int) (z, zd, zdd []float64)
}

// UnitInput is declared by a Switching rule whose unit u reads only input
// element u (Gaps and Branches of unit u look at x[u], xd[u], xdd[u] and
// nothing else) and whose branch sets only output element u: the ReLU
// family's unit-wise rule. A kink refinement may then evaluate that one
// element of the layer's input (UnitJetter), and the jump of the layer's
// output at a switch is one element (UnitSwitch).
type UnitInput interface {
	Switching
	// UnitInput reports whether unit u reads input element u only and
	// sets output element u only.
	UnitInput() bool
	// UnitSwitch returns the change of output element u's value, velocity
	// and acceleration in JetForced when unit u is forced to branch to
	// instead of from, its input element's jet being z, zd, zdd.
	UnitSwitch(u, from, to int, z, zd, zdd float64) (dz, dv, da float64)
}

// UnitInput implements UnitInput: unit u is input and output element u.
func (a unitwise) UnitInput() bool { return true }

// UnitSwitch implements UnitInput: (s_to − s_from)·(z, ż, z̈) with s the
// branch's slope (Slopes: 1 active, 0 inactive).
func (a unitwise) UnitSwitch(_, from, to int, z, zd, zdd float64) (dz, dv, da float64) {
	on, off := a.Slopes()
	slope := func(b int) float64 {
		if b == 1 {
			return on
		}
		return off
	}
	k := slope(to) - slope(from)
	return k * z, k * zd, k * zdd
}

// JetUnitRows implements UnitJetter: with w0 and Δw row units[r] of W0 and
// ΔW, the six dot products of JetRows' P0 = W0·[h; ḣ; ḧ] and
// P1 = ΔW·[h; ḣ; ḧ] for that element, combined as in JetRows (the bias
// terms included).
func (d *Dense) JetUnitRows(p0, dp []*Tensor, alphas []float64, in *Jet, units []int) (z, zd, zdd []float64) {
	n := in.N
	m := len(units)
	z, zd, zdd = make([]float64, m), make([]float64, m), make([]float64, m)
	for r, u := range units {
		w0, dw := p0[0].Data[u*d.In:(u+1)*d.In], dp[0].Data[u*d.In:(u+1)*d.In]
		h := in.M.RawRowView(r)
		var p0h, p1h, p0d, p1d, p0a, p1a float64
		if in.Const {
			for k, x := range h {
				p0h += w0[k] * x
				p1h += dw[k] * x
			}
		} else {
			hd, ha := in.M.RawRowView(n+r), in.M.RawRowView(2*n+r)
			for k, x := range h {
				a, b := w0[k], dw[k]
				p0h += a * x
				p1h += b * x
				p0d += a * hd[k]
				p1d += b * hd[k]
				p0a += a * ha[k]
				p1a += b * ha[k]
			}
		}
		al := alphas[r]
		z[r] = p0h + al*p1h
		zd[r] = p1h + p0d + al*p1d
		zdd[r] = 2*p1d + p0a + al*p1a
		if p0[1] != nil {
			z[r] += p0[1].Data[u] + al*dp[1].Data[u]
			zd[r] += dp[1].Data[u]
		}
	}
	return z, zd, zdd
}

var (
	_ UnitJetter = (*Dense)(nil)
	_ UnitInput  = unitwise{}
)
