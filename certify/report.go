package certify

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/interval"
)

// Verdict is a report's or a certificate's verdict (RUN_FORMAT.md); its
// JSON is its String.
type Verdict string

// Verdicts of a report (RUN_FORMAT.md).
const (
	CertifiedMonotone Verdict = "certified_monotone"
	MonotoneOnGrid    Verdict = "monotone_on_grid"
	NonMonotone       Verdict = "non_monotone"
	Inconclusive      Verdict = "inconclusive"
)

// String is the verdict as the report writes it, e.g. "non_monotone".
func (v Verdict) String() string { return string(v) }

// Report is the content of DIR/certificate.json (RUN_FORMAT.md, "The
// report"). Lengths and angles are in the units of the outputs and radians.
type Report struct {
	Verdict  Verdict `json:"verdict"`
	LossKind string  `json:"loss_kind"`
	// LossReduction is how the mse loss reduces one example's outputs
	// ("mean" or "sum", nn.Spec.LossReduction; THEORY.md §11): Loss, DLoss,
	// Delta and the certificate's bounds are in its units. "mean" for
	// cross_entropy.
	LossReduction string `json:"loss_reduction"`
	// Alphas [m] is the report's grid; Loss, DLoss and Accuracy are L, L′ and
	// the accuracy on it (THEORY.md §4).
	Alphas   []float64 `json:"alphas"`
	Loss     []float64 `json:"loss"`
	DLoss    []float64 `json:"dloss"`
	Accuracy []float64 `json:"accuracy"`
	// PerLayerDLoss is L′ on the grid split by state_dict layer index
	// (PerLayerDLoss, THEORY.md §8); the contributions sum to DLoss up to
	// PerLayerDLossSumError, the largest |Σ_l L′_l(α) − L′(α)| on the grid.
	// Absent when skipped (loss_only, no_per_layer).
	PerLayerDLoss         []LayerDLoss `json:"per_layer_dloss,omitempty"`
	PerLayerDLossSumError float64      `json:"per_layer_dloss_sum_error,omitempty"`
	// PlateauLength is the length in α of the accuracy plateau at α = 0
	// (PlateauLength; Wang et al. 2023), BarrierHeight the largest rise of L
	// above the chord from L(0) to L(1) on the grid (BarrierHeight,
	// THEORY.md §8).
	PlateauLength float64 `json:"plateau_length"`
	BarrierHeight float64 `json:"barrier_height"`
	// AccuracyBounds is the certified accuracy on α-intervals covering
	// [0, 1] (CertifyAccuracy, THEORY.md §10), and CertifiedPlateau the
	// certified accuracy plateau at α = 0 read from it (CertifiedPlateau,
	// with tolerance Options.PlateauTolerance). Both are null when no
	// certificate was attempted (the note says so).
	AccuracyBounds   *AccuracyBounds `json:"accuracy_bounds"`
	CertifiedPlateau *float64        `json:"certified_plateau"`
	// Delta is Δ on the grid, DeltaContinuous Δ over all of [0,1]
	// (THEORY.md §5) attained between the α pair DeltaContinuousPair.
	// DeltaContinuous is NaN (null in the JSON) and DeltaContinuousPair nil
	// when not computed (loss_only).
	Delta               float64     `json:"delta"`
	DeltaContinuous     float64     `json:"delta_continuous"`
	DeltaContinuousPair *[2]float64 `json:"delta_continuous_pair"`
	// DeltaBounds is the rigorous [lower, upper] on the continuous Δ where a
	// certificate was attempted, else null.
	DeltaBounds *[2]float64 `json:"delta_bounds"`
	Tolerance   float64     `json:"tolerance"`
	Bumps       []Bump      `json:"bumps"`
	// Witness is a pair α < β whose rise exceeds the tolerance beyond the
	// rounding error (set when Verdict is non_monotone). It is the report's
	// only witness: when the certificate found it, the JSON adds the
	// certificate's loss enclosures at both ends (loss_alpha, loss_beta)
	// here instead of repeating it under certificate.witness.
	Witness *Witness `json:"witness,omitempty"`
	// Certificate holds the rigorous certificate's details (THEORY.md §7)
	// when one was attempted.
	Certificate *Certificate `json:"certificate,omitempty"`

	// The Gauss and arc lengths below are NaN (null in the JSON), and the
	// pointers nil, when not computed (loss_only).
	GaussLengthMean      float64 `json:"gauss_length_mean"`
	GaussLengthMeanError float64 `json:"gauss_length_mean_error"`
	GaussLengthStacked   float64 `json:"gauss_length_stacked"`
	// GaussLengthStackedConverged is false when G(Γ) has not converged on
	// the grid (ReLU networks: far more kinks than grid intervals; THEORY.md §3).
	GaussLengthStackedConverged *bool   `json:"gauss_length_stacked_converged"`
	GaussLengthStackedError     float64 `json:"gauss_length_stacked_error"`
	GaussLengthMeanTrapezoid    float64 `json:"gauss_length_mean_trapezoid"`
	GaussLengthStackedTrapezoid float64 `json:"gauss_length_stacked_trapezoid"`
	// TurningRateMean [m] is the mean over examples of ‖T_i′‖ at the grid's
	// α and TurningRateStacked [m] that of Γ (THEORY.md §3).
	TurningRateMean    []float64 `json:"turning_rate_mean"`
	TurningRateStacked []float64 `json:"turning_rate_stacked"`
	// GaussLengthPerExample [N] is G(γ_i) per example, radians, corners
	// included (THEORY.md §3): the data of gauss_hist.png, written so the
	// figure can be redrawn from certificate.json alone. Absent when not
	// computed (loss_only).
	GaussLengthPerExample []float64  `json:"gauss_length_per_example,omitempty"`
	GaussLengthQuantiles  *Quantiles `json:"gauss_length_quantiles"`
	// GaussLengthIntervals is the number of intervals of the finest grid the
	// corner-aware Gauss length used, at most options.gauss_max_intervals:
	// the first grid is 256 raised to a multiple of alphas − 1, lowered to
	// the largest such multiple at most gauss_max_intervals (a note says so
	// when it is), and doubled until the tolerances are met or the next
	// doubling would pass gauss_max_intervals. Null when not computed.
	GaussLengthIntervals     *int       `json:"gauss_length_intervals"`
	ZeroSpeedEvents          *int       `json:"zero_speed_events"`
	ArcLength                float64    `json:"arc_length"`
	ArcLengthMean            float64    `json:"arc_length_mean"`
	BNPolicy                 string     `json:"bn_policy"`
	WeightDistance           float64    `json:"weight_distance"`
	WeightDistanceNormalized float64    `json:"weight_distance_normalized"`
	Conditions               Conditions `json:"conditions"`
	Examples                 int        `json:"examples"`
	Data                     string     `json:"data"`
	// Precision is the floating-point format of the layer passes behind
	// every non-rigorous number of the report (functionspace.Path.Precision:
	// "float64", the default, or "float32"; sums over examples, the loss and
	// turning rates are float64 either way). The certificate (THEORY.md §7)
	// always runs in float64 interval arithmetic, whatever the precision.
	Precision string `json:"precision"`
	// Float32CloseCalls is, in float32 precision only, how the grid verdict
	// settled the grid pairs whose float32 rise lies within float32's
	// rounding of the tolerance: their α re-evaluated by float64 passes
	// (settleFloat32). Nil in float64 or when there was none.
	Float32CloseCalls *CloseCalls `json:"float32_close_calls,omitempty"`
	Seconds           float64     `json:"seconds"`
	// Notes explain the report's nulls: what was not computed, and every
	// non-finite value written as null (with its key path and value).
	Notes []string `json:"notes,omitempty"`
	// Options records every setting that produced the report, so it can be reproduced.
	Options Options `json:"options"`
	// Command is the command line that produced the report, when known.
	Command []string `json:"command,omitempty"`
	// File is where the report was written ("" when it was only printed);
	// not part of the report.
	File string `json:"-"`
	// Import summarises the run directory's import.json when the run came
	// from `certify import` (docs/from-pytorch.md): the files and formats of
	// θ0 and θT, the parameterisation the line interpolates ("raw
	// parameters", or "folded: …" for BatchNorm-folded ONNX graphs) and the
	// notes (prefixes stripped, dicts unwrapped, …). Nil otherwise.
	Import *ImportSummary `json:"import,omitempty"`
	// BLAS is the matrix-product library the layer passes ran on, as the
	// command line chose it (internal/blasbackend: Backend.Describe, e.g.
	// "openblas (Haswell, 2 threads), libopenblas.so.0 loaded at run time
	// (FILE)" or "go (gonum pure Go, amd64, 2 threads)"); empty when not
	// recorded (a report made by the library, not the command).
	BLAS string `json:"blas,omitempty"`
}

