package certify_test

import (
	"context"
	"fmt"
	"log"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/rundir"
)

// Analyse a run directory from Go: read it (RUN_FORMAT.md), lay the line
// θ0 → θT through its evaluation examples, and analyse L(α) on a grid of
// 11 points. The run is a PyTorch fixture (testdata/torchref), whose L(0)
// and L(1) are PyTorch's (expected.json: 1.21479…, 2.01340…); its loss
// rises along the line, so the grid verdict is non_monotone with a witness.
func ExampleAnalyze() {
	run, err := rundir.Read("../testdata/torchref/mlp-tanh-gelutanh-leaky", 0)
	if err != nil {
		log.Fatal(err)
	}
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{})
	if err != nil {
		log.Fatal(err)
	}
	r, err := certify.Analyze(context.Background(), p, certify.Options{Alphas: 11})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d examples, %s, precision %s\n", r.Examples, r.LossKind, r.Precision)
	fmt.Printf("L(0) = %.5f, L(1) = %.5f\n", r.Loss[0], r.Loss[len(r.Loss)-1])
	fmt.Printf("verdict %s, witness α = %.1f < β = %.1f\n", r.Verdict, r.Witness.Alpha, r.Witness.Beta)
	// Output:
	// 12 examples, cross_entropy, precision float64
	// L(0) = 1.21479, L(1) = 2.01340
	// verdict non_monotone, witness α = 0.0 < β = 1.0
}
