package certify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"github.com/certify-mli/certify/functionspace"
)

// Linear mode connectivity between two networks of one architecture
// (THEORY.md §10; RUN_FORMAT.md "Two runs: certify lmc A B"): the loss and
// the 0–1 error along θ(α) = (1−α)θA + αθB on a grid of α, and the barriers
// read from that grid.

// Num is a float64 that is written to JSON as null when it is not finite
// (NaN: not computed; ±Inf: overflowed) and read back from null as NaN.
type Num float64

// MarshalJSON writes the number, or null when it is NaN or infinite.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads a number, or null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Num(f)
	return nil
}

// Nums converts a slice of float64 to Nums (nil stays nil).
func Nums(v []float64) []Num {
	if v == nil {
		return nil
	}
	out := make([]Num, len(v))
	for i, x := range v {
		out[i] = Num(x)
	}
	return out
}

// LMCMeasures are the grid quantities of THEORY.md §10 for one pair of
// endpoints: the curves and the barriers read from them. Loss values are in
// the model's loss (mean reduction over examples, as everywhere in the
// report); errors are fractions in [0, 1]. Every error quantity is null
// when the targets are float values (no class labels: no 0–1 error).
type LMCMeasures struct {
	// Alphas [M] is the grid, increasing, with Alphas[0] = 0 and
	// Alphas[M−1] = 1.
	Alphas []float64 `json:"alphas"`
	// Loss [M] is L(θ(α)) and Error [M] the 0–1 error E(θ(α)) on the grid.
	Loss  []Num `json:"loss"`
	Error []Num `json:"error"`
	// ConvexityGap [M] is g(α) = L(α) − [(1−α)L(0) + αL(1)] on the grid,
	// ConvexityGapError the same for E.
	ConvexityGap      []Num `json:"convexity_gap"`
	ConvexityGapError []Num `json:"convexity_gap_error"`
	// BarrierLoss is max g over the grid (Frankle et al. 2020 with L for
	// E; Entezari et al. 2022), at BarrierLossAlpha; ≥ 0 since g(0) =
	// g(1) = 0.
	BarrierLoss      Num `json:"barrier_loss"`
	BarrierLossAlpha Num `json:"barrier_loss_alpha"`
	// BarrierLossAinsworth is max_α L(α) − ½(L(0) + L(1)) over the grid
	// (Ainsworth et al. 2023).
	BarrierLossAinsworth Num `json:"barrier_loss_ainsworth"`
	// BarrierError and BarrierErrorAinsworth are the two barriers of E.
	BarrierError          Num `json:"barrier_error"`
	BarrierErrorAlpha     Num `json:"barrier_error_alpha"`
	BarrierErrorAinsworth Num `json:"barrier_error_ainsworth"`
	// MidpointGap is g(½) for L and MidpointGapError for E (evaluated at
	// α = ½ exactly, whether or not ½ is on the grid).
	MidpointGap      Num `json:"midpoint_gap"`
	MidpointGapError Num `json:"midpoint_gap_error"`
	// BarrierBounds is the rigorous [lower, upper] on the loss barrier
	// max_{α∈[0,1]} g(α) over all of [0, 1], not only the grid
	// (CertifyBarrier, THEORY.md §10), and BarrierWitness the α at which
	// g ≥ lower is proven; nil (null) when not computed (the reason is in
	// the report's notes). BarrierCertificate holds the search's details
	// (converged, leaves, the gap requested).
	BarrierBounds      *[2]float64         `json:"barrier_bounds"`
	BarrierWitness     *float64            `json:"barrier_witness"`
	BarrierCertificate *BarrierCertificate `json:"barrier_certificate,omitempty"`
	// AccuracyBounds is the certified accuracy on α-intervals covering
	// [0, 1] (CertifyAccuracy, THEORY.md §10); nil (null) when not
	// computed.
	AccuracyBounds *AccuracyBounds `json:"accuracy_bounds"`
	// BarrierErrorBounds is the rigorous [lower, upper] on the error
	// barrier max_{α∈[0,1]} E(α) − [(1−α)E(0) + αE(1)] over all of [0, 1],
	// read from AccuracyBounds (ErrorBarrierBounds, THEORY.md §10); nil
	// (null) when AccuracyBounds is.
	BarrierErrorBounds *[2]float64 `json:"barrier_error_bounds"`
}

