package certify

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

func linspace(lo, hi float64, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = lo + (hi-lo)*float64(i)/float64(n-1)
	}
	x[n-1] = hi
	return x
}

// deltaBrute is the definition of THEORY.md §5, over all pairs.
func deltaBrute(loss []float64) float64 {
	d := 0.0
	for i := range loss {
		for j := i + 1; j < len(loss); j++ {
			d = math.Max(d, loss[j]-loss[i])
		}
	}
	return d
}

func TestDeltaAndBumpsTable(t *testing.T) {
	type bump struct {
		s, e   int
		height float64
	}
	for _, c := range []struct {
		loss  []float64
		delta float64
		bumps []bump
	}{
		{[]float64{3, 2, 1, 0.5}, 0, nil},
		{[]float64{3, 3, 3}, 0, nil}, // a plateau is not a rise
		{[]float64{3, 2, 2.5, 1}, 0.5, []bump{{1, 3, 0.5}}},
		// The rise over the last grid step: a bump ending at the last point.
		{[]float64{3, 2, 1, 1.5}, 0.5, []bump{{2, 3, 0.5}}},
		{[]float64{1, 2, 3}, 2, []bump{{0, 2, 2}}},
		// 4 → 4.5 returns below 4 at 3.9 (index 3); from 3.9 the loss never goes
		// below 3.9 again (3.95 is below 4.0 but not below the bump's start), so the
		// second bump runs to the end with height 4.6 − 3.9.
		{[]float64{5, 4, 4.5, 3.9, 4.0, 3.95, 4.6}, 0.7, []bump{{1, 3, 0.5}, {3, 6, 0.7}}},
		// Plateau before the rise: the bump starts at the plateau's last point.
		{[]float64{3, 2, 2, 2, 2.25, 1}, 0.25, []bump{{3, 5, 0.25}}},
		// A bump ends exactly where the next starts.
		{[]float64{2, 3, 1, 1.5, 0}, 1, []bump{{0, 2, 1}, {2, 4, 0.5}}},
		{[]float64{7}, 0, nil},
		{nil, 0, nil},
	} {
		if got := Delta(c.loss); math.Abs(got-c.delta) > 1e-15 {
			t.Errorf("Delta(%v) = %v, want %v", c.loss, got, c.delta)
		}
		if len(c.loss) == 0 {
			continue
		}
		alphas := linspace(0, 1, max(len(c.loss), 2))[:len(c.loss)]
		got := Bumps(alphas, c.loss)
		if len(got) != len(c.bumps) {
			t.Errorf("Bumps(%v) = %+v, want %v", c.loss, got, c.bumps)
			continue
		}
		for k, w := range c.bumps {
			g := got[k]
			if g.StartIndex != w.s || g.EndIndex != w.e || math.Abs(g.Height-w.height) > 1e-15 ||
				g.Start != alphas[w.s] || g.End != alphas[w.e] {
				t.Errorf("Bumps(%v)[%d] = %+v, want indices %d→%d height %v", c.loss, k, g, w.s, w.e, w.height)
			}
		}
	}
}

func TestDeltaNaN(t *testing.T) {
	if d := Delta([]float64{1, math.NaN(), 0}); !math.IsNaN(d) {
		t.Errorf("Delta with NaN = %v, want NaN", d)
	}
	defer func() {
		if recover() == nil {
			t.Error("Bumps with NaN did not panic")
		}
	}()
	Bumps([]float64{0, 1}, []float64{math.NaN(), 1})
}

// lossSeq draws loss sequences with ties and plateaus (values on a coarse lattice)
// as well as generic values.
func lossSeq(t *rapid.T) []float64 {
	n := rapid.IntRange(0, 40).Draw(t, "n")
	if rapid.Bool().Draw(t, "lattice") {
		ints := rapid.SliceOfN(rapid.IntRange(-4, 4), n, n).Draw(t, "ints")
		out := make([]float64, n)
		for i, v := range ints {
			out[i] = float64(v) / 4
		}
		return out
	}
	return rapid.SliceOfN(rapid.Float64Range(-10, 10), n, n).Draw(t, "loss")
}

func TestDeltaProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		loss := lossSeq(t)
		d := Delta(loss)
		if want := deltaBrute(loss); d != want {
			t.Fatalf("Delta = %v, brute force %v", d, want)
		}
		if len(loss) < 2 {
			return
		}
		alphas := linspace(0, 1, len(loss))
		bumps := Bumps(alphas, loss)
		maxH := 0.0
		prevEnd := 0
		for k, b := range bumps {
			s, e := b.StartIndex, b.EndIndex
			if !(s < e) || s < prevEnd || b.Start != alphas[s] || b.End != alphas[e] {
				t.Fatalf("bump %d %+v malformed (previous ended at %d)", k, b, prevEnd)
			}
			if !(loss[s+1] > loss[s]) {
				t.Fatalf("bump %d does not start before a strict rise", k)
			}
			top := math.Inf(-1)
			for i := s + 1; i < e; i++ {
				if loss[i] < loss[s] {
					t.Fatalf("bump %d: point %d drops below the start before the end", k, i)
				}
			}
			for i := s + 1; i <= e; i++ {
				top = math.Max(top, loss[i])
			}
			if e != len(loss)-1 && !(loss[e] < loss[s]) {
				t.Fatalf("bump %d ends at %d, not below its start and not at the end", k, e)
			}
			if b.Height != top-loss[s] || !(b.Height > 0) {
				t.Fatalf("bump %d height %v, want %v", k, b.Height, top-loss[s])
			}
			if h := deltaBrute(loss[s : e+1]); b.Height != h {
				t.Fatalf("bump %d height %v, but max rise inside is %v", k, b.Height, h)
			}
			// Between bumps the loss never rises.
			for i := prevEnd; i < s; i++ {
				if loss[i+1] > loss[i] {
					t.Fatalf("rise %d→%d outside every bump", i, i+1)
				}
			}
			prevEnd = e
			maxH = math.Max(maxH, b.Height)
		}
		for i := prevEnd; i+1 < len(loss); i++ {
			if loss[i+1] > loss[i] {
				t.Fatalf("rise %d→%d after the last bump", i, i+1)
			}
		}
		if d != maxH {
			t.Fatalf("Delta %v != max bump height %v (bumps %+v)", d, maxH, bumps)
		}
	})
}

// arcLoss is ℓ(α) = 4R² sin²(φ(1−α)/2) = 2R²(1 − cos φ(1−α)) for a circular arc of
// radius R and swept angle φ ending at the target (THEORY.md §6), with ℓ′.
func arcLoss(R, phi float64) func(float64) (float64, float64) {
	return func(a float64) (float64, float64) {
		u := phi * (1 - a)
		s := math.Sin(u / 2)
		return 4 * R * R * s * s, -2 * R * R * phi * math.Sin(u)
	}
}

