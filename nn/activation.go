package nn

import (
	"fmt"
	"math"
	"unsafe"

	"gonum.org/v1/gonum/mat"
)

func init() {
	plain := func(ls LayerSpec, width int) (Layer, error) {
		return &Activation{Kind: ActivationKind(ls.Type), Width: width}, nil
	}
	for _, name := range []string{"relu", "tanh", "sigmoid"} {
		registerLayer(name, nil, plain)
	}
	registerLayer("leaky_relu", []string{"slope"}, func(ls LayerSpec, width int) (Layer, error) {
		a := &Activation{Kind: ActivationKind(ls.Type), Width: width, Slope: 0.01}
		if ls.Slope != nil {
			a.Slope = *ls.Slope
		}
		return a, nil
	})
	registerLayer("gelu", []string{"approximate"}, func(ls LayerSpec, width int) (Layer, error) {
		a := &Activation{Kind: ActivationKind(ls.Type), Width: width}
		switch ls.Approximate {
		case "", "none":
		case "tanh":
			a.TanhApprox = true
		default:
			return nil, fmt.Errorf("gelu: approximate: want \"none\" or \"tanh\", found %q", ls.Approximate)
		}
		return a, nil
	})
	registerLayer("softplus", []string{"beta", "threshold"}, func(ls LayerSpec, width int) (Layer, error) {
		a := &Activation{Kind: ActivationKind(ls.Type), Width: width, Beta: 1, Threshold: 20}
		if ls.Beta != nil {
			a.Beta = *ls.Beta
		}
		if ls.Threshold != nil {
			a.Threshold = *ls.Threshold
		}
		if a.Beta <= 0 {
			return nil, fmt.Errorf("softplus: beta must be positive, found %v", a.Beta)
		}
		return a, nil
	})
	registerLayer("identity", nil, plain)
	registerLayer("flatten", nil, plain)
}

// Activation is an elementwise layer: relu, leaky_relu (Slope), tanh,
// sigmoid, gelu (exact, or TanhApprox), softplus (Beta, Threshold), identity
// and flatten (identity on flat batches), with PyTorch's definitions.
type Activation struct {
	Kind       ActivationKind
	Width      int
	Slope      float64
	Beta       float64
	Threshold  float64
	TanhApprox bool
}

// Type returns the model.json type name.
func (a *Activation) Type() string { return a.Kind.String() }

// InSize returns Width.
func (a *Activation) InSize() int { return a.Width }

// OutSize returns Width.
func (a *Activation) OutSize() int { return a.Width }

// Params returns nil: activations have no parameters.
func (a *Activation) Params() []Param { return nil }

// Kinked reports whether the activation is piecewise linear with a kink at 0
// (relu, leaky_relu), where γ′ jumps and one-sided derivatives are used.
func (a *Activation) Kinked() bool { return a.Kind == ReLU || a.Kind == LeakyReLU }

const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)

