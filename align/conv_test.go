package align

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

func ip(v ...int) nn.IntPair { return nn.IntPair(v) }

// smallCNN is conv–relu–maxpool–conv–batchnorm2d–relu–flatten–linear–relu–
// linear on 1×8×8 images: the flatten hands blocks of 4×4 features per
// channel to the first linear layer.
func smallCNN() *nn.Spec {
	return &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1, 8, 8}, Loss: "cross_entropy", Layers: []nn.LayerSpec{
		{Type: "conv2d", In: 1, Out: 6, Kernel: ip(3), Padding: ip(1)},
		{Type: "relu"},
		{Type: "maxpool2d", Kernel: ip(2)},
		{Type: "conv2d", In: 6, Out: 5, Kernel: ip(3), Padding: ip(1)},
		{Type: "batchnorm2d", Features: 5},
		{Type: "relu"},
		{Type: "flatten"},
		{Type: "linear", In: 80, Out: 12},
		{Type: "relu"},
		{Type: "linear", In: 12, Out: 3},
	}}
}

// smallResNet is a conv stem with batchnorm2d, a residual block with an
// identity shortcut, a downsampling residual block with a 1×1-conv
// shortcut (and batchnorm2d), global average pooling and a linear head, on
// 2×6×6 images.
func smallResNet() *nn.Spec {
	bn := func(c int) nn.LayerSpec { return nn.LayerSpec{Type: "batchnorm2d", Features: c} }
	conv := func(in, out, k, s, p int) nn.LayerSpec {
		return nn.LayerSpec{Type: "conv2d", In: in, Out: out, Kernel: ip(k), Stride: ip(s), Padding: ip(p)}
	}
	relu := nn.LayerSpec{Type: "relu"}
	return &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{2, 6, 6}, Loss: "cross_entropy", Layers: []nn.LayerSpec{
		conv(2, 4, 3, 1, 1), bn(4), relu,
		{Type: "residual", Body: []nn.LayerSpec{conv(4, 4, 3, 1, 1), bn(4), relu, conv(4, 4, 3, 1, 1), bn(4)}},
		relu,
		{Type: "residual", Body: []nn.LayerSpec{conv(4, 6, 3, 2, 1), bn(6), relu, conv(6, 6, 3, 1, 1), bn(6)},
			Shortcut: []nn.LayerSpec{conv(4, 6, 1, 2, 0), bn(6)}},
		relu,
		{Type: "adaptive_avgpool2d", Output: ip(1)},
		{Type: "flatten"},
		{Type: "linear", In: 6, Out: 3},
	}}
}

// randomState initialises spec's model and draws BatchNorm running
// statistics (mean ~ N(0, 0.25), var in [0.5, 1.5]) so they matter.
func randomState(t *testing.T, spec *nn.Spec, seed uint64) (*nn.Model, nn.State) {
	t.Helper()
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := nn.Init(m, "pytorch", 1, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	// Draw in sorted key order: map order is random, and the draws must
	// land on the same tensors every run.
	for _, k := range s.Names() {
		v := s[k]
		switch {
		case strings.HasSuffix(k, "running_mean"):
			for i := range v.Data {
				v.Data[i] = 0.5 * rng.NormFloat64()
			}
		case strings.HasSuffix(k, "running_var"):
			for i := range v.Data {
				v.Data[i] = 0.5 + rng.Float64()
			}
		case strings.HasSuffix(k, ".weight") && len(v.Shape) == 1: // BatchNorm γ
			for i := range v.Data {
				v.Data[i] = 0.5 + rng.Float64()
			}
		}
	}
	return m, s
}

// The groups of the residual net: the stem and the identity block's output
// share one permutation (named by the stem, the first in model order); the
// second block's body output and its 1×1 shortcut's output share another;
// the head's outputs are fixed.
func TestGroupsResidual(t *testing.T) {
	names, sizes, err := Groups(smallResNet())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0", "3.body.0", "5.body.0", "5.body.3"}; !slices.Equal(names, want) || !slices.Equal(sizes, []int{4, 4, 6, 6}) {
		t.Errorf("groups %v sizes %v, want %v sizes [4 4 6 6]", names, sizes, want)
	}
	ps, err := groups(smallResNet())
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][]axisRef{
		"0.weight":             {{0, 1}, {-1, 1}, {-1, 1}, {-1, 1}},
		"3.body.3.weight":      {{0, 1}, {1, 1}, {-1, 1}, {-1, 1}},
		"3.body.4.running_var": {{0, 1}},
		"5.body.0.weight":      {{2, 1}, {0, 1}, {-1, 1}, {-1, 1}},
		"5.body.3.weight":      {{3, 1}, {2, 1}, {-1, 1}, {-1, 1}},
		"5.shortcut.0.weight":  {{3, 1}, {0, 1}, {-1, 1}, {-1, 1}},
		"5.shortcut.1.bias":    {{3, 1}},
		"9.weight":             {{-1, 1}, {3, 1}},
	} {
		if got := ps.axes[key]; !slices.Equal(got, want) {
			t.Errorf("%s: axes %v, want %v", key, got, want)
		}
	}
	if _, ok := ps.axes["9.bias"]; ok {
		t.Error("the head's bias is permuted")
	}
	// After flatten of a [5, 4, 4] map, the linear layer's columns move in
	// blocks of 16.
	cnn, err := groups(smallCNN())
	if err != nil {
		t.Fatal(err)
	}
	if got := cnn.axes["7.weight"]; !slices.Equal(got, []axisRef{{2, 1}, {1, 16}}) {
		t.Errorf("7.weight axes %v, want [{2 1} {1 16}]", got)
	}
}

