package nn

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// Activation is an elementwise layer: relu, leaky_relu (Slope), tanh,
// sigmoid, gelu (exact, or TanhApprox), softplus (Beta, Threshold), identity
// and flatten (identity on flat batches), with PyTorch's definitions.
type Activation struct {
	Kind       string
	Width      int
	Slope      float64
	Beta       float64
	Threshold  float64
	TanhApprox bool
}

// Type returns the model.json type name.
func (a *Activation) Type() string { return a.Kind }

// InSize returns Width.
func (a *Activation) InSize() int { return a.Width }

// OutSize returns Width.
func (a *Activation) OutSize() int { return a.Width }

// Params returns nil: activations have no parameters.
func (a *Activation) Params() []Param { return nil }

// Kinked reports whether the activation is piecewise linear with a kink at 0
// (relu, leaky_relu), where γ′ jumps and one-sided derivatives are used.
func (a *Activation) Kinked() bool { return a.Kind == "relu" || a.Kind == "leaky_relu" }

const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)

// Eval returns σ(z), σ′(z) and σ″(z). At a kink (z = 0 for relu and
// leaky_relu) σ′ is the right derivative unless left is set.
func (a *Activation) Eval(z float64, left bool) (s, d1, d2 float64) {
	switch a.Kind {
	case "relu", "leaky_relu":
		neg := a.Slope
		if a.Kind == "relu" {
			neg = 0
		}
		if z > 0 || (z == 0 && !left) {
			return z, 1, 0
		}
		return neg * z, neg, 0
	case "tanh":
		t := math.Tanh(z)
		return t, 1 - t*t, -2 * t * (1 - t*t)
	case "sigmoid":
		s := sigmoid(z)
		return s, s * (1 - s), s * (1 - s) * (1 - 2*s)
	case "gelu":
		if a.TanhApprox {
			const c = 0.7978845608028654 // √(2/π)
			const k = 0.044715
			u := c * (z + k*z*z*z)
			du := c * (1 + 3*k*z*z)
			ddu := c * 6 * k * z
			t := math.Tanh(u)
			sech2 := 1 - t*t
			s = 0.5 * z * (1 + t)
			d1 = 0.5*(1+t) + 0.5*z*sech2*du
			d2 = sech2*du + 0.5*z*(-2*t*sech2*du*du+sech2*ddu)
			return s, d1, d2
		}
		phi := invSqrt2Pi * math.Exp(-0.5*z*z)
		cdf := 0.5 * math.Erfc(-z/math.Sqrt2)
		return z * cdf, cdf + z*phi, phi * (2 - z*z)
	case "softplus":
		bz := a.Beta * z
		if bz > a.Threshold {
			return z, 1, 0
		}
		s := sigmoid(bz)
		return softplus(bz) / a.Beta, s, a.Beta * s * (1 - s)
	}
	return z, 1, 0 // identity, flatten
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// softplus returns log(1 + eˣ) without overflow.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

func (a *Activation) identity() bool { return a.Kind == "identity" || a.Kind == "flatten" }

// Forward applies σ elementwise to x [N, Width].
func (a *Activation) Forward(_ []*Tensor, x *mat.Dense) *mat.Dense {
	if a.identity() {
		return x
	}
	r, c := x.Dims()
	y := mat.NewDense(r, c, nil)
	xr, yr := x.RawMatrix(), y.RawMatrix()
	for i := 0; i < r; i++ {
		src := xr.Data[i*xr.Stride : i*xr.Stride+c]
		dst := yr.Data[i*yr.Stride : i*yr.Stride+c]
		switch a.Kind {
		case "relu":
			for j, z := range src {
				dst[j] = math.Max(z, 0)
			}
		case "tanh":
			for j, z := range src {
				dst[j] = math.Tanh(z)
			}
		default:
			for j, z := range src {
				dst[j], _, _ = a.Eval(z, false)
			}
		}
	}
	return y
}

// Backward returns dy ⊙ σ′(x). At a kink PyTorch's convention is used
// (relu′(0) = 0, leaky_relu′(0) = slope).
func (a *Activation) Backward(_ []*Tensor, x, _, dy *mat.Dense, _ []*Tensor) *mat.Dense {
	if a.identity() {
		return dy
	}
	r, c := x.Dims()
	dx := mat.NewDense(r, c, nil)
	xr, dyr, dxr := x.RawMatrix(), dy.RawMatrix(), dx.RawMatrix()
	for i := 0; i < r; i++ {
		xs := xr.Data[i*xr.Stride : i*xr.Stride+c]
		gs := dyr.Data[i*dyr.Stride : i*dyr.Stride+c]
		ds := dxr.Data[i*dxr.Stride : i*dxr.Stride+c]
		for j, z := range xs {
			_, d1, _ := a.Eval(z, true)
			ds[j] = gs[j] * d1
		}
	}
	return dx
}

// Jet applies ṡ = σ′(z) ż and s̈ = σ″(z) ż² + σ′(z) z̈ (THEORY.md §2). At a
// ReLU kink (z = 0) the side the path enters for increasing α decides σ′: the
// sign of ż, or of z̈ when ż = 0.
func (a *Activation) Jet(_, _ []*Tensor, in *Jet) *Jet {
	if a.identity() {
		return in
	}
	n := in.N
	if in.Const {
		return &Jet{N: n, M: a.Forward(nil, in.M), Const: true, WS: in.WS}
	}
	c := a.Width
	out := newJet(in, n, c) // every element is written below
	ir, or := in.M.RawMatrix(), out.M.RawMatrix()
	for i := 0; i < n; i++ {
		z := ir.Data[i*ir.Stride : i*ir.Stride+c]
		zd := ir.Data[(n+i)*ir.Stride : (n+i)*ir.Stride+c]
		zdd := ir.Data[(2*n+i)*ir.Stride : (2*n+i)*ir.Stride+c]
		s := or.Data[i*or.Stride : i*or.Stride+c]
		sd := or.Data[(n+i)*or.Stride : (n+i)*or.Stride+c]
		sdd := or.Data[(2*n+i)*or.Stride : (2*n+i)*or.Stride+c]
		switch a.Kind {
		case "relu":
			reluJet(z, zd, zdd, s, sd, sdd)
		case "leaky_relu":
			for j, zj := range z {
				k := a.Slope
				if zj > 0 || (zj == 0 && (zd[j] > 0 || (zd[j] == 0 && zdd[j] >= 0))) {
					k = 1
				}
				s[j], sd[j], sdd[j] = k*zj, k*zd[j], k*zdd[j]
			}
		case "tanh":
			for j, zj := range z {
				t := math.Tanh(zj)
				d1 := 1 - t*t
				s[j], sd[j], sdd[j] = t, d1*zd[j], -2*t*d1*zd[j]*zd[j]+d1*zdd[j]
			}
		default:
			for j, zj := range z {
				v, d1, d2 := a.Eval(zj, false)
				s[j], sd[j], sdd[j] = v, d1*zd[j], d2*zd[j]*zd[j]+d1*zdd[j]
			}
		}
	}
	return out
}

// reluJet is the ReLU rule of Jet for one row: s, ṡ, s̈ = z, ż, z̈ where
// z > 0 (or z = 0 entered upwards: ż > 0, or ż = 0 and z̈ ≥ 0), else +0.
// Away from z = ±0 and NaN it selects with a sign mask instead of a branch:
// the sign of z is random across units, so a branch mispredicts about
// half the time (BenchmarkReLUJet). The results are bit for bit those of
// the branching rule.
func reluJet(z, zd, zdd, s, sd, sdd []float64) {
	zd, zdd, s, sd, sdd = zd[:len(z)], zdd[:len(z)], s[:len(z)], sd[:len(z)], sdd[:len(z)]
	for j, zj := range z {
		bits := math.Float64bits(zj)
		if a := bits << 1; a == 0 || a > 0xFFE0000000000000 { // ±0 or NaN: rare
			if zj == 0 && (zd[j] > 0 || (zd[j] == 0 && zdd[j] >= 0)) {
				s[j], sd[j], sdd[j] = zj, zd[j], zdd[j]
			} else {
				s[j], sd[j], sdd[j] = 0, 0, 0
			}
			continue
		}
		mask := uint64(int64(^bits) >> 63) // all ones for z > 0, zero for z < 0
		s[j] = math.Float64frombits(bits & mask)
		sd[j] = math.Float64frombits(math.Float64bits(zd[j]) & mask)
		sdd[j] = math.Float64frombits(math.Float64bits(zdd[j]) & mask)
	}
}
