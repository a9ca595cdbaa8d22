package geometry

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/integrate"
	"gonum.org/v1/gonum/integrate/quad"
)

// Sample-based quadrature: the caller evaluates a batch of paths at a fixed set
// of α (the paper's grid, or the nodes of a composite rule) and integrates
// per-sample values. None of these sees kinks between samples: add the corner
// angles (CornerAngle) of known kinks separately and put kinks at panel breaks.

// Trapezoid returns the trapezoid rule Σ_j (α_{j+1} − α_j)(f_j + f_{j+1})/2
// for samples f_j = f(α_j); alphas and f are [m] with alphas non-decreasing.
// It panics if the lengths differ, m < 2 or alphas is not sorted
// (gonum integrate.Trapezoidal).
func Trapezoid(alphas, f []float64) float64 {
	return integrate.Trapezoidal(alphas, f)
}

// TrapezoidWeights returns the [m] weights w with Σ w_j f_j = Trapezoid(alphas,
// f), for use with ChordDeviation or a batched evaluation. It panics if m < 2
// or alphas is not sorted.
func TrapezoidWeights(alphas []float64) []float64 {
	m := len(alphas)
	if m < 2 {
		panic("geometry: fewer than two samples")
	}
	if !sort.Float64sAreSorted(alphas) {
		panic("geometry: alphas not sorted")
	}
	w := make([]float64, m)
	for j := 0; j+1 < m; j++ {
		h := (alphas[j+1] - alphas[j]) / 2
		w[j] += h
		w[j+1] += h
	}
	return w
}

// GaussLengthTrapezoid returns the paper-compatible Gauss length: the
// trapezoid rule applied to the turning rates ‖T′(α_j)‖ (TurningRate) on the
// grid alphas (Lucas et al. 2021 used 50 equally spaced α in [0, 1]), with no
// corners counted and no error estimate (THEORY.md §3). Report it under its own
// name beside GaussLength. Panics as Trapezoid.
func GaussLengthTrapezoid(alphas, rates []float64) float64 {
	return Trapezoid(alphas, rates)
}

// RemainingArc returns S_j = ∫_{α_j}^{α_{m−1}} ‖v‖ dα for every j (THEORY.md
// §3, remaining arc S(α); the grid should end at α = 1), by the cumulative
// trapezoid rule on the speeds ‖v(α_j)‖; S_{m−1} = 0. Its error is
// O(h²)·max|d²‖v‖/dα²| per unit length; use RemainingArcHermite when the speed
// derivative is available. alphas and speeds are [m], alphas sorted; it
// panics otherwise or if m < 1.
func RemainingArc(alphas, speeds []float64) []float64 {
	return remainingArc(alphas, speeds, nil)
}

// RemainingArcHermite is RemainingArc with the end-corrected trapezoid rule
// (cubic Hermite interpolation of the speed),
//
//	∫_{α_j}^{α_{j+1}} ‖v‖ ≈ h(s_j + s_{j+1})/2 + h²(s′_j − s′_{j+1})/12,
//
// exact for cubic speeds, error O(h⁴). dspeeds are the speed derivatives
// s′_j = ⟨a,v⟩/‖v‖ (SpeedDerivative). All slices are [m]. On a piecewise-smooth
// path a kink between two samples reduces the local accuracy to that of the
// trapezoid rule.
func RemainingArcHermite(alphas, speeds, dspeeds []float64) []float64 {
	checkLen(len(alphas), dspeeds)
	return remainingArc(alphas, speeds, dspeeds)
}

func remainingArc(alphas, s, ds []float64) []float64 {
	m := len(alphas)
	checkLen(m, s)
	if m < 1 {
		panic("geometry: no samples")
	}
	if !sort.Float64sAreSorted(alphas) {
		panic("geometry: alphas not sorted")
	}
	out := make([]float64, m)
	for j := m - 2; j >= 0; j-- {
		h := alphas[j+1] - alphas[j]
		step := h * (s[j] + s[j+1]) / 2
		if ds != nil {
			step += h * h * (ds[j] - ds[j+1]) / 12
		}
		out[j] = out[j+1] + step
	}
	return out
}

func checkBreaks(breaks []float64) {
	if len(breaks) < 2 {
		panic("geometry: fewer than two breakpoints")
	}
	for i := 1; i < len(breaks); i++ {
		if !(breaks[i-1] < breaks[i]) || !finite(breaks[i-1]) || !finite(breaks[i]) {
			panic("geometry: breakpoints not finite and strictly increasing")
		}
	}
}

// LegendrePanels returns the nodes and weights of the composite Gauss–Legendre
// rule with order points on each panel [breaks[p], breaks[p+1]] (gonum
// quad.Legendre), P = len(breaks) − 1 panels, nodes increasing: both results
// are [order·P], and Σ_i weights[i]·f(nodes[i]) ≈ ∫ f over
// [breaks[0], breaks[P]], exact for polynomials of degree ≤ 2·order − 1 on each
// panel. Nodes are interior to the panels, so put kinks at breaks: f is then
// smooth on each panel and never evaluated at a kink. The rule has no error
// estimate of its own; use KronrodPanels for one. It panics if order < 1 or
// breaks is not strictly increasing with at least two entries.
func LegendrePanels(breaks []float64, order int) (nodes, weights []float64) {
	checkBreaks(breaks)
	if order < 1 {
		panic("geometry: order < 1")
	}
	P := len(breaks) - 1
	nodes = make([]float64, order*P)
	weights = make([]float64, order*P)
	for p := 0; p < P; p++ {
		x, w := nodes[p*order:(p+1)*order], weights[p*order:(p+1)*order]
		quad.Legendre{}.FixedLocations(x, w, breaks[p], breaks[p+1])
		sort.Sort(byNode{x, w})
	}
	return nodes, weights
}

