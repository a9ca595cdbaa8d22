package nn

import (
	"math"

	"github.com/certify-mli/certify/interval"
)

// LossEnclosure returns, for every example i of the output jet out [N, K],
// enclosures of its loss ℓ_i and, up to out.Order, of ℓ_i′ and ℓ_i″ along α
// (THEORY.md §4), unscaled as in functionspace's ExampleLoss: mse
// ℓ = ‖γ − y‖² (one-hot labels), cross_entropy ℓ = logsumexp(γ) − γ_y. t holds
// the targets of the jet's rows. Cross-entropy uses the stable form
// p_j = 1/(1 + S_j), S_j = Σ_{k≠j} exp(γ_k − γ_j), with exp(γ_k − γ_j)
// enclosed as E_k/E_j, E_k = exp(γ_k − m) for a float64 shift m, and
// ℓ = log1p(S_y), 1 − p_y = S_y/(1 + S_y) (increasing in S_y),
// ℓ″ = Σ_j p_j (v_j − ⟨p, v⟩)² + ⟨p − e_y, a⟩ with the variance clamped ≥ 0.
// Every ℓ_j and p_j is intersected with the log-sum-exp form
// ℓ_j = log Σ_k E_k + m − γ_j, p_j = exp(−ℓ_j), which stays finite for any
// logits (THEORY.md §7; the quotient form loses ℓ once E_y underflows).
func LossEnclosure(kind string, out *IJet, t Targets) (l, dl, d2l []interval.I) {
	l, dl, d2l, _ = LossEnclosureDK(kind, out, t)
	return l, dl, d2l
}

// LossEnclosureDK is LossEnclosure with the loss's slope form across kinks
// (IJet.DK): when out.HasDK(), dk [N] is returned and, for every example i
// and all α, β in the interval, ℓ_i′(α) − ℓ_i′(β) ∈ d2l_i·(α − β) + dk_i,
// kinked examples included (for them d2l_i is then this slope's enclosure,
// not ℓ_i″'s). With ℓ′ = Σ_j e_j(γ) γ̇_j (e = p − e_y, or 2(γ − y) for mse),
// ℓ′(α) − ℓ′(β) = Σ_j e_j(α)(γ̇_j(α) − γ̇_j(β)) + Σ_j (e_j(α) − e_j(β))γ̇_j(β):
// the first is in Σ_j E_j·(D2_j·(α − β) + DK_j), the second in
// (α − β)·Σ_j P_j·(V_j − ⟨P, V⟩)·(V_j − ⟨P, V⟩) for cross-entropy (the
// integrand Σ_j p_j(v_j − ⟨p, v⟩) is 0 at every point, so any common shift
// of γ̇_j(β) may be subtracted) and (α − β)·2Σ_j V_j·V_j for mse, where V
// encloses γ̇ at two different points (a product, not a square). An example
// without a kink keeps ℓ″'s enclosure and dk_i = 0. dk is nil without DK.
func LossEnclosureDK(kind string, out *IJet, t Targets) (l, dl, d2l, dk []interval.I) {
	l, dl, d2l, dk, _ = LossEnclosureGrad(kind, out, t)
	return l, dl, d2l, dk
}

