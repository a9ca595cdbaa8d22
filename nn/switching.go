package nn

import (
	"gonum.org/v1/gonum/mat"
)

// Switching is the kink declaration of a layer whose jet rule is piecewise
// smooth in its input (THEORY.md §2–§3, §9). Per example, each of its
// Switches() switch units takes one of finitely many branches, each a
// smooth rule, and the output path has a corner (a kink) where a unit's
// branch changes along α. A unit keeps branch b while every switching
// function of b (its gap to each rival branch, Gaps) is positive; it
// switches to a rival where the gap to that rival reaches 0.
//
//   - ReLU family (PiecewiseLinear, through SwitchingOf): one unit per input
//     element; branch 1 (active, slope on) or 0 (inactive, slope off); the
//     switching function of branch 1 is the input z, that of branch 0 is −z.
//   - Max-pool (MaxPool2d): one unit per output window (c·OH·OW + q);
//     branch the flat input index (in [C·H·W]) of the selected input; the
//     switching functions of branch b are x_b − x_r for every other input
//     r of the window.
//
// Every kink pass of functionspace (the kink search Path.Kinks, the
// one-sided jets at a kink, the corners of the Gauss length) sees a layer
// through this interface only. A kinked layer has no parameters
// (Model.Require refuses one with parameters): its jet is the same for
// every row of a per-row-α pass.
type Switching interface {
	KinkSites
	// Switches returns the number of switch units of one example.
	Switches() int
	// Branches writes into br [Switches()] the branch each unit takes just
	// after α (α increasing: the branch the layer's Jet selects) for one
	// example whose input jet is x, xd, xdd [InSize] each; a nil xdd is a
	// zero acceleration.
	Branches(x, xd, xdd []float64, br []int)
	// Gaps appends to dst the switching functions of unit u on branch b at
	// one example's input jet (x, xd, xdd; a nil xdd is zero): one Gap per
	// rival branch, in a fixed order, positive where b is kept against that
	// rival and 0 where they switch.
	Gaps(dst []Gap, u, b int, x, xd, xdd []float64) []Gap
	// JetForced is Jet on a non-constant input jet, except that in row
	// f.Row unit f.Unit takes branch f.Branch for every f in forced,
	// whatever its input: the one-sided jets at a kink are those of the
	// branches just before and just after it (THEORY.md §2, "use one-sided
	// derivatives"). The result is freshly allocated.
	JetForced(in *Jet, forced []Force) *Jet
}

// Ties is declared by a Switching layer whose switching functions may
// vanish identically on an interval of α: two max-pool inputs zeroed by a
// ReLU before it. A unit of such a layer can switch at the very α of a
// kink upstream, as its consequence, and its branch there must be read
// just before and just after the kink, not at it, where a rounded value
// would decide it; the kink passes then do so for every unit (a second
// per-row pass per batch of kinks). The ReLU family does not declare it:
// its switching function is its input.
type Ties interface {
	MayTie() bool
}

// MayTie implements Ties: two inputs of a window may be equal on an
// interval of α (zeros of a ReLU).
func (l *MaxPool2d) MayTie() bool { return true }

// Gap is one switching function of a switch unit on its current branch
// (Switching.Gaps) at one point: its value S (> 0 while the branch is kept
// against Rival, 0 at the switch) and its first two α-derivatives.
type Gap struct {
	// Rival is the branch that takes over when S crosses 0.
	Rival      int
	S, SD, SDD float64
}

// Force makes switch unit Unit take branch Branch in row Row of a
// Switching layer's JetForced.
type Force struct{ Row, Unit, Branch int }

// SwitchingOf returns the switching rule of a kink-declaring layer l: l
// itself when it implements Switching, the unit-wise two-slope rule of a
// PiecewiseLinear layer (the ReLU family: one unit per input element), and
// false for a layer that declares neither.
func SwitchingOf(l Layer) (Switching, bool) {
	if s, ok := l.(Switching); ok {
		return s, true
	}
	if pl, ok := l.(PiecewiseLinear); ok {
		return unitwise{pl}, true
	}
	return nil, false
}

// enters reports whether a ReLU-family unit with input jet (z, ż, z̈) is on
// its active side just after α (α increasing): the rule of Activation.Jet.
func enters(z, zd, zdd float64) bool {
	return z > 0 || (z == 0 && (zd > 0 || (zd == 0 && zdd >= 0)))
}

