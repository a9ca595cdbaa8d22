// Package testnets builds random small networks for the project's tests.
package testnets

import (
	"math/rand/v2"

	"github.com/certify-mli/certify/nn"
)

// RandomizeBatchNorm overwrites every batchnorm1d layer's weight, bias and
// running mean of each state with standard normal draws from rng, and its
// running variance with draws from [minVar, minVar+1), so that BatchNorm
// moves along the line θ0 → θT with a positive variance at both ends.
func RandomizeBatchNorm(m *nn.Model, rng *rand.Rand, minVar float64, states ...nn.State) {
	for i, l := range m.Layers {
		if _, ok := l.(*nn.BatchNorm); !ok {
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