// ErrorBarrierBounds bounds the barrier of the 0–1 error E = 1 − accuracy,
// B_E = max_{α∈[0,1]} g_E(α) with g_E(α) = E(α) − [(1−α)E(0) + αE(1)]
// (THEORY.md §10), from certified accuracy bounds a alone: on each interval
// [a_j, b_j] E lies in [1 − hi_j, 1 − lo_j]; E(0) and E(1) lie in the
// bounds at α = 0 and 1 (AccuracyBounds.At), so the chord lies between the
// chords of their ends. The upper bound is the largest, over intervals, of
// (1 − lo_j) − min_{[a_j, b_j]} chord_lower; the lower bound the largest of
// 0 (g_E(0) = 0) and (1 − hi_j) − min_{[a_j, b_j]} chord_upper, which g_E
// reaches at an α of the interval. Both are exact in rational arithmetic
// up to the float64 rounding of a few operations, for which they are
// widened by 1e-12. ok is false when a is nil or does not cover 0 and 1.
func ErrorBarrierBounds(a *AccuracyBounds) (lo, hi float64, ok bool) {
	if a == nil || len(a.Intervals) == 0 {
		return 0, 0, false
	}
	l0, h0, ok0 := a.At(0)
	l1, h1, ok1 := a.At(1)
	if !ok0 || !ok1 {
		return 0, 0, false
	}
	e0lo, e0hi, e1lo, e1hi := 1-h0, 1-l0, 1-h1, 1-l1
	chord := func(alpha, e0, e1 float64) float64 { return (1-alpha)*e0 + alpha*e1 }
	lo, hi = 0, math.Inf(-1)
	for _, iv := range a.Intervals {
		cl := min(chord(iv[0], e0lo, e1lo), chord(iv[1], e0lo, e1lo))
		cu := min(chord(iv[0], e0hi, e1hi), chord(iv[1], e0hi, e1hi))
		hi = max(hi, (1-iv[2])-cl)
		lo = max(lo, (1-iv[3])-cu)
	}
	const slack = 1e-12
	return max(0, lo-slack), hi + slack, true
}

// AttachBarrier records a barrier certificate c of this line in m:
// BarrierBounds (nil when the upper bound is not finite: an enclosure
// overflowed), BarrierWitness and BarrierCertificate. It returns an error
// wrapping ErrContradiction when the grid's barrier (BarrierLoss, a
// float64 value of g at a grid α) lies above the certified upper bound
// by more than the float64 rounding of the loss (1e-9·(1 + |L(0)| +
// |L(1)|) + RoundingError of both ends and the grid value).
func (m *LMCMeasures) AttachBarrier(c *BarrierCertificate, examples int) error {
	m.BarrierCertificate = c
	w := c.WitnessAlpha
	m.BarrierWitness = &w
	if math.IsInf(c.Upper, 0) || math.IsNaN(c.Upper) {
		m.BarrierBounds = nil
		return nil
	}
	m.BarrierBounds = &[2]float64{c.Lower, c.Upper}
	if n := len(m.Loss); n > 0 && !math.IsNaN(float64(m.BarrierLoss)) {
		l0, l1 := float64(m.Loss[0]), float64(m.Loss[n-1])
		s := 1e-9*(1+math.Abs(l0)+math.Abs(l1)) + 2*RoundingError(l0, examples) + 2*RoundingError(l1, examples)
		if float64(m.BarrierLoss) > c.Upper+s {
			return fmt.Errorf("lmc: %w: the grid's barrier %v (at α = %v) lies above the certified upper bound %v", ErrContradiction, float64(m.BarrierLoss), float64(m.BarrierLossAlpha), c.Upper)
		}
	}
	return nil
}

