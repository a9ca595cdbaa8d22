package certify

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// TestKinkPatternsContainDerivative: on random ReLU MLPs (two hidden ReLU
// layers, so later kinks too; the first layer's biases shifted so that
// units die or revive on the line) and random leaves, kinkPatternDL's hull
// over the first ReLU's activation patterns contains ℓ_i′ computed in
// float64 by functionspace at random α of the leaf (one example per path,
// so L′ = ℓ_i′ up to the reduction's scale). Slack 1e-10 relative covers
// functionspace's own rounding. The hull is finite on a good share of the
// draws (checked after the run), so the check is not vacuous.
func TestKinkPatternsContainDerivative(t *testing.T) {
	checked := 0
	rapid.Check(t, func(t *rapid.T) {
		loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
		in := rapid.IntRange(1, 3).Draw(t, "in")
		hid := rapid.IntRange(1, 4).Draw(t, "hidden")
		k := rapid.IntRange(2, 3).Draw(t, "k")
		m, err := nn.Build(nn.MLPSpec([]int{in, hid, hid, k}, "relu", loss))
		if err != nil {
			t.Fatal(err)
		}
		seed := rapid.Uint64().Draw(t, "seed")
		s0, _ := nn.Init(m, "pytorch", rapid.Float64Range(0.5, 3).Draw(t, "scale"), seed)
		sT, _ := nn.Init(m, "pytorch", 1, seed+1)
		shift := rapid.Float64Range(-4, 4).Draw(t, "bias shift")
		for j := range sT["0.bias"].Data {
			sT["0.bias"].Data[j] += shift
		}
		if rapid.Bool().Draw(t, "later layers fixed") {
			for key := range s0 {
				if key != "0.weight" && key != "0.bias" {
					sT[key] = s0[key].Clone()
				}
			}
		}
		rng := rand.New(rand.NewPCG(seed, 5))
		x, tg := testnets.RandomData(rng, 1, in, k, loss, 2)
		p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		if !e.patterns {
			t.Fatal("the pattern hull does not apply to a ReLU MLP")
		}
		a := rapid.Float64Range(0, 1).Draw(t, "a")
		b := math.Min(1, a+rapid.SampledFrom([]float64{1e-3, 0.05, 0.4, 1}).Draw(t, "width"))
		// the carried dense layer (patternCarry, cert-5000) or the box's rule
		if e.carry == nil {
			t.Fatal("a two-hidden-layer ReLU MLP has no carried second layer")
		}
		noPatternCarry = rapid.Bool().Draw(t, "box rule")
		defer func() { noPatternCarry = false }()
		d := e.kinkPatternDL(0, a, b, e.boxes(interval.I{Lo: a, Hi: b}), []int32{0})[0]
		if math.IsInf(d.Lo, -1) && math.IsInf(d.Hi, 1) {
			return // no pattern hull for this example on this leaf
		}
		checked++
		slack := func(v float64) float64 { return 1e-10 * (1 + math.Abs(v)) }
		for q := 0; q < 7; q++ {
			al := a + (b-a)*rapid.Float64Range(0, 1).Draw(t, "u")
			v := p.At(al).DLoss * e.scale // ℓ′, unscaled as LossEnclosure's
			if v < d.Lo-slack(v) || v > d.Hi+slack(v) {
				t.Fatalf("ℓ′(%v) = %v outside the pattern hull [%v, %v] on [%v, %v]", al, v, d.Lo, d.Hi, a, b)
			}
		}
	})
	if checked < 10 {
		t.Errorf("the pattern hull applied on only %d draws", checked)
	}
}

