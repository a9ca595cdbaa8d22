package functionspace_test

import (
	"fmt"
	"log"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// Build the output path of a one-weight linear model along θ0 → θT and
// read L(α), L′(α), L″(α). With w(α) = 1 + 2α, b = 0, input x = 1 and
// target 0, the mse loss is L(α) = (1 + 2α)², so L′ = 4(1 + 2α) and L″ = 8
// (THEORY.md §1, §4): at α = 0.5, L = 4, L′ = 8, L″ = 8.
func ExamplePath_At() {
	m, err := nn.Build(&nn.Spec{InputShape: []int{1}, Layers: []nn.LayerSpec{{Type: "linear", In: 1, Out: 1}}, Loss: "mse"})
	if err != nil {
		log.Fatal(err)
	}
	state := func(w float64) nn.State {
		return nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{w}}, "0.bias": {Shape: []int{1}, Data: []float64{0}}}
	}
	x := mat.NewDense(1, 1, []float64{1})
	y := nn.Targets{Values: mat.NewDense(1, 1, []float64{0})}
	p, err := functionspace.New(m, state(1), state(3), x, y, functionspace.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range []float64{0, 0.5, 1} {
		s := p.At(a)
		fmt.Printf("α = %.1f: L = %.4g, L′ = %.4g, L″ = %.4g\n", a, s.Loss, s.DLoss, s.D2Loss)
	}
	// Output:
	// α = 0.0: L = 1, L′ = 4, L″ = 8
	// α = 0.5: L = 4, L′ = 8, L″ = 8
	// α = 1.0: L = 9, L′ = 12, L″ = 8
}
