package certify

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// accuracyPath draws a random small MLP (tanh, relu or softplus, with or
// without batchnorm1d under either policy, mse or cross_entropy, 2–4
// outputs) between two initialisations at scales up to 3, on 3–25 random
// examples in chunks of 1–8.
func accuracyPath(t *rapid.T) *functionspace.Path {
	act := rapid.SampledFrom([]string{"relu", "tanh", "softplus"}).Draw(t, "act")
	loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
	bn := rapid.SampledFrom([]functionspace.BNPolicy{"", functionspace.BNInterpolate, functionspace.BNRecompute}).Draw(t, "bn")
	in := rapid.IntRange(1, 3).Draw(t, "in")
	k := rapid.IntRange(2, 4).Draw(t, "k")
	sizes := []int{in}
	for range rapid.IntRange(1, 2).Draw(t, "depth") {
		sizes = append(sizes, rapid.IntRange(2, 6).Draw(t, "hidden"))
	}
	sizes = append(sizes, k)
	spec := nn.MLPSpec(sizes, act, loss)
	if bn != "" {
		spec = nn.InsertBatchNorm(spec)
	}
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	rng := rand.New(rand.NewPCG(seed, 14))
	s0, _ := nn.Init(m, "pytorch", 1+2*rng.Float64(), seed)
	sT, _ := nn.Init(m, "pytorch", 1+2*rng.Float64(), seed+1)
	if bn != "" {
		testnets.RandomizeBatchNorm(m, rng, 0.1, s0, sT)
	}
	n := rapid.IntRange(3, 25).Draw(t, "n")
	x, tg := testnets.RandomData(rng, n, in, k, loss, 2)
	p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: rapid.IntRange(1, 8).Draw(t, "chunk"), BNPolicy: bn})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAccuracyBoundsContainDense is issue 14's "the accuracy bounds contain
// the dense accuracy at every α" as a property: on random small networks
// (accuracyPath), CertifyAccuracy's intervals cover [0, 1] in order, and at
// 1,001 equally spaced α plus 100 random ones, the float64 accuracy
// (functionspace, arg-max against the label or the target's arg-max) lies
// in [lo, hi] of the interval holding α — zero violations. The bounds are
// also tight where nothing changes: every example is decided at α = 0 and
// α = 1 (lo = hi there) unless the search stopped early.
func TestAccuracyBoundsContainDense(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := accuracyPath(t)
		a, err := CertifyAccuracy(context.Background(), p, AccuracyOptions{MaxIntervals: 256, MinWidth: 1e-5, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Intervals) == 0 || a.Intervals[0][0] != 0 || a.Intervals[len(a.Intervals)-1][1] != 1 {
			t.Fatalf("intervals do not cover [0, 1]: %v", a.Intervals)
		}
		for k, iv := range a.Intervals {
			if k > 0 && iv[0] != a.Intervals[k-1][1] || !(iv[0] < iv[1]) || !(0 <= iv[2] && iv[2] <= iv[3] && iv[3] <= 1) {
				t.Fatalf("interval %d: %v (previous %v)", k, iv, a.Intervals[max(k-1, 0)])
			}
		}
		rng := rand.New(rand.NewPCG(uint64(p.N), 3))
		var alphas []float64
		for j := 0; j <= 1000; j++ {
			alphas = append(alphas, float64(j)/1000)
		}
		for j := 0; j < 100; j++ {
			alphas = append(alphas, rng.Float64())
		}
		for _, al := range alphas {
			acc := p.At(al).Accuracy
			lo, hi, ok := a.At(al)
			if !ok || acc < lo || acc > hi {
				t.Fatalf("accuracy(%v) = %v outside the certified [%v, %v] (%v)", al, acc, lo, hi, ok)
			}
		}
		for _, end := range []float64{0, 1} {
			lo, hi, _ := a.At(end)
			if a.Converged && lo != hi {
				t.Fatalf("converged, but the bounds at α = %v are [%v, %v]", end, lo, hi)
			}
		}
	})
}