// TestFlatTailPatterns: the 1-3-2 flat tail (every unit dies at α = 1/2,
// L exactly constant after) is certified_monotone with Δ ≤ 0 exactly at
// tolerance 0 on the 32 first leaves with the pattern hull, and stays
// inconclusive without it (the leaves either side of 1/2 keep a positive
// sup L′ from the ReLU hull [ż, 0] through the midpoint–radius products):
// the hull is what settles the tail's start.
func TestFlatTailPatterns(t *testing.T) {
	for _, on := range []bool{true, false} {
		p := flatTailPath(t)
		o := CertifyOptions{Tolerance: 0, MaxIntervals: 256}
		o.defaults()
		ip, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		ip.patterns = on
		mo := NewMonotonicity(o)
		if err := BranchAndBound(context.Background(), ip, mo, o); err != nil {
			t.Fatal(err)
		}
		c := mo.Cert
		t.Logf("pattern hull %v: %s, Δ ∈ [%g, %g], %d leaves, %d pattern rows", on, c.Verdict, c.DeltaLower, c.DeltaUpper, c.Leaves, ip.patternRows)
		switch {
		case on && (c.Verdict != CertifiedMonotone || c.DeltaUpper != 0 || c.Leaves != 32 || ip.patternRows == 0):
			t.Errorf("with the pattern hull: %s, Δ ≤ %v, %d leaves; want certified_monotone, Δ ≤ 0, 32 leaves", c.Verdict, c.DeltaUpper, c.Leaves)
		case !on && c.Verdict != Inconclusive:
			t.Errorf("without the pattern hull: %s; the test no longer shows what the hull adds", c.Verdict)
		}
	}
}

