package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

var propActs = []string{"relu", "leaky_relu", "tanh", "sigmoid", "gelu", "gelu_tanh", "softplus", "identity"}

// randomCertPath draws a small MLP with one activation type (and a flatten
// layer in front), random θ0, θT, inputs and targets.
func randomCertPath(t *rapid.T) *functionspace.Path {
	act := rapid.SampledFrom(propActs).Draw(t, "act")
	loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
	in := rapid.IntRange(1, 3).Draw(t, "in")
	hid := rapid.IntRange(1, 5).Draw(t, "hidden")
	k := rapid.IntRange(2, 3).Draw(t, "k")
	a := act
	if act == "gelu_tanh" {
		a = "gelu"
	}
	spec := nn.MLPSpec([]int{in, hid, hid, k}, a, loss)
	for i := range spec.Layers {
		if act == "gelu_tanh" && spec.Layers[i].Type == "gelu" {
			spec.Layers[i].Approximate = "tanh"
		}
	}
	spec.Layers = append([]nn.LayerSpec{{Type: "flatten"}}, spec.Layers...)
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	scale := rapid.Float64Range(0.5, 3).Draw(t, "scale")
	s0, _ := nn.Init(m, "pytorch", scale, seed)
	sT, _ := nn.Init(m, "pytorch", scale, seed+1)
	n := rapid.IntRange(1, 6).Draw(t, "n")
	rng := rand.New(rand.NewPCG(seed, 3))
	x, tg := testnets.RandomData(rng, n, in, k, loss, 2)
	p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: rapid.IntRange(1, 4).Draw(t, "chunk")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEnclosureContainsDerivative: the enclosure of L′ on a random [a, b]
// contains L′ computed in float64 by functionspace at random points inside,
// the enclosure of L at the midpoint contains L, and the integral bound is
// at least L(b) − L(a). Slack 1e-10 relative covers functionspace's own
// float64 rounding (not the enclosure's).
func TestEnclosureContainsDerivative(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := randomCertPath(t)
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		a := rapid.Float64Range(-0.2, 1.2).Draw(t, "a")
		w := rapid.SampledFrom([]float64{1e-6, 1e-3, 0.05, 0.4}).Draw(t, "width")
		b := a + w
		if rapid.Bool().Draw(t, "end at 1") {
			a, b = 1-w, 1
			e.point(1, true)
		}
		l := &Leaf{A: a, B: b}
		if err := e.evalLeaves(context.Background(), []*Leaf{l}, 2); err != nil {
			t.Fatal(err)
		}
		slack := func(v float64) float64 { return 1e-10 * (1 + math.Abs(v)) }
		for q := 0; q < 5; q++ {
			al := a + (b-a)*rapid.Float64Range(0, 1).Draw(t, "u")
			d := p.At(al).DLoss
			if d < l.DL.Lo-slack(d) || d > l.DL.Hi+slack(d) {
				t.Fatalf("L′(%v) = %v outside [%v, %v] on [%v, %v]", al, d, l.DL.Lo, l.DL.Hi, a, b)
			}
		}
		c := 0.5*a + 0.5*b
		if v := p.At(c).Loss; v < l.LC.Lo-slack(v) || v > l.LC.Hi+slack(v) {
			t.Fatalf("L(%v) = %v outside [%v, %v]", c, v, l.LC.Lo, l.LC.Hi)
		}
		rise := p.At(b).Loss - p.At(a).Loss
		if rise > l.Integral+slack(rise)+1e-12 {
			t.Fatalf("L(b) − L(a) = %v above the integral bound %v on [%v, %v]", rise, l.Integral, a, b)
		}
	})
}

// TestNeverCertifiesARise: on random networks, whenever a dense grid of 400
// α shows a rise above the tolerance (beyond float64 rounding), the
// certificate is not certified_monotone and its upper bound covers the rise.
func TestNeverCertifiesARise(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { neverCertifiesARise(t, randomCertPath(t)) })
}