// TestAccuracyClosedForm: one linear layer without bias, two outputs
// γ = (w1·x, w2·x) with x = 1, label 0, the weights moving from (1, 0)
// to (0, 1): the margin is 1 − 2α, so the accuracy is 1 on [0, ½) and 0 on
// (½, 1]. The certified intervals say so up to the narrowest width around
// ½, with the two leaves meeting at ½ undecided ([0, 1]).
func TestAccuracyClosedForm(t *testing.T) {
	f := false
	m, err := nn.Build(&nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "cross_entropy",
		Layers: []nn.LayerSpec{{Type: "linear", In: 1, Out: 2, Bias: &f}}})
	if err != nil {
		t.Fatal(err)
	}
	s0 := nn.State{"0.weight": {Shape: []int{2, 1}, Data: []float64{1, 0}}}
	sT := nn.State{"0.weight": {Shape: []int{2, 1}, Data: []float64{0, 1}}}
	x := mat.NewDense(1, 1, []float64{1})
	p, err := functionspace.New(m, s0, sT, x, nn.Targets{Labels: []int{0}}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := CertifyAccuracy(context.Background(), p, AccuracyOptions{MinWidth: 1e-6, Tol: 1e-12})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Intervals) != 3 {
		t.Fatalf("intervals %v, want [0, a, 1, 1], [a, b, 0, 1], [b, 1, 0, 0]", a.Intervals)
	}
	l, mid, r := a.Intervals[0], a.Intervals[1], a.Intervals[2]
	if l[2] != 1 || l[3] != 1 || mid[2] != 0 || mid[3] != 1 || r[2] != 0 || r[3] != 0 || !(mid[0] < 0.5 && 0.5 < mid[1]) || mid[1]-mid[0] > 4e-6 {
		t.Errorf("intervals %v", a.Intervals)
	}
	if a.Converged || a.UndecidedLeaves != 2 {
		t.Errorf("converged %v, undecided leaves %d: the two leaves meeting at ½ (a bisection point) stay undecided", a.Converged, a.UndecidedLeaves)
	}
	// With the default tolerance the search stops once the undecided
	// length (here the band's mean width) is at most 1e-3.
	d, err := CertifyAccuracy(context.Background(), p, AccuracyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	und := 0.0
	for _, iv := range d.Intervals {
		und += (iv[1] - iv[0]) * (iv[3] - iv[2])
	}
	if und > 1e-3 || und < 2.5e-4 || !strings.Contains(d.Reason, "mean width") {
		t.Errorf("default tolerance: band mean width %v, reason %q", und, d.Reason)
	}
	// The plateau of accuracy 1 is certified up to the undecided leaf.
	if got := CertifiedPlateau(a, 0); math.Abs(got-mid[0]) > 0 || got < 0.5-4e-6 {
		t.Errorf("certified plateau %v, want %v", got, mid[0])
	}
}