// TestDeadLineConstant: a network whose first ReLU is dead on all of
// [0, 1] for every example, with nothing after it moving, is decided
// before any leaf: certified_monotone, Δ ∈ [0, 0], 0 leaves.
func TestDeadLineConstant(t *testing.T) {
	p := deadPath(t)
	cert, err := Certify(context.Background(), p, CertifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Verdict != CertifiedMonotone || cert.DeltaUpper != 0 || cert.Leaves != 0 {
		t.Errorf("%s, Δ ∈ [%v, %v], %d leaves; want certified_monotone, [0, 0], no leaf", cert.Verdict, cert.DeltaLower, cert.DeltaUpper, cert.Leaves)
	}
}

// TestKinkPatternsNaNIsWholeLine: a first-layer unit whose pre-activation
// enclosure is NaN (a failed enclosure, the whole line by interval.I's
// contract) is not taken for a unit without a kink: the row gets no pattern
// hull, the whole line, where it used to skip the unit (polish round's note).
// Checked on every unit of the rows and leaves where the hull applies. It
// does not tell the two apart on its own: the pattern's pass reads the same
// A and B, so the NaN also reaches ℓ′ through the ReLU's rule (whose NaN
// bound every later product keeps) and the hull comes out whole either way;
// TestPatternUnitsNaN checks the selection itself.
func TestKinkPatternsNaNIsWholeLine(t *testing.T) {
	m, err := nn.Build(nn.MLPSpec([]int{2, 3, 3, 2}, "relu", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	whole := func(d interval.I) bool { return math.IsInf(d.Lo, -1) && math.IsInf(d.Hi, 1) }
	checked := 0
	for seed := uint64(1); seed <= 40; seed++ {
		s0, _ := nn.Init(m, "pytorch", 1, seed)
		sT, _ := nn.Init(m, "pytorch", 1, seed+100)
		x, tg := testnets.RandomData(rand.New(rand.NewPCG(seed, 5)), 1, 2, 2, "mse", 2)
		p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, leaf := range [][2]float64{{0, 1}, {0.25, 0.5}, {0.5, 0.625}} {
			a, b := leaf[0], leaf[1]
			hull := func(nanUnit int) interval.I {
				e, err := NewIntervalPath(p)
				if err != nil {
					t.Fatal(err)
				}
				if !e.patterns {
					t.Fatal("the pattern hull does not apply to a ReLU MLP")
				}
				if nanUnit >= 0 {
					e.a[0].Lo[nanUnit], e.a[0].Hi[nanUnit] = math.NaN(), math.NaN()
				}
				return e.kinkPatternDL(0, a, b, e.boxes(interval.I{Lo: a, Hi: b}), []int32{0})[0]
			}
			if whole(hull(-1)) {
				continue // no pattern hull for this row on this leaf
			}
			for j := 0; j < 3; j++ {
				checked++
				if d := hull(j); !whole(d) {
					t.Errorf("seed %d, leaf [%v, %v], unit %d's pre-activation NaN: ℓ′ enclosed by [%v, %v], want the whole line", seed, a, b, j, d.Lo, d.Hi)
				}
			}
		}
	}
	if checked < 9 {
		t.Errorf("the pattern hull applied on only %d (row, leaf, unit) cases", checked)
	}
}

// TestPatternUnitsNaN: the selection of the units a row may cross
// (patternUnits) refuses the pattern hull for a row with a NaN in any
// unit's pre-activation enclosure over the leaf, where another unit is a
// proper candidate (one crossing, a velocity of one sign): a NaN in A's
// lower or upper end, or in B. Skipping the NaN unit as one without a kink
// (the check before the polish round) returns ok with S = {0} and fails.
// Without the NaN, S = {0}; a unit whose velocity may vanish, or one more
// crossing unit than maxPatternUnits, gives no hull.
func TestPatternUnitsNaN(t *testing.T) {
	ab := interval.I{Lo: 0, Hi: 1}
	row := func(m int, set func(a, b interval.Matrix)) (interval.Matrix, interval.Matrix) {
		a, b := interval.NewMatrix(1, m), interval.NewMatrix(1, m)
		a.Lo[0], a.Hi[0], b.Lo[0], b.Hi[0] = -1, -1, 2, 2 // unit 0 crosses 0 at α = 1/2, ż = 2
		for j := 1; j < m; j++ {
			a.Lo[j], a.Hi[j], b.Lo[j], b.Hi[j] = -3, -3, 1, 1 // dead on [0, 1]: no kink
		}
		if set != nil {
			set(a, b)
		}
		return a, b
	}
	a, b := row(2, nil)
	if s, ok := patternUnits(a, b, 0, ab); !ok || len(s) != 1 || s[0] != 0 {
		t.Fatalf("no NaN: S %v, ok %v; want [0], true", s, ok)
	}
	nan := math.NaN()
	for name, set := range map[string]func(a, b interval.Matrix){
		"A.Lo": func(a, b interval.Matrix) { a.Lo[1] = nan },
		"A.Hi": func(a, b interval.Matrix) { a.Hi[1] = nan },
		"A":    func(a, b interval.Matrix) { a.Lo[1], a.Hi[1] = nan, nan },
		"B":    func(a, b interval.Matrix) { b.Lo[1], b.Hi[1] = nan, nan },
		"B.Hi": func(a, b interval.Matrix) { b.Hi[1] = nan },
	} {
		a, b := row(2, set)
		if s, ok := patternUnits(a, b, 0, ab); ok {
			t.Errorf("unit 1's %s NaN: S %v, ok; want no pattern hull (a failed enclosure is the whole line)", name, s)
		}
	}
	a, b = row(2, func(a, b interval.Matrix) { a.Lo[1], a.Hi[1], b.Lo[1], b.Hi[1] = -1, -1, -1, 3 })
	if s, ok := patternUnits(a, b, 0, ab); ok {
		t.Errorf("a crossing unit whose velocity may vanish: S %v, ok; want no pattern hull", s)
	}
	a, b = row(maxPatternUnits+2, func(a, b interval.Matrix) {
		for j := 1; j <= maxPatternUnits; j++ {
			a.Lo[j], a.Hi[j], b.Lo[j], b.Hi[j] = -1, -1, 2, 2
		}
	})
	if s, ok := patternUnits(a, b, 0, ab); ok {
		t.Errorf("%d crossing units: S %v, ok; want no pattern hull (at most %d)", maxPatternUnits+1, s, maxPatternUnits)
	}
}
