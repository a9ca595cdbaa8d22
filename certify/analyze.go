package certify

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"gonum.org/v1/gonum/floats"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/nn"
)

// Options set an analysis; zero values choose the defaults of RUN_FORMAT.md.
type Options struct {
	// Alphas is the number of equally spaced α of the report's grid,
	// including 0 and 1 (default 50, the paper's).
	Alphas int `json:"alphas"`
	// Tolerance is the largest rise Δ still called monotone (default 0; the
	// paper's MNIST tables used 1e-3).
	Tolerance float64 `json:"tolerance"`
	// GaussTol is the absolute tolerance on the mean per-example Gauss length
	// (radians, default 1e-4), GaussIntervals the first grid (default 256,
	// raised to an even multiple of Alphas − 1 so the report's α are grid
	// points: the Gauss length's grid is even, GaussFirstGridStep) and
	// GaussMaxIntervals the finest grid (default 4096). GaussMaxIntervals
	// bounds the first grid too: a first grid above it is lowered to the
	// largest such multiple at most GaussMaxIntervals (with a note in the
	// report), and a GaussMaxIntervals below the smallest one is refused
	// (Analyze's error names gauss_max_intervals) unless LossOnly.
	GaussTol float64 `json:"gauss_tol"`
	// GaussRelTol is the relative tolerance on the mean per-example Gauss
	// length (default 1e-3): the grid stops refining when the error estimate
	// is below GaussTol or GaussRelTol times the value. Deep ReLU networks
	// have Gauss lengths of tens of radians and thousands of kinks.
	GaussRelTol       float64 `json:"gauss_rel_tol"`
	GaussIntervals    int     `json:"gauss_intervals"`
	GaussMaxIntervals int     `json:"gauss_max_intervals"`
	// Examples is the number of evaluation examples (recorded; chosen when
	// the run is loaded).
	Examples int `json:"examples"`
	// BNReference is the number of reference examples (the first ones) whose
	// statistics normalise every example under bn_policy recompute
	// (recorded from the path; absent under other policies).
	BNReference int `json:"bn_reference,omitempty"`
	// LossOnly skips the path's geometry (Gauss and arc lengths) and the
	// continuous Δ: only the loss and accuracy on the grid are computed.
	LossOnly bool `json:"loss_only,omitempty"`
	// NoGeometry skips the path's geometry (the corner-aware Gauss length,
	// arc lengths, continuous Δ and, for mse, Theorems A/B, which need the
	// Gauss length) but keeps everything else, the certificate included:
	// for nets whose kinks make the geometry the dearest phase (a BatchNorm
	// resnet's blank background puts hundreds of kinks per example near
	// α = 0, issue 13). The skipped values are null in the report.
	NoGeometry bool `json:"no_geometry,omitempty"`
	// Certificate runs the rigorous certificate of THEORY.md §7 (Certify)
	// after the grid; its verdict replaces the grid verdict. MaxIntervals and
	// MinWidth are its budget (defaults of CertifyOptions).
	Certificate  bool    `json:"certificate"`
	MaxIntervals int     `json:"max_intervals,omitempty"`
	MinWidth     float64 `json:"min_width,omitempty"`
	// DeltaTol is the relative width of the certificate's Δ bounds it
	// refines to after the verdict (CertifyOptions.DeltaTol; issue 12's
	// --delta-tol). 0 is the default, DefaultDeltaTol, and is recorded as
	// absent, so that reports from before the option compare equal.
	DeltaTol float64 `json:"delta_tol,omitempty"`
	// Variant is the line analysed when it is not the run's own θ0 → θT
	// (Endpoints, THEORY.md §8); the caller builds the path from its
	// endpoints and records it here.
	Variant *Variant `json:"variant,omitempty"`
	// Labels is "clean" when a run trained with label noise is evaluated on
	// the dataset's labels instead of those it was trained on (recorded by
	// the caller; empty otherwise).
	Labels string `json:"labels,omitempty"`
	// NoPerLayer skips the per-layer contributions to L′ (PerLayerDLoss),
	// which cost one pass per layer and grid α.
	NoPerLayer bool `json:"no_per_layer,omitempty"`
	// PlateauTolerance is the accuracy rise PlateauLength still counts as
	// flat (default DefaultPlateauTolerance).
	PlateauTolerance float64 `json:"plateau_tolerance"`
	// ExampleIntervals, when positive (and Certificate is set, the loss
	// mse and LossOnly not), runs the per-example certificate
	// (ExampleCertificate) on that many equal α-intervals and compares it
	// with Theorem B's per-example ranges (conditions.theorems.examples).
	ExampleIntervals int `json:"example_intervals,omitempty"`
	// AccuracyIntervals is the budget of leaves of the certified accuracy
	// (CertifyAccuracy; with Certificate; default 512).
	AccuracyIntervals int `json:"accuracy_intervals,omitempty"`
	// Progress, if not nil, is told the stage and the count done of total.
	Progress func(stage string, done, total int) `json:"-"`
	// Notify, if not nil, is told in one line when the certificate's
	// verdict is decided and its search goes on refining Δ's bounds
	// (CertifyOptions.Notify).
	Notify func(msg string) `json:"-"`
	// Checkpoint, if not nil, makes the certificate's and the accuracy
	// bounds' searches save their state in Checkpoint.Dir and resume from
	// it (CertificateCheckpoint, AccuracyCheckpoint; checkpoint.go). Its
	// Key must identify everything else the report depends on.
	Checkpoint *Checkpoint `json:"-"`
	// accTap, set by Analyze around the certificate and the accuracy
	// bounds, carries the accuracy verdicts the certificate's leaf passes
	// read off their jets to the accuracy search (acctap.go).
	accTap *accTap
}

