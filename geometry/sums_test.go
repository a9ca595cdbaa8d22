package geometry

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TurningRateFromSums and StackedSums agree with TurningRate on the
// concatenated (stacked) velocity and acceleration of N examples.
func TestStackedAgreesWithConcatenation(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 50; trial++ {
		N, K := 1+rng.IntN(20), 1+rng.IntN(10)
		scale := math.Pow(10, 6*rng.Float64()-3)
		V, A := make([]float64, 0, N*K), make([]float64, 0, N*K)
		var s, s1, s2 StackedSums
		var vv, va, aa float64
		for i := 0; i < N; i++ {
			v, a := make([]float64, K), make([]float64, K)
			for k := range v {
				v[k] = scale * rng.NormFloat64()
				a[k] = rng.NormFloat64()
				vv += v[k] * v[k]
				va += v[k] * a[k]
				aa += a[k] * a[k]
			}
			s.Add(v, a)
			if i%2 == 0 {
				s1.Add(v, a)
			} else {
				s2.Add(v, a)
			}
			V, A = append(V, v...), append(A, a...)
		}
		s1.Merge(&s2)
		want, err := TurningRate(V, A)
		if err != nil {
			t.Fatal(err)
		}
		got, err := TurningRateFromSums(vv, va, aa)
		if err != nil || math.Abs(got-want) > 1e-10*want {
			t.Errorf("N=%d K=%d: FromSums %v, concatenated %v (%v)", N, K, got, want, err)
		}
		for _, acc := range []*StackedSums{&s, &s1} {
			got, err := acc.TurningRate()
			if err != nil || math.Abs(got-want) > 1e-13*want {
				t.Errorf("N=%d K=%d: StackedSums %v, concatenated %v (%v)", N, K, got, want, err)
			}
			kw, _ := Curvature(V, A)
			if k, _ := acc.Curvature(); math.Abs(k-kw) > 1e-13*kw {
				t.Errorf("curvature %v, want %v", k, kw)
			}
			if math.Abs(acc.Speed()-Speed(V)) > 1e-14*Speed(V) {
				t.Errorf("speed %v, want %v", acc.Speed(), Speed(V))
			}
		}
	}
}

// A nearly straight stacked path with an exact answer: v_i = s_i(3, 4),
// a_i = 2v_i + η s_i(4, −3), so A⊥ = ηW with ‖W‖ = ‖V‖ and ‖T′‖ = η exactly.
// All inputs are exact in float64; ‖A‖² is not, and the plain-sum formula
// cancels.
func TestNearlyStraightStacked(t *testing.T) {
	eta := 0x1p-30
	var s StackedSums
	var V, A []float64
	var vv, va, aa float64
	for i := 1; i <= 7; i++ {
		si := float64(i)
		v := []float64{3 * si, 4 * si}
		a := []float64{6*si + eta*4*si, 8*si - eta*3*si}
		s.Add(v, a)
		V, A = append(V, v...), append(A, a...)
		for k := range v {
			vv += v[k] * v[k]
			va += v[k] * a[k]
			aa += a[k] * a[k]
		}
	}
	if got, err := s.TurningRate(); err != nil || math.Abs(got-eta) > 1e-14*eta {
		t.Errorf("StackedSums: %v, want %v (%v)", got, eta, err)
	}
	// TurningRate is backward stable: absolute error a few ulps of ‖A‖/‖V‖ = 2.
	if got, _ := TurningRate(V, A); math.Abs(got-eta) > 8*0x1p-52*2 {
		t.Errorf("TurningRate: %v, want %v", got, eta)
	}
	// Plain sums: within the documented floor sqrt(2δ)·sqrt(aa/vv),
	// δ ≈ n·2⁻⁵³, and never NaN or negative.
	got, err := TurningRateFromSums(vv, va, aa)
	floor := math.Sqrt(2*float64(len(V))*0x1p-53) * math.Sqrt(aa/vv)
	if err != nil || got < 0 || math.Abs(got-eta) > floor {
		t.Errorf("FromSums: %v, want %v ± %v (%v)", got, eta, floor, err)
	}
	// Exactly parallel: 0, not NaN, whatever the rounding of the sums.
	for _, c := range []float64{0.1, 1.0 / 3, 7, 1e-7} {
		v := []float64{0.3, 0.7, 1.1}
		a := []float64{c * 0.3, c * 0.7, c * 1.1}
		r, err := TurningRateFromSums(0.3*0.3+0.7*0.7+1.1*1.1, c*(0.3*0.3+0.7*0.7+1.1*1.1), c*c*(0.3*0.3+0.7*0.7+1.1*1.1))
		r2, _ := TurningRate(v, a)
		if err != nil || math.IsNaN(r) || r > 1e-7*c || r2 > 1e-15*c {
			t.Errorf("parallel c=%v: %v %v %v", c, r, r2, err)
		}
	}
	// Scale: sums near overflow and underflow.
	for _, sc := range []float64{1e150, 1e-150} {
		r, err := TurningRateFromSums(sc*sc, 0, 4*sc*sc)
		if err != nil || math.Abs(r-2) > 1e-15 {
			t.Errorf("scale %g: %v %v", sc, r, err)
		}
	}
}
