package functionspace

import (
	"sort"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// CarryRefreshUpdates is the number of rank-one updates an example of a
// QuadCarry may take since its coefficients were last computed by matrix
// products before the carry recomputes them (QuadCarry.MoveTo): it bounds
// the rounding the incremental updates accumulate. Each update adds at
// most a few units of rounding (2⁻⁵³) of the column it adds to every
// coefficient, so after R updates the coefficients are off by about
// √R·2⁻⁵³ of their size (R·2⁻⁵³ at worst). With 256 the benchmark
// network's grid values agree with the full pass's to about 1e-15
// relative (docs/performance.md, grid-carry), far inside the 1e-12 the
// analyses promise (certify.RoundingError).
const CarryRefreshUpdates = 256

// QuadCarry is the input of the layer after a ReLU-family layer whose own
// input is affine in α, carried along α for a block of N examples
// (THEORY.md §2; issue 12's grid carry).
//
// The ReLU-family layer's input is z₁ = a + αb per example ([In] each:
// the first layer's cached products, W0 x + b0 and ΔW x + Δb). With s(α)
// the slope each unit takes at α (1 or the leaky slope active, 0 or the
// leaky slope inactive: the branch the layer's jet selects, Branches),
// h₁ = s ⊙ (a + αb) is affine in α between kinks, and the next layer
// z₂ = W(α)h₁ + b(α), W(α) = W0 + αΔW, is the quadratic
//
//	z₂ = P0 + α·P1 + α²·P2 + b0 + α·Δb,  ż₂ = P1 + 2α·P2 + Δb,  z̈₂ = 2·P2
//
// with P0 = W0(s⊙a), P1 = W0(s⊙b) + ΔW(s⊙a), P2 = ΔW(s⊙b) ([Out] each).
// The coefficients depend on α only through the slopes: when unit u
// switches (its kink α* = −a_u/b_u is passed) by Δs = s_new − s_old,
// P0 += Δs·a_u·W0e_u, P1 += Δs·(b_u·W0e_u + a_u·ΔWe_u), P2 += Δs·b_u·ΔWe_u
// — three columns of width Out, against a matrix product per α.
//
// MoveTo brings the carry to any α (in any order: the slopes at α are a
// function of α alone, since each unit's input is affine and crosses 0 at
// most once) by comparing the branches at α with the carried ones; a
// kink exactly at α takes the side the forward pass takes there, because
// the branches come from the same rule on the same rounded z₁ (Branches of
// α·b + a, as Path's first-layer jet computes it). Jet writes z₂'s jet.
//
// A QuadCarry is not safe for concurrent use; separate blocks of examples
// are independent.
type QuadCarry struct {
	N, In, Out int
	// P0, P1, P2 are the coefficients [N, Out] at the carried slopes.
	P0, P1, P2 *mat.Dense
	// PB is W0(s⊙b), P1's first term, carried apart when set (not nil)
	// before the first MoveTo (TrackB): the per-layer split of L′ needs
	// W(α)(s⊙b) = PB + αP2 (the first layer's δ carried through) apart
	// from ΔW(s⊙(a + αb)) = P1 − PB + αP2 (the second layer's own δ).
	PB *mat.Dense
	// A and B are z₁'s value at α = 0 and velocity [N, In] (not copied).
	A, B *mat.Dense
	// W0T and DWT are W0ᵀ and ΔWᵀ [In, Out] row-major: the columns of the
	// weights, read contiguously at a switch.
	W0T, DWT []float64
	// Bias0 and DBias are b0 and Δb [Out] (nil: no bias).
	Bias0, DBias []float64
	// On and Off are the slopes of the active (branch 1) and inactive
	// (branch 0) side (nn.PiecewiseLinear.Slopes).
	On, Off float64
	// Branches writes the branch (1 active, 0 inactive) of every unit for
	// one example whose z₁ jet is (x, xd, 0): nn.Switching.Branches.
	Branches func(x, xd, xdd []float64, br []int)

	// MaxUpdates is the bound of rank-one updates per example between
	// refreshes (0: CarryRefreshUpdates).
	MaxUpdates int

	branch  []int8 // [N, In]: the carried branches; valid once fresh
	updates []int  // per example: rank-one updates since the last refresh
	fresh   bool
	// Refreshes and Updates count the refreshes (matrix products over the
	// whole block) and the rank-one updates made so far.
	Refreshes, Updates int

	x   []float64
	bri []int
	// std is set when Branches is nn's unit-wise rule (a PiecewiseLinear
	// layer without a Switching of its own): MoveTo then finds the
	// changed units by enterBit, with no call per example.
	std bool
}

// NewQuadCarry returns the carry of the examples whose z₁ = a + αb (a, b
// [N, In]) feed the layer of weights w0, dw ([Out, In] row-major, W at
// α = 0 and ΔW) and bias b0, db ([Out], nil for none) through a
// ReLU-family layer of slopes on, off with branch rule branches. Its
// coefficients are computed at the first MoveTo.
func NewQuadCarry(a, b *mat.Dense, w0, dw, b0, db []float64, out int, on, off float64, branches func(x, xd, xdd []float64, br []int)) *QuadCarry {
	_, in := a.Dims()
	return newQuadCarryT(a, b, transpose(w0, out, in), transpose(dw, out, in), b0, db, out, on, off, branches)
}

// newQuadCarryT is NewQuadCarry with the weights already transposed
// (shared between the blocks of one path).
func newQuadCarryT(a, b *mat.Dense, w0T, dwT, b0, db []float64, out int, on, off float64, branches func(x, xd, xdd []float64, br []int)) *QuadCarry {
	n, in := a.Dims()
	return &QuadCarry{N: n, In: in, Out: out, A: a, B: b,
		W0T: w0T, DWT: dwT, Bias0: b0, DBias: db,
		On: on, Off: off, Branches: branches,
		P0: mat.NewDense(n, out, nil), P1: mat.NewDense(n, out, nil), P2: mat.NewDense(n, out, nil),
		branch: make([]int8, n*in), updates: make([]int, n),
		x: make([]float64, in), bri: make([]int, in)}
}

func (c *QuadCarry) slope(b int8) float64 {
	if b == 1 {
		return c.On
	}
	return c.Off
}

// branchesAt writes into c.bri the branches of example i at α, from
// z₁ = α·b + a rounded as the forward pass rounds it.
func (c *QuadCarry) branchesAt(i int, alpha float64) {
	ar, br := c.A.RawRowView(i), c.B.RawRowView(i)
	for u, bu := range br {
		c.x[u] = alpha*bu + ar[u]
	}
	c.Branches(c.x, br, nil, c.bri)
}

// MoveTo brings the coefficients to the slopes at α: the first call, and
// every call after which some example would exceed MaxUpdates
// (CarryRefreshUpdates) updates since its last refresh, computes them afresh by matrix products
// (Refresh); otherwise every unit whose branch at α differs from the
// carried one is applied as a rank-one update. It returns the number of
// updates made (0 after a refresh).
func (c *QuadCarry) MoveTo(alpha float64) int {
	if !c.fresh {
		c.Refresh(alpha)
		return 0
	}
	// Count first: a block whose updates would exceed the bound is
	// refreshed instead (the count is cheap next to the updates).
	type sw struct {
		i, u int
		to   int8
	}
	var sws []sw
	worst := 0
	for i := 0; i < c.N; i++ {
		row := c.branch[i*c.In : (i+1)*c.In]
		k := 0
		if c.std {
			ar, br := c.A.RawRowView(i), c.B.RawRowView(i)
			ar = ar[:len(br)]
			row = row[:len(br)]
			for u, bu := range br {
				// z₁ = α·b + a as branchesAt rounds it, and Branches' rule
				if b := enterBit(alpha*bu+ar[u], bu); b != row[u] {
					sws = append(sws, sw{i, u, b})
					k++
				}
			}
		} else {
			c.branchesAt(i, alpha)
			for u, b := range c.bri {
				if int8(b) != row[u] {
					sws = append(sws, sw{i, u, int8(b)})
					k++
				}
			}
		}
		worst = max(worst, c.updates[i]+k)
	}
	bound := c.MaxUpdates
	if bound <= 0 {
		bound = CarryRefreshUpdates
	}
	if worst > bound {
		c.Refresh(alpha)
		return 0
	}
	out := c.Out
	for _, s := range sws {
		row := c.branch[s.i*c.In : (s.i+1)*c.In]
		ds := c.slope(s.to) - c.slope(row[s.u])
		row[s.u] = s.to
		c.updates[s.i]++
		au, bu := ds*c.A.At(s.i, s.u), ds*c.B.At(s.i, s.u)
		w0, dw := c.W0T[s.u*out:(s.u+1)*out], c.DWT[s.u*out:(s.u+1)*out]
		p0, p1, p2 := c.P0.RawRowView(s.i), c.P1.RawRowView(s.i), c.P2.RawRowView(s.i)
		for o := range p0 {
			p0[o] += au * w0[o]
			p1[o] += bu*w0[o] + au*dw[o]
			p2[o] += bu * dw[o]
		}
		if c.PB != nil {
			pb := c.PB.RawRowView(s.i)
			for o, w := range w0 {
				pb[o] += bu * w
			}
		}
	}
	c.Updates += len(sws)
	return len(sws)
}

// enterBit is nn's unit-wise branch rule (enters with z̈ = 0) for a unit
// of input z, ż: 1 when z > 0, or z = 0 and ż ≥ 0, else 0 (NaN: 0);
// computed without branches (enterBits, TestEnterBitsMatchesBranches).
func enterBit(z, zd float64) int8 {
	var b, e, d int8
	if z > 0 {
		b = 1
	}
	if z == 0 {
		e = 1
	}
	if zd >= 0 {
		d = 1
	}
	return b | e&d
}

// TrackB makes the carry keep PB (W0(s⊙b)) apart; call it before the
// first MoveTo.
func (c *QuadCarry) TrackB() {
	if c.PB == nil {
		c.PB = mat.NewDense(c.N, c.Out, nil)
	}
}

// FLOPs returns the floating-point operations of the carry so far: 8·N·In·Out
// per refresh (four products) and 8·Out per rank-one update
// (10 and 10·Out with PB).
func (c *QuadCarry) FLOPs() float64 {
	k := 8.0
	if c.PB != nil {
		k = 10
	}
	return float64(c.Refreshes)*k*float64(c.N*c.In*c.Out) + float64(c.Updates)*k*float64(c.Out)
}

// Refresh computes the coefficients at the slopes at α by matrix
// products: with ha = s⊙a and hb = s⊙b [N, In], P0 = ha·W0ᵀ,
// P1 = hb·W0ᵀ + ha·ΔWᵀ, P2 = hb·ΔWᵀ (four products of N×In×Out).
func (c *QuadCarry) Refresh(alpha float64) {
	n, in, out := c.N, c.In, c.Out
	ha, hb := mat.NewDense(n, in, nil), mat.NewDense(n, in, nil)
	for i := 0; i < n; i++ {
		c.branchesAt(i, alpha)
		row := c.branch[i*in : (i+1)*in]
		ar, br := c.A.RawRowView(i), c.B.RawRowView(i)
		ra, rb := ha.RawRowView(i), hb.RawRowView(i)
		for u, b := range c.bri {
			row[u] = int8(b)
			s := c.slope(int8(b))
			ra[u], rb[u] = s*ar[u], s*br[u]
		}
		c.updates[i] = 0
	}
	w0 := blas64.General{Rows: in, Cols: out, Stride: out, Data: c.W0T}
	dw := blas64.General{Rows: in, Cols: out, Stride: out, Data: c.DWT}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, ha.RawMatrix(), w0, 0, c.P0.RawMatrix())
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, hb.RawMatrix(), w0, 0, c.P1.RawMatrix())
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, ha.RawMatrix(), dw, 1, c.P1.RawMatrix())
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, hb.RawMatrix(), dw, 0, c.P2.RawMatrix())
	if c.PB != nil {
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, hb.RawMatrix(), w0, 0, c.PB.RawMatrix())
	}
	c.fresh = true
	c.Refreshes++
}

