package nn

import "math"

// Jet32 is Jet in float32: ṡ = σ′(z) ż and s̈ = σ″(z) ż² + σ′(z) z̈
// (THEORY.md §2), with the same kink-side rule at a ReLU kink (z = 0: the
// sign of ż, or of z̈ when ż = 0). relu and leaky_relu are computed in
// float32; the smooth kinds (tanh, sigmoid, gelu, softplus) evaluate σ, σ′,
// σ″ and the two products in float64 from the float32 inputs (Eval) and
// round the results once. identity and flatten return in itself.
func (a *Activation) Jet32(_, _ []*Tensor32, in *Jet32) *Jet32 {
	if a.identity() {
		return in
	}
	n, c := in.N, a.Width
	if in.Const {
		out := &Jet32{N: n, M: newGeneral32(n, c), Const: true, WS: in.WS}
		for i := 0; i < n; i++ {
			src, dst := row32(in.M, i), row32(out.M, i)
			for j, z := range src {
				s, _, _ := a.Eval(float64(z), false)
				dst[j] = float32(s)
			}
		}
		return out
	}
	out := newJet32(in, n, c) // every element is written below
	for i := 0; i < n; i++ {
		z, zd, zdd := row32(in.M, i), row32(in.M, n+i), row32(in.M, 2*n+i)
		s, sd, sdd := row32(out.M, i), row32(out.M, n+i), row32(out.M, 2*n+i)
		switch a.Kind {
		case "relu":
			reluJet32(z, zd, zdd, s, sd, sdd)
		case "leaky_relu":
			slope := float32(a.Slope)
			for j, zj := range z {
				k := slope
				if zj > 0 || (zj == 0 && (zd[j] > 0 || (zd[j] == 0 && zdd[j] >= 0))) {
					k = 1
				}
				s[j], sd[j], sdd[j] = k*zj, k*zd[j], k*zdd[j]
			}
		default:
			for j, zj := range z {
				v, d1, d2 := a.Eval(float64(zj), false)
				u, ud := float64(zd[j]), float64(zdd[j])
				s[j], sd[j], sdd[j] = float32(v), float32(d1*u), float32(d2*u*u+d1*ud)
			}
		}
	}
	return out
}

// reluJet32 is reluJet in float32: the same rule, the same sign mask.
func reluJet32(z, zd, zdd, s, sd, sdd []float32) {
	zd, zdd, s, sd, sdd = zd[:len(z)], zdd[:len(z)], s[:len(z)], sd[:len(z)], sdd[:len(z)]
	for j, zj := range z {
		bits := math.Float32bits(zj)
		if a := bits << 1; a == 0 || a > 0xFF000000 { // ±0 or NaN: rare
			if zj == 0 && (zd[j] > 0 || (zd[j] == 0 && zdd[j] >= 0)) {
				s[j], sd[j], sdd[j] = zj, zd[j], zdd[j]
			} else {
				s[j], sd[j], sdd[j] = 0, 0, 0
			}
			continue
		}
		mask := uint32(int32(^bits) >> 31) // all ones for z > 0, zero for z < 0
		s[j] = math.Float32frombits(bits & mask)
		sd[j] = math.Float32frombits(math.Float32bits(zd[j]) & mask)
		sdd[j] = math.Float32frombits(math.Float32bits(zdd[j]) & mask)
	}
}