func TestDeltaContinuousClosedForms(t *testing.T) {
	type pair struct{ from, to float64 }
	cos3 := func(a float64) (float64, float64) {
		return math.Cos(3 * math.Pi * a), -3 * math.Pi * math.Sin(3*math.Pi*a)
	}
	for _, c := range []struct {
		name     string
		f        func(float64) (float64, float64)
		lo, hi   float64
		n        int
		delta    float64
		pair     *pair // nil: not checked (Δ = 0)
		gridLess bool  // the n-point grid alone must underestimate Δ
	}{
		// Overshooting gradient step, THEORY.md §6: min at 2/3, L(1) = 0.25.
		{"(1-1.5α)^2", func(a float64) (float64, float64) { u := 1 - 1.5*a; return u * u, -3 * u }, 0, 1, 6, 0.25, &pair{2.0 / 3, 1}, true},
		// cos 3πα: extrema −1 at 1/3 and +1 at 2/3, none on the 8-point grid.
		{"cos 3πα", cos3, 0, 1, 8, 2, &pair{1.0 / 3, 2.0 / 3}, true},
		// On [0, 1/2] the rise goes from the minimum at 1/3 to the end, cos(3π/2) = 0.
		{"cos 3πα on [0,1/2]", cos3, 0, 0.5, 5, 1, &pair{1.0 / 3, 0.5}, true},
		// Circular arcs (R = 1): starting at u = φ ∈ (π, 2π), ℓ rises to 4 at u = π
		// (α = 1 − π/φ) and then falls to 0, so Δ = 4 − 4 sin²(φ/2) = 4 cos²(φ/2).
		{"arc φ=1.1π", arcLoss(1, 1.1*math.Pi), 0, 1, 50, 4 * math.Pow(math.Cos(0.55*math.Pi), 2), &pair{0, 1 - 1/1.1}, true},
		{"arc φ=1.5π", arcLoss(1, 1.5*math.Pi), 0, 1, 50, 2, &pair{0, 1 - 1/1.5}, true},
		// φ = 2.5π: ℓ first falls to 0 at u = 2π (α = 0.2), then rises to 4 at u = π (α = 0.6).
		{"arc φ=2.5π", arcLoss(1, 2.5*math.Pi), 0, 1, 50, 4, &pair{0.2, 0.6}, true},
		// R = 2 scales ℓ by R² = 4.
		{"arc R=2 φ=1.5π", arcLoss(2, 1.5*math.Pi), 0, 1, 50, 8, &pair{0, 1 - 1/1.5}, true},
		// Monotone for φ ≤ π.
		{"arc φ=0.9π", arcLoss(1, 0.9*math.Pi), 0, 1, 50, 0, nil, false},
	} {
		d, from, to := DeltaContinuous(c.f, c.lo, c.hi, c.n)
		if math.Abs(d-c.delta) > 1e-14*math.Max(1, c.delta) {
			t.Errorf("%s: Δ = %.17g, want %.17g", c.name, d, c.delta)
		}
		if c.pair != nil {
			// L is flat at an extremum, so its location is known to about √ulp.
			if math.Abs(from-c.pair.from) > 1e-7 || math.Abs(to-c.pair.to) > 1e-7 {
				t.Errorf("%s: pair (%v, %v), want (%v, %v)", c.name, from, to, c.pair.from, c.pair.to)
			}
			if lt, _ := c.f(to); true {
				lf, _ := c.f(from)
				if lt-lf != d {
					t.Errorf("%s: L(to) − L(from) = %v, Δ = %v", c.name, lt-lf, d)
				}
			}
		} else if from != c.lo || to != c.lo {
			t.Errorf("%s: Δ = 0 but pair (%v, %v), want (lo, lo)", c.name, from, to)
		}
		if c.gridLess {
			grid := linspace(c.lo, c.hi, c.n)
			loss := make([]float64, c.n)
			for i, a := range grid {
				loss[i], _ = c.f(a)
			}
			if g := Delta(loss); !(g < c.delta-1e-6) {
				t.Errorf("%s: grid Δ %v is not below the continuous %v: test does not exercise refinement", c.name, g, c.delta)
			}
		}
	}
	// THEORY.md §6 quotes Δ = 0.0979 for φ = 1.1π.
	if d, _, _ := DeltaContinuous(arcLoss(1, 1.1*math.Pi), 0, 1, 50); math.Abs(d-0.0979) > 5e-5 {
		t.Errorf("arc φ=1.1π: Δ = %v, THEORY.md says 0.0979", d)
	}
	// φ = π exactly is monotone: the rise is at most rounding.
	if d, _, _ := DeltaContinuous(arcLoss(1, math.Pi), 0, 1, 50); d > 1e-15 {
		t.Errorf("arc φ=π: Δ = %v, want 0", d)
	}
}