// AttachAccuracy records certified accuracy bounds a of this line in m,
// with the error barrier bounds they imply (ErrorBarrierBounds). It
// returns an error wrapping ErrContradiction when the float64 accuracy
// 1 − Error at a grid α lies outside the certified bounds there, or the
// grid's error barrier above the certified upper bound.
func (m *LMCMeasures) AttachAccuracy(a *AccuracyBounds) error {
	m.AccuracyBounds = a
	m.BarrierErrorBounds = nil
	if lo, hi, ok := ErrorBarrierBounds(a); ok {
		m.BarrierErrorBounds = &[2]float64{lo, hi}
		if len(m.Error) == len(m.Alphas) && !math.IsNaN(float64(m.BarrierError)) && float64(m.BarrierError) > hi+1e-12 {
			return fmt.Errorf("lmc: %w: the grid's error barrier %v (at α = %v) lies above the certified upper bound %v", ErrContradiction, float64(m.BarrierError), float64(m.BarrierErrorAlpha), hi)
		}
	}
	if len(m.Error) != len(m.Alphas) {
		return nil
	}
	for i, al := range m.Alphas {
		acc := 1 - float64(m.Error[i])
		lo, hi, ok := a.At(al)
		// 1 − (1 − k/N) may differ from k/N in the last bit
		if !ok || acc < lo-1e-12 || acc > hi+1e-12 {
			return fmt.Errorf("lmc: %w: the accuracy %v at α = %v lies outside the certified [%v, %v]", ErrContradiction, acc, al, lo, hi)
		}
	}
	return nil
}

// BarrierGap is the absolute stopping gap of CertifyBarrier for a relative
// width rel of the barrier bounds (certify lmc --delta-tol): rel times the
// loss scale max(|L(0)|, |L(1)|) of the line (rel itself when both ends
// have zero loss).
func BarrierGap(rel, l0, l1 float64) float64 {
	s := max(math.Abs(l0), math.Abs(l1))
	if !(s > 0) || math.IsInf(s, 0) {
		return rel
	}
	return rel * s
}

// LineCurve is the loss and 0–1 error along a line at some α.
type LineCurve struct {
	Alphas []float64
	Loss   []float64
	// Error is nil when the targets have no class labels. Each is k/N, k
	// the examples misclassified, correctly rounded (not 1 − accuracy,
	// which rounds twice: 0.09999999999999998 for 1 of 10).
	Error []float64
	// Examples is N, the examples the errors count (0: unknown, for a
	// curve built by hand): Measures then computes the error's gaps from
	// the counts k = N·E exactly.
	Examples int
}

// LMCGrid returns n equally spaced α from 0 to 1 (n ≥ 2).
func LMCGrid(n int) ([]float64, error) {
	if n < 2 {
		return nil, fmt.Errorf("lmc: --alphas %d: want at least 2 (α = 0 and 1)", n)
	}
	a := make([]float64, n)
	for i := range a {
		a[i] = float64(i) / float64(n-1)
	}
	a[n-1] = 1
	return a, nil
}

// EvaluateLine evaluates L and (when the targets are labels) E = 1 −
// accuracy on path p at every α of alphas. The path's θ0 is θA and its
// θT is θB (functionspace.New), so α is the weight of B.
func EvaluateLine(p *functionspace.Path, alphas []float64) LineCurve {
	c, _ := EvaluateLineContext(context.Background(), p, alphas, nil) // never cancelled: no error
	return c
}