// ImportSummary is the part of import.json a report carries.
type ImportSummary struct {
	Init             string   `json:"init"`
	Final            string   `json:"final"`
	Format           string   `json:"format"`
	Parameterisation string   `json:"parameterisation"`
	LossSource       string   `json:"loss_source"`
	Notes            []string `json:"notes,omitempty"`
}

// Witness is a rise of the loss: L(Beta) − L(Alpha) = Rise with Alpha < Beta,
// exceeding the tolerance by more than RoundingError.
type Witness struct {
	Alpha         float64 `json:"alpha"`
	Beta          float64 `json:"beta"`
	Rise          float64 `json:"rise"`
	RoundingError float64 `json:"rounding_error"`
	// LossAlpha and LossBeta are the certificate's rigorous enclosures
	// [lo, hi] of L(Alpha) and L(Beta), when the certificate found the
	// witness (filled when the report is written; nil otherwise).
	LossAlpha *[2]float64 `json:"loss_alpha,omitempty"`
	LossBeta  *[2]float64 `json:"loss_beta,omitempty"`
}

// CloseCalls counts the float32 grid verdict's close calls (Report.Float32CloseCalls).
type CloseCalls struct {
	// Pairs is the number of grid pairs α < β whose float32 rise lies
	// within float32's rounding of the tolerance (settleFloat32: from
	// closeCallSlack below it to RoundingErrorIn's float32 estimate above).
	Pairs int `json:"pairs"`
	// Alphas is how many of their α were re-evaluated in float64 (at most
	// maxCloseCallAlphas, the largest rises first).
	Alphas int `json:"alphas_in_float64"`
	// Settled is the number of pairs decided in float64 (both α
	// re-evaluated); Unsettled = Pairs − Settled were left to float32's
	// estimate, i.e. not called non_monotone.
	Settled   int `json:"settled"`
	Unsettled int `json:"unsettled"`
}

