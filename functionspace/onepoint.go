package functionspace

import "context"

// OnePoint reports whether the line is one point: δ = θT − θ0 is exactly 0
// in every tensor the path moves (BatchNorm buffers under `interpolate`
// included; θT − θ0 = 0 in float64 only when θT = θ0). Then θ0 + α·δ = θ0
// in float64 for every α, so every pass at any α is the pass at α = 0
// (under `recompute` the reference statistics too, being computed from
// θ0): the output path γ is one point, its velocity and acceleration are
// 0, L is constant and L′ = 0. AtGrid and GaussLength then make one pass
// instead of one per α (issue 12: θT = θ0 took 8–10 s of grid and Gauss
// length for a constant loss).
func (p *Path) OnePoint() bool {
	for _, t := range p.Delta {
		for _, v := range t.Data {
			if v != 0 {
				return false
			}
		}
	}
	return true
}

// onePointGrid is atGrid on a one-point line (OnePoint): one pass at
// alphas[0], handed to fn at every α as its own shallow copy with Alpha
// set (fn may clear a copy's fields; the matrices and slices are shared
// and must not be written). LayerDLoss stays nil, as on the uncarried
// path.
func (p *Path) onePointGrid(ctx context.Context, alphas []float64, fn func(j int, s *Sample) error) error {
	if len(alphas) == 0 {
		return nil
	}
	s, err := p.AtContext(ctx, alphas[0])
	if err != nil {
		return err
	}
	for j, a := range alphas {
		c := *s
		c.Alpha = a
		if err := fn(j, &c); err != nil {
			return err
		}
	}
	return nil
}

// onePointGauss is gaussGrid on a one-point line (OnePoint): the result
// gaussGrid gives on a grid of m intervals, from one pass at hi. γ is one
// point, so every Gauss length, arc length, chord deviation and error is
// 0, there is no kink, and every example's speed is 0 at every grid point
// (each one a ZeroSpeed event, as gaussGrid records them; the stacked
// path's too); the chord γ(hi) − γ(lo) is 0 for every example
// (ZeroChord). The grid's L, L′ and accuracy are the pass's at every α,
// and the cumulative lengths at the Record points are 0.
func (p *Path) onePointGauss(ctx context.Context, lo, hi float64, m int, progress func(int, int), record []float64) (*GaussResult, error) {
	r := &GaussResult{Lo: lo, Hi: hi, Intervals: m,
		PerExample: make([]float64, p.N), PerExampleError: make([]float64, p.N), ArcLength: make([]float64, p.N),
		KinkCount: make([]int, p.N), ChordDeviation: make([]float64, p.N)}
	s, err := p.AtContext(ctx, hi)
	if err != nil {
		return nil, err
	}
	for j := 0; j <= m; j++ {
		alpha := lo + (hi-lo)*float64(j)/float64(m)
		r.Alphas = append(r.Alphas, alpha)
		r.Loss = append(r.Loss, s.Loss)
		r.DLoss = append(r.DLoss, s.DLoss)
		r.Accuracy = append(r.Accuracy, s.Accuracy)
		for i, sp := range s.Speed {
			if sp == 0 {
				r.ZeroSpeed = append(r.ZeroSpeed, ZeroSpeed{Example: i, Alpha: alpha})
			}
		}
		if s.StackedVV == 0 {
			r.ZeroSpeed = append(r.ZeroSpeed, ZeroSpeed{Example: -1, Alpha: alpha})
		}
		for len(record) > 0 && record[0] <= alpha+1e-12*(hi-lo) {
			record = record[1:]
			r.CumulativeAlphas = append(r.CumulativeAlphas, alpha)
			r.CumulativeGauss = append(r.CumulativeGauss, make([]float64, p.N))
			r.CumulativeArc = append(r.CumulativeArc, make([]float64, p.N))
			r.CumulativeStackedGauss = append(r.CumulativeStackedGauss, 0)
			r.CumulativeStackedArc = append(r.CumulativeStackedArc, 0)
		}
	}
	for i := 0; i < p.N; i++ {
		r.ZeroChord = append(r.ZeroChord, i)
	}
	if progress != nil {
		progress(m+1, m+1)
	}
	return r, nil
}