// TestAnalyzeAccuracyBounds: the report of an analysis with the
// certificate (certify --run) has accuracy_bounds containing the dense
// accuracy at 1,001 α, and a certified_plateau α₀ on which the dense
// accuracy stays within plateau_tolerance of its value at α = 0 (and α₀ is
// where that first fails, up to the undecided leaves); without the
// certificate both are null with a note.
func TestAnalyzeAccuracyBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := accuracyPath(t)
		tol := rapid.SampledFrom([]float64{0, 0.01, 0.2}).Draw(t, "tolerance")
		r, err := Analyze(context.Background(), p, Options{Alphas: 11, LossOnly: true, Certificate: true, MaxIntervals: 64, AccuracyIntervals: 128, PlateauTolerance: tol})
		if err != nil {
			t.Fatal(err)
		}
		if r.AccuracyBounds == nil || r.CertifiedPlateau == nil {
			t.Fatalf("accuracy_bounds %v, certified_plateau %v", r.AccuracyBounds, r.CertifiedPlateau)
		}
		acc0 := p.At(0).Accuracy
		pl := *r.CertifiedPlateau
		for j := 0; j <= 1000; j++ {
			al := float64(j) / 1000
			acc := p.At(al).Accuracy
			lo, hi, ok := r.AccuracyBounds.At(al)
			if !ok || acc < lo || acc > hi {
				t.Fatalf("accuracy(%v) = %v outside [%v, %v]", al, acc, lo, hi)
			}
			if al <= pl && math.Abs(acc-acc0) > tol+1e-12 {
				t.Fatalf("certified plateau %v (tolerance %v), but accuracy(%v) = %v and accuracy(0) = %v", pl, tol, al, acc, acc0)
			}
		}
	})
	p := accuracyPathFixed(t)
	r, err := Analyze(context.Background(), p, Options{Alphas: 5, LossOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	body, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if v, ok := m["accuracy_bounds"]; !ok || v != nil || m["certified_plateau"] != nil || !strings.Contains(string(body), "accuracy_bounds, certified_plateau: null, no certificate was attempted") {
		t.Errorf("without the certificate: accuracy_bounds %v (present %v), certified_plateau %v", v, ok, m["certified_plateau"])
	}
}

// accuracyPathFixed is one small tanh MLP path for tests that need no draw.
func accuracyPathFixed(t *testing.T) *functionspace.Path {
	m, err := nn.Build(nn.MLPSpec([]int{2, 4, 3}, "tanh", "cross_entropy"))
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	x, tg := testnets.RandomData(rand.New(rand.NewPCG(1, 2)), 8, 2, 3, "cross_entropy", 1)
	p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAccuracyInheritsDecided: the children of a split leaf keep the
// examples decided on it (surely right or surely wrong on [a, b] holds on
// every part) and classify only the undecided ones. On random small
// networks (accuracyPath), with and without the inheritance: both bounds
// contain the float64 accuracy at 1,001 α, they never conflict (their
// [lo, hi] intersect at every α), and at every α the bounds with the
// inheritance are at least as tight as without it wherever the two
// searches ended on the same leaves; and the inheritance happens (some
// (leaf, example) pairs are reused).
func TestAccuracyInheritsDecided(t *testing.T) {
	reused, same := 0, 0
	cases := 0
	rapid.Check(t, func(t *rapid.T) {
		cases++
		p := accuracyPath(t)
		run := func(inherit bool) (*AccuracyBounds, int, []float64) {
			obj := &AccuracyObjective{Workers: 1, Tol: 1e-4, noInherit: !inherit}
			runAccuracySearch(t, p, obj)
			return obj.Result, obj.rowsReused, obj.leafEnds
		}
		on, n, ends := run(true)
		off, n0, ends0 := run(false)
		if n0 != 0 {
			t.Fatalf("%d rows reused with the inheritance off", n0)
		}
		reused += n
		sameLeaves := slices.Equal(ends, ends0)
		if sameLeaves {
			same++
		}
		checkAccuracyOnOff(t, p, on, off, sameLeaves, "with inheritance")
	})
	t.Logf("%d cases: %d (leaf, example) pairs inherited, %d searches ended on the same leaves", cases, reused, same)
	if reused == 0 {
		t.Errorf("no (leaf, example) pair was inherited in %d cases", cases)
	}
}

// TestAccuracyTwoStageSameVerdicts: count classifies a leaf by the
// outputs' enclosure alone first and runs the order-1 and midpoint passes
// only on the examples that leaves undecided. On random small networks
// and random leaves [a, b], its verdicts (surely right, surely wrong,
// undecided, example by example) are exactly those of the one-stage
// classification it replaced (the order-1 pass and the midpoint pass on
// every example, each margin's enclosure intersected with the mean-value
// form), written out here; and so are those of count with a parent that
// leaves every example undecided, which runs that one-stage classification
// itself.
func TestAccuracyTwoStageSameVerdicts(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := accuracyPath(t)
		ip, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		o := &AccuracyObjective{noSplit: true} // the midpoint by the box rule, as written out below
		o.begin(ip)
		a := rapid.Float64Range(0, 1).Draw(t, "a")
		b := math.Min(1, a+rapid.SampledFrom([]float64{0, 1e-4, 1e-2, 0.1, 1}).Draw(t, "w"))
		got := o.count(a, b, nil)
		// with a parent listing every example undecided (as a split leaf's
		// or the certificate's verdicts do), count runs the one-stage
		// classification itself (acc-5000): the same verdicts
		all := &accCount{undecided: make([][]int32, len(ip.chunks))}
		for ch, rg := range ip.chunks {
			for r := 0; r < rg[1]-rg[0]; r++ {
				all.undecided[ch] = append(all.undecided[ch], int32(r))
			}
		}
		gotP := o.count(a, b, all)
		// the one-stage classification
		ab := interval.I{Lo: a, Hi: b}
		m := 0.5*a + 0.5*b
		outs, mids := ip.Outputs(ab, 1), ip.Outputs(interval.Point(m), 0)
		off := interval.Sub(ab, interval.Point(m))
		right, wrong := 0, 0
		var und []int
		for ch, rg := range ip.chunks {
			j := outs[ch]
			for r := 0; r < j.N; r++ {
				y := o.labels[rg[0]+r]
				ok, bad := true, false
				for k := 0; k < j.D; k++ {
					if k == y {
						continue
					}
					d := interval.Sub(j.V.At(r, y), j.V.At(r, k))
					if a < b && !j.Jumped(r) {
						mc := interval.Sub(mids[ch].V.At(r, y), mids[ch].V.At(r, k))
						mv := interval.Add(mc, interval.Mul(interval.Sub(j.D1.At(r, y), j.D1.At(r, k)), off))
						if x := interval.Intersect(d, mv); x.Valid() {
							d = x
						}
					}
					ok = ok && d.Lo > 0
					bad = bad || d.Hi < 0
				}
				switch {
				case ok:
					right++
				case bad:
					wrong++
				default:
					und = append(und, rg[0]+r)
				}
			}
		}
		var gotUnd []int
		for ch, rows := range got.undecided {
			for _, r := range rows {
				gotUnd = append(gotUnd, ip.chunks[ch][0]+int(r))
			}
		}
		if got.right != right || got.wrong != wrong || !slices.Equal(gotUnd, und) {
			t.Fatalf("[%v, %v]: two-stage right %d wrong %d undecided %v, one-stage right %d wrong %d undecided %v", a, b, got.right, got.wrong, gotUnd, right, wrong, und)
		}
		var gotPUnd []int
		for ch, rows := range gotP.undecided {
			for _, r := range rows {
				gotPUnd = append(gotPUnd, ip.chunks[ch][0]+int(r))
			}
		}
		if gotP.right != right || gotP.wrong != wrong || !slices.Equal(gotPUnd, und) {
			t.Fatalf("[%v, %v]: with a parent right %d wrong %d undecided %v, one-stage right %d wrong %d undecided %v", a, b, gotP.right, gotP.wrong, gotPUnd, right, wrong, und)
		}
	})
}