// Quantiles summarise a distribution (per-example Gauss lengths).
type Quantiles struct {
	Min    float64 `json:"min"`
	Q10    float64 `json:"q10"`
	Q25    float64 `json:"q25"`
	Median float64 `json:"median"`
	Q75    float64 `json:"q75"`
	Q90    float64 `json:"q90"`
	Max    float64 `json:"max"`
}

// quantiles returns the quantiles of x by linear interpolation between order
// statistics (type 7, numpy's default).
func quantiles(x []float64) *Quantiles {
	if len(x) == 0 {
		return nil
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	q := func(p float64) float64 {
		h := p * float64(len(s)-1)
		lo := math.Floor(h)
		i := int(lo)
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		return s[i] + (h-lo)*(s[i+1]-s[i])
	}
	return &Quantiles{Min: s[0], Q10: q(0.1), Q25: q(0.25), Median: q(0.5), Q75: q(0.75), Q90: q(0.9), Max: s[len(s)-1]}
}

// Write stores the report as indented JSON at path, atomically.
func (r *Report) Write(path string) error {
	b, err := r.JSON()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// JSON is the report as indented JSON ending in a newline, as Write
// stores it (MarshalJSON).
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// notComputedLossOnly are the keys a loss_only (or no_geometry) analysis does not compute:
// null in its report, with one note naming them.
var notComputedLossOnly = []string{"delta_continuous", "delta_continuous_pair", "gauss_length_mean",
	"gauss_length_mean_error", "gauss_length_stacked", "gauss_length_stacked_converged",
	"gauss_length_stacked_error", "gauss_length_quantiles", "gauss_length_intervals",
	"zero_speed_events", "arc_length", "arc_length_mean"}

// MarshalJSON writes the report as RUN_FORMAT.md asks, whatever its
// numbers: every non-finite number at any depth becomes null with a note
// in notes giving its key path and value (a value that was not computed,
// NaN by convention, gets one note listing the keys instead); the
// witness carries the certificate's loss enclosures when it is the
// certificate's, and certificate.witness is not repeated.
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	q := *r
	if w, c := r.Witness, r.Certificate; w != nil && c != nil && c.Witness != nil && c.Witness.Alpha == w.Alpha && c.Witness.Beta == w.Beta {
		w2 := *w
		la, lb := c.Witness.LossAlpha, c.Witness.LossBeta
		w2.LossAlpha, w2.LossBeta = &la, &lb
		q.Witness = &w2
		c2 := *c
		c2.Witness = nil
		q.Certificate = &c2
	}
	skip := map[string]bool{}
	var notes []string
	if o := r.Options; o.LossOnly || o.NoGeometry {
		why, tail := "loss_only", ""
		if !o.LossOnly {
			why, tail = "no_geometry", "; the certificate is unaffected"
		}
		for _, k := range notComputedLossOnly {
			skip[k] = true
		}
		notes = append(notes, "not computed ("+why+"): "+strings.Join(notComputedLossOnly, ", ")+
			"; conditions.theorems, conditions.theorem_a and conditions.theorem_b are absent (they need the Gauss length); gauss_length_mean_trapezoid and gauss_length_stacked_trapezoid are the paper's trapezoid rule on the grid's turning rates, computed"+tail)
	}
	if r.DeltaBounds == nil && r.Certificate == nil {
		notes = append(notes, "delta_bounds: null, no certificate was attempted")
	}
	if r.AccuracyBounds == nil && r.Certificate == nil {
		notes = append(notes, "accuracy_bounds, certified_plateau: null, no certificate was attempted")
	}
	if lossNonFinite(r) { // explained by nullDerivedFromNonFinite's note
		for _, k := range derivedFromLoss {
			skip[k] = true
		}
	}
	t := jsonTree(reflect.ValueOf((*plain)(&q)), "", skip, &notes)
	obj := t.(jsonObject)
	lengths := map[string]int{}
	arrayLengths(obj, "", lengths)
	notes = collapseNonFiniteNotes(notes, lengths)
	for i := range obj {
		if obj[i].key == "notes" {
			for _, n := range notes {
				obj[i].val = append(obj[i].val.([]any), n)
			}
			notes = nil
		}
	}
	if len(notes) > 0 {
		ns := make([]any, len(notes))
		for i, n := range notes {
			ns[i] = n
		}
		obj = append(obj, jsonField{"notes", ns})
	}
	return json.Marshal(obj)
}

// ReadReport reads a certificate.json. A null or absent number of the
// loss_only keys (notComputedLossOnly) reads as NaN: not computed.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	nan := math.NaN()
	r := Report{DeltaContinuous: nan, GaussLengthMean: nan, GaussLengthMeanError: nan, GaussLengthStacked: nan,
		GaussLengthStackedError: nan, ArcLength: nan, ArcLengthMean: nan}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	// A non-finite number in a list is written as null (MarshalJSON);
	// encoding/json would read it back as 0, so the lists the figures
	// draw are read again with null as NaN.
	var lists struct {
		GaussLengthPerExample []*float64 `json:"gauss_length_per_example"`
		Certificate           *struct {
			Intervals []struct{ A, B, Inf, Sup *float64 } `json:"intervals"`
		} `json:"certificate"`
	}
	if err := json.Unmarshal(b, &lists); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	orNaN := func(v *float64) float64 {
		if v == nil {
			return nan
		}
		return *v
	}
	for i, v := range lists.GaussLengthPerExample {
		r.GaussLengthPerExample[i] = orNaN(v)
	}
	if c := lists.Certificate; c != nil && r.Certificate != nil {
		for i, l := range c.Intervals {
			r.Certificate.Intervals[i] = CertLeaf{A: orNaN(l.A), B: orNaN(l.B), Inf: orNaN(l.Inf), Sup: orNaN(l.Sup)}
		}
	}
	// MarshalJSON wrote the certificate's witness once, as the report's
	// witness with the loss enclosures: put it back under the certificate.
	// Its rise is recomputed as the certificate computes it (certify's
	// witness search: the lower end of L(β) − L(α), rounded down).
	if w, c := r.Witness, r.Certificate; w != nil && c != nil && c.Witness == nil && w.LossAlpha != nil && w.LossBeta != nil {
		c.Witness = &CertWitness{Alpha: w.Alpha, Beta: w.Beta, Rise: interval.Down(w.LossBeta[0] - w.LossAlpha[1]),
			LossAlpha: *w.LossAlpha, LossBeta: *w.LossBeta}
		w.LossAlpha, w.LossBeta = nil, nil
	}
	return &r, nil
}
