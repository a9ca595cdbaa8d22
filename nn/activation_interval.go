package nn

import (
	"math"

	"github.com/certify-mli/certify/interval"
)

// Enclose returns enclosures of σ(z), σ′(z) and σ″(z) for all z ∈ Z, and
// kink = true when Z may hold a point where σ is not C² (a ReLU-family
// interval straddling 0, or softplus's input crossing PyTorch's threshold).
// Where kink is set, d1 is the hull of the one-sided derivatives and d2 is
// not an enclosure of anything. Formulas are those of Eval written in terms
// of interval operations whose exact ranges enclose the true ones
// (e.g. tanh′ = 1 − T² with T = tanh(Z) and the exact range of the square).
func (a *Activation) Enclose(z interval.I) (s, d1, d2 interval.I, kink bool) {
	one, zero := interval.Point(1), interval.Point(0)
	switch a.Kind {
	case ReLU, LeakyReLU:
		neg := a.Slope
		if a.Kind == ReLU {
			neg = 0
		}
		f := func(v float64) float64 {
			if v >= 0 {
				return v
			}
			return neg * v
		}
		lo, hi := min(f(z.Lo), f(z.Hi)), max(f(z.Lo), f(z.Hi))
		switch {
		case z.Lo >= 0:
			return z, one, zero, false
		case z.Hi <= 0:
			return interval.Scale(neg, z), interval.Point(neg), zero, false
		}
		// straddles 0: the range includes σ(0) = 0
		s = interval.I{Lo: min(lo, 0), Hi: max(hi, 0)}
		if neg != 0 {
			s = interval.Hull(interval.Scale(neg, interval.I{Lo: z.Lo, Hi: 0}), interval.I{Lo: 0, Hi: z.Hi})
		}
		return s, interval.Hull(one, interval.Point(neg)), zero, true
	case Tanh:
		t := interval.Tanh(z)
		d1 = interval.Clamp(interval.Sub(one, interval.Sqr(t)), 0, 1)
		return t, d1, interval.Scale(-2, interval.Mul(t, d1)), false
	case Sigmoid:
		s = interval.Sigmoid(z)
		u := interval.AddF(s, -0.5)
		d1 = interval.Clamp(interval.Sub(interval.Point(0.25), interval.Sqr(u)), 0, 0.25)
		return s, d1, interval.Scale(-2, interval.Mul(u, d1)), false
	case GELU:
		if a.TanhApprox {
			const c = 0.7978845608028654 // √(2/π)
			const k = 0.044715
			z2 := interval.Sqr(z)
			u := interval.Scale(c, interval.Add(z, interval.Scale(k, interval.Cube(z))))
			du := interval.Scale(c, interval.AddF(interval.Scale(3*k, z2), 1))
			ddu := interval.Scale(c*6*k, z)
			t := interval.Tanh(u)
			sech2 := interval.Clamp(interval.Sub(one, interval.Sqr(t)), 0, 1)
			s = interval.Scale(0.5, interval.Mul(z, interval.AddF(t, 1)))
			d1 = interval.Add(interval.Scale(0.5, interval.AddF(t, 1)), interval.Scale(0.5, interval.Mul(z, interval.Mul(sech2, du))))
			inner := interval.Add(interval.Scale(-2, interval.Mul(t, interval.Mul(sech2, interval.Sqr(du)))), interval.Mul(sech2, ddu))
			d2 = interval.Add(interval.Mul(sech2, du), interval.Scale(0.5, interval.Mul(z, inner)))
			return widenC(s), widenC(d1), widenC(d2), false
		}
		cdf := interval.NormCDF(z)
		phi := interval.NormPDF(z)
		s = interval.Mul(z, cdf)
		d1 = interval.Add(cdf, interval.Mul(z, phi))
		d2 = interval.Mul(phi, interval.Sub(interval.Point(2), interval.Sqr(z)))
		return s, d1, d2, false
	case Softplus:
		th := a.Threshold
		bz := interval.Scale(a.Beta, z)
		soft := func(x interval.I) (interval.I, interval.I, interval.I) {
			sg := interval.Sigmoid(x)
			u := interval.AddF(sg, -0.5)
			dd := interval.Clamp(interval.Sub(interval.Point(0.25), interval.Sqr(u)), 0, 0.25)
			return interval.Div(interval.Softplus(x), interval.Point(a.Beta)), sg, interval.Scale(a.Beta, dd)
		}
		switch {
		case bz.Lo > th:
			return z, one, zero, false
		case bz.Hi <= th:
			s, d1, d2 = soft(bz)
			return s, d1, d2, false
		}
		// both branches of PyTorch's piecewise definition
		s, d1, d2 = soft(interval.I{Lo: bz.Lo, Hi: th})
		return interval.Hull(s, z), interval.Hull(d1, one), d2, true
	}
	return z, one, zero, false // identity, flatten
}

