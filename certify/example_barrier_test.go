package certify_test

import (
	"context"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// ExampleCertifyBarrier bounds the loss barrier (THEORY.md §10) of a
// one-weight network y = tanh(w·x) with x = 1, target 1 and mse, along the
// line from w = −3 (θA) to w = 3 (θB): L(α) = (1 − tanh(6α − 3))², an S
// that lies above its chord on the first half (its largest excess, found
// independently with mpmath's root finder on g′, is 0.6446722 at
// α = 0.24639).
func ExampleCertifyBarrier() {
	f := false
	m, err := nn.Build(&nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse",
		Layers: []nn.LayerSpec{{Type: "linear", In: 1, Out: 1, Bias: &f}, {Type: "tanh"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	line := functionspace.Line{
		Start: nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{-3}}},
		End:   nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{3}}},
	}
	x, y := mat.NewDense(1, 1, []float64{1}), mat.NewDense(1, 1, []float64{1})
	p, err := functionspace.NewLine(m, line, x, nn.Targets{Values: y}, functionspace.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := certify.CertifyBarrier(context.Background(), p, certify.BarrierOptions{Gap: 1e-9})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("barrier ∈ [%.7f, %.7f], witness α = %.3f, converged %v\n", c.Lower, c.Upper, c.WitnessAlpha, c.Converged)
	// Output:
	// barrier ∈ [0.6446722, 0.6446722], witness α = 0.246, converged true
}