// polyFromRoots returns the coefficients (ascending) of c·∏(x − r_k).
func polyFromRoots(c float64, roots []float64) []float64 {
	p := []float64{c}
	for _, r := range roots {
		q := make([]float64, len(p)+1)
		for i, a := range p {
			q[i+1] += a
			q[i] -= r * a
		}
		p = q
	}
	return p
}

func polyEval(p []float64, x float64) float64 {
	v := 0.0
	for i := len(p) - 1; i >= 0; i-- {
		v = v*x + p[i]
	}
	return v
}

// TestDeltaContinuousPolynomial checks DeltaContinuous against an exact oracle: L′ is
// a polynomial with chosen, separated roots r_k, L = ∫L′, so the continuous Δ is
// Delta over L at lo, the roots inside (lo, hi), and hi.
func TestDeltaContinuousPolynomial(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := rapid.IntRange(0, 5).Draw(t, "k")
		roots := make([]float64, 0, k)
		for len(roots) < k {
			r := rapid.Float64Range(-0.2, 1.2).Draw(t, "root")
			ok := true
			for _, s := range roots {
				ok = ok && math.Abs(r-s) > 0.05
			}
			if ok {
				roots = append(roots, r)
			}
		}
		c := rapid.Float64Range(0.5, 20).Draw(t, "scale") * float64(1-2*rapid.IntRange(0, 1).Draw(t, "sign"))
		dp := polyFromRoots(c, roots)
		lp := make([]float64, len(dp)+1) // antiderivative
		lp[0] = rapid.Float64Range(-1, 1).Draw(t, "L0")
		for i, a := range dp {
			lp[i+1] = a / float64(i+1)
		}
		f := func(a float64) (float64, float64) { return polyEval(lp, a), polyEval(dp, a) }

		var pts []float64
		pts = append(pts, 0)
		sorted := append([]float64(nil), roots...)
		for i := range sorted { // insertion sort
			for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
				sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
			}
		}
		for _, r := range sorted {
			if r > 0 && r < 1 {
				pts = append(pts, r)
			}
		}
		pts = append(pts, 1)
		vals := make([]float64, len(pts))
		for i, a := range pts {
			vals[i], _ = f(a)
		}
		want := Delta(vals)

		d, from, to := DeltaContinuous(f, 0, 1, 40)
		scale := 0.0
		for _, v := range vals {
			scale = math.Max(scale, math.Abs(v))
		}
		if math.Abs(d-want) > 1e-12*(1+scale) {
			t.Fatalf("Δ = %v, exact %v (roots %v)", d, want, roots)
		}
		lf, _ := f(from)
		lt, _ := f(to)
		if d > 0 && (!(from < to) || lt-lf != d) {
			t.Fatalf("pair (%v, %v) gives rise %v, Δ = %v", from, to, lt-lf, d)
		}
		// A dense grid never sees more than the continuous Δ.
		grid := linspace(0, 1, 1001)
		loss := make([]float64, len(grid))
		for i, a := range grid {
			loss[i], _ = f(a)
		}
		if g := Delta(loss); g > d+1e-12*(1+scale) {
			t.Fatalf("dense grid Δ %v exceeds continuous Δ %v", g, d)
		}
	})
}

func TestDeltaContinuousPanics(t *testing.T) {
	f := func(a float64) (float64, float64) { return a, 1 }
	for _, c := range []struct {
		lo, hi float64
		n      int
	}{{0, 1, 1}, {1, 1, 10}, {1, 0, 10}, {math.NaN(), 1, 10}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("DeltaContinuous(lo=%v, hi=%v, n=%d) did not panic", c.lo, c.hi, c.n)
				}
			}()
			DeltaContinuous(f, c.lo, c.hi, c.n)
		}()
	}
	d, from, to := DeltaContinuous(func(a float64) (float64, float64) { return math.NaN(), 0 }, 0, 1, 3)
	if !math.IsNaN(d) || !math.IsNaN(from) || !math.IsNaN(to) {
		t.Errorf("NaN loss: got (%v, %v, %v), want NaNs", d, from, to)
	}
}

