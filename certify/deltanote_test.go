package certify

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// deadTailPath is a random 6-16-12-3 ReLU MLP (cross-entropy, 40 random
// examples in [0, 1]⁶) whose only moving tensor is the first layer's bias,
// lowered by 60: every first-layer unit is dead once α·60 exceeds its
// largest pre-activation, and from there L is the constant loss of the
// second layer's fixed bias through fixed weights. Its grid is evaluated
// by the carry (two hidden ReLU layers), whose float64 rounding makes the
// constant tail rise by a few 1e-15 at some seeds (issue 12's first-user
// check saw the same on a 784-48-32-10 MNIST MLP).
func deadTailPath(t testing.TB, seed int64) *functionspace.Path {
	rng := rand.New(rand.NewSource(seed))
	sizes := []int{6, 16, 12, 3}
	m, err := nn.Build(nn.MLPSpec(sizes, "relu", "cross_entropy"))
	if err != nil {
		t.Fatal(err)
	}
	s0 := nn.State{}
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		w, b := make([]float64, in*out), make([]float64, out)
		for i := range w {
			w[i] = rng.NormFloat64()
		}
		for i := range b {
			b[i] = rng.NormFloat64()
		}
		s0[fmt.Sprintf("%d.weight", 2*l)] = &nn.Tensor{Shape: []int{out, in}, Data: w}
		s0[fmt.Sprintf("%d.bias", 2*l)] = &nn.Tensor{Shape: []int{out}, Data: b}
	}
	sT := s0.Clone()
	for i := range sT["0.bias"].Data {
		sT["0.bias"].Data[i] -= 60
	}
	const n = 40
	xs, labels := make([]float64, n*sizes[0]), make([]int, n)
	for i := range xs {
		xs[i] = rng.Float64()
	}
	for i := range labels {
		labels[i] = rng.Intn(sizes[len(sizes)-1])
	}
	p, err := functionspace.New(m, s0, sT, mat.NewDense(n, sizes[0], xs), nn.Targets{Labels: labels}, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeltaOutsideBoundsNote (issue 12's first-user leftovers): a report
// whose float64 delta lies above delta_bounds[1], or whose
// delta_continuous lies outside delta_bounds, says so in notes, naming
// each value, and calls it rounding when it is within the rounding
// estimate; a report whose values lie inside has no such note. The dead
// tails of seeds 1..10 include certified_monotone lines with Δ ∈ [0, 0]
// whose float64 Δ rises by rounding (the test fails if none does: it
// would no longer test the case), and non_monotone lines with tight
// bounds.
func TestDeltaOutsideBoundsNote(t *testing.T) {
	flatRises := 0
	for seed := int64(1); seed <= 10; seed++ {
		p := deadTailPath(t, seed)
		r, err := Analyze(context.Background(), p, Options{Certificate: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.DeltaBounds == nil {
			t.Fatalf("seed %d: no delta_bounds", seed)
		}
		lo, hi := r.DeltaBounds[0], r.DeltaBounds[1]
		var note string
		for _, n := range r.Notes {
			if strings.HasPrefix(n, "delta_bounds: ") {
				if note != "" {
					t.Fatalf("seed %d: two delta_bounds notes: %q", seed, r.Notes)
				}
				note = n
			}
		}
		gridOut := r.Delta > hi
		contOut := r.DeltaContinuous > hi || r.DeltaContinuous < lo
		if (gridOut || contOut) != (note != "") {
			t.Fatalf("seed %d: delta %v, delta_continuous %v, delta_bounds [%v, %v]: note %q", seed, r.Delta, r.DeltaContinuous, lo, hi, note)
		}
		if gridOut != strings.Contains(note, "delta = ") || contOut != strings.Contains(note, "delta_continuous = ") {
			t.Fatalf("seed %d: delta %v, delta_continuous %v, delta_bounds [%v, %v]: the note names the wrong keys: %q", seed, r.Delta, r.DeltaContinuous, lo, hi, note)
		}
		if r.Verdict == CertifiedMonotone && hi == 0 && (gridOut || contOut) {
			flatRises++
			// a constant loss rises by float64 rounding only: far below
			// RoundingError's estimate at these losses (≥ 1e-12)
			if math.Max(r.Delta, r.DeltaContinuous) > 1e-13 || !strings.Contains(note, "float64 rounding of the evaluated loss, within its estimate") {
				t.Fatalf("seed %d: flat tail with delta %v, delta_continuous %v: note %q", seed, r.Delta, r.DeltaContinuous, note)
			}
		}
	}
	if flatRises == 0 {
		t.Fatal("no dead tail rose by rounding: the test no longer exercises the flat-tail case")
	}
}

// TestDeltaOutsideBoundsNoteCases checks deltaOutsideBoundsNote on
// reports made by hand: an excess beyond the rounding estimate is not
// called rounding, a grid Δ below delta_bounds[0] (a sampled grid missing
// a rise) is not noted, delta_continuous below delta_bounds[0] is, and
// nothing is noted without delta_bounds or with null values.
func TestDeltaOutsideBoundsNoteCases(t *testing.T) {
	f64 := functionspace.Float64
	note := func(r *Report) string {
		deltaOutsideBoundsNote(r, f64, 100)
		if len(r.Notes) == 0 {
			return ""
		}
		return r.Notes[len(r.Notes)-1]
	}
	loss := []float64{2, 1, 1 + 1e-15, 1}
	// within rounding: both ends ≈ 1, RoundingError ≈ 2e-12 each
	r := &Report{Loss: loss, Delta: Delta(loss), DeltaContinuous: 2e-15, DeltaBounds: &[2]float64{0, 0}}
	if n := note(r); !strings.Contains(n, "delta = ") || !strings.Contains(n, "delta_continuous = 2e-15 is above delta_bounds[1] = 0") || !strings.Contains(n, "within its estimate") {
		t.Fatalf("within rounding: %q", n)
	}
	// beyond it: 1e-6 above the upper bound
	loss2 := []float64{2, 1, 1 + 1e-6}
	r = &Report{Loss: loss2, Delta: Delta(loss2), DeltaContinuous: 1e-6, DeltaBounds: &[2]float64{0, 1e-9}}
	if n := note(r); !strings.Contains(n, "more than the rounding estimate") || strings.Contains(n, "within its estimate") {
		t.Fatalf("beyond rounding: %q", n)
	}
	// the grid misses a rise (Δ on the grid 0.1 below the lower bound 0.5):
	// no note; delta_continuous inside
	loss3 := []float64{2, 1, 1.1}
	r = &Report{Loss: loss3, Delta: Delta(loss3), DeltaContinuous: 0.5, DeltaBounds: &[2]float64{0.5 - 1e-9, 0.5 + 1e-9}}
	if n := note(r); n != "" {
		t.Fatalf("inside: %q", n)
	}
	// delta_continuous below the lower bound by a rounding
	r = &Report{Loss: loss3, Delta: Delta(loss3), DeltaContinuous: 0.5 - 1e-15, DeltaBounds: &[2]float64{0.5, 0.5 + 1e-9}}
	if n := note(r); !strings.Contains(n, "below delta_bounds[0] = 0.5") || !strings.Contains(n, "within its estimate") || strings.Contains(n, "delta = ") {
		t.Fatalf("below: %q", n)
	}
	// no bounds, or null values: nothing
	for _, r := range []*Report{
		{Loss: loss, Delta: Delta(loss), DeltaContinuous: 2e-15},
		{Loss: []float64{math.NaN(), 1}, Delta: math.NaN(), DeltaContinuous: math.NaN(), DeltaBounds: &[2]float64{0, 0}},
	} {
		if n := note(r); n != "" {
			t.Fatalf("no note expected: %q", n)
		}
	}
}