// WithDefaults returns o with the defaults Analyze fills in, as a report
// records them.
func (o Options) WithDefaults() Options {
	o.defaults()
	return o
}

func (o *Options) defaults() {
	if o.Alphas <= 1 {
		o.Alphas = 50
	}
	if o.GaussTol <= 0 {
		o.GaussTol = 1e-4
	}
	if o.GaussRelTol <= 0 {
		o.GaussRelTol = 1e-3
	}
	if o.GaussIntervals <= 0 {
		o.GaussIntervals = 256
	}
	if o.GaussMaxIntervals <= 0 {
		o.GaussMaxIntervals = 4096
	}
	if o.PlateauTolerance <= 0 {
		o.PlateauTolerance = DefaultPlateauTolerance
	}
	if o.DeltaTol == DefaultDeltaTol {
		o.DeltaTol = 0 // the default is recorded as absent
	}
}

// deltaTol is the certificate's DeltaTol: o.DeltaTol, or DefaultDeltaTol
// when it is 0.
func (o Options) deltaTol() float64 {
	if o.DeltaTol <= 0 {
		return DefaultDeltaTol
	}
	return o.DeltaTol
}

// Grid returns m equally spaced α from 0 to 1, both included, with the
// endpoints exact.
func Grid(m int) []float64 {
	a := make([]float64, m)
	for j := range a {
		a[j] = float64(j) / float64(m-1)
	}
	return a
}

// RoundingError is the estimated absolute rounding error of a mean-reduced
// loss value L computed in float64 over n examples: a rise smaller than the
// sum of the two ends' estimates is not evidence of non-monotonicity. It is
// 1e-12·(1 + |L|) for the network's forward pass plus n·ε·|L| for the sum
// of n non-negative per-example losses (the standard bound of recursive
// summation).
func RoundingError(l float64, n int) float64 {
	return RoundingErrorIn(functionspace.Float64, l, n)
}

// forwardRounding is the forward-pass term of RoundingError per unit of
// 1 + |L|: in float64, 1e-12 ≈ 9007·2⁻⁵³; in float32, the same multiple
// of float32's unit roundoff, 9007·2⁻²⁴ ≈ 5.4e-4.
var forwardRounding = map[functionspace.Precision]float64{
	functionspace.Float64: 1e-12,
	functionspace.Float32: 1e-12 * 0x1p29,
}

// RoundingErrorIn is RoundingError for a loss whose layer passes ran in
// precision (functionspace.Float64 or Float32, Path.Precision): the forward
// pass term scales with that precision's unit roundoff (2⁻⁵³ or 2⁻²⁴: a
// float32 pass gives 1e-12·2²⁹·(1 + |L|) ≈ 5.4e-4·(1 + |L|)), while the sum
// over examples, always float64 (functionspace reduces in float64), keeps
// n·2⁻⁵²·|L|. An unknown precision is treated as float32, the coarser.
func RoundingErrorIn(precision functionspace.Precision, l float64, n int) float64 {
	f, ok := forwardRounding[precision]
	if !ok {
		f = forwardRounding[functionspace.Float32]
	}
	return f*(1+math.Abs(l)) + float64(n)*0x1p-52*math.Abs(l)
}

