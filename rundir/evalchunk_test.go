package rundir

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// TestEvalChunk checks the evaluation chunk after training: every layer
// output of a chunk (at any depth) stays within evalActivationElems, MLPs
// keep their chunk of 2000, and the loss and accuracy in chunks equal those
// of one pass over all examples (the chunk only reorders a sum).
func TestEvalChunk(t *testing.T) {
	for _, tc := range []struct {
		arch      string
		widest    int // the widest layer output per example, worked out by hand
		wantChunk int
	}{
		{"resnet-8-bn", 16 * 28 * 28, (1 << 22) / (16 * 28 * 28)},
		{"resnet-20-nobn-scale", 16 * 28 * 28, (1 << 22) / (16 * 28 * 28)},
		{"lenet", 0, 0}, // whatever its widest output: the bound below
	} {
		t.Run(tc.arch, func(t *testing.T) {
			spec, _, err := nn.BuiltinSpec(tc.arch, "cross_entropy")
			if err != nil {
				t.Fatal(err)
			}
			m, err := nn.Build(spec)
			if err != nil {
				t.Fatal(err)
			}
			got := evalChunk(m)
			if tc.wantChunk != 0 && got != tc.wantChunk {
				t.Errorf("evalChunk = %d, want %d (widest output %d)", got, tc.wantChunk, tc.widest)
			}
			_ = m.WalkSites(func(s nn.Site, l nn.Layer) error {
				if e := got * l.OutSize(); e > evalActivationElems {
					t.Errorf("%s: chunk %d × %d outputs = %d elements > %d", s.Name, got, l.OutSize(), e, evalActivationElems)
				}
				return nil
			})
		})
	}
	mlp, err := nn.Build(nn.MLPSpec([]int{784, 1024, 10}, "relu", "cross_entropy"))
	if err != nil {
		t.Fatal(err)
	}
	if got := evalChunk(mlp); got != 2000 {
		t.Errorf("MLP 784-1024-10: evalChunk = %d, want 2000", got)
	}

	// chunked against one pass, on a resnet-8 whose chunk (334) splits 400
	// examples unevenly
	spec, _, err := nn.BuiltinSpec("resnet-8-bn", "cross_entropy")
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := nn.Init(m, "pytorch", 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	r := rand.New(rand.NewPCG(5, 6))
	x := mat.NewDense(n, 784, nil)
	labels := make([]int, n)
	for i := range n {
		for j := range 784 {
			x.Set(i, j, r.Float64())
		}
		labels[i] = r.IntN(10)
	}
	chunk := evalChunk(m)
	if chunk >= n {
		t.Fatalf("chunk %d does not split %d examples", chunk, n)
	}
	l1, a1 := nn.Evaluate(m, s, x, nn.Targets{Labels: labels}, chunk)
	l2, a2 := nn.Evaluate(m, s, x, nn.Targets{Labels: labels}, n)
	if math.Abs(l1-l2) > 1e-12*math.Abs(l2) || a1 != a2 {
		t.Errorf("chunk %d: loss %v accuracy %v; one pass: loss %v accuracy %v", chunk, l1, a1, l2, a2)
	}
}
