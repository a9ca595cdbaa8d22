package certify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
)

// TestDeltaTol (issue 12): with DeltaTol the branch and bound keeps
// refining after the verdict until the relative width of the Δ bounds is
// at most DeltaTol. On THEORY.md §6's closed forms (overshoot Δ = 0.25
// exactly; the two-leg corner paths, Δ = L₂² cos²β / K with L₂ = 0.3,
// K = 2) at tolerance 0: DeltaTol 1e-7 gives bounds narrower than 1e-6
// (relative to the bounds and to the closed form, and absolute) that
// contain the exact Δ, the default 1e-3 a relative width ≤ 1e-3, and
// no DeltaTol stops at the verdict, wider than 1e-6 in every case and
// wider than 1e-3 in some (since the half-leaves of issue 13's halves
// round, overshoot's 32 initial leaves already give 2.4e-4).
func TestDeltaTol(t *testing.T) {
	wide := 0 // cases whose verdict alone is wider than DefaultDeltaTol
	corner := func(b float64) func(*testing.T) *functionspace.Path {
		return func(t *testing.T) *functionspace.Path { return cornerPath(t, b*math.Pi) }
	}
	cases := []struct {
		name  string
		path  func(*testing.T) *functionspace.Path
		delta float64
	}{
		{"overshoot", overshootPath, 0.25},
		{"corner 0.55π", corner(0.55), 0.09 * math.Pow(math.Cos(0.55*math.Pi), 2) / 2},
		{"corner 0.6π", corner(0.6), 0.09 * math.Pow(math.Cos(0.6*math.Pi), 2) / 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.path(t)
			for _, tol := range []float64{0, DefaultDeltaTol, 1e-7} {
				cert, err := Certify(context.Background(), p, CertifyOptions{DeltaTol: tol})
				if err != nil {
					t.Fatal(err)
				}
				lo, up := cert.DeltaLower, cert.DeltaUpper
				if cert.Verdict != NonMonotone || !(lo <= c.delta && c.delta <= up) {
					t.Fatalf("DeltaTol %g: %s with Δ ∈ [%v, %v], want non_monotone containing %v", tol, cert.Verdict, lo, up, c.delta)
				}
				rw := RelativeWidth(lo, up, 0)
				switch {
				case tol == 0 && rw <= 1e-6:
					t.Errorf("no DeltaTol: relative width %g already ≤ 1e-6: the test does not show the refinement", rw)
				case tol == 0 && rw > DefaultDeltaTol:
					wide++
				case tol > 0 && (cert.RelWidth != rw || rw > tol || cert.DeltaTol != tol):
					t.Errorf("DeltaTol %g: relative width %g (recorded %g, tolerance recorded %g)", tol, rw, cert.RelWidth, cert.DeltaTol)
				}
				// issue 12's "Done when": with --delta-tol 1e-7 the bounds are
				// narrower than 1e-6, relative and absolute, and contain the
				// closed form (checked above), whatever the refinement's own
				// bookkeeping (cert.RelWidth) says
				if tol == 1e-7 && !(rw < 1e-6 && up-lo < 1e-6 && (up-lo)/c.delta < 1e-6) {
					t.Errorf("DeltaTol 1e-7: bounds [%v, %v] (width %g, relative %g, %g of the closed form) not narrower than 1e-6", lo, up, up-lo, rw, (up-lo)/c.delta)
				}
				t.Logf("DeltaTol %g: Δ ∈ [%.15g, %.15g], relative width %.3g, %d leaves", tol, lo, up, rw, cert.Leaves)
			}
		})
	}
	if wide == 0 {
		t.Errorf("no case is wider than %g at the verdict: the test does not show the default refinement", DefaultDeltaTol)
	}
}