// Analyze evaluates the path p on the report's grid and measures its
// monotonicity and geometry (THEORY.md §3–§5): the loss and accuracy at the
// grid's α, Δ and the bumps on the grid, the continuous Δ, the Gauss lengths
// (corner-aware, stacked, paper-compatible trapezoid), arc lengths and the
// weight distance, and a grid verdict (monotone_on_grid or non_monotone with
// a witness). It returns ctx.Err() when cancelled.
func Analyze(ctx context.Context, p *functionspace.Path, o Options) (*Report, error) {
	start := time.Now()
	o.defaults()
	if step := GaussFirstGridStep(o.Alphas); !o.LossOnly && o.GaussMaxIntervals < step {
		return nil, fmt.Errorf("certify: gauss_max_intervals %d is below %d intervals, the smallest even multiple of the report grid's %d (alphas %d): the corner-aware Gauss length's grid holds the report's α and has an even number of intervals", o.GaussMaxIntervals, step, o.Alphas-1, o.Alphas)
	}
	o.Examples = p.N
	o.BNReference = p.BNReference()
	r := &Report{LossKind: p.Model.Spec.Loss, LossReduction: p.Model.Spec.Reduction(), Tolerance: o.Tolerance, BNPolicy: bnPolicy(p),
		Examples: p.N, Precision: p.Precision().String(), Options: o}
	progress := func(stage string, done, total int) {
		if o.Progress != nil {
			o.Progress(stage, done, total)
		}
	}
	r.Alphas = Grid(o.Alphas)
	var samples []*functionspace.Sample
	// AtGrid: At at every α, or on an MLP of two or more hidden ReLU-family
	// layers the second layer's input carried across the grid; with the
	// per-layer L′ wanted, AtGridPerLayer also splits L′ by layer where the
	// carry allows (Sample.LayerDLoss), else perLayer's passes do below.
	wantPerLayer := !o.LossOnly && !o.NoPerLayer
	grid := p.AtGrid
	if wantPerLayer {
		grid = p.AtGridPerLayer
	}
	var split []map[int]float64 // per α; nil once an α has none
	err := grid(ctx, r.Alphas, func(j int, s *functionspace.Sample) error {
		if j == 0 || split != nil {
			if s.LayerDLoss == nil {
				split = nil
			} else {
				split = append(split, s.LayerDLoss)
			}
		}
		samples = append(samples, s)
		r.Loss = append(r.Loss, s.Loss)
		r.DLoss = append(r.DLoss, s.DLoss)
		r.Accuracy = append(r.Accuracy, s.Accuracy)
		var tm float64
		for _, t := range s.TurningRate {
			tm += t / float64(len(s.TurningRate))
		}
		r.TurningRateMean = append(r.TurningRateMean, tm)
		r.TurningRateStacked = append(r.TurningRateStacked, s.StackedTurningRate)
		// Keep only what later steps read (memory: 50 samples of [N, K] each
		// would dominate at 60000 examples): turning rates and speeds for the
		// trapezoid and Theorem B, velocities for Theorem B (mse only), γ(1).
		s.Acceleration, s.ExampleDLoss = nil, nil
		if p.Model.Spec.Loss != "mse" || o.LossOnly {
			s.ExampleLoss = nil // kept for mse: per-example Δ_i (exampleTheory)
		}
		if j < len(r.Alphas)-1 {
			s.Output = nil
			if p.Model.Spec.Loss != "mse" || o.LossOnly {
				s.Velocity = nil
			}
		}
		progress("loss on the grid", j+1, len(r.Alphas))
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.Delta = Delta(r.Loss)
	r.Bumps = Bumps(r.Alphas, r.Loss)
	if r.Bumps == nil {
		r.Bumps = []Bump{}
	}
	r.GaussLengthMeanTrapezoid, r.GaussLengthStackedTrapezoid = functionspace.GaussLengthTrapezoid(samples)
	r.PlateauLength = PlateauLength(r.Alphas, r.Accuracy, o.PlateauTolerance)
	r.BarrierHeight = BarrierHeight(r.Alphas, r.Loss)
	if wantPerLayer && len(split) == len(r.Alphas) {
		splitPerLayer(r, split)
	} else if wantPerLayer {
		if err := perLayer(ctx, p, r, progress); err != nil {
			return nil, err
		}
	}

	if o.LossOnly || o.NoGeometry { // not computed: null in the report (RUN_FORMAT.md), never 0
		nan := math.NaN()
		r.DeltaContinuous, r.GaussLengthMean, r.GaussLengthMeanError = nan, nan, nan
		r.GaussLengthStacked, r.GaussLengthStackedError, r.ArcLength, r.ArcLengthMean = nan, nan, nan, nan
	} else if err := pathGeometry(ctx, p, o, r, samples, progress); err != nil {
		return nil, err
	}
	a := affineCondition(p, samples[len(samples)-1])
	r.Conditions.AffineModel = &a
	if p.Model.MayJump() {
		r.Conditions.DeltaContinuous = "sampled: a jump of L where a softplus input crosses PyTorch's threshold is seen only if it falls between two sampled α; delta_bounds (the certificate) include every jump"
	}
	b := bilinearCondition(p, samples[0], samples[len(samples)-1])
	r.Conditions.BilinearModel = &b

	r.WeightDistance, r.WeightDistanceNormalized = WeightDistance(p.Model, p.Theta0, p.Delta)
	r.Verdict, r.Witness = gridVerdict(r.Alphas, r.Loss, o.Tolerance, p.N, p.Precision())
	if r.Witness == nil && p.Precision() == functionspace.Float32 {
		w, cc, err := settleFloat32(ctx, p, r.Alphas, r.Loss, o.Tolerance)
		if err != nil {
			return nil, err
		}
		r.Float32CloseCalls = cc
		if w != nil {
			r.Verdict, r.Witness = NonMonotone, w
		}
	}
	var checks []WitnessCheck
	if r.Witness != nil && !o.Certificate {
		// A float64 rise is only an estimate: the witness must be proven
		// in interval arithmetic (lower(L(β)) − upper(L(α)) > tolerance).
		// With the certificate, attachCertificate proves it with the
		// certificate's evaluator.
		c := proveWitness(p, r.Witness, o.Tolerance)
		checks = append(checks, c)
		if !c.Proven {
			r.Verdict, r.Witness = MonotoneOnGrid, nil
		}
	}
	if r.Witness == nil && !o.LossOnly && !o.NoGeometry && r.DeltaContinuous > o.Tolerance {
		// A rise between grid points found by the continuous Δ is a witness
		// too: two evaluated α < β (RUN_FORMAT.md).
		a, b := r.DeltaContinuousPair[0], r.DeltaContinuousPair[1]
		la, lb := p.At(a).Loss, p.At(b).Loss
		re := RoundingErrorIn(p.Precision(), la, p.N) + RoundingErrorIn(p.Precision(), lb, p.N)
		if a < b && lb-la > o.Tolerance+re {
			w := &Witness{Alpha: a, Beta: b, Rise: lb - la, RoundingError: re}
			if o.Certificate { // proven (or not) by attachCertificate
				r.Verdict, r.Witness = NonMonotone, w
			} else if c := proveWitness(p, w, o.Tolerance); c.Proven {
				checks = append(checks, c)
				r.Verdict, r.Witness = NonMonotone, w
			} else {
				checks = append(checks, c)
			}
		}
	}
	if len(checks) > 0 {
		r.Conditions.WitnessCheck = checks
	}
	if o.Certificate {
		// the leaves run one interval pass per core: OpenBLAS's own threads
		// would only contend with them (issue 12, acc-share round)
		restore := blasbackend.SerialProducts()
		// one interval pass, two objectives: the certificate's leaf passes
		// also classify the examples for the accuracy bounds (accTap)
		o.accTap = newAccTap(p)
		err := attachCertificate(ctx, p, o, r)
		if err == nil {
			err = attachAccuracy(ctx, p, o, r)
		}
		o.accTap = nil
		restore()
		if err != nil {
			return nil, err
		}
	}
	theoremsOnJumps(p, r)
	nullDerivedFromNonFinite(r)
	deltaOutsideBoundsNote(r, p.Precision(), p.N)
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// splitPerLayer fills the report's per-layer L′ from the grid's split
// (functionspace.Path.AtGridPerLayer; split[j] per α, by state_dict layer
// index), as perLayer does from its passes: layers ascending, and the
// largest |Σ_l L′_l − L′| on the grid.
func splitPerLayer(r *Report, split []map[int]float64) {
	var layers []int
	for l := range split[0] {
		layers = append(layers, l)
	}
	sort.Ints(layers)
	r.PerLayerDLoss = make([]LayerDLoss, len(layers))
	for li, l := range layers {
		r.PerLayerDLoss[li] = LayerDLoss{Layer: l, DLoss: make([]float64, len(split))}
		for j, m := range split {
			r.PerLayerDLoss[li].DLoss[j] = m[l]
		}
	}
	for j, dl := range r.DLoss {
		var sum float64
		for _, l := range r.PerLayerDLoss {
			sum += l.DLoss[j]
		}
		r.PerLayerDLossSumError = max(r.PerLayerDLossSumError, math.Abs(sum-dl))
	}
}

// gridVerdict is non_monotone with a witness when some grid pair α < β rises
// by more than tolerance plus the rounding error of both values (computed
// in precision, RoundingErrorIn), else monotone_on_grid.
func gridVerdict(alphas, loss []float64, tol float64, n int, precision functionspace.Precision) (Verdict, *Witness) {
	var best *Witness
	minI := 0
	for j := 1; j < len(loss); j++ {
		if loss[j-1] < loss[minI] {
			minI = j - 1
		}
		rise := loss[j] - loss[minI]
		re := RoundingErrorIn(precision, loss[j], n) + RoundingErrorIn(precision, loss[minI], n)
		if rise > tol+re && (best == nil || rise > best.Rise) {
			best = &Witness{Alpha: alphas[minI], Beta: alphas[j], Rise: rise, RoundingError: re}
		}
	}
	if best != nil {
		return NonMonotone, best
	}
	return MonotoneOnGrid, nil
}

// maxCloseCallAlphas bounds the float64 re-evaluations of settleFloat32:
// each is one second-order pass over all examples without the first-layer
// cache, about a float64 grid point's cost.
const maxCloseCallAlphas = 8

// closeCallSlack is how far below the tolerance a float32 rise may lie and
// still be a close call, per loss value, per unit of 1 + |L|: 64·2⁻²⁴ ≈
// 3.8e-6, about 40× the largest float32 loss error measured against float64
// (1e-7 relative on MNIST networks, docs/performance.md) — so a real rise
// just above the tolerance that float32 rounds to just below it is still
// re-evaluated. (RoundingErrorIn's float32 term, used to *claim* a rise
// from float32 values alone, is much more generous.)
const closeCallSlack = 64 * 0x1p-24

// settleFloat32 decides the float32 grid's close calls in float64. A grid
// pair α < β (β after the running minimum at α, as gridVerdict) is a close
// call when its float32 rise lies within float32's rounding of the
// tolerance: above tol minus closeCallSlack·(2 + |L(α)| + |L(β)|) but not
// above tol plus float32's rounding estimate (RoundingErrorIn); float32
// cannot tell there on which side of the tolerance the rise is. Their α, largest rises first, are re-evaluated by float64 passes
// (Path.Float64), at most maxCloseCallAlphas; a pair with both α
// re-evaluated whose float64 rise exceeds tol plus float64's estimate is a
// witness (the largest one is returned, with float64 values). The counts go
// to the report; nil counts when there was no close call.
func settleFloat32(ctx context.Context, p *functionspace.Path, alphas, loss []float64, tol float64) (*Witness, *CloseCalls, error) {
	type pair struct {
		i, j int
		rise float64
	}
	var pairs []pair
	minI := 0
	for j := 1; j < len(loss); j++ {
		if loss[j-1] < loss[minI] {
			minI = j - 1
		}
		rise := loss[j] - loss[minI]
		slack := closeCallSlack * (2 + math.Abs(loss[j]) + math.Abs(loss[minI]))
		re32 := RoundingErrorIn(functionspace.Float32, loss[j], p.N) + RoundingErrorIn(functionspace.Float32, loss[minI], p.N)
		if rise > tol-slack && rise <= tol+re32 {
			pairs = append(pairs, pair{minI, j, rise})
		}
	}
	if len(pairs) == 0 {
		return nil, nil, nil
	}
	sort.SliceStable(pairs, func(a, b int) bool { return pairs[a].rise > pairs[b].rise })
	q, err := p.Float64()
	if err != nil {
		return nil, nil, err
	}
	l64 := map[int]float64{}
	eval := func(k int) error {
		if _, ok := l64[k]; ok {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		l64[k] = q.At(alphas[k]).Loss
		return nil
	}
	cc := &CloseCalls{Pairs: len(pairs)}
	var best *Witness
	for _, pr := range pairs {
		need := 0
		for _, k := range []int{pr.i, pr.j} {
			if _, ok := l64[k]; !ok {
				need++
			}
		}
		if len(l64)+need > maxCloseCallAlphas {
			continue
		}
		if err := eval(pr.i); err != nil {
			return nil, nil, err
		}
		if err := eval(pr.j); err != nil {
			return nil, nil, err
		}
		cc.Settled++
		la, lb := l64[pr.i], l64[pr.j]
		re := RoundingErrorIn(functionspace.Float64, la, p.N) + RoundingErrorIn(functionspace.Float64, lb, p.N)
		if rise := lb - la; rise > tol+re && (best == nil || rise > best.Rise) {
			best = &Witness{Alpha: alphas[pr.i], Beta: alphas[pr.j], Rise: rise, RoundingError: re}
		}
	}
	cc.Alphas = len(l64)
	cc.Unsettled = cc.Pairs - cc.Settled
	return best, cc, nil
}

// WeightDistance returns ‖θT − θ0‖₂ = ‖δ‖₂ over the trainable parameters
// and its ratio to ‖θ0‖₂ (THEORY.md §5); buffers such as BatchNorm's
// running statistics are excluded.
func WeightDistance(m *nn.Model, theta0, delta nn.State) (dist, normalized float64) {
	var dd, tt float64
	for _, k := range m.Trainable() {
		for j, v := range delta[k].Data {
			dd += v * v
			t := theta0[k].Data[j]
			tt += t * t
		}
	}
	dist = math.Sqrt(dd)
	if tt > 0 {
		normalized = dist / math.Sqrt(tt)
	}
	return dist, normalized
}

// GaussFirstGridStep is what the corner-aware Gauss length's first grid
// is a multiple of for a report grid of alphas points: the smallest even
// multiple of alphas − 1 (alphas − 1 itself when even, twice it when odd).
// A multiple of alphas − 1 holds the report's α, where the cumulative
// lengths for Theorem B are recorded; functionspace.Path.GaussLength
// rounds its grid up to even (its error estimate compares the grid with
// its even points), which moved an odd multiple off the report's α.
func GaussFirstGridStep(alphas int) int {
	step := alphas - 1
	if step%2 != 0 {
		return 2 * step
	}
	return step
}

// gaussFirstGrid returns the corner-aware Gauss length's first grid for o
// (defaults filled, GaussMaxIntervals ≥ GaussFirstGridStep) and the grid it
// would be without the cap: GaussIntervals raised to a multiple of
// GaussFirstGridStep(Alphas), so that its α are grid points where the
// cumulative lengths for Theorem B are recorded, then lowered, if above
// GaussMaxIntervals, to the largest such multiple not above it.
func gaussFirstGrid(o Options) (first, uncapped int) {
	step := GaussFirstGridStep(o.Alphas)
	uncapped = step * ((o.GaussIntervals + step - 1) / step)
	if uncapped > o.GaussMaxIntervals {
		return step * max(o.GaussMaxIntervals/step, 1), uncapped
	}
	return uncapped, uncapped
}

// pathGeometry fills the Gauss lengths, arc lengths and the continuous Δ.
func pathGeometry(ctx context.Context, p *functionspace.Path, o Options, r *Report, samples []*functionspace.Sample, progress func(string, int, int)) error {
	first, uncapped := gaussFirstGrid(o)
	if first < uncapped {
		r.Notes = append(r.Notes, fmt.Sprintf("gauss_max_intervals %d lowered the corner-aware Gauss length's first grid from %d to %d intervals", o.GaussMaxIntervals, uncapped, first))
	}
	g, err := p.GaussLength(ctx, 0, 1, functionspace.GaussOptions{
		Intervals:    first,
		MaxIntervals: o.GaussMaxIntervals, Tol: o.GaussTol, RelTol: o.GaussRelTol, Record: r.Alphas,
		Progress: func(d, t int) { progress("Gauss length", d, t) }})
	if err != nil {
		return err
	}
	r.GaussLengthMean, r.GaussLengthMeanError = g.Mean, g.MeanError
	r.GaussLengthStacked, r.GaussLengthStackedError = g.Stacked, g.StackedError
	conv, iv, zs := g.StackedConverged, g.Intervals, len(g.ZeroSpeed)
	r.GaussLengthStackedConverged = &conv
	r.GaussLengthQuantiles = quantiles(g.PerExample)
	r.GaussLengthPerExample = g.PerExample
	r.GaussLengthIntervals, r.ZeroSpeedEvents = &iv, &zs
	r.ArcLength = g.StackedArcLength
	for _, s := range g.ArcLength {
		r.ArcLengthMean += s / float64(len(g.ArcLength))
	}

	// The continuous Δ: L′ is already known on the Gauss length's fine grid;
	// only the sign changes of L′ cost new passes (Brent refinement).
	evals := 0
	dc, from, to := DeltaRefined(g.Alphas, g.Loss, g.DLoss, func(a float64) (float64, float64) {
		evals++
		progress("continuous Δ", evals, evals)
		s := p.At(a)
		return s.Loss, s.DLoss
	})
	// The continuous Δ is a supremum over [0,1]: never below the grid's.
	if dc < r.Delta {
		dc = r.Delta
	}
	r.DeltaContinuous, r.DeltaContinuousPair = dc, &[2]float64{from, to}
	// RUN_FORMAT.md's conditions.theorem_a / theorem_b are the conclusions;
	// conditions.theorems holds the quantities they were decided from.
	if p.Model.Spec.Loss == "mse" {
		var cert *ExampleCertificateResult
		if o.Certificate && o.ExampleIntervals > 0 {
			var err error
			progress("per-example certificate", 0, o.ExampleIntervals)
			if cert, err = ExampleCertificate(ctx, p, o.ExampleIntervals, 0); err != nil {
				return err
			}
		}
		t := theoremConditions(p, g, samples)
		if t.Applies {
			t.Examples = exampleTheory(t.examples, g.PerExample, t.exampleLoss, cert)
			r.Conditions.TheoremBExamples = theoremBExamplesConclusion(t.Examples)
		}
		r.Conditions.Theorems = &t
		r.Conditions.TheoremA, r.Conditions.TheoremB = t.TheoremAConclusion, t.TheoremBConclusion
	} else {
		why := "does not apply: Theorems A and B are stated for mean-squared error (THEORY.md §6); this run's loss is cross_entropy"
		r.Conditions.Theorems = &TheoremReport{Reason: why}
		r.Conditions.TheoremA, r.Conditions.TheoremB = why, why
	}
	return nil
}

// bnPolicy is the report's bn_policy: "none" without BatchNorm, else the
// policy the path evaluates BatchNorm with (THEORY.md §2,
// functionspace.Options.BNPolicy).
func bnPolicy(p *functionspace.Path) string { return p.BNPolicy().String() }

// theoremConditions evaluates Theorems A and B (THEORY.md §6) for every
// example and for the stacked path on the report grid, from the Gauss
// length's cumulative lengths and the grid samples.
func theoremConditions(p *functionspace.Path, g *functionspace.GaussResult, samples []*functionspace.Sample) TheoremReport {
	m := len(samples)
	if len(g.CumulativeAlphas) != m {
		return TheoremReport{Reason: "the report grid's α were not all on the Gauss length's grid"}
	}
	last := samples[m-1]
	resid := make([]float64, p.N*p.K) // e_i = γ_i(1) − y_i, stacked [N·K]
	buf := make([]float64, p.K)
	for i := 0; i < p.N; i++ {
		y := p.Targets.Target(i, p.K, buf)
		for c, v := range last.Output.RawRowView(i) {
			resid[i*p.K+c] = v - y[c]
		}
	}
	examples := make([]PathQuantities, p.N)
	finalAlong := make([]float64, p.N)
	var stacked PathQuantities
	stacked.Alphas = g.CumulativeAlphas
	var ee float64
	for _, v := range resid {
		ee += v * v
	}
	stacked.ResidualNorm = math.Sqrt(ee)
	for i := range examples {
		q := &examples[i]
		q.Alphas = g.CumulativeAlphas
		e := resid[i*p.K : (i+1)*p.K]
		var en float64
		for _, v := range e {
			en += v * v
		}
		q.ResidualNorm = math.Sqrt(en)
		for k, s := range samples {
			q.RemainingGauss = append(q.RemainingGauss, max(g.PerExample[i]-g.CumulativeGauss[k][i], 0))
			q.RemainingArc = append(q.RemainingArc, max(g.ArcLength[i]-g.CumulativeArc[k][i], 0))
			v := s.Velocity.RawRowView(i)
			var dot float64
			for c := range v {
				dot += v[c] * e[c]
			}
			if s.Speed[i] > 0 {
				q.TangentResidual = append(q.TangentResidual, dot/s.Speed[i])
			} else {
				q.TangentResidual = append(q.TangentResidual, math.NaN())
			}
			if k == m-1 {
				finalAlong[i] = dot
			}
		}
	}
	for k, s := range samples {
		stacked.RemainingGauss = append(stacked.RemainingGauss, max(g.Stacked-g.CumulativeStackedGauss[k], 0))
		stacked.RemainingArc = append(stacked.RemainingArc, max(g.StackedArcLength-g.CumulativeStackedArc[k], 0))
		var dot float64
		for c, v := range s.Velocity.RawMatrix().Data {
			dot += v * resid[c]
		}
		if sp := math.Sqrt(s.StackedVV); sp > 0 {
			stacked.TangentResidual = append(stacked.TangentResidual, dot/sp)
		} else {
			stacked.TangentResidual = append(stacked.TangentResidual, math.NaN())
		}
	}
	t := Theorems(examples, stacked, finalAlong)
	t.examples = examples
	for _, s := range samples {
		t.exampleLoss = append(t.exampleLoss, s.ExampleLoss)
	}
	if !g.StackedConverged {
		t.TheoremAStacked += " (G(Γ) has not converged on the grid: stacked_converged is false)"
	}
	return t
}

// affineCondition decides the models-affine-in-θ case of THEORY.md §6: a
// model with one linear layer and no nonlinearity has a straight output path
// and a convex L(α), monotone on [0,1] iff L′(1) ≤ 0.
func affineCondition(p *functionspace.Path, at1 *functionspace.Sample) AffineReport {
	dense := 0
	for _, l := range p.Model.Layers {
		if _, ok := l.(nn.AffineInAlpha); ok {
			dense++
			continue
		}
		if id, ok := l.(nn.Identity); !ok || !id.IsIdentity() {
			return AffineReport{Statement: "does not apply: the model is not affine in θ (it has a " + l.Type() + " layer)"}
		}
	}
	if dense != 1 {
		return AffineReport{Statement: "does not apply: a product of linear layers is not affine in θ"}
	}
	a := AffineReport{Applies: true, DLossAt1: at1.DLoss, Monotone: at1.DLoss <= 0}
	switch noise := dlossRounding(p, at1); {
	case a.Monotone:
		a.Statement = "monotone: the model is affine in θ, L is convex in α and L′(1) ≤ 0"
	case at1.DLoss <= noise:
		// An exact fit: γ(1) − y is rounding noise, and so is L′(1).
		a.Monotone = true
		a.Statement = fmt.Sprintf("monotone up to rounding: the model is affine in θ and L is convex in α; L′(1) = %.3g is within its rounding estimate %.3g of 0 (an exact fit), so any rise before α = 1 is below rounding", at1.DLoss, noise)
	default:
		a.Statement = "not monotone: the model is affine in θ and L′(1) > 0, so L rises before α = 1"
	}
	return a
}

// dlossRounding estimates the float64 rounding of L′(α) for mse from the
// sample: ℓ_i′ = 2⟨v_i, γ_i − y_i⟩ inherits an error of about
// (K + 8)·ε·‖v_i‖·(‖γ_i‖ + ‖y_i‖) from the residual's rounding, with
// ‖y_i‖ ≈ ‖γ_i‖ near a fit; scaled like L′ (THEORY.md §4). 0 for
// cross_entropy, whose L′(1) has no exact-fit zero to blur.
func dlossRounding(p *functionspace.Path, s *functionspace.Sample) float64 {
	if p.Model.Spec.Loss != "mse" || s.Output == nil || s.Velocity == nil {
		return 0
	}
	var sum float64
	for i := 0; i < p.N; i++ {
		sum += 4 * floats.Norm(s.Velocity.RawRowView(i), 2) * floats.Norm(s.Output.RawRowView(i), 2)
	}
	return float64(p.K+8) * 0x1p-52 * sum / float64(p.N*p.Model.Spec.OutputDivisor(p.K))
}

// theoremsOnJumps keeps Theorems A and B (THEORY.md §6, stated for C²
// output paths) from claiming anything on a path that may jump: when the
// certificate found leaves where L may jump (a softplus input crossing
// PyTorch's threshold, issue 18), the theorems do not apply; when no
// certificate ran on a model that may jump, their conclusions say that
// they assume no jump.
func theoremsOnJumps(p *functionspace.Path, r *Report) {
	th := r.Conditions.Theorems
	if th == nil || !th.Applies || !p.Model.MayJump() {
		return
	}
	if c := r.Certificate; c != nil && c.JumpLeaves > 0 {
		why := fmt.Sprintf("does not apply: the output path may jump where a softplus input crosses PyTorch's threshold (%d leaves of the certificate), and Theorems A and B need a C² path (THEORY.md §6); the certificate encloses the jumps", c.JumpLeaves)
		r.Conditions.Theorems = &TheoremReport{Reason: why}
		r.Conditions.TheoremA, r.Conditions.TheoremB, r.Conditions.TheoremBExamples = why, why, ""
		return
	}
	if r.Certificate == nil {
		caveat := " (assuming no softplus threshold jump on the path, which only the certificate checks)"
		r.Conditions.TheoremA += caveat
		r.Conditions.TheoremB += caveat
		if r.Conditions.TheoremBExamples != "" {
			r.Conditions.TheoremBExamples += caveat
		}
	}
}
