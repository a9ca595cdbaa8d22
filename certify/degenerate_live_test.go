package certify

import (
	"context"
	"math"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// cpuSeconds returns the process's user + system CPU time.
func cpuSeconds(t *testing.T) float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		t.Fatal(err)
	}
	return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e9
}

// TestDegenerateLive (issue 12, "Degenerate paths"): on a real MNIST MLP
// run (CERTIFY_DEGENERATE_RUN=DIR, e.g. the demo's runs/demo: a
// 784-64-10 ReLU MLP, 5000 examples), the line θT := θ0 and a line whose
// loss is exactly flat on a tail are certified_monotone (the tail at
// tolerance 1e-3 and 0), and the CPU time
// of each certificate is logged (the machine may be loaded: CPU, not wall);
// CERTIFY_BLAS (e.g. auto) selects the BLAS as certify's commands do.
//
// The flat tail: θ0 is the run's θT with its output layer negated (an
// anti-trained network, L(0) high); the line moves only the first layer's
// bias, down by 2(max z + 1) per unit (z its pre-activation over the
// examples at θ0), so every hidden unit's pre-activation falls linearly
// and every unit is dead for α ≥ 1/2: the output is then the constant
// output bias and L is exactly constant on [1/2, 1].
func TestDegenerateLive(t *testing.T) {
	run := liveRun(t, "CERTIFY_DEGENERATE_RUN", 0) // a ReLU MLP's run
	certifyTimed := func(name string, p *functionspace.Path, tol float64, budget int) *Certificate {
		c0, w0 := cpuSeconds(t), time.Now()
		cert, err := Certify(context.Background(), p, CertifyOptions{Tolerance: tol, MaxIntervals: budget})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, tolerance %g: %s, Δ ∈ [%g, %g], %d leaves, %d unsettled, CPU %.2f s, wall %.2f s (%d examples)",
			name, tol, cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves, cert.UnsettledCount, cpuSeconds(t)-c0, time.Since(w0).Seconds(), p.N)
		return cert
	}
	t.Run("θT = θ0", func(t *testing.T) {
		p, err := functionspace.New(run.Model, run.ThetaT, run.ThetaT, run.X, run.Targets, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if c := certifyTimed("θT = θ0", p, 0, 0); c.Verdict != CertifiedMonotone || c.Leaves != 0 || c.DeltaUpper != 0 {
			t.Errorf("want certified_monotone, Δ ≤ 0, 0 leaves")
		}
	})
	t.Run("flat tail", func(t *testing.T) {
		s0 := run.ThetaT.Clone()
		last := len(run.Model.Layers) - 1
		w := s0[nn.ParamKey(last, "weight")].Data
		for j := range w {
			w[j] = -w[j]
		}
		first := run.Model.LayerParams(s0, 0)
		d := run.Model.Layers[0].(*nn.Dense)
		z := mat.NewDense(run.X.RawMatrix().Rows, d.Out, nil)
		z.Mul(run.X, mat.NewDense(d.Out, d.In, first[0].Data).T())
		sT := s0.Clone()
		bT := sT[nn.ParamKey(0, "bias")].Data
		for j := range bT {
			mx := math.Inf(-1)
			for i := 0; i < z.RawMatrix().Rows; i++ {
				mx = math.Max(mx, z.At(i, j)+first[1].Data[j])
			}
			bT[j] -= 2 * (math.Max(mx, 0) + 1)
		}
		p, err := functionspace.New(run.Model, s0, sT, run.X, run.Targets, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		l := func(a float64) float64 { return p.At(a).Loss }
		if l(0.5) != l(0.75) || l(0.75) != l(1) || !(l(0) > l(0.25) && l(0.25) > l(0.5)) {
			t.Fatalf("test path: L(0, 1/4, 1/2, 3/4, 1) = %v %v %v %v %v", l(0), l(0.25), l(0.5), l(0.75), l(1))
		}
		t.Run("dead network", func(t *testing.T) {
			// from the tail's dead end to the same network with its
			// first-layer biases one lower: δ ≠ 0, every unit dead on all
			// of [0, 1], L constant; decided before any leaf
			d0, dT := sT.Clone(), sT.Clone()
			for j := range dT[nn.ParamKey(0, "bias")].Data {
				dT[nn.ParamKey(0, "bias")].Data[j]--
			}
			q, err := functionspace.New(run.Model, d0, dT, run.X, run.Targets, functionspace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if c := certifyTimed("dead network", q, 0, 0); c.Verdict != CertifiedMonotone || c.Leaves != 0 || c.DeltaUpper != 0 {
				t.Errorf("want certified_monotone, Δ ≤ 0, 0 leaves")
			}
		})
		// at both the paper's MNIST tolerance and exactly 0: the leaf
		// holding the tail's start is settled by the first ReLU's pattern
		// hull (kinkPatternDL: the dead pattern's ℓ_i′ is exactly 0)
		for _, tol := range []float64{1e-3, 0} {
			if c := certifyTimed("flat tail", p, tol, 0); c.Verdict != CertifiedMonotone || c.DeltaUpper > tol {
				t.Errorf("tolerance %g: want certified_monotone", tol)
			}
		}
	})
}
