package functionspace_test

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// ExampleNewLine follows the line from one weight vector θA to another θB
// (THEORY.md §10) for the one-weight network y = w·x on x = 2, target 0,
// mse: w(α) = 1 + 2α, so γ(α) = 2 + 4α, γ′ = 4, γ″ = 0 and
// L(α) = (2 + 4α)², L′ = 8(2 + 4α).
func ExampleNewLine() {
	f := false
	m, err := nn.Build(&nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse",
		Layers: []nn.LayerSpec{{Type: "linear", In: 1, Out: 1, Bias: &f}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	line := functionspace.Line{
		Start:     nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{1}}},
		End:       nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{3}}},
		StartName: "θA", EndName: "θB",
	}
	x, y := mat.NewDense(1, 1, []float64{2}), mat.NewDense(1, 1, []float64{0})
	p, err := functionspace.NewLine(m, line, x, nn.Targets{Values: y}, functionspace.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := p.At(0.25)
	fmt.Printf("%v: γ(0.25) = %g, γ′ = %g, γ″ = %g, L = %g, L′ = %g\n", line, s.Output.At(0, 0), s.Velocity.At(0, 0), s.Acceleration.At(0, 0), s.Loss, s.DLoss)
	// Output:
	// θA → θB: γ(0.25) = 3, γ′ = 4, γ″ = 0, L = 9, L′ = 24
}
