package functionspace

import (
	"context"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/geometry"
)

// GaussOptions tune Path.GaussLength; zero values choose defaults.
type GaussOptions struct {
	// Intervals is the first grid's number of intervals (default 256); it is
	// doubled until the mean error estimate is below Tol or MaxIntervals is
	// reached (default 4096).
	Intervals, MaxIntervals int
	// Tol is the absolute tolerance on the mean per-example Gauss length, in
	// radians (default 1e-4).
	Tol float64
	// Progress, if not nil, is called after each α with the number done and
	// the number planned for the current grid.
	Progress func(done, total int)
}

// ZeroSpeed records an α at which an example's velocity vanished, so its
// unit tangent is undefined there (THEORY.md §3); Example is −1 for the
// stacked path Γ.
type ZeroSpeed struct {
	Example int
	Alpha   float64
}

// GaussResult is the Gauss length of every example's output path and of the
// stacked path on [Lo, Hi], in radians, with error estimates, and the loss
// along the fine grid it was computed on.
type GaussResult struct {
	Lo, Hi float64
	// PerExample[i] is G(γ_i), corners included; PerExampleError[i] its error estimate.
	PerExample, PerExampleError []float64
	// Mean is Ḡ = (1/N) Σ G(γ_i) and MeanError the mean of the error estimates.
	Mean, MeanError float64
	// Stacked is G(Γ) and StackedError its error estimate.
	Stacked, StackedError float64
	// Intervals is the number of grid intervals of the final grid.
	Intervals int
	// ZeroSpeed lists where a tangent was undefined; such grid points are
	// skipped (the angle is taken between the neighbouring defined tangents).
	ZeroSpeed []ZeroSpeed
	// ArcLength[i] is S(γ_i) = ∫‖v_i‖ dα and StackedArcLength is S(Γ), by the
	// trapezoid rule on the final grid (THEORY.md §3).
	ArcLength        []float64
	StackedArcLength float64
	// Alphas [Intervals+1] is the final grid; Loss, DLoss and Accuracy are L,
	// L′ and the accuracy on it.
	Alphas, Loss, DLoss, Accuracy []float64
}

// GaussLength computes the Gauss length (total turning, THEORY.md §3) of
// every example's output path and of the stacked path Γ over [lo, hi], as the
// sum of angles between unit tangents at consecutive points of a uniform grid
// of M intervals. Each angle is at most the turning over its interval (the
// geodesic distance on the sphere is at most the path length), so the sum is
// a lower bound that converges to G as M grows: at rate O(h²) on smooth
// pieces, and a corner (a ReLU kink) contributes the full angle between its
// one-sided tangents in the limit. The error estimate of each value is
// |G_M − G_{M/2}|/3 (the grid against its even-point subgrid, Richardson);
// M doubles until the mean estimate is below Tol.
//
// It returns ctx.Err() if ctx is cancelled.
func (p *Path) GaussLength(ctx context.Context, lo, hi float64, o GaussOptions) (*GaussResult, error) {
	if o.Intervals <= 0 {
		o.Intervals = 256
	}
	if o.MaxIntervals <= 0 {
		o.MaxIntervals = 4096
	}
	if o.Tol <= 0 {
		o.Tol = 1e-4
	}
	m := o.Intervals + o.Intervals%2
	for {
		r, err := p.gaussGrid(ctx, lo, hi, m, o.Progress)
		if err != nil {
			return nil, err
		}
		if r.MeanError <= o.Tol || 2*m > o.MaxIntervals {
			return r, nil
		}
		m *= 2
	}
}

type tangentChain struct {
	last  *mat.Dense // last defined unit tangent per example [N, K]
	have  []bool
	sum   []float64
	lastS []float64 // stacked
	haveS bool
	sumS  float64
}

func newChain(n, k int) *tangentChain {
	return &tangentChain{last: mat.NewDense(n, k, nil), have: make([]bool, n), sum: make([]float64, n), lastS: make([]float64, n*k)}
}

