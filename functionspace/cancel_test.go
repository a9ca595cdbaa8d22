package functionspace

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// TestGaussLengthCancelsWithinPass: a cancellation reaches inside the
// Gauss length's per-α pass, between chunks of examples (issue 12/13
// leftover: it was checked only between α, so SIGTERM waited for a whole
// pass over every example, minutes on a large resnet). The context is
// cancelled as the 5th of 100 chunks of the first pass starts; GaussLength
// returns context.Canceled and starts no further chunk (it started all
// 100 before). No clock is read.
func TestGaussLengthCancelsWithinPass(t *testing.T) {
	m, err := nn.Build(nn.MLPSpec([]int{3, 16, 16, 2}, "relu", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 3)
	sT, _ := nn.Init(m, "pytorch", 2, 4)
	rng := rand.New(rand.NewPCG(7, 8))
	const n, chunk = 200, 2
	x := mat.NewDense(n, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	for _, workers := range []int{1, 2} {
		p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(n, 2, nil)}, Options{Chunk: chunk, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Chunks()) != n/chunk {
			t.Fatalf("%d chunks, want %d", len(p.Chunks()), n/chunk)
		}
		ctx, cancel := context.WithCancel(context.Background())
		started := 0
		p.chunkStarted = func(int) {
			started++
			if started == 5 {
				cancel()
			}
		}
		r, err := p.GaussLength(ctx, 0, 1, GaussOptions{Intervals: 8, MaxIntervals: 8})
		cancel()
		if !errors.Is(err, context.Canceled) || r != nil {
			t.Errorf("workers %d: GaussLength after a cancellation: %v, %v; want no result and context.Canceled", workers, r, err)
		}
		if started != 5 {
			t.Errorf("workers %d: %d chunks started, want 5 (the cancellation came as the 5th started; %d chunks per pass)", workers, started, n/chunk)
		}
	}
}

// TestGaussLengthCancelsWithinKinkSearch: a cancellation during the kink
// search between two grid points (turn) starts no further piece of
// examples: with one worker, cancelled as the 3rd piece of 8 starts, 3
// pieces start and GaussLength returns context.Canceled and no result.
func TestGaussLengthCancelsWithinKinkSearch(t *testing.T) {
	m, err := nn.Build(nn.MLPSpec([]int{3, 16, 16, 2}, "relu", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 3)
	sT, _ := nn.Init(m, "pytorch", 2, 4)
	rng := rand.New(rand.NewPCG(9, 10))
	const n = 1000
	x := mat.NewDense(n, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(n, 2, nil)}, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := pieceSize(n, 1); got != 125 {
		t.Fatalf("pieceSize(%d, 1) = %d, want 125 (8 pieces)", n, got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := 0
	p.pieceStarted = func(int) {
		started++
		if started == 3 {
			cancel()
		}
	}
	r, err := p.GaussLength(ctx, 0, 1, GaussOptions{Intervals: 8, MaxIntervals: 8})
	if !errors.Is(err, context.Canceled) || r != nil {
		t.Errorf("GaussLength after a cancellation in the kink search: %v, %v; want no result and context.Canceled", r, err)
	}
	if started != 3 {
		t.Errorf("%d pieces started, want 3 (the cancellation came as the 3rd started)", started)
	}
}

// TestGaussLengthCancelsBetweenKinkBatches: a cancellation reaches inside
// one grid interval's kink row passes, between batches (kinkBatches): on a
// BatchNorm resnet one interval's kinks took minutes, and SIGINT/SIGTERM
// waited for all of them (issue 13 first-user walkthrough). A residual net
// on 8 examples in batches of one crossing: the context is cancelled as
// the first batch of an interval with at least two batches starts;
// GaussLength returns context.Canceled and starts no further batch.
func TestGaussLengthCancelsBetweenKinkBatches(t *testing.T) {
	yes := true
	s := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{2}, Loss: "mse", Layers: []nn.LayerSpec{
		{Type: "linear", In: 2, Out: 8},
		{Type: "residual", Scale: &yes, Body: []nn.LayerSpec{{Type: "linear", In: 8, Out: 8}, {Type: "relu"}, {Type: "linear", In: 8, Out: 8}}},
		{Type: "relu"},
		{Type: "linear", In: 8, Out: 3},
	}}
	m, err := nn.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 5)
	sT, _ := nn.Init(m, "pytorch", 3, 6)
	s0["1.scale"].Data[0], sT["1.scale"].Data[0] = 0.3, 1.1
	rng := rand.New(rand.NewPCG(5, 9))
	const n = 8
	x := mat.NewDense(n, 2, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	p, err := New(m, s0, sT, x, nn.Targets{Values: mat.NewDense(n, 3, nil)}, Options{Chunk: 2, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.kinkBatchRows(p.kinkedLayers()); got != 1 {
		t.Fatalf("kinkBatchRows %d, want 1", got)
	}
	o := GaussOptions{Intervals: 4, MaxIntervals: 4}
	// An uncancelled run: the batches of each interval (one piece each: n < 64).
	var perInterval []int
	p.pieceStarted = func(int) { perInterval = append(perInterval, 0) }
	p.kinkBatchStarted = func() { perInterval[len(perInterval)-1]++ }
	if _, err := p.GaussLength(context.Background(), 0, 1, o); err != nil {
		t.Fatal(err)
	}
	target := -1
	for k, b := range perInterval {
		if b >= 2 {
			target = k
			break
		}
	}
	if target < 0 {
		t.Fatalf("no interval with two kink batches (%v): the case does not test the cancellation", perInterval)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	piece, after := -1, 0
	p.pieceStarted = func(int) { piece++ }
	p.kinkBatchStarted = func() {
		if ctx.Err() != nil {
			after++
		}
		if piece == target {
			cancel()
		}
	}
	r, err := p.GaussLength(ctx, 0, 1, o)
	if !errors.Is(err, context.Canceled) || r != nil {
		t.Errorf("GaussLength cancelled in a kink batch: %v, %v; want no result and context.Canceled", r, err)
	}
	if after != 0 {
		t.Errorf("%d kink batches started after the cancellation (interval %d had %d)", after, target, perInterval[target])
	}
}
