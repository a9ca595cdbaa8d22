package main

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/align"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/optim"
)

// certify lmc --align weights on a residual net end to end: B = P(A) for a
// random permutation of every channel group of a trained net with a conv
// stem, an identity block and a block with a 1×1-conv shortcut (all with
// batchnorm2d). Unaligned the barrier is clearly positive; aligned, lmc.json's
// permutations are P⁻¹ for every group, b_aligned.safetensors is A, and the
// barrier is 0.
func TestLMCAlignResidual(t *testing.T) {
	ip := func(v int) nn.IntPair { return nn.IntPair{v} }
	conv := func(in, out, k, s, p int) nn.LayerSpec {
		return nn.LayerSpec{Type: "conv2d", In: in, Out: out, Kernel: ip(k), Stride: ip(s), Padding: ip(p)}
	}
	bn := func(c int) nn.LayerSpec { return nn.LayerSpec{Type: "batchnorm2d", Features: c} }
	relu := nn.LayerSpec{Type: "relu"}
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1, 6, 6}, Loss: "cross_entropy", Layers: []nn.LayerSpec{
		conv(1, 4, 3, 1, 1), bn(4), relu,
		{Type: "residual", Body: []nn.LayerSpec{conv(4, 4, 3, 1, 1), bn(4), relu, conv(4, 4, 3, 1, 1), bn(4)}},
		relu,
		{Type: "residual", Body: []nn.LayerSpec{conv(4, 6, 3, 2, 1), bn(6), relu, conv(6, 6, 3, 1, 1), bn(6)},
			Shortcut: []nn.LayerSpec{conv(4, 6, 1, 2, 0), bn(6)}},
		relu, {Type: "maxpool2d", Kernel: ip(3)}, {Type: "flatten"},
		{Type: "linear", In: 6, Out: 3},
	}}
	rng := rand.New(rand.NewPCG(2, 2))
	lmcAlignPermutedTwin(t, spec, rng, 96, 3, 5, "--alphas", "21", "--max-intervals", "64", "--accuracy-intervals", "8")
}

// TestLMCAlignResNet8 is the same on the built-in resnet-8 (resnet-8-bn:
// a conv stem, three stages of one basic block with batchnorm2d, the
// second and third downsampling with a 1×1-conv shortcut, global average
// pooling): trained briefly on random 28×28 images, B = P(A) for a random
// permutation of its channel groups. By default without the certificate
// (its interval passes through resnet-8 cost minutes per leaf on a loaded
// 2-core machine: 2 barrier leaves on 24 examples took 5m44s at load 50);
// with CERTIFY_STRESS set, the unaligned certified barrier gets a budget of
// 2 leaves (bounds wide but proven) and the aligned line, A to A, has the
// barrier [0, 0].
func TestLMCAlignResNet8(t *testing.T) {
	spec, _, err := nn.BuiltinSpec("resnet-8-bn", "cross_entropy")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 8))
	args := []string{"--alphas", "5", "--no-certificate"}
	if os.Getenv("CERTIFY_STRESS") != "" {
		args = []string{"--alphas", "5", "--max-intervals", "2", "--accuracy-intervals", "2"}
	}
	lmcAlignPermutedTwin(t, spec, rng, 24, 10, 6, args...)
}