// widenC widens an interval by a relative 2⁻⁴⁸, covering the rounding of the
// float64 constants √(2/π) and 0.044715·… in the tanh-approximate GELU
// (PyTorch evaluates the same float64 constants, so this is conservative).
func widenC(x interval.I) interval.I {
	return interval.I{Lo: interval.Down(x.Lo - math.Abs(x.Lo)*0x1p-48), Hi: interval.Up(x.Hi + math.Abs(x.Hi)*0x1p-48)}
}

// IntervalJet applies ṡ = σ′(z) ż and s̈ = σ″(z) ż² + σ′(z) z̈ (THEORY.md §2)
// in interval arithmetic, entrywise with Enclose, and marks in Kink the
// examples with a unit that may cross a kink on the α-interval, and in Jump
// those whose softplus input may cross the threshold (a discontinuity).
func (a *Activation) IntervalJet(_ *ParamBox, in *IJet) *IJet {
	if a.identity() {
		return in
	}
	n, c := in.N, in.D
	out := &IJet{N: n, D: c, Order: in.Order, Const: in.Const, V: interval.NewMatrix(n, c), Kink: append([]bool(nil), in.Kink...), Jump: make([]bool, n)}
	if in.Jump != nil {
		copy(out.Jump, in.Jump)
	}
	if in.Const {
		for t := range in.V.Lo {
			s, _, _, _ := a.Enclose(interval.I{Lo: in.V.Lo[t], Hi: in.V.Hi[t]})
			out.V.Lo[t], out.V.Hi[t] = s.Lo, s.Hi
		}
		return out
	}
	if in.Order >= 1 {
		out.D1 = interval.NewMatrix(n, c)
	}
	if in.Order >= 2 {
		out.D2 = interval.NewMatrix(n, c)
	}
	// the jump term (IJet.DK) through ReLU and LeakyReLU kinks and smooth
	// units; softplus's threshold is a jump of h itself, not carried
	dk := in.HasDK()
	if dk {
		out.DK = interval.NewMatrix(n, c)
	}
	relu := a.Kind == ReLU
	for i := 0; i < n; i++ {
		kinkIn := in.Kink != nil && in.Kink[i]
		for j := 0; j < c; j++ {
			t := i*c + j
			if relu && (in.V.Lo[t] >= 0 || in.V.Hi[t] <= 0) {
				// a ReLU unit on one side of its kink over the whole interval
				// (Enclose's first two cases, σ′ = 1 or 0, σ″ = 0): it is the
				// identity or exactly 0 there, so its value and derivatives
				// are its input's or exact zeros, with no rounding (1·x and
				// 0·x are exact; Mul would widen by an ulp, and Scale(0, ·)
				// gives [−η, η] instead of 0; issue 13)
				if in.V.Lo[t] >= 0 {
					out.V.Lo[t], out.V.Hi[t] = in.V.Lo[t], in.V.Hi[t]
					if in.Order >= 1 {
						out.D1.Lo[t], out.D1.Hi[t] = in.D1.Lo[t], in.D1.Hi[t]
					}
					if in.Order >= 2 {
						out.D2.Lo[t], out.D2.Hi[t] = in.D2.Lo[t], in.D2.Hi[t]
					}
					if dk {
						out.DK.Lo[t], out.DK.Hi[t] = in.DK.Lo[t], in.DK.Hi[t]
					}
				} // else every output stays the exact 0 of NewMatrix
				continue
			}
			var zd, zdd, zk interval.I
			if in.Order >= 1 {
				zd = interval.I{Lo: in.D1.Lo[t], Hi: in.D1.Hi[t]}
			}
			if in.Order >= 2 {
				zdd = interval.I{Lo: in.D2.Lo[t], Hi: in.D2.Hi[t]}
			}
			if dk {
				zk = interval.I{Lo: in.DK.Lo[t], Hi: in.DK.Hi[t]}
			}
			s, d1, d2, k, kink := a.unitJet(interval.I{Lo: in.V.Lo[t], Hi: in.V.Hi[t]}, zd, zdd, zk, in.Order, dk, kinkIn)
			if kink {
				out.Kink[i] = true
				// softplus's only non-smooth point is its threshold, where it jumps
				out.Jump[i] = out.Jump[i] || a.Kind == Softplus
			}
			out.V.Lo[t], out.V.Hi[t] = s.Lo, s.Hi
			if in.Order >= 1 {
				out.D1.Lo[t], out.D1.Hi[t] = d1.Lo, d1.Hi
			}
			if in.Order >= 2 {
				out.D2.Lo[t], out.D2.Hi[t] = d2.Lo, d2.Hi
			}
			if dk {
				out.DK.Lo[t], out.DK.Hi[t] = k.Lo, k.Hi
			}
		}
	}
	if dk && a.Kind == Softplus {
		for _, j := range out.Jump {
			if j {
				out.DK = interval.Matrix{} // a jump of h: no slope form
				break
			}
		}
	}
	return out
}