func TestMaxRunSum(t *testing.T) {
	for _, c := range []struct {
		c           []float64
		sum         float64
		first, last int
	}{
		{nil, 0, 0, -1},
		{[]float64{-1, -2}, 0, 0, -1},
		{[]float64{0, 0}, 0, 0, -1},
		{[]float64{-1, 3, -1}, 3, 1, 1},
		// Rising twice with a deep fall between: Δ ≤ 1, while the sum of positive
		// parts (2) would stay at the total rise ∫(L′)⁺.
		{[]float64{1, -3, 1}, 1, 0, 0},
		// Rising twice with a shallow fall between: the run spans both rises, 2 − 1 + 2.
		{[]float64{-0.5, 2, -1, 2, -4}, 3, 1, 3},
	} {
		s, f, l := MaxRunSum(c.c)
		if s != c.sum || f != c.first || l != c.last {
			t.Errorf("MaxRunSum(%v) = (%v, %d, %d), want (%v, %d, %d)", c.c, s, f, l, c.sum, c.first, c.last)
		}
		pos := 0.0
		for _, x := range c.c {
			pos += math.Max(x, 0)
		}
		if len(c.c) == 3 && c.c[1] == -3 && !(pos > s) {
			t.Errorf("sum of positive parts %v should exceed the run sum %v", pos, s)
		}
	}
	if s, f, l := MaxRunSum([]float64{1, math.NaN()}); !math.IsNaN(s) || f != 0 || l != -1 {
		t.Errorf("NaN: got (%v, %d, %d)", s, f, l)
	}
}

// TestMaxRunSumBoundsDelta builds leaf contributions from a sampled loss, c_k =
// L[k+1] − L[k] (exact increments, as if sup L′ were attained), for which the
// maximum run sum is exactly Δ, while the sum of positive parts is the total rise.
func TestMaxRunSumBoundsDelta(t *testing.T) {
	loss := []float64{4, 3, 3.5, 2, 2.75, 1} // rises 0.5 and 0.75, fall 1.5 between
	c := make([]float64, len(loss)-1)
	pos := 0.0
	for k := range c {
		c[k] = loss[k+1] - loss[k]
		pos += math.Max(c[k], 0)
	}
	s, f, l := MaxRunSum(c)
	if s != Delta(loss) || s != 0.75 || f != 3 || l != 3 {
		t.Errorf("MaxRunSum = (%v, %d, %d), want Δ = 0.75 over leaf 3", s, f, l)
	}
	if pos != 1.25 {
		t.Errorf("sum of positive parts %v, want 1.25 = 0.5 + 0.75 (not Δ)", pos)
	}
}

func TestMaxRunSumProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 30).Draw(t, "n")
		ints := rapid.SliceOfN(rapid.IntRange(-8, 8), n, n).Draw(t, "c")
		c := make([]float64, n) // small integers: all sums are exact
		for i, v := range ints {
			c[i] = float64(v)
		}
		s, f, l := MaxRunSum(c)
		// Brute force over all runs, keeping the earliest end, then the shortest.
		best, bf, bl := 0.0, 0, -1
		for j := range c {
			for i := j; i >= 0; i-- {
				sum := 0.0
				for k := i; k <= j; k++ {
					sum += c[k]
				}
				if sum > best {
					best, bf, bl = sum, i, j
				}
			}
		}
		if s != best || f != bf || l != bl {
			t.Fatalf("MaxRunSum(%v) = (%v, %d, %d), brute force (%v, %d, %d)", c, s, f, l, best, bf, bl)
		}
		// With c the increments of a sequence, the run sum is that sequence's Δ.
		loss := make([]float64, n+1)
		for k := range c {
			loss[k+1] = loss[k] + c[k]
		}
		if d := Delta(loss); s != d {
			t.Fatalf("MaxRunSum of increments %v != Delta %v", s, d)
		}
	})
}