// Jet writes z₂'s jet at α into z, zd, zdd ([N, Out] each, row i example
// i): z = P0 + α(P1 + αP2) + b0 + αΔb, ż = P1 + 2αP2 + Δb, z̈ = 2P2. The
// carry must be at α (MoveTo).
func (c *QuadCarry) Jet(alpha float64, z, zd, zdd *mat.Dense) {
	for i := 0; i < c.N; i++ {
		p0, p1, p2 := c.P0.RawRowView(i), c.P1.RawRowView(i), c.P2.RawRowView(i)
		v, d, a := z.RawRowView(i), zd.RawRowView(i), zdd.RawRowView(i)
		for o := range p0 {
			v[o] = p0[o] + alpha*(p1[o]+alpha*p2[o])
			d[o] = p1[o] + 2*alpha*p2[o]
			a[o] = 2 * p2[o]
		}
		if c.Bias0 != nil {
			for o, b := range c.Bias0 {
				v[o] += b + alpha*c.DBias[o]
				d[o] += c.DBias[o]
			}
		}
	}
}

// UnitKink is where one unit of a ReLU-family layer on an input affine in
// α (z = a + αb) switches: at α = −a/b, rounded.
type UnitKink struct {
	Unit  int
	Alpha float64
}

// SortedKinks appends to dst the kinks of one example's units (z_u =
// a[u] + α·b[u]) with −a/b in (lo, hi], sorted by α and then by unit, and
// returns it: the order in which a sweep from lo to hi meets them (an
// interval version of the carry visits them so; each unit switches at most
// once, since its input is affine). The α are rounded quotients: a point
// sweep decides the side at a grid point by the layer's branch rule on the
// rounded z, as QuadCarry.MoveTo does, not by comparing with them.
func SortedKinks(dst []UnitKink, a, b []float64, lo, hi float64) []UnitKink {
	n0 := len(dst)
	for u, bu := range b {
		if bu == 0 {
			continue
		}
		if k := -a[u] / bu; k > lo && k <= hi {
			dst = append(dst, UnitKink{Unit: u, Alpha: k})
		}
	}
	ks := dst[n0:]
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].Alpha != ks[j].Alpha {
			return ks[i].Alpha < ks[j].Alpha
		}
		return ks[i].Unit < ks[j].Unit
	})
	return dst
}
