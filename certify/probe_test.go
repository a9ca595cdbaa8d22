package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// randomFirstLayerPath draws a small ReLU MLP (one or two hidden layers)
// whose line moves only the first linear layer (the regime of the
// first-order probe, IntervalPath.probe): θT is θ0 with the first layer's
// biases shifted (often far down, so that units die along the line: flat
// stretches and tails) and its weights perturbed or not; every later
// tensor is the same at both ends.
func randomFirstLayerPath(t *rapid.T) *functionspace.Path {
	loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
	in := rapid.IntRange(1, 3).Draw(t, "in")
	hid := rapid.IntRange(1, 6).Draw(t, "hidden")
	k := rapid.IntRange(2, 3).Draw(t, "k")
	sizes := []int{in, hid, k}
	if rapid.Bool().Draw(t, "two hidden") {
		sizes = []int{in, hid, hid, k}
	}
	m, err := nn.Build(nn.MLPSpec(sizes, "relu", loss))
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", rapid.Float64Range(0.5, 3).Draw(t, "scale"), seed)
	sT := s0.Clone()
	rng := rand.New(rand.NewPCG(seed, 5))
	shift := rapid.Float64Range(-6, 3).Draw(t, "shift")
	for j, v := range sT["0.bias"].Data {
		sT["0.bias"].Data[j] = v + shift*rng.Float64() + 0.5*rng.NormFloat64()
	}
	if rapid.Bool().Draw(t, "move weights") {
		for j, v := range sT["0.weight"].Data {
			sT["0.weight"].Data[j] = v + 0.5*rng.NormFloat64()
		}
	}
	n := rapid.IntRange(1, 8).Draw(t, "n")
	x, tg := testnets.RandomData(rng, n, in, k, loss, 2)
	p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: rapid.IntRange(1, 4).Draw(t, "chunk")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProbeContainsDerivative: on random lines that move only the first
// layer, a leaf the first-order probe settles (probeLeaves) has L′ ≤ 0
// there: L′ computed in float64 by functionspace at random α inside lies in
// its DL (whose sup is ≤ 0), L at random α inside lies in its LR, L(b) −
// L(a) is at most its Integral (≤ 0), and its midpoint is marked not
// evaluated. Slack 1e-10 relative covers functionspace's own rounding.
// Leaves the probe does not settle are returned, untouched, in order.
func TestProbeContainsDerivative(t *testing.T) {
	settledDraws := 0
	rapid.Check(t, func(t *rapid.T) {
		p := randomFirstLayerPath(t)
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		if e.dead == nil {
			t.Fatalf("a line moving only the first layer: the probe's regime (deadApplies) not recognised")
		}
		var ls []*Leaf
		for q := rapid.IntRange(1, 4).Draw(t, "leaves"); q > 0; q-- {
			a := rapid.Float64Range(0, 1).Draw(t, "a")
			w := rapid.SampledFrom([]float64{1e-6, 1e-3, 1.0 / 32, 0.25}).Draw(t, "width")
			ls = append(ls, &Leaf{A: a, B: math.Min(a+w, 1)})
		}
		rest, err := e.probeLeaves(context.Background(), ls, 2)
		if err != nil {
			t.Fatal(err)
		}
		left := map[*Leaf]bool{}
		for q, l := range rest {
			left[l] = true
			if q > 0 && !(indexOf(ls, rest[q-1]) < indexOf(ls, l)) {
				t.Fatalf("unsettled leaves out of order")
			}
		}
		slack := func(v float64) float64 { return 1e-10 * (1 + math.Abs(v)) }
		for _, l := range ls {
			if left[l] {
				if l.DL != (interval.I{}) || l.LC != (interval.I{}) || l.Rise != 0 || l.Integral != 0 {
					t.Fatalf("unsettled leaf [%v, %v] was filled in: DL %v, LC %v", l.A, l.B, l.DL, l.LC)
				}
				continue
			}
			settledDraws++
			if !(l.DL.Hi <= 0) || l.LC != wholeLine || l.DLC != wholeLine || l.Rise != 0 || l.Jump {
				t.Fatalf("settled leaf [%v, %v]: DL %v, LC %v, DLC %v, Rise %v, Jump %v", l.A, l.B, l.DL, l.LC, l.DLC, l.Rise, l.Jump)
			}
			for q := 0; q < 5; q++ {
				al := l.A + (l.B-l.A)*rapid.Float64Range(0, 1).Draw(t, "u")
				pt := p.At(al)
				if d := pt.DLoss; d < l.DL.Lo-slack(d) || d > l.DL.Hi+slack(d) {
					t.Fatalf("L′(%v) = %v outside the probe's [%v, %v] on [%v, %v]", al, d, l.DL.Lo, l.DL.Hi, l.A, l.B)
				}
				if v := pt.Loss; v < l.LR.Lo-slack(v) || v > l.LR.Hi+slack(v) {
					t.Fatalf("L(%v) = %v outside the probe's [%v, %v]", al, v, l.LR.Lo, l.LR.Hi)
				}
			}
			if rise := p.At(l.B).Loss - p.At(l.A).Loss; rise > l.Integral+slack(rise)+1e-12 || l.Integral > 1e-300 {
				t.Fatalf("L(b) − L(a) = %v, integral bound %v on [%v, %v]", rise, l.Integral, l.A, l.B)
			}
		}
	})
	if settledDraws == 0 {
		t.Errorf("the probe settled no leaf: the test checks nothing")
	}
}

func indexOf(ls []*Leaf, l *Leaf) int {
	for k, x := range ls {
		if x == l {
			return k
		}
	}
	return -1
}

// TestProbeNeverCertifiesARise: on random lines that move only the first
// layer (where the monotonicity objective uses the first-order probe),
// whenever a dense grid of 400 α shows a rise above the tolerance (beyond
// float64 rounding) the certificate is not certified_monotone and its
// upper bound covers the rise; and on every settled final leaf (sup L′ ≤
// 0, the probe's leaves among them) L does not rise between 9 α inside.
func TestProbeNeverCertifiesARise(t *testing.T) {
	var probed, certified, nonMono int
	rapid.Check(t, func(t *rapid.T) {
		p := randomFirstLayerPath(t)
		tol := rapid.SampledFrom([]float64{0, 1e-6, 1e-3}).Draw(t, "tol")
		o := CertifyOptions{Tolerance: tol, MaxIntervals: 256, InitialIntervals: rapid.SampledFrom([]int{8, 32}).Draw(t, "initial"), Workers: 2}
		o.defaults()
		ip, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		if ip.deadLine() {
			return // decided before any leaf (TestDeadLineConstant)
		}
		mo := NewMonotonicity(o)
		if err := BranchAndBound(context.Background(), ip, mo, o); err != nil {
			t.Fatal(err)
		}
		cert := mo.Cert
		if !ip.probe {
			t.Fatalf("the probe is off on a line moving only the first layer")
		}
		probed += ip.probeSettled
		switch cert.Verdict {
		case CertifiedMonotone:
			certified++
		case NonMonotone:
			nonMono++
		}
		re := denseSound(t, p, cert, tol)
		for _, l := range cert.Intervals {
			if !(l.Sup <= 0) {
				continue
			}
			prev := p.At(l.A).Loss
			for q := 1; q <= 8; q++ {
				v := p.At(l.A + (l.B-l.A)*float64(q)/8).Loss
				if v-prev > re {
					t.Fatalf("settled leaf [%v, %v] (L′ ≤ %v): L rises by %v inside", l.A, l.B, l.Sup, v-prev)
				}
				prev = v
			}
		}
	})
	t.Logf("probe-settled leaves %d; verdicts: %d certified_monotone, %d non_monotone", probed, certified, nonMono)
	if probed == 0 || certified == 0 || nonMono == 0 {
		t.Errorf("the draws did not exercise the probe on both verdicts")
	}
}

// hiddenRisePath is a 1-3-2 ReLU line with cross-entropy (one example,
// x = 1, label 0) that moves only the first layer's biases, every unit
// dying along it: unit A (pre-activation 2 − 4α, feeding the wrong class)
// dies at α = 1/2, so L falls on [0, 1/2] and is exactly flat after (the
// probe's case, like the MNIST flat tail); units B (3 − 10α) and C
// (2.8 − 10α) feed ±0.6 to the right class and cancel while both are
// alive, so between C's death at 0.28 and B's at 0.3 the right class's
// logit falls by 6 per unit α against A's 4: L rises by about 0.027 on
// [0.28, 0.3], hidden inside the falling stretch.
func hiddenRisePath(t testing.TB) *functionspace.Path {
	m, err := nn.Build(nn.MLPSpec([]int{1, 3, 2}, "relu", "cross_entropy"))
	if err != nil {
		t.Fatal(err)
	}
	s0 := nn.State{
		"0.weight": {Shape: []int{3, 1}, Data: []float64{0, 0, 0}},
		"0.bias":   {Shape: []int{3}, Data: []float64{2, 3, 2.8}},
		"2.weight": {Shape: []int{2, 3}, Data: []float64{0, 0.6, -0.6, 1, 0, 0}},
		"2.bias":   {Shape: []int{2}, Data: []float64{0, 0}},
	}
	sT := s0.Clone()
	sT["0.bias"].Data = []float64{2 - 4, 3 - 10, 2.8 - 10}
	p, err := functionspace.New(m, s0, sT, mat.NewDense(1, 1, []float64{1}), nn.Targets{Labels: []int{0}}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProbeFindsHiddenRise: a rise of L hidden inside the falling stretch
// the first-order probe settles (hiddenRisePath: L falls on [0, 1/2]
// except for a rise of about 0.027 on [0.28, 0.3], flat after) is found.
// Of the 32 initial leaves the probe settles every one but the two that
// hold the rise, [0.25, 0.28125] and [0.28125, 0.3125]; the certificate
// is non_monotone with a witness inside the true rise, at tolerance 0 and
// 1e-3. A probe that settled a leaf by anything less than sup L′ ≤ 0 (or
// dropped a kinked example's enclosure) would certify this line.
func TestProbeFindsHiddenRise(t *testing.T) {
	p := hiddenRisePath(t)
	l := func(a float64) float64 { return p.At(a).Loss }
	if !(l(0) > l(0.28) && l(0.3) > l(0.28)+0.02 && l(0.3) > l(0.5) && l(0.5) == l(0.75) && l(0.75) == l(1)) {
		t.Fatalf("test path: L(0, 0.28, 0.3, 0.5, 0.75, 1) = %v %v %v %v %v %v", l(0), l(0.28), l(0.3), l(0.5), l(0.75), l(1))
	}
	ip, err := NewIntervalPath(p)
	if err != nil {
		t.Fatal(err)
	}
	var ls []*Leaf
	for k := 0; k < 32; k++ {
		ls = append(ls, &Leaf{A: float64(k) / 32, B: float64(k+1) / 32})
	}
	rest, err := ip.probeLeaves(context.Background(), ls, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 2 || rest[0].A != 0.25 || rest[1].A != 0.28125 {
		for _, r := range rest {
			t.Logf("not settled by the probe: [%v, %v]", r.A, r.B)
		}
		t.Fatalf("%d leaves left by the probe; want exactly the two holding the rise", len(rest))
	}
	for _, tol := range []float64{0, 1e-3} {
		o := CertifyOptions{Tolerance: tol}
		o.defaults()
		ip, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		mo := NewMonotonicity(o)
		if err := BranchAndBound(context.Background(), ip, mo, o); err != nil {
			t.Fatal(err)
		}
		c := mo.Cert
		t.Logf("tolerance %g: %s, Δ ∈ [%g, %g], %d leaves, %d settled by the probe", tol, c.Verdict, c.DeltaLower, c.DeltaUpper, c.Leaves, ip.probeSettled)
		if ip.probeSettled != 30 {
			t.Errorf("%d initial leaves settled by the probe, want 30", ip.probeSettled)
		}
		if c.Verdict != NonMonotone || c.Witness == nil {
			t.Fatalf("%s: want non_monotone", c.Verdict)
		}
		if w := c.Witness; w.Alpha < 0.25 || w.Beta > 0.3125 || w.Alpha >= w.Beta || w.Rise > l(w.Beta)-l(w.Alpha)+1e-12 {
			t.Errorf("witness %v → %v, rise %v: want inside the leaves holding [0.28, 0.3], at most the float64 rise %v", w.Alpha, w.Beta, w.Rise, l(w.Beta)-l(w.Alpha))
		}
	}
}
