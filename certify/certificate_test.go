package certify

import (
	"context"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// cornerPath is THEORY.md §6's two-leg path: a one-input ReLU network whose
// output runs with velocity e1 for α ∈ [0, 0.7] (length L₁ = 0.7), then with
// velocity (cos β, sin β) for α ∈ [0.7, 1] (L₂ = 0.3), ending at the target
// (computed by the network itself at θT). K = 2, mean reduction.
func cornerPath(t *testing.T, beta float64) *functionspace.Path {
	m, _ := nn.Build(nn.MLPSpec([]int{1, 2, 2}, "relu", "mse"))
	s0 := nn.State{
		"0.weight": {Shape: []int{2, 1}, Data: []float64{0, 0}},
		"0.bias":   {Shape: []int{2}, Data: []float64{1, -0.7}},
		"2.weight": {Shape: []int{2, 2}, Data: []float64{1, math.Cos(beta) - 1, 0, math.Sin(beta)}},
		"2.bias":   {Shape: []int{2}, Data: []float64{0, 0}},
	}
	sT := s0.Clone()
	sT["0.weight"].Data = []float64{1, 1}
	x := mat.NewDense(1, 1, []float64{1})
	y := m.Forward(sT, x)
	p, err := functionspace.New(m, s0, sT, x, nn.Targets{Values: y}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// overshootPath is y = w·x, x = 1, target 0, w from 1 to −0.5:
// L(α) = (1 − 1.5α)², Δ = 0.25 (THEORY.md §6).
func overshootPath(t *testing.T) *functionspace.Path {
	m, s0, sT, x, y := testnets.Overshoot()
	p, err := functionspace.New(m, s0, sT, x, nn.Targets{Values: y}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCertifyKnownAnswers(t *testing.T) {
	cases := []struct {
		name    string
		path    func(*testing.T) *functionspace.Path
		verdict Verdict
		delta   float64
	}{
		{"corner 0.45π", func(t *testing.T) *functionspace.Path { return cornerPath(t, 0.45*math.Pi) }, CertifiedMonotone, 0},
		{"corner 0.55π", func(t *testing.T) *functionspace.Path { return cornerPath(t, 0.55*math.Pi) }, NonMonotone, 0.09 * math.Pow(math.Cos(0.55*math.Pi), 2) / 2},
		{"corner 0.6π", func(t *testing.T) *functionspace.Path { return cornerPath(t, 0.6*math.Pi) }, NonMonotone, 0.09 * math.Pow(math.Cos(0.6*math.Pi), 2) / 2},
		{"overshoot", overshootPath, NonMonotone, 0.25},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.path(t)
			cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: 1e-9, DeltaGap: 1e-7, MaxIntervals: 20000})
			if err != nil {
				t.Fatal(err)
			}
			if cert.Verdict != c.verdict {
				t.Errorf("verdict %s, want %s (Δ ∈ [%g, %g])", cert.Verdict, c.verdict, cert.DeltaLower, cert.DeltaUpper)
			}
			if !(cert.DeltaLower <= c.delta && c.delta <= cert.DeltaUpper) {
				t.Errorf("Δ = %v not in [%v, %v]", c.delta, cert.DeltaLower, cert.DeltaUpper)
			}
			if cert.DeltaUpper-cert.DeltaLower > 1e-6 {
				t.Errorf("bounds [%v, %v] wider than 1e-6", cert.DeltaLower, cert.DeltaUpper)
			}
			if c.verdict == NonMonotone && (cert.Witness == nil || cert.Witness.Rise <= 1e-9 || cert.Witness.Alpha >= cert.Witness.Beta) {
				t.Errorf("witness %+v", cert.Witness)
			}
			t.Logf("%s: Δ ∈ [%.10g, %.10g], %d leaves, %d evaluations", cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves, cert.Evaluations)
		})
	}
}

// TestCertificateIndependentOfWorkers: the certificate and the barrier
// bounds are the same whatever the number of concurrent passes, so a sweep
// point analysed on a 1-CPU SLURM task and on a 2-core pool gives the same
// report (the refinement after the verdict, --delta-tol, once split as many
// leaves per round as there were workers).
func TestCertificateIndependentOfWorkers(t *testing.T) {
	for _, c := range []struct {
		name string
		path func(*testing.T) *functionspace.Path
	}{
		{"overshoot", overshootPath},
		{"corner 0.6π", func(t *testing.T) *functionspace.Path { return cornerPath(t, 0.6*math.Pi) }},
	} {
		var first *Certificate
		var firstB *BarrierCertificate
		for _, w := range []int{1, 2, 3, 8} {
			cert, err := Certify(context.Background(), c.path(t), CertifyOptions{Workers: w, DeltaTol: 1e-6})
			if err != nil {
				t.Fatal(err)
			}
			b, err := CertifyBarrier(context.Background(), c.path(t), BarrierOptions{Workers: w})
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first, firstB = cert, b
				continue
			}
			if cert.Leaves != first.Leaves || cert.DeltaLower != first.DeltaLower || cert.DeltaUpper != first.DeltaUpper || cert.Verdict != first.Verdict {
				t.Errorf("%s: %d workers: %d leaves, Δ ∈ [%v, %v] %s; 1 worker: %d leaves, [%v, %v] %s", c.name, w,
					cert.Leaves, cert.DeltaLower, cert.DeltaUpper, cert.Verdict, first.Leaves, first.DeltaLower, first.DeltaUpper, first.Verdict)
			}
			if b.Lower != firstB.Lower || b.Upper != firstB.Upper {
				t.Errorf("%s: %d workers: barrier [%v, %v]; 1 worker: [%v, %v]", c.name, w, b.Lower, b.Upper, firstB.Lower, firstB.Upper)
			}
		}
	}
}