// lmcAlignPermutedTwin trains spec on n random inputs with random labels of
// k classes (epochs passes, batch 8 or 16), writes A and B = P(A) for a random permutation P of
// every channel group (align.Groups), runs certify lmc A B --align weights
// with args and checks: the unaligned barrier is clearly positive (≥ 0.05)
// and its certified bounds contain it, the aligned barrier is 0 and its
// certified bounds contain 0, permutations is P⁻¹ for every group, and
// b_aligned.safetensors is A bit for bit.
func lmcAlignPermutedTwin(t *testing.T, spec *nn.Spec, rng *rand.Rand, n, k, epochs int, args ...string) {
	t.Helper()
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sA, _ := nn.Init(m, "pytorch", 1, 1)
	d := 1
	for _, v := range spec.InputShape {
		d *= v
	}
	x := mat.NewDense(n, d, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	y := make([]int, n)
	for i := range y {
		y[i] = rng.IntN(k)
	}
	opt, _ := optim.New("sgd", optim.Config{LR: 0.05, Momentum: 0.9})
	if err := nn.Train(context.Background(), m, sA, opt, x, nn.Targets{Labels: y}, nn.TrainConfig{Epochs: epochs, Batch: min(16, n/3), Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	names, sizes, err := align.Groups(spec)
	if err != nil {
		t.Fatal(err)
	}
	p := map[string][]int{}
	for i, g := range names {
		p[g] = rng.Perm(sizes[i])
	}
	sB, err := align.Permute(spec, sA, p)
	if err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []struct {
		dir string
		s   nn.State
	}{{a, sA}, {b, sB}} {
		if err := os.MkdirAll(d.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeRunDir(t, d.dir, spec, s0, d.s, "F64", x, nn.Targets{Labels: y})
	}
	out := filepath.Join(t.TempDir(), "lmc")
	if code, _, se := runCLI(t, append([]string{"lmc", a, b, "--align", "weights", "--no-figures", "--out", out}, args...)...); code != 0 {
		t.Fatalf("lmc: exit %d: %s", code, se)
	}
	body, err := os.ReadFile(filepath.Join(out, "lmc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		BarrierLoss  float64          `json:"barrier_loss"`
		Permutations map[string][]int `json:"permutations"`
		Unaligned    struct {
			BarrierLoss   float64     `json:"barrier_loss"`
			BarrierBounds *[2]float64 `json:"barrier_bounds"`
		} `json:"unaligned"`
		BarrierBounds *[2]float64 `json:"barrier_bounds"`
		Notes         []string    `json:"notes"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("groups %v; unaligned barrier %.4g, aligned %.3g", names, r.Unaligned.BarrierLoss, r.BarrierLoss)
	if r.Unaligned.BarrierLoss < 0.05 || math.Abs(r.BarrierLoss) > 1e-12 {
		t.Errorf("barrier unaligned %v (want clearly positive), aligned %v (want 0)", r.Unaligned.BarrierLoss, r.BarrierLoss)
	}
	if slices.Contains(args, "--no-certificate") {
		if r.BarrierBounds != nil || r.Unaligned.BarrierBounds != nil {
			t.Errorf("--no-certificate: barrier_bounds %v, unaligned %v; want null", r.BarrierBounds, r.Unaligned.BarrierBounds)
		}
	} else {
		lmcAlignCertified(t, r.BarrierBounds, r.Unaligned.BarrierBounds, r.Unaligned.BarrierLoss, r.Notes)
	}
	for g, pg := range p {
		inv := make([]int, len(pg))
		for i, v := range pg {
			inv[v] = i
		}
		if !slices.Equal(r.Permutations[g], inv) {
			t.Errorf("group %s: recovered %v, want %v", g, r.Permutations[g], inv)
		}
	}
	aligned, err := nn.ReadState(filepath.Join(out, "b_aligned.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for k, ta := range sA {
		if !slices.Equal(aligned[k].Data, ta.Data) {
			t.Errorf("%s: b_aligned differs from A", k)
		}
	}
}

// lmcAlignCertified checks the certified barriers of a permuted twin: the
// aligned bb0 contains 0, the unaligned ub0 contains the grid's barrier ul.
func lmcAlignCertified(t *testing.T, bb0, ub0 *[2]float64, ul float64, notes []string) {
	t.Helper()
	// The certified barrier of the aligned line contains 0 (conv,
	// batchnorm2d, residual and maxpool interval rules); the unaligned one
	// contains the grid's barrier (under a leaf budget the search stops
	// unconverged, its bounds still proven; converging on the residual net
	// of TestLMCAlignResidual took over an hour of a loaded 2-core machine).
	if bb := bb0; bb == nil || bb[0] > 0 || bb[1] < 0 {
		t.Errorf("aligned barrier_bounds %v do not contain 0; notes %v", bb, notes)
	}
	if ub := ub0; ub == nil || ub[1] < ul-1e-9 || ub[0] > ub[1] {
		t.Errorf("unaligned barrier_bounds %v (grid barrier %v); notes %v", ub, ul, notes)
	} else {
		t.Logf("certified: unaligned B ∈ %v, aligned B ∈ %v", *ub, *bb0)
	}
}
