// Package testnets builds random small networks for the project's tests.
package testnets

import (
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// RandomizeBatchNorm overwrites every top-level BatchNorm layer's
// (nn.BatchStatistics: batchnorm1d, batchnorm2d) weight, bias and running
// mean of each state with standard normal draws from rng, and its running
// variance with draws from [minVar, minVar+1), so that BatchNorm moves
// along the line θ0 → θT with a positive variance at both ends.
func RandomizeBatchNorm(m *nn.Model, rng *rand.Rand, minVar float64, states ...nn.State) {
	for i, l := range m.Layers {
		if _, ok := l.(nn.BatchStatistics); !ok {
			continue
		}
		for _, s := range states {
			for _, name := range []string{"weight", "bias", "running_mean", "running_var"} {
				for j := range s[nn.ParamKey(i, name)].Data {
					v := rng.NormFloat64()
					if name == "running_var" {
						v = minVar + rng.Float64()
					}
					s[nn.ParamKey(i, name)].Data[j] = v
				}
			}
		}
	}
}

// RandomData draws n inputs [n, in] with entries xScale·N(0, 1) and targets
// for k outputs from rng: class labels for cross_entropy, standard normal
// float targets [n, k] for mse (the labels are drawn either way, so the
// stream of draws does not depend on the loss).
func RandomData(rng *rand.Rand, n, in, k int, loss string, xScale float64) (*mat.Dense, nn.Targets) {
	x := mat.NewDense(n, in, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = xScale * rng.NormFloat64()
	}
	tg := nn.Targets{Labels: make([]int, n)}
	for i := range tg.Labels {
		tg.Labels[i] = rng.IntN(k)
	}
	if loss == "mse" {
		tg = nn.Targets{Values: mat.NewDense(n, k, nil)}
		for i := range tg.Values.RawMatrix().Data {
			tg.Values.RawMatrix().Data[i] = rng.NormFloat64()
		}
	}
	return x, tg
}

// Overshoot is THEORY.md §6's overshooting model: y = w·x (one linear
// unit without bias, mse) on the single example x = 1 with target 0, w
// moving from 1 to −0.5, so L(α) = (1 − 1.5α)², L′(1) = 1.5 and Δ = 0.25.
// It returns the model, θ0, θT, the input [1, 1] and the target [1, 1].
func Overshoot() (m *nn.Model, s0, sT nn.State, x, y *mat.Dense) {
	f := false
	m, err := nn.Build(&nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Layers: []nn.LayerSpec{{Type: "linear", In: 1, Out: 1, Bias: &f}}, Loss: "mse"})
	if err != nil {
		panic(err) // a fixed, valid spec
	}
	s0 = nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{1}}}
	sT = nn.State{"0.weight": {Shape: []int{1, 1}, Data: []float64{-0.5}}}
	return m, s0, sT, mat.NewDense(1, 1, []float64{1}), mat.NewDense(1, 1, []float64{0})
}
