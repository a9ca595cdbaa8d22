package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/certify-mli/certify/interval"
)

// benchIJet returns an order-2 interval jet [n, d] with pre-activation
// enclosures of mixed signs (about a fifth straddle 0), like a hidden
// layer's on a certificate leaf.
func benchIJet(n, d int, seed uint64) *IJet {
	r := rand.New(rand.NewPCG(seed, 7))
	j := &IJet{N: n, D: d, Order: 2, V: interval.NewMatrix(n, d), D1: interval.NewMatrix(n, d), D2: interval.NewMatrix(n, d), Kink: make([]bool, n)}
	for _, m := range []interval.Matrix{j.V, j.D1, j.D2} {
		for t := range m.Lo {
			c, w := r.NormFloat64(), r.Float64()*0.2
			m.Lo[t], m.Hi[t] = c-w, c+w
		}
	}
	return j
}

// BenchmarkReLUIntervalJet is the ReLU rule of a 64 × 1024 hidden layer,
// order 2 (value, velocity, acceleration): Enclose and the interval products.
func BenchmarkReLUIntervalJet(b *testing.B) {
	in := benchIJet(64, 1024, 1)
	a := &Activation{Kind: "relu", Width: 1024}
	for b.Loop() {
		a.IntervalJet(nil, in)
	}
}

// BenchmarkLossEnclosure is the cross-entropy enclosure of 256 examples of
// 10 logits, order 2.
func BenchmarkLossEnclosure(b *testing.B) {
	out := benchIJet(256, 10, 2)
	labels := make([]int, 256)
	for i := range labels {
		labels[i] = i % 10
	}
	for b.Loop() {
		LossEnclosure("cross_entropy", out, Targets{Labels: labels})
	}
}
