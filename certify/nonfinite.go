package certify

import (
	"fmt"
	"math"
	"regexp"
	"strings"
)

// nullDerivedFromNonFinite makes the quantities derived from the grid's loss
// null (NaN, nil) when some loss value on the grid is not finite (an
// overflow, e.g. weights of size 1e100): Δ, the continuous Δ, the bumps and
// the barrier height are then meaningless (Δ of +Inf values is not 0), and
// the per-α passes behind the turning rates and the Gauss lengths overflowed
// too. It adds one note saying why (RUN_FORMAT.md: a value not computed is
// null, with a note). Nothing changes when every loss value is finite.
func nullDerivedFromNonFinite(r *Report) {
	bad := 0
	for _, l := range r.Loss {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			bad++
		}
	}
	if bad == 0 {
		return
	}
	nan := math.NaN()
	r.Delta, r.DeltaContinuous, r.DeltaContinuousPair = nan, nan, nil
	r.Bumps = nil
	r.BarrierHeight = nan
	r.GaussLengthMeanTrapezoid, r.GaussLengthStackedTrapezoid = nan, nan
	r.GaussLengthMean, r.GaussLengthMeanError = nan, nan
	r.GaussLengthStacked, r.GaussLengthStackedError = nan, nan
	r.GaussLengthStackedConverged, r.GaussLengthQuantiles, r.GaussLengthPerExample = nil, nil, nil
	r.TurningRateMean, r.TurningRateStacked = nil, nil
	r.ArcLength, r.ArcLengthMean = nan, nan
	r.Notes = append(r.Notes, fmt.Sprintf("not computed: %d of %d loss values on the grid are not finite (the passes overflowed), so delta, delta_continuous, delta_continuous_pair, bumps, barrier_height, the Gauss and arc lengths and the turning rates are null", bad, len(r.Loss)))
}

// indexRE matches an array index in a note's key path, "loss[12]".
var indexRE = regexp.MustCompile(`\[[0-9]+\]`)

// collapseNonFiniteNotes turns jsonTree's notes on non-finite array
// elements ("loss[3]: +Inf (not finite), written as null", one per
// element) into one note per key path with the indices removed, e.g.
// "loss: 50 of 50 values not finite (+Inf), written as null". lengths
// gives the number of elements under each key path (arrayLengths); other
// notes pass unchanged, in order.
func collapseNonFiniteNotes(notes []string, lengths map[string]int) []string {
	type group struct {
		n      int
		values []string
		at     int
	}
	groups := map[string]*group{}
	var out []string
	const suffix = " (not finite), written as null"
	for _, n := range notes {
		key, rest, ok := strings.Cut(n, ": ")
		if !ok || !strings.HasSuffix(rest, suffix) || !indexRE.MatchString(key) {
			out = append(out, n)
			continue
		}
		base := indexRE.ReplaceAllString(key, "[]")
		val := strings.TrimSuffix(rest, suffix)
		g := groups[base]
		if g == nil {
			g = &group{at: len(out)}
			groups[base] = g
			out = append(out, "")
		}
		g.n++
		seen := false
		for _, v := range g.values {
			seen = seen || v == val
		}
		if !seen {
			g.values = append(g.values, val)
		}
	}
	for base, g := range groups {
		of := ""
		name := strings.TrimSuffix(base, "[]")
		if m, ok := lengths[name]; ok {
			of = fmt.Sprintf(" of %d", m)
		}
		out[g.at] = fmt.Sprintf("%s: %d%s values not finite (%s), written as null", name, g.n, of, strings.Join(g.values, ", "))
	}
	return out
}

// derivedFromLoss are the keys nullDerivedFromNonFinite makes null: its
// note explains them, so MarshalJSON adds no note per key.
var derivedFromLoss = []string{"delta", "delta_continuous", "barrier_height", "gauss_length_mean_trapezoid",
	"gauss_length_stacked_trapezoid", "gauss_length_mean", "gauss_length_mean_error", "gauss_length_stacked",
	"gauss_length_stacked_error", "arc_length", "arc_length_mean"}

// lossNonFinite reports whether some loss value on the grid is not finite.
func lossNonFinite(r *Report) bool {
	for _, l := range r.Loss {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return true
		}
	}
	return false
}

// arrayLengths records in m the length of every array of the JSON tree t,
// by its key path with indices written "[]", summed over the arrays of
// one such path (collapseNonFiniteNotes).
func arrayLengths(t any, path string, m map[string]int) {
	switch v := t.(type) {
	case jsonObject:
		for _, f := range v {
			arrayLengths(f.val, join(path, f.key), m)
		}
	case []any:
		m[path] += len(v)
		for _, e := range v {
			arrayLengths(e, path+"[]", m)
		}
	}
}