// Eval returns σ(z), σ′(z) and σ″(z). At a kink (z = 0 for relu and
// leaky_relu) σ′ is the right derivative unless left is set.
func (a *Activation) Eval(z float64, left bool) (s, d1, d2 float64) {
	switch a.Kind {
	case ReLU, LeakyReLU:
		neg := a.Slope
		if a.Kind == ReLU {
			neg = 0
		}
		if z > 0 || (z == 0 && !left) {
			return z, 1, 0
		}
		return neg * z, neg, 0
	case Tanh:
		t := math.Tanh(z)
		return t, 1 - t*t, -2 * t * (1 - t*t)
	case Sigmoid:
		s := sigmoid(z)
		return s, s * (1 - s), s * (1 - s) * (1 - 2*s)
	case GELU:
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
	case Softplus:
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

func (a *Activation) identity() bool { return a.Kind == IdentityKind || a.Kind == Flatten }

// Forward applies σ elementwise to x [N, Width] (actValues).
func (a *Activation) Forward(_ []*Tensor, x *mat.Dense) *mat.Dense {
	if a.identity() {
		return x
	}
	r, c := x.Dims()
	y := mat.NewDense(r, c, nil)
	xr, yr := g64(x.RawMatrix()), g64(y.RawMatrix())
	for i := 0; i < r; i++ {
		actValues(a, xr.row(i), yr.row(i))
	}
	return y
}

// actValues writes dst = σ(src) in T: relu is max(z, 0) (+0 at z = ±0);
// every other kind evaluates σ in float64 (Eval) and rounds once.
func actValues[T elem](a *Activation, src, dst []T) {
	switch a.Kind {
	case ReLU:
		for j, z := range src {
			dst[j] = max(z, 0)
		}
	case Tanh:
		for j, z := range src {
			dst[j] = T(math.Tanh(float64(z)))
		}
	default:
		for j, z := range src {
			s, _, _ := a.Eval(float64(z), false)
			dst[j] = T(s)
		}
	}
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
// sign of ż, or of z̈ when ż = 0 (activationJet).
func (a *Activation) Jet(_, _ []*Tensor, in *Jet) *Jet {
	if a.identity() {
		return in
	}
	return jet64(activationJet(a, view64(in)))
}

// Jet32 is Jet in float32, the same rule (activationJet): relu and
// leaky_relu are computed in float32; the smooth kinds (tanh, sigmoid,
// gelu, softplus) evaluate σ, σ′, σ″ and the two products in float64 from
// the float32 inputs (Eval) and round the results once. identity and
// flatten return in itself.
func (a *Activation) Jet32(_, _ []*Tensor32, in *Jet32) *Jet32 {
	if a.identity() {
		return in
	}
	return jet32(activationJet(a, view32(in)))
}

// activationJet is Jet and Jet32, written once over the element type. A
// Const input gives the Const jet of the values (actValues, a new matrix).
// relu uses reluJet; leaky_relu multiplies by the slope rounded to T; the
// smooth kinds evaluate σ, σ′, σ″ in float64 (Eval; tanh inlined, the same
// operations) and round s, ṡ, s̈ once.
func activationJet[T elem](a *Activation, in jetOf[T]) jetOf[T] {
	n, c := in.N, a.Width
	if in.Const {
		out := jetOf[T]{N: n, M: general[T]{Rows: n, Cols: c, Stride: c, Data: make([]T, n*c)}, Const: true, WS: in.WS}
		for i := 0; i < n; i++ {
			actValues(a, in.M.row(i), out.M.row(i))
		}
		return out
	}
	out := newJetOf(in, n, c) // every element is written below
	for i := 0; i < n; i++ {
		z, zd, zdd := in.M.row(i), in.M.row(n+i), in.M.row(2*n+i)
		s, sd, sdd := out.M.row(i), out.M.row(n+i), out.M.row(2*n+i)
		switch a.Kind {
		case ReLU:
			reluJet(z, zd, zdd, s, sd, sdd)
		case LeakyReLU:
			slope := T(a.Slope)
			for j, zj := range z {
				k := slope
				if zj > 0 || (zj == 0 && (zd[j] > 0 || (zd[j] == 0 && zdd[j] >= 0))) {
					k = 1
				}
				s[j], sd[j], sdd[j] = k*zj, k*zd[j], k*zdd[j]
			}
		case Tanh:
			for j, zj := range z {
				t := math.Tanh(float64(zj))
				d1 := 1 - t*t
				u, ud := float64(zd[j]), float64(zdd[j])
				s[j], sd[j], sdd[j] = T(t), T(d1*u), T(-2*t*d1*u*u+d1*ud)
			}
		default:
			for j, zj := range z {
				v, d1, d2 := a.Eval(float64(zj), false)
				u, ud := float64(zd[j]), float64(zdd[j])
				s[j], sd[j], sdd[j] = T(v), T(d1*u), T(d2*u*u+d1*ud)
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
// the branching rule, in either precision (reluMask on the bits of T).
func reluJet[T elem](z, zd, zdd, s, sd, sdd []T) {
	switch any(z).(type) {
	case []float64:
		reluMask[T, uint64](z, zd, zdd, s, sd, sdd)
	case []float32:
		reluMask[T, uint32](z, zd, zdd, s, sd, sdd)
	}
}

// reluMask is reluJet with U the unsigned integer of T's size: the bits of
// z are read as a U; a value whose doubled bits are 0 (±0) or exceed those
// of +Inf doubled (NaN) takes the branching rule, every other one is
// masked with all ones (sign bit clear, z > 0) or zero (z < 0).
func reluMask[T elem, U uint32 | uint64](z, zd, zdd, s, sd, sdd []T) {
	zd, zdd, s, sd, sdd = zd[:len(z)], zdd[:len(z)], s[:len(z)], sd[:len(z)], sdd[:len(z)]
	bz, bzd, bzdd, bs, bsd, bsdd := bitsOf[T, U](z), bitsOf[T, U](zd), bitsOf[T, U](zdd), bitsOf[T, U](s), bitsOf[T, U](sd), bitsOf[T, U](sdd)
	inf := []T{T(math.Inf(1))}
	infBits := bitsOf[T, U](inf)[0] << 1
	shift := 8*unsafe.Sizeof(U(0)) - 1
	for j, bits := range bz {
		if a := bits << 1; a == 0 || a > infBits { // ±0 or NaN: rare
			if zj := z[j]; zj == 0 && (zd[j] > 0 || (zd[j] == 0 && zdd[j] >= 0)) {
				s[j], sd[j], sdd[j] = zj, zd[j], zdd[j]
			} else {
				s[j], sd[j], sdd[j] = 0, 0, 0
			}
			continue
		}
		mask := -(^bits >> shift) // all ones for z > 0, zero for z < 0
		bs[j], bsd[j], bsdd[j] = bits&mask, bzd[j]&mask, bzdd[j]&mask
	}
}

// bitsOf returns the elements of x as their bit patterns (the same memory).
func bitsOf[T elem, U uint32 | uint64](x []T) []U {
	return unsafe.Slice((*U)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}