// push adds the angles between the last defined tangents and those of the
// velocities v [N, K] (rows with defined[i] false are skipped); the stacked
// velocity is v's flat data, defined when definedS.
func (c *tangentChain) push(v *mat.Dense, defined []bool, definedS bool) {
	for i, ok := range defined {
		if !ok {
			continue
		}
		if c.have[i] {
			a, _ := geometry.CornerAngle(c.last.RawRowView(i), v.RawRowView(i))
			c.sum[i] += a
		}
		copy(c.last.RawRowView(i), v.RawRowView(i))
		c.have[i] = true
	}
	if definedS {
		flat := v.RawMatrix().Data
		if c.haveS {
			a, _ := geometry.CornerAngle(c.lastS, flat)
			c.sumS += a
		}
		copy(c.lastS, flat)
		c.haveS = true
	}
}

func (p *Path) gaussGrid(ctx context.Context, lo, hi float64, m int, progress func(int, int)) (*GaussResult, error) {
	r := &GaussResult{Lo: lo, Hi: hi, Intervals: m,
		PerExample: make([]float64, p.N), PerExampleError: make([]float64, p.N), ArcLength: make([]float64, p.N)}
	h := (hi - lo) / float64(m)
	fine, coarse := newChain(p.N, p.K), newChain(p.N, p.K)
	defined := make([]bool, p.N)
	for j := 0; j <= m; j++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		alpha := lo + (hi-lo)*float64(j)/float64(m)
		if j == m {
			alpha = hi
		}
		s := p.At(alpha)
		r.Alphas = append(r.Alphas, alpha)
		r.Loss = append(r.Loss, s.Loss)
		r.DLoss = append(r.DLoss, s.DLoss)
		r.Accuracy = append(r.Accuracy, s.Accuracy)
		wt := h
		if j == 0 || j == m {
			wt = h / 2
		}
		for i, sp := range s.Speed {
			r.ArcLength[i] += wt * sp
		}
		r.StackedArcLength += wt * math.Sqrt(s.StackedVV)
		for i, sp := range s.Speed {
			defined[i] = sp > 0
			if !defined[i] {
				r.ZeroSpeed = append(r.ZeroSpeed, ZeroSpeed{Example: i, Alpha: alpha})
			}
		}
		definedS := s.StackedVV > 0
		if !definedS {
			r.ZeroSpeed = append(r.ZeroSpeed, ZeroSpeed{Example: -1, Alpha: alpha})
		}
		fine.push(s.Velocity, defined, definedS)
		if j%2 == 0 {
			coarse.push(s.Velocity, defined, definedS)
		}
		if progress != nil {
			progress(j+1, m+1)
		}
	}
	for i := range r.PerExample {
		r.PerExample[i] = fine.sum[i]
		r.PerExampleError[i] = math.Abs(fine.sum[i]-coarse.sum[i]) / 3
		r.Mean += fine.sum[i]
		r.MeanError += r.PerExampleError[i]
	}
	r.Mean /= float64(p.N)
	r.MeanError /= float64(p.N)
	r.Stacked = fine.sumS
	r.StackedError = math.Abs(fine.sumS-coarse.sumS) / 3
	return r, nil
}

// GaussLengthTrapezoid is the paper-compatible Gauss length (Lucas et al.
// 2021): the trapezoid rule over the samples' turning rates ‖T′‖, with no
// corners counted, as the mean over examples and for the stacked path
// (geometry.GaussLengthTrapezoid). The samples must be sorted by α.
func GaussLengthTrapezoid(samples []*Sample) (mean, stacked float64) {
	alphas := make([]float64, len(samples))
	means := make([]float64, len(samples))
	stacks := make([]float64, len(samples))
	for j, s := range samples {
		alphas[j] = s.Alpha
		for _, t := range s.TurningRate {
			means[j] += t
		}
		means[j] /= float64(len(s.TurningRate))
		stacks[j] = s.StackedTurningRate
	}
	// The mean of the per-example trapezoid sums is the trapezoid sum of the means.
	return geometry.GaussLengthTrapezoid(alphas, means), geometry.GaussLengthTrapezoid(alphas, stacks)
}
