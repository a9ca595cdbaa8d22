package functionspace

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// bnNet draws a small MLP with batchnorm1d after every hidden linear layer
// (nn.InsertBatchNorm), θ0 and θT whose BatchNorm weight, bias and running
// statistics both move (running_var positive at both ends), n inputs and
// labels.
func bnNet(t *rapid.T, act string) (*nn.Model, nn.State, nn.State, *mat.Dense, nn.Targets) {
	// At least 2 inputs and 2 hidden units: a batch variance σ² = wᵀ Cov w
	// of a single weight w(α) vanishes where w(α) crosses 0, and there the
	// path turns within a width √Eps ≈ 3e-3 of α (too sharp for the finite
	// differences of the tests).
	in := rapid.IntRange(2, 4).Draw(t, "in")
	hid := rapid.IntRange(2, 5).Draw(t, "hidden")
	k := rapid.IntRange(2, 3).Draw(t, "k")
	depth := rapid.IntRange(1, 2).Draw(t, "depth")
	widths := []int{in}
	for d := 0; d < depth; d++ {
		widths = append(widths, hid)
	}
	widths = append(widths, k)
	m, err := nn.Build(nn.InsertBatchNorm(nn.MLPSpec(widths, act, "mse")))
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 2, seed+1)
	rng := rand.New(rand.NewPCG(seed, 17))
	testnets.RandomizeBatchNorm(m, rng, 0.2, s0, sT)
	n := rapid.IntRange(3, 7).Draw(t, "n")
	x, tg := testnets.RandomData(rng, n, in, k, "cross_entropy", 1)
	return m, s0, sT, x, tg
}

// recomputeOracle evaluates γ(α) for every row of x from scratch: plain
// forward passes at θα = θ0 + α(θT − θ0), each batchnorm1d normalising all
// rows with the mean and biased variance of its input's first r rows (the
// `recompute` policy, THEORY.md §2). It also returns those statistics per
// BatchNorm layer.
func recomputeOracle(m *nn.Model, s0, sT nn.State, x *mat.Dense, r int, alpha float64) (*mat.Dense, map[int][2][]float64) {
	sa := nn.State{}
	for k, t0 := range s0 {
		t := nn.NewTensor(t0.Shape...)
		for j := range t.Data {
			t.Data[j] = t0.Data[j] + alpha*(sT[k].Data[j]-t0.Data[j])
		}
		sa[k] = t
	}
	stats := map[int][2][]float64{}
	h := mat.DenseCopyOf(x)
	for l, layer := range m.Layers {
		p := m.LayerParams(sa, l)
		b, ok := layer.(*nn.BatchNorm)
		if !ok {
			h = layer.Forward(p, h)
			continue
		}
		n, c := h.Dims()
		mean, vr := make([]float64, c), make([]float64, c)
		for j := 0; j < c; j++ {
			for i := 0; i < r; i++ {
				mean[j] += h.At(i, j) / float64(r)
			}
			for i := 0; i < r; i++ {
				d := h.At(i, j) - mean[j]
				vr[j] += d * d / float64(r)
			}
		}
		stats[l] = [2][]float64{mean, vr}
		y := mat.NewDense(n, c, nil)
		for i := 0; i < n; i++ {
			for j := 0; j < c; j++ {
				y.Set(i, j, p[0].Data[j]*(h.At(i, j)-mean[j])/math.Sqrt(vr[j]+b.Eps)+p[1].Data[j])
			}
		}
		h = y
	}
	return h, stats
}

