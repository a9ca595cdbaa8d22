package certify

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// BenchmarkCertify times the branch and bound of THEORY.md §7 on a random
// 20-32-32-10 ReLU MLP with cross-entropy on 100 examples, θ0 and θT two
// PyTorch initialisations ; DeltaGap 1e-6 keeps it refining up to 128 leaves.
func BenchmarkCertify(b *testing.B) {
	m, err := nn.Build(nn.MLPSpec([]int{20, 32, 32, 10}, "relu", "cross_entropy"))
	if err != nil {
		b.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 3, 2)
	rng := rand.New(rand.NewPCG(3, 4))
	x, tg := testnets.RandomData(rng, 100, 20, 10, "cross_entropy", 2)
	p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		c, err := Certify(context.Background(), p, CertifyOptions{MaxIntervals: 128, DeltaGap: 1e-6})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(c.Leaves), "leaves")
	}
}