// EvaluateLineContext is EvaluateLine, stopped by ctx and reporting: after
// each α it calls progress (if not nil) with the number of α done and
// len(alphas). Once ctx is cancelled it returns ctx.Err() within one chunk
// of examples (functionspace.Path.AtContext) and no curve.
func EvaluateLineContext(ctx context.Context, p *functionspace.Path, alphas []float64, progress func(done, total int)) (LineCurve, error) {
	c := LineCurve{Alphas: alphas, Loss: make([]float64, len(alphas)), Examples: p.N}
	labels := p.Targets.Labels != nil
	if labels {
		c.Error = make([]float64, len(alphas))
	}
	for i, a := range alphas {
		s, err := p.AtContext(ctx, a)
		if err != nil {
			return LineCurve{}, err
		}
		c.Loss[i] = s.Loss
		if labels {
			// Accuracy is correct/N, so N·Accuracy rounds to the count
			correct := math.Round(s.Accuracy * float64(p.N))
			c.Error[i] = (float64(p.N) - correct) / float64(p.N)
		}
		if progress != nil {
			progress(i+1, len(alphas))
		}
	}
	return c, nil
}

// ConvexityGap returns g(α_i) = v_i − [(1−α_i)v_0 + α_i v_{M−1}] for the
// values v on the grid alphas (THEORY.md §10). The chord is evaluated as
// v_0 + α_i(v_{M−1} − v_0), which is exactly v_0 when both ends are equal
// (so a constant v has g = 0 exactly, not a rounding error).
func ConvexityGap(alphas, v []float64) []float64 {
	g := make([]float64, len(v))
	m := len(v) - 1
	for i, a := range alphas {
		g[i] = v[i] - (v[0] + a*(v[m]-v[0]))
	}
	return g
}

// gridBarrier returns max g and its α (the first α where the maximum is
// reached), and Ainsworth's max v − ½(v(0) + v(1)). NaN anywhere makes all
// three NaN.
func gridBarrier(alphas, v []float64) (b, at, ains float64) {
	g := ConvexityGap(alphas, v)
	b, at, ains = math.Inf(-1), math.NaN(), math.Inf(-1)
	m := len(v) - 1
	for i := range g {
		if math.IsNaN(g[i]) {
			return math.NaN(), math.NaN(), math.NaN()
		}
		if g[i] > b {
			b, at = g[i], alphas[i]
		}
		ains = max(ains, v[i]-0.5*(v[0]+v[m]))
	}
	return b, at, ains
}

// Measures computes the grid quantities from a curve c (on a grid from 0 to
// 1) and the values at α = ½, midLoss and midErr (midErr is ignored when
// c.Error is nil).
func Measures(c LineCurve, midLoss, midErr float64) (LMCMeasures, error) {
	n := len(c.Alphas)
	if n < 2 || c.Alphas[0] != 0 || c.Alphas[n-1] != 1 || len(c.Loss) != n || (c.Error != nil && len(c.Error) != n) {
		return LMCMeasures{}, errors.New("lmc: the grid must run from α = 0 to α = 1 with one loss (and error) per α")
	}
	m := LMCMeasures{Alphas: c.Alphas, Loss: Nums(c.Loss), Error: Nums(c.Error), ConvexityGap: Nums(ConvexityGap(c.Alphas, c.Loss))}
	b, at, ains := gridBarrier(c.Alphas, c.Loss)
	m.BarrierLoss, m.BarrierLossAlpha, m.BarrierLossAinsworth = Num(b), Num(at), Num(ains)
	m.MidpointGap = Num(midLoss - 0.5*(c.Loss[0]+c.Loss[n-1]))
	nan := Num(math.NaN())
	m.BarrierError, m.BarrierErrorAlpha, m.BarrierErrorAinsworth, m.MidpointGapError = nan, nan, nan, nan
	if c.Error != nil {
		if g, ains, mid, ok := errorGapsExact(c, midErr); ok {
			b, at := math.Inf(-1), math.NaN()
			for i := range g {
				if g[i] > b {
					b, at = g[i], c.Alphas[i]
				}
			}
			m.ConvexityGapError = Nums(g)
			m.BarrierError, m.BarrierErrorAlpha, m.BarrierErrorAinsworth, m.MidpointGapError = Num(b), Num(at), Num(ains), Num(mid)
			return m, nil
		}
		m.ConvexityGapError = Nums(ConvexityGap(c.Alphas, c.Error))
		b, at, ains := gridBarrier(c.Alphas, c.Error)
		m.BarrierError, m.BarrierErrorAlpha, m.BarrierErrorAinsworth = Num(b), Num(at), Num(ains)
		m.MidpointGapError = Num(midErr - 0.5*(c.Error[0]+c.Error[n-1]))
	}
	return m, nil
}

