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
func LossEnclosure(kind string, out *IJet, t Targets) (l, dl, d2l []interval.I) {
	n, k := out.N, out.D
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
		}
		if kind == "mse" {
			y := t.Target(i, k, buf)
			sl, sd, sv, sa := zero, zero, zero, zero
			for j := 0; j < k; j++ {
				r := interval.AddF(g[j], -y[j])
				sl = interval.Add(sl, interval.Sqr(r))
				if out.Order >= 1 {
					sd = interval.Add(sd, interval.Mul(r, v[j]))
				}
				if out.Order >= 2 {
					sv = interval.Add(sv, interval.Sqr(v[j]))
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
			continue
		}
		lab := t.Labels[i]
		m := math.Inf(-1)
		for j := 0; j < k; j++ {
			m = math.Max(m, g[j].Mid())
		}
		if math.IsInf(m, 0) || math.IsNaN(m) {
			m = 0
		}
		for j := 0; j < k; j++ {
			e[j] = interval.Exp(interval.AddF(g[j], -m))
		}
		for j := 0; j < k; j++ {
			r := zero
			for q := 0; q < k; q++ {
				if q != j {
					r = interval.Add(r, e[q])
				}
			}
			s := interval.Div(r, e[j])
			s = interval.I{Lo: math.Max(s.Lo, 0), Hi: s.Hi}
			if math.IsNaN(s.Hi) || s.Hi < s.Lo {
				s.Hi = math.Inf(1)
			}
			onePlus := interval.AddF(s, 1)
			p[j] = interval.Clamp(interval.Recip(onePlus), 0, 1)
			if j == lab {
				l[i] = interval.Log1p(s)
				// p_y − 1 = −S/(1+S), increasing in S
				q := interval.I{Lo: interval.Down(s.Lo / interval.Up(1+s.Lo)), Hi: interval.Up(s.Hi / interval.Down(1+s.Hi))}
				if math.IsInf(s.Hi, 1) {
					q.Hi = 1
				}
				p[j] = interval.Intersect(p[j], interval.AddF(interval.Neg(q), 1))
			}
		}
		if out.Order < 1 {
			continue
		}
		sd, pv := zero, zero
		for j := 0; j < k; j++ {
			ej := p[j]
			if j == lab {
				ej = interval.AddF(p[j], -1)
			}
			sd = interval.Add(sd, interval.Mul(ej, v[j]))
			pv = interval.Add(pv, interval.Mul(p[j], v[j]))
		}
		dl[i] = sd
		if out.Order < 2 {
			continue
		}
		vr, sa := zero, zero
		for j := 0; j < k; j++ {
			ej := p[j]
			if j == lab {
				ej = interval.AddF(p[j], -1)
			}
			vr = interval.Add(vr, interval.Mul(p[j], interval.Sqr(interval.Sub(v[j], pv))))
			sa = interval.Add(sa, interval.Mul(ej, a[j]))
		}
		vr.Lo = math.Max(vr.Lo, 0)
		d2l[i] = interval.Add(vr, sa)
	}
	return l, dl, d2l
}