// TestDeltaTolKeys: the certificate writes delta_tol and delta_rel_width
// when a tolerance was requested (a number, or null when delta_upper is
// not finite) and neither when none was.
func TestDeltaTolKeys(t *testing.T) {
	keys := func(c *Certificate) map[string]any {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := keys(&Certificate{DeltaUpper: 0.5, DeltaTol: 1e-3, RelWidth: 2e-4})
	if m["delta_tol"] != 1e-3 || m["delta_rel_width"] != 2e-4 {
		t.Errorf("requested: delta_tol %v, delta_rel_width %v", m["delta_tol"], m["delta_rel_width"])
	}
	m = keys(&Certificate{DeltaUpper: math.Inf(1), DeltaTol: 1e-3, RelWidth: math.Inf(1)})
	if v, ok := m["delta_rel_width"]; !ok || v != nil {
		t.Errorf("unbounded: delta_rel_width %v (present %v), want null", v, ok)
	}
	m = keys(&Certificate{DeltaUpper: 0.5})
	if _, ok := m["delta_tol"]; ok {
		t.Error("not requested: delta_tol written")
	}
	if _, ok := m["delta_rel_width"]; ok {
		t.Error("not requested: delta_rel_width written")
	}
}

// TestRelativeWidth: closed values of the relative width.
func TestRelativeWidth(t *testing.T) {
	cases := []struct{ lo, up, tol, want float64 }{
		{0, 0, 0, 0},
		{0.25, 0.25, 0, 0},
		{0.2, 0.25, 0, 0.2}, // 0.05/0.25
		{0, 1e-6, 1e-3, 1e-3},
		{0, math.Inf(1), 0, math.Inf(1)},
	}
	for _, c := range cases {
		got := RelativeWidth(c.lo, c.up, c.tol)
		if !(got >= c.want && got <= c.want*(1+1e-15)) && got != c.want {
			t.Errorf("RelativeWidth(%v, %v, %v) = %v, want %v (rounded up)", c.lo, c.up, c.tol, got, c.want)
		}
	}
}

// TestUpperRiseRigorous: upperRise (rounded up run by run, no global
// allowance) is never below the exact largest run sum end⁺_f + Σ in_k +
// end⁺_l, computed in math/big over every run, for end and in of mixed
// signs and magnitudes (in ≤ end).
func TestUpperRiseRigorous(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 25).Draw(t, "n")
		end, in := make([]float64, n), make([]float64, n)
		for k := range end {
			e := rapid.Float64Range(-1, 1).Draw(t, "e") * math.Pow(10, float64(rapid.IntRange(-20, 3).Draw(t, "x")))
			end[k] = e
			in[k] = e - math.Abs(rapid.Float64Range(0, 1).Draw(t, "d"))*math.Abs(e)
		}
		exact := new(big.Float).SetPrec(4000)
		for f := 0; f < n; f++ {
			for l := f; l < n; l++ {
				s := new(big.Float).SetPrec(4000).SetFloat64(math.Max(end[f], 0))
				if l > f {
					for k := f + 1; k < l; k++ {
						s.Add(s, big.NewFloat(in[k]))
					}
					s.Add(s, big.NewFloat(math.Max(end[l], 0)))
				}
				if s.Cmp(exact) > 0 {
					exact = s
				}
			}
		}
		got, _, _ := upperRise(end, in)
		if new(big.Float).SetFloat64(got).Cmp(exact) < 0 {
			t.Fatalf("upperRise %v below the exact largest run sum %v", got, exact.Text('g', 20))
		}
	})
}

