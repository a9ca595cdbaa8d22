package nn

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestCorruptLabelsExactFraction: exactly round(p·N) labels change, each to
// another class in range, the record lists precisely the changed positions,
// and the same seed gives the same result while another seed does not.
func TestCorruptLabelsExactFraction(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 300).Draw(t, "n")
		k := rapid.IntRange(2, 12).Draw(t, "classes")
		p := rapid.Float64Range(0, 1).Draw(t, "p")
		seed := rapid.Uint64().Draw(t, "seed")
		labels := make([]int, n)
		for i := range labels {
			labels[i] = rapid.IntRange(0, k-1).Draw(t, "label")
		}
		orig := slices.Clone(labels)
		noisy, rec, err := CorruptLabels(labels, k, p, seed)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(labels, orig) {
			t.Fatal("CorruptLabels modified its input")
		}
		want := int(math.Round(p * float64(n)))
		var changed []int
		for i := range labels {
			if noisy[i] != labels[i] {
				changed = append(changed, i)
				if noisy[i] < 0 || noisy[i] >= k {
					t.Fatalf("label %d out of range", noisy[i])
				}
			}
		}
		if len(changed) != want || len(rec.Index) != want {
			t.Fatalf("p=%v n=%d: %d labels changed, %d recorded, want %d", p, n, len(changed), len(rec.Index), want)
		}
		if want > 0 && !slices.Equal(changed, rec.Index) {
			t.Fatalf("record %v, changed %v", rec.Index, changed)
		}
		for j, i := range rec.Index {
			if rec.Clean[j] != labels[i] || rec.Noisy[j] != noisy[i] {
				t.Fatalf("record entry %d disagrees with the labels", j)
			}
		}
		again, _, _ := CorruptLabels(labels, k, p, seed)
		if !slices.Equal(noisy, again) {
			t.Fatal("not deterministic in the seed")
		}
		// Apply on the clean labels reproduces the noisy ones; on a prefix,
		// the prefix of them.
		c := slices.Clone(labels)
		if m, err := rec.Apply(c); err != nil || m != want || !slices.Equal(c, noisy) {
			t.Fatalf("Apply: %d replaced, err %v", m, err)
		}
		pre := slices.Clone(labels[:n/2])
		if _, err := rec.Apply(pre); err != nil || !slices.Equal(pre, noisy[:n/2]) {
			t.Fatalf("Apply on a prefix: %v", err)
		}
	})
}

// TestCorruptLabelsUniform: the replacement class is uniform over the other
// classes and the corrupted positions are uniform over the examples:
// chi-square statistics over many seeds stay below the 0.999 quantile.
func TestCorruptLabelsUniform(t *testing.T) {
	const n, k, seeds = 40, 5, 4000
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i % k
	}
	var pos [n]float64
	var to [k][k]float64
	for s := range uint64(seeds) {
		_, rec, err := CorruptLabels(labels, k, 0.25, s)
		if err != nil {
			t.Fatal(err)
		}
		for j, i := range rec.Index {
			pos[i]++
			to[rec.Clean[j]][rec.Noisy[j]]++
		}
	}
	// Positions: 10 of 40 per seed, expected 1000 each; 39 dof, q(0.999) ≈ 72.1.
	var chi float64
	for _, c := range pos {
		chi += (c - 1000) * (c - 1000) / 1000
	}
	if chi > 72.1 {
		t.Errorf("corrupted positions not uniform: χ² = %.1f on 39 dof", chi)
	}
	// Classes: each clean class c sends its corruptions to the 4 others
	// equally; 4 groups of 3 dof each, q(0.999) of χ²(15) ≈ 37.7.
	chi = 0
	for c := range k {
		var tot float64
		for d := range k {
			tot += to[c][d]
		}
		if to[c][c] != 0 {
			t.Fatalf("class %d corrupted to itself", c)
		}
		e := tot / (k - 1)
		for d := range k {
			if d != c {
				chi += (to[c][d] - e) * (to[c][d] - e) / e
			}
		}
	}
	if chi > 37.7 {
		t.Errorf("replacement classes not uniform: χ² = %.1f on 15 dof", chi)
	}
}

func TestCorruptLabelsErrors(t *testing.T) {
	for _, c := range []struct {
		labels  []int
		classes int
		p       float64
	}{
		{[]int{0, 1}, 2, -0.1},
		{[]int{0, 1}, 2, 1.5},
		{[]int{0, 1}, 2, math.NaN()},
		{[]int{0, 0}, 1, 1},
		{[]int{0, 3}, 3, 1},
	} {
		if _, _, err := CorruptLabels(c.labels, c.classes, c.p, 1); err == nil {
			t.Errorf("%v, %d classes, p=%v: no error", c.labels, c.classes, c.p)
		}
	}
}

func TestLabelNoiseFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), LabelNoiseFile)
	if ln, err := ReadLabelNoise(path); ln != nil || err != nil {
		t.Fatalf("missing file: %v, %v", ln, err)
	}
	want := LabelNoise{Index: []int{2, 7}, Clean: []int{1, 0}, Noisy: []int{3, 2}}
	if err := WriteLabelNoise(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLabelNoise(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Index, want.Index) || !slices.Equal(got.Clean, want.Clean) || !slices.Equal(got.Noisy, want.Noisy) {
		t.Errorf("read %+v, wrote %+v", got, want)
	}
	// A record that disagrees with the data is refused.
	if _, err := got.Apply([]int{0, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("Apply accepted labels the record does not belong to")
	}
}

// recordStep is a Stepper recording the gradients it is given and taking a
// plain gradient step of size eta.
type recordStep struct {
	eta   float64
	grads [][]float64
}

func (r *recordStep) Step(params, grads [][]float64) {
	r.grads = nil
	for i, g := range grads {
		r.grads = append(r.grads, slices.Clone(g))
		for j := range g {
			params[i][j] -= r.eta * g[j]
		}
	}
}

// TestAnchored: the wrapped optimizer sees g + λ(θ − θ0); on the loss-free
// problem (g = 0) gradient descent contracts θ − θ0 by (1 − ηλ) per step,
// and λ < 0 expands it.
func TestAnchored(t *testing.T) {
	theta0 := [][]float64{{1, -2}, {0.5}}
	for _, lambda := range []float64{0.3, -0.2} {
		theta := [][]float64{{2, -1}, {0}}
		inner := &recordStep{eta: 0.5}
		st := Anchored(inner, theta0, lambda)
		zero := [][]float64{{0, 0}, {0}}
		for step := 1; step <= 3; step++ {
			st.Step(theta, zero)
			f := math.Pow(1-0.5*lambda, float64(step))
			want := [][]float64{{1 + f, -2 + f}, {0.5 - 0.5*f}}
			for i := range want {
				for j := range want[i] {
					if math.Abs(theta[i][j]-want[i][j]) > 1e-15 {
						t.Fatalf("λ=%v step %d: θ[%d][%d] = %v, want %v", lambda, step, i, j, theta[i][j], want[i][j])
					}
				}
			}
		}
		if zero[0][0] != 0 || theta0[0][0] != 1 {
			t.Fatal("Anchored modified the gradients or θ0")
		}
		// A non-zero gradient is passed through with the penalty added.
		theta = [][]float64{{3, -2}, {0.5}}
		st.Step(theta, [][]float64{{0.1, 0.2}, {0.3}})
		if g := inner.grads; g[0][0] != 0.1+lambda*2 || g[0][1] != 0.2 || g[1][0] != 0.3 {
			t.Errorf("λ=%v: inner optimizer saw %v", lambda, g)
		}
	}
}
