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
	"github.com/certify-mli/certify/rundir"
)

// TestResNetLeafWidths prints the certificate's leaf enclosures of L′
// (evalLeaves: the centred per-layer forms and the mean-value form) over
// leaves of decreasing width around α = 0.5 and 0.05 for the run named by
// CERTIFY_RESNET_RUN (CERTIFY_RESNET_EXAMPLES examples, default 32); an
// issue 13 diagnostic, skipped when unset.
func TestResNetLeafWidths(t *testing.T) {
	dir := os.Getenv("CERTIFY_RESNET_RUN")
	if dir == "" {
		t.Skip("CERTIFY_RESNET_RUN not set")
	}
	b, _, err := blasbackend.Select(os.Getenv("CERTIFY_BLAS"))
	if err != nil {
		t.Fatal(err)
	}
	b.Use()
	n := 32
	if s := os.Getenv("CERTIFY_RESNET_EXAMPLES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	run, err := rundir.Read(dir, n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{Chunk: 256})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := NewIntervalPath(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []float64{0.5, 0.05} {
		for _, w := range []float64{1e-6, 1e-4, 1.0 / 2048, 1.0 / 256, 1.0 / 32} {
			st := time.Now()
			l := &Leaf{A: c - w/2, B: c + w/2}
			if err := ip.evalLeaves(context.Background(), []*Leaf{l}, 1); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("c=%g w=%g L′=[%.6g,%.6g] (w %.3g) L′(c)=[%.6g,%.6g] smooth %d/%d %.1fs\n", c, w, l.DL.Lo, l.DL.Hi, l.DL.Hi-l.DL.Lo, l.DLC.Lo, l.DLC.Hi, l.Smooth, n, time.Since(st).Seconds())
		}
	}
}