// neverCertifiesARise checks the certificate on p at a drawn tolerance
// against a dense grid of 400 α: not certified_monotone where the grid
// rises above the tolerance (beyond float64 rounding), an upper bound
// covering the grid's Δ, a non_monotone verdict only with a rigorous
// witness, and bounds that do not cross (TestNeverCertifiesARise and its
// conv and residual variants).
func neverCertifiesARise(t *rapid.T, p *functionspace.Path) {
	tol := rapid.SampledFrom([]float64{0, 1e-6, 1e-3, 1e-2}).Draw(t, "tol")
	cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: tol, MaxIntervals: 256, InitialIntervals: 8, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	denseSound(t, p, cert, tol)
	if cert.DeltaLower > cert.DeltaUpper {
		t.Fatalf("bounds cross: [%v, %v]", cert.DeltaLower, cert.DeltaUpper)
	}
}

// denseSound checks cert, made at tolerance tol, against L evaluated at 400
// equally spaced α (the dense oracle of the soundness tests): never
// certified_monotone when the dense Δ exceeds tol by more than rounding,
// the upper bound never below the dense Δ, and non_monotone only with a
// rigorous witness above tol. It returns the rounding allowance used,
// 2·RoundingError(L(0), N).
func denseSound(t *rapid.T, p *functionspace.Path, cert *Certificate, tol float64) (re float64) {
	loss := make([]float64, 400)
	for j := range loss {
		loss[j] = p.At(float64(j) / 399).Loss
	}
	d := Delta(loss)
	re = 2 * RoundingError(loss[0], p.N)
	if d > tol+re && cert.Verdict == CertifiedMonotone {
		t.Fatalf("certified with grid Δ = %v > tolerance %v (bounds [%v, %v])", d, tol, cert.DeltaLower, cert.DeltaUpper)
	}
	if cert.DeltaUpper < d-re {
		t.Fatalf("upper bound %v below grid Δ %v", cert.DeltaUpper, d)
	}
	if cert.Verdict == NonMonotone && (cert.DeltaLower <= tol || cert.Witness == nil) {
		t.Fatalf("non_monotone without a rigorous witness: %+v", cert)
	}
	return re
}

// TestLeastSquaresGradientDescent: a linear least-squares model trained by
// gradient descent with η·λ_max ≤ 1 has a convex quadratic L(α) with
// L′(1) ≤ 0, so it is monotone (THEORY.md §6); the certificate proves it.
func TestLeastSquaresGradientDescent(t *testing.T) {
	m, err := nn.Build(nn.MLPSpec([]int{3, 2}, "relu", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 20
	x := mat.NewDense(n, 3, nil)
	y := mat.NewDense(n, 2, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	for i := range y.RawMatrix().Data {
		y.RawMatrix().Data[i] = rng.NormFloat64()
	}
	s0, _ := nn.Init(m, "pytorch", 1, 7)
	s := s0.Clone()
	for step := 0; step < 50; step++ {
		acts := m.ForwardTrace(s, x)
		_, g := nn.Loss("mse", acts[len(acts)-1], nn.Targets{Values: y}, true)
		grads := m.Backward(s, acts, g)
		for k, gk := range grads {
			for j, v := range gk.Data {
				s[k].Data[j] -= 0.05 * v
			}
		}
	}
	p, err := functionspace.New(m, s0, s, x, nn.Targets{Values: y}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: 1e-9})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Verdict != CertifiedMonotone || cert.DeltaLower != 0 || cert.DeltaUpper > 1e-9 {
		t.Errorf("verdict %s, Δ ∈ [%v, %v]", cert.Verdict, cert.DeltaLower, cert.DeltaUpper)
	}
}

// TestUpperRiseIsMaxRunSum: with interior bounds equal to the end bounds,
// upperRise is MaxRunSum (up to its rounding term), THEORY.md §7.
func TestUpperRiseIsMaxRunSum(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := rapid.SliceOfN(rapid.Float64Range(-1, 1), 1, 30).Draw(t, "c")
		want, _, _ := MaxRunSum(c)
		got, _, _ := upperRise(c, c)
		if got < want || got > want+1e-12 {
			t.Fatalf("upperRise %v, MaxRunSum %v", got, want)
		}
	})
}

func TestIntervalOutwardRounding(t *testing.T) {
	x := interval.Add(interval.Point(0.1), interval.Point(0.2))
	if !(x.Lo < 0.30000000000000004 && x.Hi >= 0.30000000000000004) || !x.Contains(0.3) {
		t.Errorf("0.1 + 0.2 ⊆ %v", x)
	}
	if s := interval.Sqr(interval.I{Lo: -2, Hi: 1}); s.Lo != 0 || s.Hi < 4 {
		t.Errorf("[-2,1]² = %v", s)
	}
}
