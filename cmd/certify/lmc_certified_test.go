package main

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-mli/certify/align"
	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// lmcPair is a pair of run directories A, B of one small MLP, with the
// path between them for dense evaluation. A is a random initialisation
// (scale up to 3) and B = P(A) for a random permutation P of the hidden
// units plus a little noise (0.05 relative), so the two compute nearly one
// function while the line between them leaves it: the targets are A's own
// predictions (labels: its arg-max, a quarter of them redrawn; mse: its
// outputs plus noise), and the loss rises above its chord in between.
type lmcPair struct {
	a, b string
	path *functionspace.Path
}

func newLMCPair(t *testing.T, rng *rand.Rand, act string, bn bool, loss string) lmcPair {
	t.Helper()
	in, h, k := 2+rng.IntN(3), 3+rng.IntN(5), 3
	spec := nn.MLPSpec([]int{in, h, h, k}, act, loss)
	if bn {
		spec = nn.InsertBatchNorm(spec)
	}
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := nn.Init(m, "pytorch", 1+2*rng.Float64(), rng.Uint64())
	if bn {
		testnets.RandomizeBatchNorm(m, rng, 0.3, sa)
	}
	perms := map[string][]int{}
	lin := 0
	for i, l := range spec.Layers {
		if l.Type == "linear" {
			if lin < 2 {
				perms[strconv.Itoa(i)] = rng.Perm(h)
			}
			lin++
		}
	}
	sb, err := align.Permute(spec, sa, perms)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sb.Names() {
		if strings.HasSuffix(name, "running_var") {
			continue
		}
		for i, v := range sb[name].Data {
			sb[name].Data[i] = v + 0.05*math.Abs(v)*rng.NormFloat64()
		}
	}
	x, tg := testnets.RandomData(rng, 6+rng.IntN(10), in, k, loss, 2)
	pa, err := functionspace.NewLine(m, functionspace.Line{Start: sa, End: sa}, x, tg, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := pa.At(0).Output
	n, _ := x.Dims()
	if tg.Labels != nil {
		for i := 0; i < n; i++ {
			tg.Labels[i] = argmaxRow(out.RawRowView(i))
			if rng.IntN(4) == 0 {
				tg.Labels[i] = rng.IntN(k)
			}
		}
	} else {
		for i := 0; i < n; i++ {
			for c, v := range out.RawRowView(i) {
				tg.Values.Set(i, c, v+0.3*rng.NormFloat64())
			}
		}
	}
	a, b := t.TempDir(), t.TempDir()
	writeRunDir(t, a, spec, sb, sa, "F64", x, tg)
	writeRunDir(t, b, spec, sa, sb, "F64", x, tg)
	p, err := functionspace.NewLine(m, functionspace.Line{Start: sa, End: sb}, x, tg, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return lmcPair{a, b, p}
}

func argmaxRow(x []float64) int {
	b := 0
	for j, v := range x {
		if v > x[b] {
			b = j
		}
	}
	return b
}

// denseBarrier is max_α g(α), g(α) = L(α) − ((1−α)L(0) + αL(1)), by
// float64 evaluation on 20,001 equally spaced α, then on two finer grids of
// 401 α around the best point; it returns the maximum, its α and the loss scale for the
// float64 rounding slack.
func denseBarrier(p *functionspace.Path) (best, at, scale float64) {
	l0, l1 := p.At(0).Loss, p.At(1).Loss
	g := func(a float64) float64 { return p.At(a).Loss - ((1-a)*l0 + a*l1) }
	const n = 20001
	best, at = math.Inf(-1), 0
	for j := 0; j < n; j++ {
		a := float64(j) / (n - 1)
		if v := g(a); v > best {
			best, at = v, a
		}
	}
	// local refinement: two finer grids of 401 α around the best point
	h := 1.0 / (n - 1)
	for round := 0; round < 2; round++ {
		c := at
		for j := -200; j <= 200; j++ {
			a := math.Min(1, math.Max(0, c+h*float64(j)/200))
			if v := g(a); v > best {
				best, at = v, a
			}
		}
		h /= 200
	}
	return best, at, 1 + math.Abs(l0) + math.Abs(l1)
}

type lmcCertJSON struct {
	BarrierLoss    float64     `json:"barrier_loss"`
	BarrierBounds  *[2]float64 `json:"barrier_bounds"`
	BarrierWitness *float64    `json:"barrier_witness"`
	Loss           []float64   `json:"loss"`
	Cert           *struct {
		Converged bool `json:"converged"`
	} `json:"barrier_certificate"`
	AccuracyBounds     *certify.AccuracyBounds `json:"accuracy_bounds"`
	BarrierErrorBounds *[2]float64             `json:"barrier_error_bounds"`
	Notes              []string                `json:"notes"`
}

// TestLMCCertifiedBarrierDense is issue 14's "certified numbers are sound
// and tight" for the barrier, on the command line: on small tanh, ReLU and
// BatchNorm MLPs (cross-entropy and mse) between two independent
// initialisations, `certify lmc A B --delta-tol 1e-7` writes barrier_bounds
// that contain the dense maximum of g (20,001 α and local refinement;
// THEORY.md §10), a witness α whose float64 g is at least the lower bound,
// and bounds narrower than 1e-6 relative to max(|L(A)|, |L(B)|); with the
// default --delta-tol 1e-3 they still contain the dense maximum. With class
// labels, accuracy_bounds contain the dense accuracy at 20,001 α and at
// both ends of every interval, and barrier_error_bounds the largest
// error convexity gap at those α; with float targets they are null.
func TestLMCCertifiedBarrierDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 1))
	cases := []struct {
		act  string
		bn   bool
		loss string
	}{
		{"tanh", false, "cross_entropy"}, {"relu", false, "cross_entropy"}, {"relu", true, "cross_entropy"},
		{"tanh", true, "mse"}, {"relu", false, "mse"}, {"tanh", false, "mse"},
	}
	positive := 0
	for i, tc := range cases {
		pr := newLMCPair(t, rng, tc.act, tc.bn, tc.loss)
		dense, at, scale := denseBarrier(pr.path)
		if dense > 1e-3 {
			positive++
		}
		for _, tol := range []string{"1e-7", "1e-3"} {
			code, so, se := runCLI(t, "lmc", pr.a, pr.b, "--alphas", "11", "--delta-tol", tol, "--json", "--workers", "1")
			if code != 0 {
				t.Fatalf("case %d: exit %d: %s", i, code, se)
			}
			var r lmcCertJSON
			if err := json.Unmarshal([]byte(so), &r); err != nil {
				t.Fatal(err)
			}
			if r.BarrierBounds == nil || r.BarrierWitness == nil {
				t.Fatalf("case %d (%+v): barrier_bounds %v, witness %v; notes %v", i, tc, r.BarrierBounds, r.BarrierWitness, r.Notes)
			}
			lo, hi := r.BarrierBounds[0], r.BarrierBounds[1]
			slack := 1e-9 * scale
			if dense > hi+slack || lo > hi {
				t.Errorf("case %d (%+v, --delta-tol %s): dense max g(%v) = %.12g outside [%.12g, %.12g]", i, tc, tol, at, dense, lo, hi)
			}
			l0, l1 := pr.path.At(0).Loss, pr.path.At(1).Loss
			w := *r.BarrierWitness
			if gw := pr.path.At(w).Loss - ((1-w)*l0 + w*l1); gw < lo-slack {
				t.Errorf("case %d (%+v): g(witness %v) = %v below the lower bound %v", i, tc, w, gw, lo)
			}
			rel := math.Max(math.Abs(l0), math.Abs(l1))
			if tol == "1e-7" && (hi-lo > 1e-6*rel || !r.Cert.Converged) {
				t.Errorf("case %d (%+v): --delta-tol 1e-7: width %.3g, %.3g relative (converged %v)", i, tc, hi-lo, (hi-lo)/rel, r.Cert.Converged)
			}
			t.Logf("case %d (%+v, %s): B ∈ [%.10g, %.10g], dense %.10g at α = %.6g", i, tc, tol, lo, hi, dense, at)
			if tc.loss != "cross_entropy" {
				if r.AccuracyBounds != nil {
					t.Errorf("case %d: float targets, but accuracy_bounds %v", i, r.AccuracyBounds.Intervals)
				}
				continue
			}
			// The certified accuracy contains the dense accuracy at 20,001 α,
			// and on every interval [a, b, lo, hi] the accuracy at a, b and 7
			// points between them (the ends, where the bounds change, are
			// checked against both intervals that share them).
			if r.AccuracyBounds == nil {
				t.Fatalf("case %d: accuracy_bounds null; notes %v", i, r.Notes)
			}
			for j := 0; j <= 20000; j++ {
				al := float64(j) / 20000
				acc := pr.path.At(al).Accuracy
				if alo, ahi, ok := r.AccuracyBounds.At(al); !ok || acc < alo || acc > ahi {
					t.Fatalf("case %d: accuracy(%v) = %v outside the certified [%v, %v]", i, al, acc, alo, ahi)
				}
			}
			// The error barrier: max of g_E(α) = E(α) − chord over the 20,001 α
			// and every interval's points lies in barrier_error_bounds, and
			// reaches the lower bound (proven at an interval's end).
			e0, e1 := 1-pr.path.At(0).Accuracy, 1-pr.path.At(1).Accuracy
			gE := func(al float64) float64 { return (1 - pr.path.At(al).Accuracy) - ((1-al)*e0 + al*e1) }
			denseE := 0.0
			for j := 0; j <= 20000; j++ {
				denseE = math.Max(denseE, gE(float64(j)/20000))
			}
			for _, iv := range r.AccuracyBounds.Intervals {
				for j := 0; j <= 8; j++ {
					al := iv[0] + (iv[1]-iv[0])*float64(j)/8
					if acc := pr.path.At(al).Accuracy; acc < iv[2] || acc > iv[3] {
						t.Fatalf("case %d: accuracy(%v) = %v outside the certified [%v, %v] of [%v, %v]", i, al, acc, iv[2], iv[3], iv[0], iv[1])
					}
					denseE = math.Max(denseE, gE(al))
				}
			}
			if eb := r.BarrierErrorBounds; eb == nil || denseE < eb[0]-1e-9 || denseE > eb[1]+1e-9 {
				t.Errorf("case %d: dense error barrier %v outside barrier_error_bounds %v", i, denseE, eb)
			} else {
				t.Logf("case %d: error barrier %v ∈ %v", i, denseE, *eb)
			}
			t.Logf("case %d: %d accuracy intervals, %d leaves undecided", i, len(r.AccuracyBounds.Intervals), r.AccuracyBounds.UndecidedLeaves)
		}
	}
	if positive < 2 {
		t.Errorf("only %d networks have a barrier above 1e-3: the test does not exercise the bound", positive)
	}
}

// Without interval rules the certified keys are null with a note; with
// --no-certificate too.
func TestLMCNoCertificate(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	code, so, se := runCLI(t, "lmc", a, b, "--alphas", "5", "--json", "--no-certificate")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	var r lmcCertJSON
	if err := json.Unmarshal([]byte(so), &r); err != nil {
		t.Fatal(err)
	}
	if r.BarrierBounds != nil || r.BarrierWitness != nil || r.AccuracyBounds != nil || len(r.Notes) == 0 {
		t.Errorf("--no-certificate: %+v", r)
	}
	if code, _, se := runCLI(t, "lmc", a, b, "--json", "--delta-tol", "0"); code != 2 || !strings.Contains(se, "--delta-tol") {
		t.Errorf("--delta-tol 0: exit %d, %s", code, se)
	}
}