// TestRecomputeMatchesFiniteDifferences: under the `recompute` policy, γ, γ′
// and γ″ from the second-order pass (JetChunk via At, chunked, the reference
// batch a strict prefix of the examples) agree with the from-scratch γ(α)
// of recomputeOracle and with its central differences, for random smooth
// nets with BatchNorm; the per-row-α pass (rowJet, distinct α per row)
// agrees with At.
func TestRecomputeMatchesFiniteDifferences(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m, s0, sT, x, tg := bnNet(t, "tanh")
		n, _ := x.Dims()
		ref := rapid.IntRange(3, n).Draw(t, "ref") // two rows have σ² = 0 where their difference crosses 0
		p, err := New(m, s0, sT, x, tg, Options{Chunk: rapid.IntRange(1, 3).Draw(t, "chunk"), BNPolicy: BNRecompute, BNReference: ref})
		if err != nil {
			t.Fatal(err)
		}
		if p.BNPolicy() != BNRecompute || p.BNReference() != ref {
			t.Fatalf("policy %q reference %d, want recompute %d", p.BNPolicy(), p.BNReference(), ref)
		}
		alpha := rapid.Float64Range(-0.2, 1.2).Draw(t, "alpha")
		s := p.At(alpha)
		g := func(a float64) *mat.Dense { y, _ := recomputeOracle(m, s0, sT, x, ref, a); return y }
		// Central differences with one Richardson step (error O(h⁴)) at
		// several h: the nearest must agree. Small reference batches make the
		// path turn sharply where a variance gets small, so no single h suits
		// every draw; a wrong jet disagrees at every h.
		g0 := g(alpha)
		_, k := g0.Dims()
		best1 := make([]float64, n*k)
		best2 := make([]float64, n*k)
		for q := range best1 {
			best1[q], best2[q] = math.Inf(1), math.Inf(1)
		}
		for _, h := range []float64{1e-2, 2e-3, 5e-4, 1e-4, 2e-5} {
			gs := map[float64]*mat.Dense{}
			for _, d := range []float64{-h, -h / 2, h / 2, h} {
				gs[d] = g(alpha + d)
			}
			for i := 0; i < n; i++ {
				for c := 0; c < k; c++ {
					d1 := func(e float64) float64 { return (gs[e].At(i, c) - gs[-e].At(i, c)) / (2 * e) }
					d2 := func(e float64) float64 { return (gs[e].At(i, c) - 2*g0.At(i, c) + gs[-e].At(i, c)) / (e * e) }
					w1, w2 := (4*d1(h/2)-d1(h))/3, (4*d2(h/2)-d2(h))/3
					e1 := math.Abs(s.Velocity.At(i, c)-w1) / (1 + math.Abs(w1))
					e2 := math.Abs(s.Acceleration.At(i, c)-w2) / (1 + math.Abs(w2))
					best1[i*k+c] = math.Min(best1[i*k+c], e1)
					best2[i*k+c] = math.Min(best2[i*k+c], e2)
				}
			}
		}
		for i := 0; i < n; i++ {
			for c := 0; c < k; c++ {
				if w, v := g0.At(i, c), s.Output.At(i, c); math.Abs(v-w) > 1e-12*(1+math.Abs(w)) {
					t.Fatalf("γ[%d,%d](%v) = %v, from scratch %v", i, c, alpha, v, w)
				}
				if e := best1[i*k+c]; e > 1e-6 {
					t.Fatalf("γ′[%d,%d](%v) = %v: relative difference %g from central differences", i, c, alpha, s.Velocity.At(i, c), e)
				}
				if e := best2[i*k+c]; e > 1e-5 {
					t.Fatalf("γ″[%d,%d](%v) = %v: relative difference %g from central differences", i, c, alpha, s.Acceleration.At(i, c), e)
				}
			}
		}
		// The per-row pass, each row at its own α.
		checkRowJet(t, p, n, k, alpha)
	})
}

// TestRecomputeVersusInterpolate: the two policies differ when the running
// statistics are not the reference batch's, and give the same γ at α = 0
// and α = 1 when θ0's and θT's running statistics are set to the reference
// batch's statistics there (biased variance), layer by layer.
func TestRecomputeVersusInterpolate(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m, s0, sT, x, tg := bnNet(t, "tanh")
		n, _ := x.Dims()
		ref := rapid.IntRange(3, n).Draw(t, "ref") // two rows have σ² = 0 where their difference crosses 0
		paths := func() (*Path, *Path) {
			pi, err := New(m, s0, sT, x, tg, Options{BNPolicy: BNInterpolate})
			if err != nil {
				t.Fatal(err)
			}
			pr, err := New(m, s0, sT, x, tg, Options{BNPolicy: BNRecompute, BNReference: ref})
			if err != nil {
				t.Fatal(err)
			}
			return pi, pr
		}
		pi, pr := paths()
		if pi.BNPolicy() != BNInterpolate {
			t.Fatalf("policy %q", pi.BNPolicy())
		}
		// Random running statistics (mean ~ N(0,1), var in [0.2, 1.2]) are not
		// the batch's: the outputs differ somewhere on the line.
		maxDiff := 0.0
		for _, a := range []float64{0, 0.5, 1} {
			d := mat.NewDense(n, pi.K, nil)
			d.Sub(pi.At(a).Output, pr.At(a).Output)
			maxDiff = math.Max(maxDiff, mat.Norm(d, math.Inf(1)))
		}
		if !(maxDiff > 1e-6) {
			t.Fatalf("policies agree (max difference %g) with running statistics unlike the batch's", maxDiff)
		}
		for _, end := range []struct {
			s nn.State
			a float64
		}{{s0, 0}, {sT, 1}} {
			_, st := recomputeOracle(m, s0, sT, x, ref, end.a)
			for l, ms := range st {
				copy(end.s[nn.ParamKey(l, "running_mean")].Data, ms[0])
				copy(end.s[nn.ParamKey(l, "running_var")].Data, ms[1])
			}
		}
		pi, pr = paths()
		for _, a := range []float64{0, 1} {
			yi, yr := pi.At(a).Output, pr.At(a).Output
			for i := 0; i < n; i++ {
				for c := 0; c < pi.K; c++ {
					if d := math.Abs(yi.At(i, c) - yr.At(i, c)); d > 1e-12*(1+math.Abs(yr.At(i, c))) {
						t.Fatalf("α=%v γ[%d,%d]: interpolate %v, recompute %v", a, i, c, yi.At(i, c), yr.At(i, c))
					}
				}
			}
		}
	})
}

