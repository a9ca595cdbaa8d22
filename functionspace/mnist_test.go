package functionspace

import (
	"context"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/dataset"
	"github.com/certify-mli/certify/nn/optim"
)

// TestMNISTOneHiddenLayer trains the demo's kind of network (784-32-10 ReLU,
// one epoch of SGD on 2000 MNIST images) and checks, on 20 examples with
// dozens of kinks each, that the batched Gauss length is exact at every grid
// (γ is quadratic between kinks: THEORY.md §2) — equal at M = 32 and 64 and
// to ExampleGaussLength, whose kinks are located independently.
func TestMNISTOneHiddenLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	m, theta0, thetaT, x, targets := trainedMNIST(t)
	d := x.RawMatrix().Cols
	const n = 20
	p, err := New(m, theta0, thetaT, x.Slice(0, n, 0, d).(*mat.Dense), targets.Rows(0, n), Options{Chunk: 8})
	if err != nil {
		t.Fatal(err)
	}
	coarse, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 32, MaxIntervals: 32})
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.GaussLength(context.Background(), 0, 1, GaussOptions{Intervals: 64, MaxIntervals: 64})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kinks < 5*n {
		t.Fatalf("only %d kinks on %d examples", r.Kinks, n)
	}
	for i := 0; i < n; i++ {
		g, err := p.ExampleGaussLength(context.Background(), i, 0, 1, 1e-11)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(r.PerExample[i] - g.Value); d > 1e-9 || math.Abs(coarse.PerExample[i]-g.Value) > 1e-9 {
			t.Errorf("example %d (%d kinks): batched %v (M = 64), %v (M = 32), oracle %v ± %v", i, r.KinkCount[i], r.PerExample[i], coarse.PerExample[i], g.Value, g.ErrorEstimate)
		}
	}
}

// trainedMNIST trains the demo's kind of network, a 784-32-10 ReLU MLP
// (seed 7), for one epoch of SGD (lr 0.05, momentum 0.9, batch 32) on the
// first 2000 images of the committed MNIST subset, and returns it with θ0,
// θT and those images and labels.
func trainedMNIST(t *testing.T) (*nn.Model, nn.State, nn.State, *mat.Dense, nn.Targets) {
	t.Helper()
	set, err := dataset.Load(dataset.Spec{Name: "mnist-small", Split: "train", Limit: 2000})
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(set.N, set.D, set.X)
	targets := nn.Targets{Labels: set.Y}
	m, err := nn.Build(nn.MLPSpec([]int{set.D, 32, 10}, "relu", "cross_entropy"))
	if err != nil {
		t.Fatal(err)
	}
	theta0, _ := nn.Init(m, "pytorch", 1, 7)
	thetaT := theta0.Clone()
	sgd, _ := optim.New("sgd", optim.Config{LR: 0.05, Momentum: 0.9})
	if err := nn.Train(context.Background(), m, thetaT, sgd, x, targets, nn.TrainConfig{Epochs: 1, Batch: 32, Seed: 7}, nil); err != nil {
		t.Fatal(err)
	}
	return m, theta0, thetaT, x, targets
}