// TestAccuracyCancelledStopsBounding: a search cancelled while its first
// leaves are bounded stops enclosing at once (a SIGTERM during the accuracy
// phase used to wait for every leaf of the round) and returns the
// cancellation, never bounds.
func TestAccuracyCancelledStopsBounding(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := accuracyPath(t)
		if p.OnePoint() {
			t.Skip("a constant line has no leaves")
		}
		ctx, cancel := context.WithCancel(context.Background())
		calls, at := 0, -1
		var ip *IntervalPath
		co := CertifyOptions{MaxIntervals: 64, MinWidth: 1e-5, Workers: 1}
		co.afterSubBatch = func(int, int) { // the initial leaves' one sub-batch ends just before the first Bound
			if calls++; calls == 1 {
				at = ip.evals
				cancel()
			}
		}
		co.defaults()
		var err error
		if ip, err = NewIntervalPath(p); err != nil {
			t.Fatal(err)
		}
		ip.outputsOnly = true
		obj := &AccuracyObjective{MinWidth: co.MinWidth, MaxIntervals: co.MaxIntervals, Workers: 1, Tol: 1e-4, ctx: ctx}
		err = BranchAndBound(ctx, ip, obj, co)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
		if at < 0 || ip.evals != at || obj.Result != nil && len(obj.Result.Intervals) > 0 {
			t.Fatalf("cancelled before the first bound (%d passes), yet %d passes ran and result %+v", at, ip.evals, obj.Result)
		}
	})
}

