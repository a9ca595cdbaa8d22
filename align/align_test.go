package align

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/optim"
)

// bruteMax is the best Σ w[i][π(i)] over all n! permutations.
func bruteMax(w [][]float64) float64 {
	n := len(w)
	best := math.Inf(-1)
	p := make([]int, n)
	used := make([]bool, n)
	var rec func(i int, s float64)
	rec = func(i int, s float64) {
		if i == n {
			best = math.Max(best, s)
			return
		}
		for j := 0; j < n; j++ {
			if !used[j] {
				used[j], p[i] = true, j
				rec(i+1, s+w[i][j])
				used[j] = false
			}
		}
	}
	rec(0, 0)
	return best
}

// MaxAssignment against brute force on every size n ≤ 7, with real weights
// and with small integers (many ties).
func TestMaxAssignmentBruteForce(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 7).Draw(rt, "n")
		ints := rapid.Bool().Draw(rt, "ints")
		w := make([][]float64, n)
		for i := range w {
			w[i] = make([]float64, n)
			for j := range w[i] {
				if ints {
					w[i][j] = float64(rapid.IntRange(-3, 3).Draw(rt, "w"))
				} else {
					w[i][j] = rapid.Float64Range(-1e3, 1e3).Draw(rt, "w")
				}
			}
		}
		p, got, err := MaxAssignment(w)
		if err != nil {
			rt.Fatal(err)
		}
		if !isPerm(p) {
			rt.Fatalf("not a permutation: %v", p)
		}
		var s float64
		for i, j := range p {
			s += w[i][j]
		}
		want := bruteMax(w)
		if s != got || math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			rt.Fatalf("n = %d: assignment %v sums to %v (reported %v), brute force %v", n, p, s, got, want)
		}
	})
}

func TestMaxAssignmentRefuses(t *testing.T) {
	for name, w := range map[string][][]float64{
		"empty":    {},
		"ragged":   {{1, 2}, {3}},
		"nan":      {{1, math.NaN()}, {0, 1}},
		"infinite": {{math.Inf(1)}},
	} {
		if _, _, err := MaxAssignment(w); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func randomPerm(rng *rand.Rand, n int) []int { return rng.Perm(n) }

func inverse(p []int) []int {
	q := make([]int, len(p))
	for i, v := range p {
		q[v] = i
	}
	return q
}

// Permuting hidden units (BatchNorm buffers included) leaves the function
// unchanged: the outputs agree to rounding.
func TestPermuteKeepsFunction(t *testing.T) {
	spec := nn.InsertBatchNorm(nn.MLPSpec([]int{5, 9, 7, 3}, "tanh", "cross_entropy"))
	m, _ := nn.Build(spec)
	s, _ := nn.Init(m, "pytorch", 1, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range s.Names() { // fixed draw order
		v := s[k]
		if len(k) > 4 && (k[len(k)-4:] == "mean" || k[len(k)-3:] == "var") {
			for i := range v.Data {
				v.Data[i] = 0.5 + rng.Float64()
			}
		}
	}
	perms := hiddenPerms(t, spec, rng)
	ps, err := Permute(spec, s, perms)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(20, 5, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	y0, y1 := m.Forward(s, x), m.Forward(ps, x)
	if !mat.EqualApprox(y0, y1, 1e-12) {
		t.Errorf("outputs differ after permuting hidden units")
	}
	changed := false
	for k := range s {
		changed = changed || !mat.Equal(mat.NewDense(1, len(s[k].Data), s[k].Data), mat.NewDense(1, len(ps[k].Data), ps[k].Data))
	}
	if !changed {
		t.Error("the permutation changed no tensor")
	}
}

// hiddenPerms draws a random permutation for every hidden linear layer.
func hiddenPerms(t *testing.T, spec *nn.Spec, rng *rand.Rand) map[string][]int {
	t.Helper()
	names, sizes, err := Groups(spec)
	if err != nil {
		t.Fatal(err)
	}
	perms := map[string][]int{}
	for i, name := range names {
		perms[name] = randomPerm(rng, sizes[i])
	}
	return perms
}

// The done-when test, at the package level: θB = P(θA) for a random
// permutation P of a trained MLP's hidden units (ReLU and BatchNorm): weight
// matching recovers P exactly and B aligned equals A bit for bit.
func TestWeightMatchingUndoesPermutation(t *testing.T) {
	for _, spec := range []*nn.Spec{
		nn.MLPSpec([]int{8, 24, 16, 4}, "relu", "cross_entropy"),
		nn.InsertBatchNorm(nn.MLPSpec([]int{8, 20, 20, 12, 4}, "tanh", "cross_entropy")),
	} {
		m, _ := nn.Build(spec)
		a, _ := nn.Init(m, "pytorch", 1, 9)
		trainSmall(t, m, a)
		rng := rand.New(rand.NewPCG(3, 3))
		p := hiddenPerms(t, spec, rng)
		b, err := Permute(spec, a, p)
		if err != nil {
			t.Fatal(err)
		}
		res, err := WeightMatching(spec, a, b, 0)
		if err != nil {
			t.Fatal(err)
		}
		for l, pl := range p {
			want := inverse(pl)
			got := res.Permutations[l]
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("group %s: recovered %v, want %v", l, got, want)
				}
			}
		}
		for k, ta := range a {
			for i, v := range ta.Data {
				if res.State[k].Data[i] != v {
					t.Fatalf("%s[%d]: aligned %v, A %v", k, i, res.State[k].Data[i], v)
				}
			}
		}
	}
}

// trainSmall trains s in place for a few epochs on random labelled data.
// It returns the data it trained on.
func trainSmall(t *testing.T, m *nn.Model, s nn.State) (*mat.Dense, []int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 5))
	n, d := 128, m.Spec.InputSize()
	x := mat.NewDense(n, d, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	y := make([]int, n)
	for i := range y {
		y[i] = rng.IntN(m.OutSize())
	}
	opt, err := optim.New("sgd", optim.Config{LR: 0.05, Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	if err := nn.Train(context.Background(), m, s, opt, x, nn.Targets{Labels: y}, nn.TrainConfig{Epochs: 5, Batch: 16, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	return x, y
}

// Layers weight matching cannot permute are refused by name.
func TestWeightMatchingRefusesLayer(t *testing.T) {
	spec := nn.MLPSpec([]int{4, 6, 3}, "relu", "cross_entropy")
	spec.Layers = append(spec.Layers[:1], append([]nn.LayerSpec{{Type: "layernorm"}}, spec.Layers[1:]...)...)
	_, err := groups(spec)
	if err == nil || !contains(err.Error(), "layer 1 is layernorm") {
		t.Errorf("layernorm: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