type byNode struct{ x, w []float64 }

func (b byNode) Len() int           { return len(b.x) }
func (b byNode) Less(i, j int) bool { return b.x[i] < b.x[j] }
func (b byNode) Swap(i, j int) {
	b.x[i], b.x[j] = b.x[j], b.x[i]
	b.w[i], b.w[j] = b.w[j], b.w[i]
}

// KronrodPanels returns the composite 15-point Gauss–Kronrod rule on the
// panels [breaks[p], breaks[p+1]]: nodes (increasing), Kronrod weights and
// embedded 7-point Gauss weights, each [15·P] for P = len(breaks) − 1 panels;
// gauss is 0 at the 8 nodes per panel that only Kronrod uses. Evaluate a batch
// of paths at all nodes at once and pass each path's samples to KronrodSum for
// the integral and an error estimate. It panics as LegendrePanels.
func KronrodPanels(breaks []float64) (nodes, kronrod, gauss []float64) {
	checkBreaks(breaks)
	P := len(breaks) - 1
	nodes = make([]float64, 15*P)
	kronrod = make([]float64, 15*P)
	gauss = make([]float64, 15*P)
	for p := 0; p < P; p++ {
		a, b := breaks[p], breaks[p+1]
		c, h := a+(b-a)/2, (b-a)/2
		for i := 0; i < 15; i++ {
			nodes[15*p+i] = c + h*k15Nodes[i]
			kronrod[15*p+i] = h * k15Weights[i]
			gauss[15*p+i] = h * g7Weights[i]
		}
	}
	return nodes, kronrod, gauss
}

// KronrodSum returns the composite K15 integral Σ kronrod_i f_i of samples f at
// the nodes of KronrodPanels, and an error estimate: the sum over panels of
// QUADPACK's estimate |K15 − G7| scaled by the panel's mean absolute deviation
// (the same estimate as Adaptive uses; heuristic and, for smooth integrands,
// pessimistic, see Adaptive). A large estimate means the panels are too coarse
// for that path; refine the breaks there or use the adaptive integrators. All
// slices are [15·P]; it panics otherwise.
func KronrodSum(f, kronrod, gauss []float64) (value, errorEstimate float64) {
	checkLen(len(f), kronrod, gauss)
	if len(f)%15 != 0 {
		panic("geometry: length not a multiple of 15")
	}
	for p := 0; p < len(f); p += 15 {
		var resk, resg, resabs, width float64
		for i := p; i < p+15; i++ {
			resk += kronrod[i] * f[i]
			resg += gauss[i] * f[i]
			resabs += kronrod[i] * math.Abs(f[i])
			width += kronrod[i]
		}
		mean := resk / width
		var resasc float64
		for i := p; i < p+15; i++ {
			resasc += kronrod[i] * math.Abs(f[i]-mean)
		}
		value += resk
		errorEstimate += quadpackError(resk, resg, resabs, resasc)
	}
	return value, errorEstimate
}

// ChordDeviation returns Σ_j w_j ‖d_j − ⟨d_j, u⟩u‖², d_j = γ(α_j) − γ(0), the
// quadrature of ∫₀¹ ‖(γ(α) − γ(0)) − proj_u(γ(α) − γ(0))‖² dα with u the unit
// chord direction (γ(1) − γ(0))/‖γ(1) − γ(0)‖ (THEORY.md §3, chord deviation
// of one path; average over examples for the dataset value). start = γ(0) and
// end = γ(1) are [n]; gamma[j] = γ(α_j) is [n] for the m quadrature nodes α_j
// with weights [m] (LegendrePanels, KronrodPanels or TrapezoidWeights). It is
// zero for a straight path and invariant under translation, rotation and
// reversal; it scales by c² under scaling by c. It returns ErrZeroChord if
// γ(1) = γ(0) and ErrNonFinite for NaN or Inf input, and panics if the shapes
// disagree.
func ChordDeviation(start, end []float64, gamma [][]float64, weights []float64) (float64, error) {
	n := len(start)
	checkLen(n, end)
	if len(gamma) != len(weights) {
		panic("geometry: slice length mismatch")
	}
	u := make([]float64, n)
	for i := range u {
		u[i] = end[i] - start[i]
	}
	if err := UnitTangent(u, u); err != nil {
		if err == ErrZeroSpeed {
			return 0, ErrZeroChord
		}
		return 0, err
	}
	var sum float64
	for j, g := range gamma {
		checkLen(n, g)
		var c float64
		for i, gi := range g {
			c += (gi - start[i]) * u[i]
		}
		var ss sumSquares
		for i, gi := range g {
			ss.add((gi - start[i]) - c*u[i])
		}
		r := ss.norm()
		sum += weights[j] * r * r
	}
	if !finite(sum) {
		return 0, ErrNonFinite
	}
	return sum, nil
}
