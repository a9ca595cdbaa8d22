package certify

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// TestResNetEnclosureWidths prints, for the run directory named by
// CERTIFY_RESNET_RUN, how wide the interval enclosures of L and L′ are over
// α-intervals of decreasing width around α = 0.5, and how long one pass
// takes (CERTIFY_RESNET_EXAMPLES examples, default 256); with
// CERTIFY_RESNET_FULL set it also runs the certificate at tolerance 1e-3
// with progress. A diagnostic for issue 13; skipped when unset.
func TestResNetEnclosureWidths(t *testing.T) {
	p, ip := liveResNetPath(t, 256)
	fmt.Println("loaded; interval path ready")
	centres := []float64{0.5, 0.05, 0.95}
	if os.Getenv("CERTIFY_RESNET_FULL") != "" {
		centres = nil
	}
	for _, c := range centres {
		pt := p.At(c)
		fmt.Printf("c=%g float64 L=%.8g L′=%.6g\n", c, pt.Loss, pt.DLoss)
		for _, w := range []float64{0, 1e-6, 1e-4, 1.0 / 2048, 1.0 / 256, 1.0 / 32} {
			st := time.Now()
			r := ip.Loss(interval.I{Lo: c - w/2, Hi: c + w/2}, 2)
			fmt.Printf("c=%g w=%g L=[%.6g,%.6g] (w %.3g) L′=[%.6g,%.6g] (w %.3g) L″=[%.4g,%.4g] %.2fs\n", c, w, r.L.Lo, r.L.Hi, r.L.Hi-r.L.Lo, r.DL.Lo, r.DL.Hi, r.DL.Hi-r.DL.Lo, r.D2L.Lo, r.D2L.Hi, time.Since(st).Seconds())
		}
	}
	if os.Getenv("CERTIFY_RESNET_FULL") == "" {
		return
	}
	st := time.Now()
	c, err := Certify(context.Background(), p, CertifyOptions{Tolerance: 1e-3, Progress: func(stage string, done, total int) {
		fmt.Printf("[%.0fs] %s %d/%d\n", time.Since(st).Seconds(), stage, done, total)
	}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s Δ∈[%g,%g] leaves %d evals %d smooth %.3f settled %.4f unsettled %d reason %q %.1fs\n", c.Verdict, c.DeltaLower, c.DeltaUpper, c.Leaves, c.Evaluations, c.SmoothFraction, c.SettledFraction, c.UnsettledCount, c.Reason, time.Since(st).Seconds())
}

// TestResNetLayerWidths prints, layer by layer, the mean width of the
// interval enclosure of the activations (V) and velocities (D1) of the
// first CERTIFY_RESNET_EXAMPLES (default 8) examples of the run
// CERTIFY_RESNET_RUN over α ∈ [0.5, 0.5 + 1e-6], divided by the α-width:
// where the wrapping effect grows (issue 13 diagnostic; skipped when unset).
func TestResNetLayerWidths(t *testing.T) {
	run := liveResNetRun(t, 8)
	m := run.Model
	d := nn.Difference(run.Theta0, run.ThetaT)
	w := 1e-6
	for _, c := range []float64{0.5} {
		al := interval.I{Lo: c, Hi: c + w}
		x := run.X.RawMatrix()
		j := nn.NewConstIJet(x.Rows, x.Cols, x.Data, 2)
		for i, l := range m.Layers {
			j = l.(nn.IntervalLayer).IntervalJet(nn.NewParamBox(m.LayerParams(run.Theta0, i), m.LayerParams(d, i), al), j)
			kinks := 0
			for _, k := range j.Kink {
				if k {
					kinks++
				}
			}
			fmt.Printf("layer %d %-20s D=%6d  mean|V| width/w %.3g  D1 width/w %.3g  mean|D1| %.3g  kinked examples %d/%d\n", i, l.Type(), j.D, meanWidth(j.V)/w, meanWidth(j.D1)/w, meanAbs(j.D1), kinks, j.N)
		}
	}
}

func meanWidth(m interval.Matrix) float64 {
	if m.Lo == nil {
		return 0
	}
	s := 0.0
	for k := range m.Lo {
		s += m.Hi[k] - m.Lo[k]
	}
	return s / float64(len(m.Lo))
}

func meanAbs(m interval.Matrix) float64 {
	if m.Lo == nil {
		return 0
	}
	s := 0.0
	for k := range m.Lo {
		s += (m.Hi[k] + m.Lo[k]) / 2
		if (m.Hi[k]+m.Lo[k])/2 < 0 {
			s -= m.Hi[k] + m.Lo[k]
		}
	}
	return s / float64(len(m.Lo))
}

// liveResNetRun reads the run directory named by CERTIFY_RESNET_RUN (the
// test is skipped when it is unset) with CERTIFY_RESNET_EXAMPLES examples
// (default n), after selecting the BLAS backend CERTIFY_BLAS names (printed);
// the diagnostics of this file and resnet_leaf_live_test.go use it.
func liveResNetRun(t *testing.T, n int) *rundir.Run {
	t.Helper()
	dir := os.Getenv("CERTIFY_RESNET_RUN")
	if dir == "" {
		t.Skip("CERTIFY_RESNET_RUN not set")
	}
	b, note, err := blasbackend.Select(os.Getenv("CERTIFY_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	b.Use()
	fmt.Println("BLAS", b, note)
	if s := os.Getenv("CERTIFY_RESNET_EXAMPLES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	run, err := rundir.Read(dir, n)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// liveResNetPath is the output path of liveResNetRun's run (chunks of
// CERTIFY_RESNET_CHUNK examples, default 256: the peak memory of a leaf
// grows with the chunk, ~5.9 GB at 256) and the certificate's interval
// path over it.
func liveResNetPath(t *testing.T, n int) (*functionspace.Path, *IntervalPath) {
	t.Helper()
	run := liveResNetRun(t, n)
	chunk := 256
	if s := os.Getenv("CERTIFY_RESNET_CHUNK"); s != "" {
		chunk, _ = strconv.Atoi(s)
	}
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{Chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := NewIntervalPath(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, ip
}