// LossEnclosureGrad is LossEnclosureDK that also returns e [N, K], the
// enclosure over the interval of the loss's gradient with respect to the
// outputs, e_ij ⊇ ∂ℓ_i/∂γ_j: p_j − [j = y] for cross_entropy (with p_y − 1
// enclosed directly, as in ℓ′), 2(γ_j − y_j) for mse. The certificate's
// backward jump term starts from it (nn.IntervalBackward).
func LossEnclosureGrad(kind string, out *IJet, t Targets) (l, dl, d2l, dk []interval.I, grad interval.Matrix) {
	n, k := out.N, out.D
	eg := interval.NewMatrix(n, k)
	withDK := out.HasDK()
	if withDK {
		dk = make([]interval.I, n)
	}
	kk := make([]interval.I, k)
	l = make([]interval.I, n)
	if out.Order >= 1 {
		dl = make([]interval.I, n)
	}
	if out.Order >= 2 {
		d2l = make([]interval.I, n)
	}
	g := make([]interval.I, k)
	v := make([]interval.I, k)
	a := make([]interval.I, k)
	e := make([]interval.I, k)
	p := make([]interval.I, k)
	lsj := make([]interval.I, k)
	buf := make([]float64, k)
	zero := interval.Point(0)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			g[j] = out.V.At(i, j)
			if out.Order >= 1 {
				v[j] = out.D1.At(i, j)
			}
			if out.Order >= 2 {
				a[j] = out.D2.At(i, j)
			}
			if withDK {
				kk[j] = out.DK.At(i, j)
			}
		}
		slope := withDK && out.Kink != nil && out.Kink[i] // d2l as the slope form
		if kind == "mse" {
			y := t.Target(i, k, buf)
			sl, sd, sv, sa, sk := zero, zero, zero, zero, zero
			for j := 0; j < k; j++ {
				r := interval.AddF(g[j], -y[j])
				eg.Set(i, j, interval.Scale(2, r))
				sl = interval.Add(sl, interval.Sqr(r))
				if out.Order >= 1 {
					sd = interval.Add(sd, interval.Mul(r, v[j]))
				}
				if out.Order >= 2 {
					if slope {
						sv = interval.Add(sv, interval.Mul(v[j], v[j]))
						sk = interval.Add(sk, interval.Mul(kk[j], r))
					} else {
						sv = interval.Add(sv, interval.Sqr(v[j]))
					}
					sa = interval.Add(sa, interval.Mul(a[j], r))
				}
			}
			l[i] = sl
			if out.Order >= 1 {
				dl[i] = interval.Scale(2, sd)
			}
			if out.Order >= 2 {
				d2l[i] = interval.Scale(2, interval.Add(sv, sa))
			}
			if withDK {
				dk[i] = interval.Scale(2, sk)
			}
			continue
		}
		lab := t.Labels[i]
		pm1 := interval.I{Lo: -1, Hi: 0} // p_y − 1
		m := math.Inf(-1)
		for j := 0; j < k; j++ {
			m = max(m, g[j].Mid())
		}
		if math.IsInf(m, 0) || math.IsNaN(m) {
			m = 0
		}
		for j := 0; j < k; j++ {
			e[j] = interval.Exp(interval.AddF(g[j], -m))
		}
		// The log-sum-exp form, which cannot overflow for any logits:
		// lse = m + log Σ_k E_k with Σ_k E_k ≥ E_argmax ≈ 1, so
		// ℓ_j = log Σ E + (m − γ_j) and p_j = exp(−ℓ_j) stay finite
		// whatever the logits (the quotient form below gives S = ∞ once
		// E_j underflows, at a loss above about 745).
		se := zero
		for j := 0; j < k; j++ {
			se = interval.Add(se, e[j])
		}
		lse := interval.AddF(interval.Log(se), m)
		// logsumexp is increasing in every logit, so it also lies between
		// its values at the lower and at the upper ends of the logit
		// intervals, each computed stably (finite for finite logits, however
		// wide the intervals: the form above overflows once a logit's
		// interval is wider than exp's range)
		if lo, hi := lsePoint(g, false), lsePoint(g, true); lo.Valid() && hi.Valid() {
			lse = both(lse, interval.I{Lo: lo.Lo, Hi: hi.Hi})
		}
		for j := 0; j < k; j++ {
			lj := interval.Sub(lse, g[j])
			lj.Lo = max(lj.Lo, 0) // lse ≥ max_k γ_k ≥ γ_j
			lsj[j] = lj
		}
		for j := 0; j < k; j++ {
			r := zero
			for q := 0; q < k; q++ {
				if q != j {
					r = interval.Add(r, e[q])
				}
			}
			s := interval.Div(r, e[j])
			s = interval.I{Lo: max(s.Lo, 0), Hi: s.Hi}
			if math.IsNaN(s.Hi) || s.Hi < s.Lo {
				s.Hi = math.Inf(1)
			}
			onePlus := interval.AddF(s, 1)
			p[j] = both(interval.Clamp(interval.Recip(onePlus), 0, 1), interval.Clamp(interval.Exp(interval.Neg(lsj[j])), 0, 1))
			if j == lab {
				l[i] = both(interval.Log1p(s), lsj[j])
				// p_y − 1 = −S/(1+S), increasing in S
				q := interval.I{Lo: interval.Down(s.Lo / interval.Up(1+s.Lo)), Hi: interval.Up(s.Hi / interval.Down(1+s.Hi))}
				if math.IsInf(s.Hi, 1) {
					q.Hi = 1
				}
				p[j] = both(p[j], interval.AddF(interval.Neg(q), 1))
				// p_y − 1 itself, accurate when p_y is close to 1 (where
				// p_y − 1 computed from p_y would lose every digit):
				// −S/(1 + S) and expm1(−ℓ_y)
				pm1 = both(both(interval.AddF(p[j], -1), interval.Neg(q)), interval.Expm1(interval.Neg(l[i])))
			}
		}
		for j := 0; j < k; j++ {
			if j == lab {
				eg.Set(i, j, pm1)
			} else {
				eg.Set(i, j, p[j])
			}
		}
		if out.Order < 1 {
			continue
		}
		sd, pv := zero, zero
		for j := 0; j < k; j++ {
			ej := p[j]
			if j == lab {
				ej = pm1
			}
			sd = interval.Add(sd, interval.Mul(ej, v[j]))
			pv = interval.Add(pv, interval.Mul(p[j], v[j]))
		}
		// ℓ′ = Σ_{j≠y} p_j (v_j − v_y) too (Σ p = 1): with p_j ≥ 0 its sign
		// survives p enclosures as wide as [0, 1] (logits spread by more
		// than exp's range over a wide α-interval).
		sd2 := zero
		for j := 0; j < k; j++ {
			if j != lab {
				sd2 = interval.Add(sd2, interval.Mul(p[j], interval.Sub(v[j], v[lab])))
			}
		}
		dl[i] = both(sd, sd2)
		if out.Order < 2 {
			continue
		}
		vr, sa, sk := zero, zero, zero
		for j := 0; j < k; j++ {
			ej := p[j]
			if j == lab {
				ej = pm1
			}
			x := interval.Sub(v[j], pv)
			if slope {
				vr = interval.Add(vr, interval.Mul(p[j], interval.Mul(x, x)))
				sk = interval.Add(sk, interval.Mul(ej, kk[j]))
			} else {
				vr = interval.Add(vr, interval.Mul(p[j], interval.Sqr(x)))
			}
			sa = interval.Add(sa, interval.Mul(ej, a[j]))
		}
		if !slope {
			vr.Lo = max(vr.Lo, 0)
		}
		d2l[i] = interval.Add(vr, sa)
		if withDK {
			dk[i] = sk
		}
	}
	return l, dl, d2l, dk, eg
}

// both intersects two enclosures of the same real; if rounding trouble (a
// NaN bound) made either invalid, the valid one is kept, and if the
// intersection is empty (impossible in exact arithmetic) their hull.
func both(x, y interval.I) interval.I {
	switch {
	case !x.Valid():
		return y
	case !y.Valid():
		return x
	}
	if r := interval.Intersect(x, y); r.Valid() {
		return r
	}
	return interval.Hull(x, y)
}

// lsePoint encloses logsumexp of the point vector of the logits' lower
// (upper: hi set) ends: M + log Σ_k exp(x_k − M) with M = max_k x_k, every
// operation rounded outward. The sum is at least 1, so the result is finite
// for finite x.
func lsePoint(g []interval.I, hi bool) interval.I {
	at := func(v interval.I) float64 {
		if hi {
			return v.Hi
		}
		return v.Lo
	}
	m := math.Inf(-1)
	for _, v := range g {
		m = max(m, at(v))
	}
	if math.IsInf(m, 0) || math.IsNaN(m) {
		return interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
	}
	s := interval.Point(0)
	for _, v := range g {
		s = interval.Add(s, interval.Exp(interval.AddF(interval.Point(at(v)), -m)))
	}
	return interval.AddF(interval.Log(s), m)
}