// UnitInterval is a layer acting unit by unit whose interval rule
// (IntervalJet) can be applied to one unit of one example alone, with bit
// for bit the same result (issue 12, cert-5000: the carried second layer
// reads the first activation only at a few units, certify/carry.go).
// Implemented by Activation (UnitJet).
type UnitInterval interface {
	UnitJet(z, zd, zdd, zk interval.I, order int, hasDK, inKink bool) (s, d1, d2, k interval.I, kink bool)
}

var _ UnitInterval = (*Activation)(nil)

// UnitJet is IntervalJet on one unit of one example (issue 12, cert-5000:
// the carried second layer reads the first activation only at the units
// that may cross their kink, certify/carry.go): z the unit's input over the
// α-interval, zd, zdd and zk its D1, D2 and DK (read up to order; zk only
// with hasDK, the input jet's IJet.HasDK), inKink the input example's Kink
// flag. It returns the output's V, D1, D2 and DK at that unit (zero above
// order, DK zero without hasDK) and whether the unit may cross a kink (the
// example's Kink; with softplus also its Jump, and a jump drops the whole
// jet's DK, which the caller must then do). The results are bit for bit
// those of IntervalJet's entry: it is the same code.
func (a *Activation) UnitJet(z, zd, zdd, zk interval.I, order int, hasDK, inKink bool) (s, d1, d2, k interval.I, kink bool) {
	if a.identity() {
		return z, zd, zdd, zk, false
	}
	if a.Kind == ReLU && (z.Lo >= 0 || z.Hi <= 0) { // IntervalJet's exact ReLU case
		if z.Lo >= 0 {
			s = z
			if order >= 1 {
				d1 = zd
			}
			if order >= 2 {
				d2 = zdd
			}
			if hasDK {
				k = zk
			}
		}
		return s, d1, d2, k, false
	}
	return a.unitJet(z, zd, zdd, zk, order, hasDK, inKink)
}

// unitJet is IntervalJet's rule on one entry outside its exact ReLU case
// (UnitJet): Enclose, then ṡ = σ′ż and s̈ with the jump term as documented
// there; outputs above order stay zero.
func (a *Activation) unitJet(z, zd, zdd, zk interval.I, order int, dk, inKink bool) (s, o1, o2, ok interval.I, kink bool) {
	s, d1, d2, kink := a.Enclose(z)
	if order < 1 {
		return s, o1, o2, ok, kink
	}
	o1 = interval.Mul(d1, zd)
	if order < 2 {
		return s, o1, o2, ok, kink
	}
	if kink && (!dk || a.Kind == Softplus) { // not smooth here: any finite value, flagged by Kink
		return s, o1, interval.I{}, ok, kink
	}
	var w, k interval.I
	if dk {
		k = interval.Mul(d1, zk)
	}
	switch {
	case kink:
		// ṡ(α) − ṡ(β) = σ′(z(α))(ż(α) − ż(β)) + (σ′(z(α)) − σ′(z(β)))ż(β)
		// with σ′ ∈ [slope, 1] (d1) piecewise constant: the first
		// term is in d1·(Z̈·(α−β) + K), the second a jump of at most
		// |1 − slope|·|ż(β)|
		neg := a.Slope
		if a.Kind == ReLU {
			neg = 0
		}
		m := math.Abs(1 - neg)
		w = interval.Mul(d1, zdd)
		k = interval.Add(k, interval.Mul(interval.I{Lo: -m, Hi: m}, zd))
	case dk && inKink:
		// ż may jump upstream: σ′(z(α)) − σ′(z(β)) = ∫σ″ż times
		// ż(β), two different points of the same enclosure (a
		// product, not a square)
		w = interval.Add(interval.Mul(d2, interval.Mul(zd, zd)), interval.Mul(d1, zdd))
	default:
		w = interval.Add(interval.Mul(d2, interval.Sqr(zd)), interval.Mul(d1, zdd))
	}
	o2 = w
	if dk {
		ok = k
	}
	return s, o1, o2, ok, kink
}