// errorGapsExact returns the error's convexity gaps, Ainsworth's barrier
// max E − ½(E(0) + E(1)) and the midpoint gap computed exactly from the counts of misclassified examples, when c knows
// N and its grid is LMCGrid's (α_i = i/m, m = M − 1, as the JSON's α
// print them): g_i = (m·k_i − (m−i)·k_0 − i·k_m) / (m·N), and
// (2k − k_0 − k_m) / (2N) for Ainsworth's and the midpoint's, integers divided
// once, so a gap of 1/200 is written 0.005, not the 0.0050000000000000044
// that v_i − (v_0 + α_i(v_m − v_0)) gives in float64, and equal gaps are
// equal (the barrier's α is the first of them, not whichever rounded
// higher). ok is false otherwise (a curve built by hand, or errors that
// are not counts over N); the float64 formula applies then.
func errorGapsExact(c LineCurve, midErr float64) (g []float64, ains, mid float64, ok bool) {
	n, N := len(c.Alphas), c.Examples
	if N <= 0 || N > 1<<40 {
		return nil, 0, 0, false
	}
	m := n - 1
	k := make([]int64, n)
	for i := range c.Alphas {
		if c.Alphas[i] != float64(i)/float64(m) && !(i == m && c.Alphas[i] == 1) {
			return nil, 0, 0, false
		}
		e := c.Error[i]
		if math.IsNaN(e) {
			return nil, 0, 0, false
		}
		k[i] = int64(math.Round(e * float64(N)))
		if float64(k[i])/float64(N) != e {
			return nil, 0, 0, false
		}
	}
	g = make([]float64, n)
	top := k[0]
	for i := range g {
		num := int64(m)*k[i] - int64(m-i)*k[0] - int64(i)*k[m]
		g[i] = float64(num) / float64(int64(m)*int64(N))
		top = max(top, k[i])
	}
	ains = float64(2*top-k[0]-k[m]) / float64(2*N)
	mid = math.NaN()
	if km := math.Round(midErr * float64(N)); !math.IsNaN(midErr) && km/float64(N) == midErr {
		mid = (2*km - float64(k[0]) - float64(k[m])) / (2 * float64(N))
	} else if !math.IsNaN(midErr) {
		mid = midErr - 0.5*(c.Error[0]+c.Error[m])
	}
	return g, ains, mid, true
}

// LineMeasures evaluates path p on alphas and at α = ½ and returns the
// measures (EvaluateLine, then Measures).
func LineMeasures(p *functionspace.Path, alphas []float64) (LMCMeasures, error) {
	return LineMeasuresContext(context.Background(), p, alphas, nil)
}