// checkAccuracyOnOff checks two accuracy searches of p, one with a
// speed-up (what names it) and one without, against the dense accuracy at
// 1001 α in [0, 1]: both must enclose it, and on the same leaves
// (sameLeaves) the one with the speed-up must be at least as tight.
func checkAccuracyOnOff(t *rapid.T, p *functionspace.Path, on, off *AccuracyBounds, sameLeaves bool, what string) {
	for j := 0; j <= 1000; j++ {
		al := float64(j) / 1000
		acc := p.At(al).Accuracy
		lo, hi, ok := on.At(al)
		lo0, hi0, ok0 := off.At(al)
		if !ok || !ok0 || acc < lo || acc > hi || acc < lo0 || acc > hi0 {
			t.Fatalf("α = %v: accuracy %v, %s [%v, %v], without [%v, %v]", al, acc, what, lo, hi, lo0, hi0)
		}
		if sameLeaves && (lo < lo0 || hi > hi0) {
			t.Fatalf("α = %v: %s [%v, %v] looser than without [%v, %v] on the same %d leaves", al, what, lo, hi, lo0, hi0, on.Leaves)
		}
	}
}

// runAccuracySearch runs the accuracy search obj on a fresh outputs-only
// interval path of p with the small budget of the on/off tests (128
// leaves, narrowest leaf 1e-5, one worker), which it also sets in obj.
func runAccuracySearch(t *rapid.T, p *functionspace.Path, obj *AccuracyObjective) {
	ip, err := NewIntervalPath(p)
	if err != nil {
		t.Fatal(err)
	}
	ip.outputsOnly = true
	co := CertifyOptions{MaxIntervals: 128, MinWidth: 1e-5, Workers: 1}
	co.defaults()
	obj.MinWidth, obj.MaxIntervals = co.MinWidth, co.MaxIntervals
	if err := BranchAndBound(context.Background(), ip, obj, co); err != nil {
		t.Fatal(err)
	}
}

// TestAccuracyProgressAfterItsWork: the accuracy search reports its count
// once the round's leaves are bounded (its work: the outputs are enclosed
// in Bound), so the first report at the budget comes after every interval
// pass (the bar read "accuracy finished" while the last round's Bound ran
// for minutes on a resnet), and the count never falls.
func TestAccuracyProgressAfterItsWork(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := accuracyPath(t)
		if p.OnePoint() {
			t.Skip("a constant line has no leaves")
		}
		budget := rapid.SampledFrom([]int{32, 48, 64}).Draw(t, "budget")
		var ip *IntervalPath
		atFull, last := -1, 0
		co := CertifyOptions{MaxIntervals: budget, MinWidth: 1e-5, Workers: 1, Progress: func(_ string, done, total int) {
			if done < last {
				t.Fatalf("progress fell from %d to %d", last, done)
			}
			last = done
			if total > 0 && done >= total && atFull < 0 {
				atFull = ip.evals
			}
		}}
		co.defaults()
		var err error
		if ip, err = NewIntervalPath(p); err != nil {
			t.Fatal(err)
		}
		ip.outputsOnly = true
		obj := &AccuracyObjective{MinWidth: co.MinWidth, MaxIntervals: co.MaxIntervals, Workers: 1, Tol: 1e-4, ctx: context.Background()}
		if err := BranchAndBound(context.Background(), ip, obj, co); err != nil {
			t.Fatal(err)
		}
		if atFull != ip.evals {
			t.Fatalf("the first report at the budget came after %d interval passes of %d", atFull, ip.evals)
		}
	})
}