// Permuting channels (conv weights on both axes, batchnorm2d tensors,
// blocks after flatten, residual streams) keeps the function: outputs
// agree to 1e-12.
func TestPermuteKeepsFunctionConv(t *testing.T) {
	for name, spec := range map[string]*nn.Spec{"cnn": smallCNN(), "resnet": smallResNet()} {
		m, s := randomState(t, spec, 3)
		rng := rand.New(rand.NewPCG(4, 4))
		ps, err := Permute(spec, s, hiddenPerms(t, spec, rng))
		if err != nil {
			t.Fatal(err)
		}
		x := mat.NewDense(10, spec.InputSize(), nil)
		for i := range x.RawMatrix().Data {
			x.RawMatrix().Data[i] = rng.NormFloat64()
		}
		y0, y1 := m.Forward(s, x), m.Forward(ps, x)
		if !mat.EqualApprox(y0, y1, 1e-12) {
			t.Errorf("%s: outputs differ after permuting channels:\n%v\n%v", name, mat.Formatted(y0), mat.Formatted(y1))
		}
		changed := 0
		for k := range s {
			if !slices.Equal(s[k].Data, ps[k].Data) {
				changed++
			}
		}
		if changed < 5 {
			t.Errorf("%s: the permutation changed %d tensors", name, changed)
		}
	}
}

// The done-when test for conv and residual nets: θB = P(θA) for a
// random permutation P of a trained small CNN (max-pool) and of a trained
// small residual net (two blocks, one with a 1×1-conv shortcut,
// batchnorm2d). Unaligned, the barrier on the training data is clearly
// positive; weight matching recovers P⁻¹ exactly, B aligned equals A bit for
// bit, and the aligned barrier is 0 to rounding.
func TestWeightMatchingUndoesPermutationConv(t *testing.T) {
	for name, spec := range map[string]*nn.Spec{"cnn": smallCNN(), "resnet": smallResNet()} {
		m, a := randomState(t, spec, 5)
		x, y := trainSmall(t, m, a)
		rng := rand.New(rand.NewPCG(6, 6))
		p := hiddenPerms(t, spec, rng)
		b, err := Permute(spec, a, p)
		if err != nil {
			t.Fatal(err)
		}
		res, err := WeightMatching(spec, a, b, 0)
		if err != nil {
			t.Fatal(err)
		}
		for g, pg := range p {
			want := inverse(pg)
			if got := res.Permutations[g]; !slices.Equal(got, want) {
				t.Errorf("%s: group %s: recovered %v, want %v", name, g, got, want)
			}
		}
		for k, ta := range a {
			if !slices.Equal(res.State[k].Data, ta.Data) {
				t.Errorf("%s: %s: aligned B differs from A", name, k)
			}
		}
		barrier := func(end nn.State) float64 {
			path, err := functionspace.New(m, a, end, x, nn.Targets{Labels: y}, functionspace.Options{BNPolicy: "interpolate"})
			if err != nil {
				t.Fatal(err)
			}
			alphas, _ := certify.LMCGrid(21)
			r, err := certify.LineMeasures(path, alphas)
			if err != nil {
				t.Fatal(err)
			}
			return float64(r.BarrierLoss)
		}
		un, al := barrier(b), barrier(res.State)
		t.Logf("%s: unaligned barrier %.4g, aligned %.3g", name, un, al)
		if un < 0.05 {
			t.Errorf("%s: unaligned barrier %v is not clearly positive", name, un)
		}
		if math.Abs(al) > 1e-12 {
			t.Errorf("%s: aligned barrier %v, want 0 to rounding", name, al)
		}
	}
}