// TestBNPolicyOptions: unknown policies and a reference batch of one are
// refused; a path without BatchNorm reports "none"; the reference is capped
// at N.
func TestBNPolicyOptions(t *testing.T) {
	p := smallNet(t, []int{2, 3, 2}, "tanh", 4, 1)
	if p.BNPolicy() != BNNone {
		t.Errorf("no BatchNorm: policy %q, want none", p.BNPolicy())
	}
	m, err := nn.Build(nn.InsertBatchNorm(nn.MLPSpec([]int{2, 3, 2}, "tanh", "mse")))
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	x := mat.NewDense(3, 2, []float64{1, 2, 3, 4, 5, 7})
	tg := nn.Targets{Labels: []int{0, 1, 0}}
	if _, err := New(m, s0, sT, x, tg, Options{BNPolicy: "running"}); err == nil {
		t.Error("unknown policy accepted")
	}
	if _, err := New(m, s0, sT, x, tg, Options{BNPolicy: BNRecompute, BNReference: 1}); err == nil {
		t.Error("a reference batch of one accepted")
	}
	q, err := New(m, s0, sT, x, tg, Options{BNPolicy: BNRecompute})
	if err != nil {
		t.Fatal(err)
	}
	if q.BNReference() != 3 || q.BNPolicy() != BNRecompute {
		t.Errorf("reference %d policy %q, want 3 (all of N < 256) and recompute", q.BNReference(), q.BNPolicy())
	}
	q, _ = New(m, s0, sT, x, tg, Options{})
	if q.BNPolicy() != BNInterpolate || q.BNReference() != 0 {
		t.Errorf("default: policy %q reference %d, want interpolate, 0", q.BNPolicy(), q.BNReference())
	}
}

// checkRowJet draws 4 (example, α) rows, α among alpha, 0, 1 and 0.3, and
// checks that the per-row pass (rowJet, each row at its own α) gives the
// output, velocity and acceleration of p.At at that α (rowJetMismatch);
// n is p's example count, k its output width.
func checkRowJet(t *rapid.T, p *Path, n, k int, alpha float64) {
	rows := make([]int, 4)
	alphas := make([]float64, 4)
	for r := range rows {
		rows[r] = rapid.IntRange(0, n-1).Draw(t, "row")
		alphas[r] = rapid.SampledFrom([]float64{alpha, 0, 1, 0.3}).Draw(t, "row alpha")
	}
	if msg := rowJetMismatch(p, rows, alphas, k); msg != "" {
		t.Fatal(msg)
	}
}

// rowJetMismatch compares the per-row pass (rowJet) at rows/alphas with
// p.At at each row's α, part by part (γ, γ′, γ″), and describes the first
// entry that differs by more than 1e-11·(1 + s), s the largest |entry| of
// that part over ALL examples at that α ("" when none does).
//
// Why the part's largest entry and not the entry itself: under `recompute`
// the reference statistics (the batch mean and variance of every
// BatchNorm, and their α-derivatives) are shared by every row, and the two
// passes sum them in different orders. Their rounding error is ε times the
// size of the terms through 1/σ and 1/σ³, which is large when the
// reference batch is tiny (2 rows: σ is half their difference) and then
// shows in the largest |γ″| of the batch; a single row's γ″ can be small by
// cancellation and carries the same absolute error. Seed 0x66 of
// TestRecomputeInsideResidualBlocks (3 channels, k = 2, n = 4, reference
// 2 rows) has max |γ″| = 5.3e3 and an entry 3.38 off by 3.0e-10: 7e-11
// relative to that entry (the flake), 5.6e-14 relative to the part's
// largest; with 3 or 4 reference rows max |γ″| is 51–64 and the errors
// 1e-13 or less (TestRowJetTinyReferenceBatch).
func rowJetMismatch(p *Path, rows []int, alphas []float64, k int) string {
	j := p.rowJet(rows, alphas, nil, nil)
	for r, i := range rows {
		sr := p.At(alphas[r])
		for part, mm := range []*mat.Dense{sr.Output, sr.Velocity, sr.Acceleration} {
			var scale float64
			for _, v := range mm.RawMatrix().Data {
				scale = math.Max(scale, math.Abs(v))
			}
			for c := 0; c < k; c++ {
				want, got := mm.At(i, c), j.M.At(part*len(rows)+r, c)
				if math.Abs(got-want) > 1e-11*(1+scale) {
					return fmt.Sprintf("row %d (example %d, α=%v) part %d: per-row %v, At %v (largest |entry| of the part %v)", r, i, alphas[r], part, got, want, scale)
				}
			}
		}
	}
	return ""
}
