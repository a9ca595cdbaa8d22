package nn_test

import (
	"context"
	"os"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/optim"
)

// benchTrainArch trains arch for one epoch of n random 28×28 images
// (batch 128, SGD with momentum), the inner loop of `certify train --arch`,
// on the BLAS $CERTIFY_BLAS selects as certify does (auto: OpenBLAS when
// the machine has it).
func benchTrainArch(b *testing.B, arch string, n int) {
	bk, _, err := blasbackend.Select(os.Getenv("CERTIFY_BLAS"))
	if err != nil {
		b.Fatal(err)
	}
	bk.Use()
	defer blasbackend.PureGo().Use()
	b.Logf("BLAS %s", bk.Describe())
	spec, _, err := nn.BuiltinSpec(arch, "cross_entropy")
	if err != nil {
		b.Fatal(err)
	}
	m, err := nn.Build(spec)
	if err != nil {
		b.Fatal(err)
	}
	x := mat.NewDense(n, 784, nil)
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % 10
		row := x.RawRowView(i)
		for j := range row {
			row[j] = float64((i*31+j*7)%255) / 255
		}
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		s, err := nn.Init(m, "pytorch", 1, 1)
		if err != nil {
			b.Fatal(err)
		}
		opt, err := optim.New("sgd", optim.Config{LR: 0.05, Momentum: 0.9})
		if err != nil {
			b.Fatal(err)
		}
		if err := nn.Train(context.Background(), m, s, opt, x, nn.Targets{Labels: labels}, nn.TrainConfig{Epochs: 1, Batch: 128, Seed: 1}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrainResNet8Epoch1024: one epoch of resnet-8-bn on 1,024 images.
func BenchmarkTrainResNet8Epoch1024(b *testing.B) { benchTrainArch(b, "resnet-8-bn", 1024) }

// BenchmarkTrainResNet20Epoch10000: one epoch of resnet-20-bn on 10,000
// images, the training benchmark (Fashion-MNIST's size; random
// pixels cost the same).
func BenchmarkTrainResNet20Epoch10000(b *testing.B) { benchTrainArch(b, "resnet-20-bn", 10000) }

// BenchmarkTrainResNet20Epoch1000: one epoch of resnet-20-bn on 1,000
// images (a tenth of the benchmark, for a loaded machine).
func BenchmarkTrainResNet20Epoch1000(b *testing.B) { benchTrainArch(b, "resnet-20-bn", 1000) }
