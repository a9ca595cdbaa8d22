package certify

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certify-mli/certify/functionspace"
)

// TestResNetLeafWidths prints the certificate's leaf enclosures of L′
// (evalLeaves: the centred per-layer forms and the mean-value form) over
// leaves of decreasing width around α = 0.5 and 0.05 (CERTIFY_RESNET_WIDTHS,
// CERTIFY_RESNET_CENTRES: comma-separated lists) for the run named by
// CERTIFY_RESNET_RUN (CERTIFY_RESNET_EXAMPLES examples, default 32); an
// issue 13 diagnostic, skipped when unset.
func TestResNetLeafWidths(t *testing.T) {
	run := liveResNetRun(t, 32)
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{Chunk: 256})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := NewIntervalPath(p)
	if err != nil {
		t.Fatal(err)
	}
	centres := floatsEnv("CERTIFY_RESNET_CENTRES", []float64{0.5, 0.05})
	widths := floatsEnv("CERTIFY_RESNET_WIDTHS", []float64{1e-6, 1e-4, 1.0 / 2048, 1.0 / 256, 1.0 / 32})
	for _, c := range centres {
		for _, w := range widths {
			st := time.Now()
			l := &Leaf{A: c - w/2, B: c + w/2}
			if err := ip.evalLeaves(context.Background(), []*Leaf{l}, 1); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("c=%g w=%g L′=[%.6g,%.6g] (w %.3g) L′(c)=[%.6g,%.6g] smooth %d/%d %.1fs\n", c, w, l.DL.Lo, l.DL.Hi, l.DL.Hi-l.DL.Lo, l.DLC.Lo, l.DLC.Hi, l.Smooth, p.N, time.Since(st).Seconds())
		}
	}
}

// floatsEnv reads a comma-separated list of floats from the environment
// variable name (def when unset or unreadable).
func floatsEnv(name string, def []float64) []float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []float64
	for _, f := range strings.Split(v, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return def
		}
		out = append(out, x)
	}
	return out
}

// TestResNetLossGrid prints L(α) and L′(α) (functionspace, float64) at the
// α of CERTIFY_RESNET_ALPHAS (default 0, 0.05, …, 1, in a coarse-to-fine
// order) for the run named by CERTIFY_RESNET_RUN on CERTIFY_RESNET_EXAMPLES
// examples (default 32), and the largest rise between the printed points:
// whether the line's loss rises (non_monotone needs only a witness) or
// falls; an issue 13 diagnostic, skipped when unset.
func TestResNetLossGrid(t *testing.T) {
	run := liveResNetRun(t, 32)
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{Chunk: 256})
	if err != nil {
		t.Fatal(err)
	}
	alphas := floatsEnv("CERTIFY_RESNET_ALPHAS", []float64{0, 1, 0.5, 0.25, 0.75, 0.125, 0.375, 0.625, 0.875, 0.05, 0.95, 0.9, 0.975, 0.99})
	type pt struct{ a, l float64 }
	var pts []pt
	for _, a := range alphas {
		st := time.Now()
		s := p.At(a)
		pts = append(pts, pt{a, s.Loss})
		rise := 0.0
		for _, x := range pts {
			for _, y := range pts {
				if x.a < y.a && y.l-x.l > rise {
					rise = y.l - x.l
				}
			}
		}
		fmt.Printf("α=%g L=%.10g L′=%.6g (largest rise so far %.3g) %.1fs\n", a, s.Loss, s.DLoss, rise, time.Since(st).Seconds())
	}
}