// unitwise is the Switching rule of a PiecewiseLinear layer: unit u is
// input element u, branch 1 active (slope on) and 0 inactive (slope off),
// switching function z on branch 1 and −z on branch 0.
type unitwise struct{ PiecewiseLinear }

// Switches returns InSize: one unit per input element.
func (a unitwise) Switches() int { return a.InSize() }

// Branches writes 1 for every unit entering its active side, else 0.
func (a unitwise) Branches(x, xd, xdd []float64, br []int) {
	for u, z := range x {
		var zdd float64
		if xdd != nil {
			zdd = xdd[u]
		}
		br[u] = 0
		if enters(z, xd[u], zdd) {
			br[u] = 1
		}
	}
}

// Gaps appends z (branch 1, rival 0) or −z (branch 0, rival 1).
func (a unitwise) Gaps(dst []Gap, u, b int, x, xd, xdd []float64) []Gap {
	var zdd float64
	if xdd != nil {
		zdd = xdd[u]
	}
	if b == 1 {
		return append(dst, Gap{Rival: 0, S: x[u], SD: xd[u], SDD: zdd})
	}
	return append(dst, Gap{Rival: 1, S: -x[u], SD: -xd[u], SDD: -zdd})
}

// JetForced applies σ(z) = on·z or off·z unit-wise to in, on the side each
// unit enters for increasing α or the forced one.
func (a unitwise) JetForced(in *Jet, forced []Force) *Jet {
	n, c := in.N, a.OutSize()
	on, off := a.Slopes()
	out := &Jet{N: n, M: mat.NewDense(3*n, c, nil)}
	for r := 0; r < n; r++ {
		z, zd, zdd := in.M.RawRowView(r), in.M.RawRowView(n+r), in.M.RawRowView(2*n+r)
		s, sd, sdd := out.M.RawRowView(r), out.M.RawRowView(n+r), out.M.RawRowView(2*n+r)
		for u := range z {
			k := off
			if enters(z[u], zd[u], zdd[u]) {
				k = on
			}
			s[u], sd[u], sdd[u] = k*z[u], k*zd[u], k*zdd[u]
		}
	}
	for _, f := range forced {
		r, u := f.Row, f.Unit
		k := off
		if f.Branch == 1 {
			k = on
		}
		out.M.Set(r, u, k*in.M.At(r, u))
		out.M.Set(n+r, u, k*in.M.At(n+r, u))
		out.M.Set(2*n+r, u, k*in.M.At(2*n+r, u))
	}
	return out
}

// Switches implements Switching: one unit per output window, C·OH·OW.
func (l *MaxPool2d) Switches() int { return l.outSize() }

// Branches implements Switching: the flat input index of each window's
// selected input (the lexicographic arg-max of value, velocity,
// acceleration, THEORY.md §9).
func (l *MaxPool2d) Branches(x, xd, xdd []float64, br []int) {
	windowArgmax(&l.pool2d, x, xd, xdd, br)
}

// Gaps implements Switching: x_b − x_r (with its derivatives) for every
// other input r of window u, in window order.
func (l *MaxPool2d) Gaps(dst []Gap, u, b int, x, xd, xdd []float64) []Gap {
	g := &l.pool2d
	oq := g.OH * g.OW
	c, q := u/oq, u%oq
	base := c * g.H * g.W
	for h := g.H0[q]; h < g.H1[q]; h++ {
		for w := g.W0[q]; w < g.W1[q]; w++ {
			k := base + h*g.W + w
			if k == b {
				continue
			}
			gp := Gap{Rival: k, S: x[b] - x[k], SD: xd[b] - xd[k]}
			if xdd != nil {
				gp.SDD = xdd[b] - xdd[k]
			}
			dst = append(dst, gp)
		}
	}
	return dst
}

// JetForced implements Switching: Jet, with window f.Unit of row f.Row
// selecting input f.Branch.
func (l *MaxPool2d) JetForced(in *Jet, forced []Force) *Jet {
	n := in.N
	out := &Jet{N: n, M: mat.NewDense(3*n, l.outSize(), nil)}
	maxJet(&l.pool2d, rowsOf(in.M, 0, 3*n), rowsOf(out.M, 0, 3*n), n, false)
	for _, f := range forced {
		for part := 0; part < 3; part++ {
			out.M.Set(part*n+f.Row, f.Unit, in.M.At(part*n+f.Row, f.Branch))
		}
	}
	return out
}

var (
	_ Switching = unitwise{}
	_ Switching = (*MaxPool2d)(nil)
	_ Ties      = (*MaxPool2d)(nil)
)