// TestUpperRiseEndsSound: upperRiseEnds (the run's interior telescoped
// through the enclosures of L at the leaves' ends) is never below the
// exact Δ of a piecewise-linear L (nodes at the leaves' ends and at random
// points inside them, exact in math/big), with end_k, in_k and the ends'
// enclosures valid bounds of it (each with random slack, some ends
// unknown), and never above upperRise without the ends.
func TestUpperRiseEndsSound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "n")
		scale := math.Pow(10, float64(rapid.IntRange(-12, 2).Draw(t, "scale")))
		val := func(name string) float64 { return rapid.Float64Range(-1, 1).Draw(t, name) * scale }
		slack := func(name string) float64 {
			if rapid.Bool().Draw(t, name+"0") {
				return 0
			}
			return rapid.Float64Range(0, 1).Draw(t, name) * scale * math.Pow(10, float64(rapid.IntRange(-14, 0).Draw(t, name+"e")))
		}
		// nodes: x_0, the points inside leaf 0, x_1, …, x_n
		var nodes []float64
		var at []int // index in nodes of x_k
		for k := 0; k < n; k++ {
			at = append(at, len(nodes))
			nodes = append(nodes, val("x"))
			for range rapid.IntRange(0, 2).Draw(t, "inner") {
				nodes = append(nodes, val("y"))
			}
		}
		at = append(at, len(nodes))
		nodes = append(nodes, val("x"))
		rise := func(i, j int) *big.Float { // max over i ≤ a < b ≤ j of L_b − L_a, ≥ 0
			best := new(big.Float)
			for a := i; a <= j; a++ {
				for b := a + 1; b <= j; b++ {
					d := new(big.Float).Sub(big.NewFloat(nodes[b]), big.NewFloat(nodes[a]))
					if d.Cmp(best) > 0 {
						best = d
					}
				}
			}
			return best
		}
		up := func(x *big.Float) float64 { // the nearest float64 at or above x
			f, acc := x.Float64()
			if acc == big.Below {
				f = math.Nextafter(f, math.Inf(1))
			}
			return f
		}
		end, in := make([]float64, n), make([]float64, n)
		lo, hi := make([]float64, n+1), make([]float64, n+1)
		for k := 0; k < n; k++ {
			end[k] = interval.Up(up(rise(at[k], at[k+1])) + slack("se"))
			d := new(big.Float).Sub(big.NewFloat(nodes[at[k+1]]), big.NewFloat(nodes[at[k]]))
			in[k] = math.Min(end[k], interval.Up(up(d)+slack("si")))
		}
		for j := 0; j <= n; j++ {
			if rapid.IntRange(0, 3).Draw(t, "unknown") == 0 {
				lo[j], hi[j] = math.Inf(-1), math.Inf(1)
				continue
			}
			v := nodes[at[j]]
			lo[j], hi[j] = interval.Down(v-slack("sl")), interval.Up(v+slack("sh"))
		}
		exact := rise(0, len(nodes)-1)
		got, f, l := upperRiseEnds(end, in, lo, hi)
		if new(big.Float).SetFloat64(got).Cmp(exact) < 0 {
			t.Fatalf("upperRiseEnds %v below the exact Δ %v (run %d..%d)", got, exact.Text('g', 20), f, l)
		}
		if old, _, _ := upperRise(end, in); got > old {
			t.Fatalf("upperRiseEnds %v above upperRise %v", got, old)
		}
	})
}

// TestNotifyDecided: when the search goes on refining Δ's bounds after the
// verdict (DeltaTol), Notify is told once that the verdict is decided, with
// the leaves and leaf evaluations it took; those are the very counts at
// which a search without DeltaTol stops (the same leaves up to the verdict).
// Without refinement to do, Notify is told nothing.
func TestNotifyDecided(t *testing.T) {
	p := overshootPath(t)
	var msgs []string
	notify := func(m string) { msgs = append(msgs, m) }
	at, err := Certify(context.Background(), p, CertifyOptions{Notify: notify})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 {
		t.Fatalf("no DeltaTol: told %q", msgs)
	}
	refined, err := Certify(context.Background(), p, CertifyOptions{DeltaTol: 1e-7, Notify: notify})
	if err != nil {
		t.Fatal(err)
	}
	if refined.Leaves <= at.Leaves {
		t.Fatalf("DeltaTol 1e-7 took %d leaves, the verdict alone %d: nothing refined", refined.Leaves, at.Leaves)
	}
	want := fmt.Sprintf("certificate: non_monotone decided after %d leaves (%d leaf evaluations), Δ ∈ [", at.Leaves, at.Evaluations)
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], want) || !strings.Contains(msgs[0], "(to relative width ≤ 1e-07, --delta-tol; now ") {
		t.Errorf("told %q, want one line starting %q", msgs, want)
	}

	// a search resumed after the decision says it again, once (the first
	// process's line may be in another log), with the decision's leaves
	ck := &Checkpoint{File: filepath.Join(t.TempDir(), "c.ckpt"), Key: "k"}
	ctx, cancel := context.WithCancel(context.Background())
	msgs = nil
	decided := false
	o := CertifyOptions{DeltaTol: 1e-7, Checkpoint: ck, Workers: 1, subBatch: 1,
		Notify: func(m string) { msgs, decided = append(msgs, m), true }}
	firsts := 0 // rounds begun evaluating since the decision
	o.afterSubBatch = func(done, _ int) {
		if decided && done == 1 {
			if firsts++; firsts == 2 { // in the round after the decision's: its start is saved decided
				cancel()
			}
		}
	}
	if _, err := Certify(ctx, p, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted after the decision: %v, want context.Canceled", err)
	}
	msgs = nil
	o.Notify = notify
	if _, err := Certify(context.Background(), p, o); err != nil {
		t.Fatal(err)
	}
	var told []string
	for _, m := range msgs {
		if strings.HasPrefix(m, "certificate: non_monotone decided") {
			told = append(told, m)
		}
	}
	if len(told) != 1 || !strings.HasPrefix(told[0], want) {
		t.Errorf("resumed after the decision: told %q, want one line starting %q", msgs, want)
	}
}
