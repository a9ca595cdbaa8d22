package presentation

import (
	"math"
	"math/big"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/certify"
)

// TestDeltaBoundsDigitsShowWidth (issue 12's first-user leftovers: with
// --delta-tol 1e-7 the summary printed Δ ∈ [0.006125, 0.006125]): bounds
// whose relative width is at least the asked ε print as two different
// numbers, each within half a unit of its last printed digit of the true
// bound; the default ε = 1e-3 keeps the summary's 4 digits.
func TestDeltaBoundsDigitsShowWidth(t *testing.T) {
	if d := DeltaBoundsDigits(&certify.Certificate{DeltaTol: certify.DefaultDeltaTol}); d != 4 {
		t.Fatalf("default --delta-tol: %d digits, want 4 (the README's recorded summaries)", d)
	}
	if d := DeltaBoundsDigits(nil); d != 4 {
		t.Fatalf("no certificate: %d digits", d)
	}
	rapid.Check(t, func(t *rapid.T) {
		tol := math.Pow(10, -rapid.Float64Range(1, 15).Draw(t, "decades"))
		w := tol * math.Pow(10, rapid.Float64Range(0, math.Log10(0.5/tol)).Draw(t, "above"))
		hi := math.Pow(10, rapid.Float64Range(-12, 3).Draw(t, "scale"))
		lo := hi * (1 - w) // (hi − lo)/max(|lo|, |hi|) = w ≥ tol
		if (hi-lo)/hi < tol {
			t.Skip("rounding put the width below the tolerance")
		}
		c := &certify.Certificate{DeltaTol: tol, DeltaLower: lo, DeltaUpper: hi}
		sl, sh := FormatDeltaBound(lo, c, false), FormatDeltaBound(hi, c, true)
		if sl == sh {
			t.Fatalf("ε %g: [%v, %v] (relative width %g) prints as [%s, %s]", tol, lo, hi, w, sl, sh)
		}
		d := DeltaBoundsDigits(c)
		for _, p := range []struct {
			s  string
			v  float64
			up bool
		}{{sl, lo, false}, {sh, hi, true}} {
			got, ok := new(big.Rat).SetString(p.s)
			if !ok {
				t.Fatalf("%q does not parse", p.s)
			}
			// outward (ε is not the default; at the default, nearest): the
			// printed interval holds the certified one, within one unit of
			// the last digit
			exact := new(big.Rat).SetFloat64(p.v)
			if cmp := got.Cmp(exact); tol != certify.DefaultDeltaTol && ((p.up && cmp < 0) || (!p.up && cmp > 0)) {
				t.Fatalf("%s for %v (upper %v): rounded inward", p.s, p.v, p.up)
			}
			g, _ := got.Float64()
			if math.Abs(g-p.v) > math.Pow(10, math.Floor(math.Log10(p.v))-float64(d-1))+4*0x1p-52*p.v {
				t.Fatalf("%s for %v: more than a unit of its %d-th digit off", p.s, p.v, d)
			}
			if digits := strings.TrimLeft(strings.ReplaceAll(strings.Split(p.s, "e")[0], ".", ""), "0"); len(digits) > d {
				t.Fatalf("%s for %v: more than %d significant digits", p.s, p.v, d)
			}
		}
	})
}

// TestFormatDeltaBoundRounding: at the default --delta-tol the bounds
// round to nearest at 4 digits, as the README's recorded summaries show
// them; at 1e-7 the overshoot bounds round outward at 8 digits,
// a carry included.
func TestFormatDeltaBoundRounding(t *testing.T) {
	def := &certify.Certificate{DeltaTol: certify.DefaultDeltaTol}
	if lo, up := FormatDeltaBound(0.63854, def, false), FormatDeltaBound(0.63914, def, true); lo != "0.6385" || up != "0.6391" {
		t.Errorf("default: [%s, %s], want [0.6385, 0.6391]", lo, up)
	}
	tight := &certify.Certificate{DeltaTol: 1e-7}
	for _, c := range []struct {
		v    float64
		up   bool
		want string
	}{
		{0.249999985098837, false, "0.24999998"},
		{0.250000002095477, true, "0.25000001"},
		{0.25, true, "0.25"}, // exact: no step
		{0.25, false, "0.25"},
		{9.99999999e-5, true, "0.0001"}, // 9.9999999|9e-5 up: a carry into a new digit
		{0, false, "0"},
		{math.Inf(1), true, "null"},
	} {
		if got := FormatDeltaBound(c.v, tight, c.up); got != c.want {
			t.Errorf("FormatDeltaBound(%v, 1e-7, upper %v) = %q, want %q", c.v, c.up, got, c.want)
		}
	}
}

// TestDeltaBoundsWidthText: the width reached and the width asked, with
// "not reached" when the budget ended first and null when the upper bound
// is not finite; nothing for a report without delta_tol.
func TestDeltaBoundsWidthText(t *testing.T) {
	for _, c := range []struct {
		c    *certify.Certificate
		want string
	}{
		{&certify.Certificate{DeltaTol: 1e-7, RelWidth: 6.8e-8}, "relative width 6.8e-08 ≤ 1e-07 asked"},
		{&certify.Certificate{DeltaTol: 1e-7, RelWidth: 0.02}, "relative width 0.02, 1e-07 asked: not reached within the budget"},
		{&certify.Certificate{DeltaTol: 1e-7, RelWidth: math.NaN()}, "relative width null (the upper bound is not finite), 1e-07 asked"},
		{&certify.Certificate{Verdict: certify.NonMonotone, DeltaTol: 1, RelWidth: 0.999999}, "relative width 1 ≤ 1 asked: the search stopped at the verdict, the bounds not refined"},
		// inconclusive: no verdict to stop at (the budget ended the search)
		{&certify.Certificate{Verdict: certify.Inconclusive, DeltaTol: 1, RelWidth: 0.9}, "relative width 0.9 ≤ 1 asked"},
		{&certify.Certificate{}, ""},
		{nil, ""},
	} {
		if got := DeltaBoundsWidth(c.c); got != c.want {
			t.Errorf("%+v: %q, want %q", c.c, got, c.want)
		}
	}
	// summary.tex: the bounds to 8 digits, outward, and the width row
	r := &certify.Report{Loss: []float64{1, 0.5}, Alphas: []float64{0, 1}, Accuracy: []float64{0, 1},
		DeltaBounds: &[2]float64{0.00612499953, 0.00612500011},
		Certificate: &certify.Certificate{DeltaTol: 1e-7, RelWidth: 9.5e-8, DeltaLower: 0.00612499953, DeltaUpper: 0.00612500011}}
	tex := string(SummaryTeXBytes(r))
	for _, want := range []string{"$[0.0061249995, 0.0061250002]$", "$\\Delta$ bounds, relative width & $9.5\\times 10^{-8}$ ($\\le 1\\times 10^{-7}$ asked)"} {
		if !strings.Contains(tex, want) {
			t.Errorf("summary.tex lacks %q:\n%s", want, tex)
		}
	}
}