// LineMeasuresContext is LineMeasures, stopped by ctx (it returns ctx.Err())
// and reporting the grid's progress as EvaluateLineContext does, starting
// with 0 done; α = ½, evaluated after the grid when the grid lacks it,
// counts as one more α.
func LineMeasuresContext(ctx context.Context, p *functionspace.Path, alphas []float64, progress func(done, total int)) (LMCMeasures, error) {
	total := len(alphas)
	if !slices.Contains(alphas, 0.5) {
		total++
	}
	report := func(done, _ int) {
		if progress != nil {
			progress(done, total)
		}
	}
	report(0, total) // the first α may take a while: say how many there are
	c, err := EvaluateLineContext(ctx, p, alphas, report)
	if err != nil {
		return LMCMeasures{}, err
	}
	midLoss, midErr := math.NaN(), math.NaN()
	for i, a := range alphas {
		if a == 0.5 {
			midLoss = c.Loss[i]
			if c.Error != nil {
				midErr = c.Error[i]
			}
		}
	}
	if math.IsNaN(midLoss) {
		h, err := EvaluateLineContext(ctx, p, []float64{0.5}, nil)
		if err != nil {
			return LMCMeasures{}, err
		}
		midLoss = h.Loss[0]
		if h.Error != nil {
			midErr = h.Error[0]
		}
		report(total, total)
	}
	return Measures(c, midLoss, midErr)
}

// LMCEndpoint says where one end of the line came from.
type LMCEndpoint struct {
	// Path is the run directory or checkpoint file as given.
	Path string `json:"path"`
	// Checkpoint is the file read (e.g. DIR/final.safetensors).
	Checkpoint string `json:"checkpoint"`
	// State is "init" or "final" for a run directory, "file" for a
	// checkpoint given directly.
	State string `json:"state"`
}

// SplitLabel names the data of the report for people: the split ("train",
// "test"), or for --data the file's base name ("heldout.npz").
func (r *LMCReport) SplitLabel() string {
	if r.Split == "data" && r.DataFile != "" {
		return filepath.Base(r.DataFile)
	}
	return r.Split
}

// DataPhrase is SplitLabel in a sentence: "train split", "test split", or
// "data file heldout.npz".
func (r *LMCReport) DataPhrase() string {
	if r.Split == "data" {
		return "data file " + r.SplitLabel()
	}
	return r.Split + " split"
}

// LMCReport is lmc.json (RUN_FORMAT.md "Two runs: certify lmc A B"): the
// measures of the line from A to B (of B aligned to A when Aligned), the
// same before alignment under Unaligned, with the certified barrier and
// accuracy of each line (null when not computed; Notes says why).
type LMCReport struct {
	Command  string      `json:"command"`
	A        LMCEndpoint `json:"a"`
	B        LMCEndpoint `json:"b"`
	LossKind string      `json:"loss_kind"`
	// Split is the data the measures are computed on: "train" (the run's
	// evaluation data), "test" (the held-out split of config.json's
	// dataset) or "data" (the file of certify lmc --data, named by DataFile).
	Split string `json:"split"`
	// DataFile is the file of --data when Split is "data"; empty otherwise.
	DataFile string `json:"data_file,omitempty"`
	// Data describes the examples (file or dataset, count).
	Data     string `json:"data"`
	BNPolicy string `json:"bn_policy"`
	LMCMeasures
	// Aligned is true when B was permuted to match A (--align weights)
	// before the line was drawn; then Permutations, AlignSweeps,
	// AlignedCheckpoint and Unaligned are set.
	Aligned bool `json:"aligned"`
	// Permutations maps each permuted group of units (named by the
	// state_dict prefix of its first linear/conv2d layer, align.Groups) to
	// the permutation π applied to B: unit i of the aligned B is unit π[i] of B.
	Permutations map[string][]int `json:"permutations,omitempty"`
	// AlignSweeps is how many passes over the layers weight matching made
	// (the last one changed nothing).
	AlignSweeps int `json:"align_sweeps,omitempty"`
	// AlignedCheckpoint is the file holding the permuted θB.
	AlignedCheckpoint string `json:"aligned_checkpoint,omitempty"`
	// Unaligned holds the measures of the line to B as given.
	Unaligned *LMCMeasures `json:"unaligned,omitempty"`
	Examples  int          `json:"examples"`
	Seconds   float64      `json:"seconds"`
	Notes     []string     `json:"notes"`
	// LMCLayers, when not nil (--layers), says which tensors moved; its
	// keys (layers, hold, moved_tensors) sit at the top level of lmc.json.
	*LMCLayers
}
