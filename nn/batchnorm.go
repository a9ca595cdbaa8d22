package nn

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

func init() {
	registerLayer("batchnorm1d", []string{"features", "in", "out", "eps", "momentum"}, func(ls LayerSpec, width int) (Layer, error) {
		return newBatchNorm(ls, width)
	})
}

// BatchNorm is PyTorch's nn.BatchNorm1d on flat batches [N, C] (C =
// Features, PyTorch's num_features) with affine weight γ [C] and bias β [C]
// and tracked running statistics (track_running_stats=True):
//
//   - evaluation mode (Forward, Jet: the analysis and Evaluate):
//     y = γ (x − running_mean)/√(running_var + Eps) + β;
//   - training mode (ForwardTrain, used by Model.ForwardTrain and Train):
//     y = γ (x − μ_B)/√(σ²_B + Eps) + β with the batch mean μ_B and the biased
//     batch variance σ²_B, and the running statistics are updated as
//     running_mean ← (1−m) running_mean + m μ_B,
//     running_var ← (1−m) running_var + m σ²_B·N/(N−1) (unbiased), and
//     num_batches_tracked += 1, m = Momentum.
//
// Backward is the training-mode gradient through the batch statistics
// (PyTorch's batch_norm_backward). PyTorch's momentum=None (cumulative
// average) is not supported.
//
// Its tensors, in Params order, are weight, bias, running_mean, running_var
// (all [C]) and num_batches_tracked ([], a count held as a float64 and
// written as I64 by WriteState); the last three are buffers (RUN_FORMAT.md).
type BatchNorm struct {
	Features      int
	Eps, Momentum float64
}

// Defaults of PyTorch's nn.BatchNorm1d.
const (
	DefaultBatchNormEps      = 1e-5
	DefaultBatchNormMomentum = 0.1
)

// TrainForwarder is implemented by layers whose training-mode forward pass
// differs from Forward (evaluation mode), such as BatchNorm. ForwardTrain
// returns y for the batch x [N, InSize] and updates the layer's buffers in p
// in place. Model.ForwardTrain uses it; Backward of such a layer is the
// training-mode gradient.
type TrainForwarder interface {
	ForwardTrain(p []*Tensor, x *mat.Dense) *mat.Dense
}

func newBatchNorm(ls LayerSpec, width int) (*BatchNorm, error) {
	c := 0
	for _, f := range []struct {
		name string
		v    int
	}{{"features", ls.Features}, {"in", ls.In}, {"out", ls.Out}} {
		if f.v == 0 {
			continue
		}
		if f.v < 0 {
			return nil, fmt.Errorf("batchnorm1d: %s: want a positive feature count, found %d", f.name, f.v)
		}
		if c != 0 && f.v != c {
			return nil, fmt.Errorf("batchnorm1d: features, in and out disagree (%d and %d)", c, f.v)
		}
		c = f.v
	}
	if c == 0 {
		c = width
	}
	if c != width {
		return nil, fmt.Errorf("batchnorm1d: %d features but the previous layer gives %d", c, width)
	}
	b := &BatchNorm{Features: c, Eps: DefaultBatchNormEps, Momentum: DefaultBatchNormMomentum}
	if ls.Eps != nil {
		b.Eps = *ls.Eps
	}
	if ls.Momentum != nil {
		b.Momentum = *ls.Momentum
	}
	if !(b.Eps > 0) {
		return nil, fmt.Errorf("batchnorm1d: eps: want a positive number, found %v", b.Eps)
	}
	if !(b.Momentum >= 0 && b.Momentum <= 1) {
		return nil, fmt.Errorf("batchnorm1d: momentum: want a number in [0, 1], found %v", b.Momentum)
	}
	return b, nil
}

// Type returns "batchnorm1d".
func (b *BatchNorm) Type() string { return "batchnorm1d" }

// InSize returns Features.
func (b *BatchNorm) InSize() int { return b.Features }

// OutSize returns Features.
func (b *BatchNorm) OutSize() int { return b.Features }

// Params returns weight [C], bias [C] and the buffers running_mean [C],
// running_var [C] and num_batches_tracked [] (PyTorch's state_dict order).
func (b *BatchNorm) Params() []Param {
	c := b.Features
	return []Param{
		{Name: "weight", Shape: []int{c}},
		{Name: "bias", Shape: []int{c}},
		{Name: "running_mean", Shape: []int{c}, Buffer: true},
		{Name: "running_var", Shape: []int{c}, Buffer: true},
		{Name: "num_batches_tracked", Shape: []int{}, Buffer: true},
	}
}

// normalize writes y = x·(γ·invstd) + (β − mean·γ·invstd) row by row, the
// operation order of PyTorch's batch_norm_cpu_transform_input.
func (b *BatchNorm) normalize(p []*Tensor, x *mat.Dense, mean, invstd []float64) *mat.Dense {
	n, c := x.Dims()
	alpha := make([]float64, c)
	beta := make([]float64, c)
	for j := range alpha {
		alpha[j] = invstd[j] * p[0].Data[j]
		beta[j] = p[1].Data[j] - mean[j]*alpha[j]
	}
	y := mat.NewDense(n, c, nil)
	for i := 0; i < n; i++ {
		src, dst := x.RawRowView(i), y.RawRowView(i)
		for j, v := range src {
			dst[j] = v*alpha[j] + beta[j]
		}
	}
	return y
}

// Forward is evaluation mode: y = γ (x − running_mean)/√(running_var + Eps) + β,
// x and y [N, C].
func (b *BatchNorm) Forward(p []*Tensor, x *mat.Dense) *mat.Dense {
	invstd := make([]float64, b.Features)
	for j, v := range p[3].Data {
		invstd[j] = 1 / math.Sqrt(v+b.Eps)
	}
	return b.normalize(p, x, p[2].Data, invstd)
}

// batchStats returns the batch mean [C] and the sum of squared deviations
// Σ(x − μ)² [C] of x [N, C] (two passes, as PyTorch).
func batchStats(x *mat.Dense) (mean, sqdev []float64) {
	n, c := x.Dims()
	mean = make([]float64, c)
	sqdev = make([]float64, c)
	for i := 0; i < n; i++ {
		for j, v := range x.RawRowView(i) {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := 0; i < n; i++ {
		for j, v := range x.RawRowView(i) {
			d := v - mean[j]
			sqdev[j] += d * d
		}
	}
	return mean, sqdev
}

// ForwardTrain is training mode: it normalises x [N, C] with the batch mean
// and the biased batch variance and updates running_mean, running_var (with
// the unbiased variance) and num_batches_tracked in p. N must be at least 2
// (PyTorch refuses a batch of one in training mode; Train checks it).
func (b *BatchNorm) ForwardTrain(p []*Tensor, x *mat.Dense) *mat.Dense {
	n, _ := x.Dims()
	mean, sq := batchStats(x)
	invstd := make([]float64, b.Features)
	m := b.Momentum
	for j := range invstd {
		invstd[j] = 1 / math.Sqrt(sq[j]/float64(n)+b.Eps)
		p[2].Data[j] = m*mean[j] + (1-m)*p[2].Data[j]
		p[3].Data[j] = m*(sq[j]/float64(n-1)) + (1-m)*p[3].Data[j]
	}
	if len(p) > 4 && p[4] != nil {
		p[4].Data[0]++
	}
	return b.normalize(p, x, mean, invstd)
}

// Backward is the training-mode vector-Jacobian product through the batch
// statistics, recomputed from x [N, C] (PyTorch's batch_norm_backward):
// with x̂ = (x − μ_B)·invstd, dγ += Σ_n dy·x̂, dβ += Σ_n dy and
// dx = γ·invstd·(dy − mean_n(dy) − x̂·mean_n(dy·x̂)).
func (b *BatchNorm) Backward(p []*Tensor, x, _, dy *mat.Dense, grads []*Tensor) *mat.Dense {
	n, c := x.Dims()
	mean, sq := batchStats(x)
	fn := float64(n)
	dotp := make([]float64, c)
	sum := make([]float64, c)
	for i := 0; i < n; i++ {
		xr, gr := x.RawRowView(i), dy.RawRowView(i)
		for j, v := range xr {
			dotp[j] += (v - mean[j]) * gr[j]
			sum[j] += gr[j]
		}
	}
	invstd := make([]float64, c)
	k := make([]float64, c)
	for j := range invstd {
		invstd[j] = 1 / math.Sqrt(sq[j]/fn+b.Eps)
		k[j] = dotp[j] * invstd[j] * invstd[j] / fn
		if grads[0] != nil {
			grads[0].Data[j] += dotp[j] * invstd[j]
		}
		if grads[1] != nil {
			grads[1].Data[j] += sum[j]
		}
	}
	dx := mat.NewDense(n, c, nil)
	for i := 0; i < n; i++ {
		xr, gr, dr := x.RawRowView(i), dy.RawRowView(i), dx.RawRowView(i)
		for j, v := range xr {
			d := (v - mean[j]) * k[j]
			dr[j] = (gr[j] - sum[j]/fn - d) * invstd[j] * p[0].Data[j]
		}
	}
	return dx
}

// StatsJet is the second-order jet along α of a BatchNorm layer's
// per-feature statistics (THEORY.md §2): the mean μ, μ̇, μ̈ and the variance
// σ², σ̇², σ̈², each [C].
type StatsJet struct {
	Mean, MeanVel, MeanAcc []float64
	Var, VarVel, VarAcc    []float64
}

// RunningStatsJet is the statistics jet of the `interpolate` policy
// (THEORY.md §2): running_mean and running_var are parameters, affine in α,
// so μ = running_mean(α), μ̇ = Δrunning_mean, μ̈ = 0, and likewise for σ².
// p and dp are the layer's tensors at α and δ in Params order; dp may be nil
// (constant parameters).
func RunningStatsJet(p, dp []*Tensor) *StatsJet {
	c := len(p[2].Data)
	st := &StatsJet{Mean: p[2].Data, Var: p[3].Data, MeanAcc: make([]float64, c), VarAcc: make([]float64, c)}
	if dp != nil {
		st.MeanVel, st.VarVel = dp[2].Data, dp[3].Data
	} else {
		st.MeanVel, st.VarVel = make([]float64, c), make([]float64, c)
	}
	return st
}

// BatchStatsJet is the statistics jet of the `recompute` policy (THEORY.md
// §2): the statistics of a fixed reference batch, whose input to the layer
// has the jet in (rows h, ḣ, ḧ [N, C]), as exact functions of α:
//
//	μ = mean h,  μ̇ = mean ḣ,  μ̈ = mean ḧ,
//	σ² = s·mean (h−μ)²,  σ̇² = 2s·mean (h−μ)(ḣ−μ̇),
//	σ̈² = 2s·mean [(ḣ−μ̇)² + (h−μ)(ḧ−μ̈)],
//
// with s = 1 for the biased variance (what training mode normalises with)
// or s = N/(N−1) when unbiased is set (what running_var accumulates). A Const
// jet gives zero derivatives. N must be positive (at least 2 if unbiased).
func BatchStatsJet(in *Jet, unbiased bool) *StatsJet {
	n := in.N
	h := in.Value()
	_, c := h.Dims()
	st := &StatsJet{
		Mean: make([]float64, c), MeanVel: make([]float64, c), MeanAcc: make([]float64, c),
		Var: make([]float64, c), VarVel: make([]float64, c), VarAcc: make([]float64, c),
	}
	hv, ha := in.Velocity(), in.Acceleration()
	fn := float64(n)
	for i := 0; i < n; i++ {
		for j, v := range h.RawRowView(i) {
			st.Mean[j] += v
		}
		if !in.Const {
			for j, v := range hv.RawRowView(i) {
				st.MeanVel[j] += v
			}
			for j, v := range ha.RawRowView(i) {
				st.MeanAcc[j] += v
			}
		}
	}
	for j := 0; j < c; j++ {
		st.Mean[j] /= fn
		st.MeanVel[j] /= fn
		st.MeanAcc[j] /= fn
	}
	for i := 0; i < n; i++ {
		hr := h.RawRowView(i)
		for j, v := range hr {
			u := v - st.Mean[j]
			st.Var[j] += u * u
		}
		if in.Const {
			continue
		}
		vr, ar := hv.RawRowView(i), ha.RawRowView(i)
		for j, v := range hr {
			u := v - st.Mean[j]
			ud := vr[j] - st.MeanVel[j]
			udd := ar[j] - st.MeanAcc[j]
			st.VarVel[j] += 2 * u * ud
			st.VarAcc[j] += 2 * (ud*ud + u*udd)
		}
	}
	d := fn
	if unbiased {
		d = fn - 1
	}
	for j := 0; j < c; j++ {
		st.Var[j] /= d
		st.VarVel[j] /= d
		st.VarAcc[j] /= d
	}
	return st
}

// Jet is the `interpolate` policy (THEORY.md §2): evaluation mode with
// weight, bias, running_mean and running_var all affine in α; it is
// JetStats with RunningStatsJet(p, dp).
func (b *BatchNorm) Jet(p, dp []*Tensor, in *Jet) *Jet {
	return b.JetStats(p, dp, RunningStatsJet(p, dp), in)
}

// JetStats maps the jet of the input h to that of
// y = γ(α)·(h − μ(α))/√(σ²(α) + Eps) + β(α), given the statistics' jet st
// (RunningStatsJet for the `interpolate` policy, BatchStatsJet of the
// reference batch for `recompute`), the parameters p at α and their
// α-derivative dp = δ (γ″ = β″ = 0; dp nil means constant γ, β). With
// u = h − μ, r = (σ² + Eps)^(−1/2) and g = γ r:
//
//	ṙ = −½ r σ̇²/(σ²+Eps),  r̈ = ¾ r (σ̇²)²/(σ²+Eps)² − ½ r σ̈²/(σ²+Eps),
//	ġ = Δγ r + γ ṙ,  g̈ = 2 Δγ ṙ + γ r̈,
//	y = g u + β,  ẏ = ġ u + g u̇ + Δβ,  ÿ = g̈ u + 2 ġ u̇ + g ü.
//
// The result is Const only when the input is Const and nothing depends on α.
func (b *BatchNorm) JetStats(p, dp []*Tensor, st *StatsJet, in *Jet) *Jet {
	return jet64(batchNormJet(b, data64(p), data64(dp), st, view64(in)))
}

// Jet32 is Jet, the `interpolate` policy (THEORY.md §2), on float32 jets:
// JetStats32 with the running statistics' jet of the rounded tensors p, dp
// (weight, bias, running_mean, running_var at α and δ, Params order).
func (b *BatchNorm) Jet32(p, dp []*Tensor32, in *Jet32) *Jet32 {
	return b.JetStats32(p, dp, RunningStatsJet(widen32(p), widen32(dp)), in)
}

// JetStats32 is JetStats on float32 jets, the same rule (batchNormJet): the
// per-feature coefficients g, ġ, g̈ are computed in float64 from the
// float32 parameters p, dp and the float64 statistics' jet st (the
// `recompute` policy's reference batch statistics, BatchStatsJet, or
// RunningStatsJet); every element's y, ẏ, ÿ is then formed in float64 from
// the float32 input and rounded once. The result is Const only when the
// input is Const and nothing depends on α.
func (b *BatchNorm) JetStats32(p, dp []*Tensor32, st *StatsJet, in *Jet32) *Jet32 {
	return jet32(batchNormJet(b, data32(p), data32(dp), st, view32(in)))
}

// batchNormJet is JetStats and JetStats32, written once over the element
// type: the coefficients (gains) and every output element are computed in
// float64 from the inputs widened exactly, and rounded once to T. p and dp
// hold weight and bias first (dp nil: constant γ, β).
func batchNormJet[T elem](b *BatchNorm, p, dp [][]T, st *StatsJet, in jetOf[T]) jetOf[T] {
	c, n := b.Features, in.N
	w, bias := wide(p[0]), wide(p[1])
	dw, db := make([]float64, c), make([]float64, c)
	if dp != nil {
		dw, db = wide(dp[0]), wide(dp[1])
	}
	g, gd, gdd, moving := b.gains(w, dw, db, st)
	constant := in.Const && !moving
	h := in.value()
	if constant {
		y := general[T]{Rows: n, Cols: c, Stride: c, Data: make([]T, n*c)}
		for i := 0; i < n; i++ {
			src, dst := h.row(i), y.row(i)
			for j, v := range src {
				dst[j] = T(g[j]*(float64(v)-st.Mean[j]) + bias[j])
			}
		}
		return jetOf[T]{N: n, M: y, Const: true, WS: in.WS}
	}
	out := newJetOf(in, n, c) // every element is written below
	yv, yd, ydd := out.value(), out.velocity(), out.acceleration()
	hd, hdd := in.velocity(), in.acceleration()
	for i := 0; i < n; i++ {
		hr := h.row(i)
		y0, y1, y2 := yv.row(i), yd.row(i), ydd.row(i)
		var hdr, hddr []T
		if !in.Const {
			hdr, hddr = hd.row(i), hdd.row(i)
		}
		for j, v := range hr {
			u := float64(v) - st.Mean[j]
			ud, udd := -st.MeanVel[j], -st.MeanAcc[j]
			if hdr != nil {
				ud += float64(hdr[j])
				udd += float64(hddr[j])
			}
			y0[j] = T(g[j]*u + bias[j])
			y1[j] = T(gd[j]*u + g[j]*ud + db[j])
			y2[j] = T(gdd[j]*u + 2*gd[j]*ud + g[j]*udd)
		}
	}
	return out
}

// gains returns, per feature [Features], the gain g = γ r of
// y = g (h − μ) + β and its α-derivatives ġ, g̈ (JetStats' formulas, THEORY.md
// §2) for weight w, its derivative dw and the statistics' jet st, and whether
// anything of the layer (dw, the bias derivative db, μ̇, μ̈, σ̇², σ̈²) moves
// with α.
func (b *BatchNorm) gains(w, dw, db []float64, st *StatsJet) (g, gd, gdd []float64, moving bool) {
	c := b.Features
	g, gd, gdd = make([]float64, c), make([]float64, c), make([]float64, c)
	for j := 0; j < c; j++ {
		ve := st.Var[j] + b.Eps
		r := 1 / math.Sqrt(ve)
		rd := -0.5 * r * st.VarVel[j] / ve
		rdd := 0.75*r*st.VarVel[j]*st.VarVel[j]/(ve*ve) - 0.5*r*st.VarAcc[j]/ve
		g[j] = w[j] * r
		gd[j] = dw[j]*r + w[j]*rd
		gdd[j] = 2*dw[j]*rd + w[j]*rdd
		if dw[j] != 0 || db[j] != 0 || st.MeanVel[j] != 0 || st.MeanAcc[j] != 0 || st.VarVel[j] != 0 || st.VarAcc[j] != 0 {
			moving = true
		}
	}
	return g, gd, gdd, moving
}

// InsertBatchNorm returns a copy of s with a batchnorm1d layer (PyTorch's
// defaults) after every linear layer but the last, before the activation:
// the MLPs with BatchNorm of Lucas et al. (2021).
func InsertBatchNorm(s *Spec) *Spec {
	c := *s
	c.Layers = nil
	last := -1
	for i, l := range s.Layers {
		if l.Type == "linear" {
			last = i
		}
	}
	for i, l := range s.Layers {
		c.Layers = append(c.Layers, l)
		if l.Type == "linear" && i != last {
			c.Layers = append(c.Layers, LayerSpec{Type: "batchnorm1d", In: l.Out})
		}
	}
	return &c
}

// ResetParams implements ParamResetter: PyTorch's reset values, weight 1,
// bias 0, running_mean 0, running_var 1, num_batches_tracked 0.
func (b *BatchNorm) ResetParams() []*Tensor {
	var out []*Tensor
	for _, p := range b.Params() {
		t := NewTensor(p.Shape...)
		if p.Name == "weight" || p.Name == "running_var" {
			for j := range t.Data {
				t.Data[j] = 1
			}
		}
		out = append(out, t)
	}
	return out
}

// ResetFixedParams sets the tensors in s of every layer of m that starts at
// fixed values (ParamResetter: batchnorm1d, batchnorm2d, layernorm; at any
// depth) to them, PyTorch's reset values, leaving the drawn layers' tensors
// as they are (Init does both).
func ResetFixedParams(m *Model, s State) {
	_ = m.walkTree(func(key string, l Layer, _ int, _ bool) error {
		resetParams(s, key, l)
		return nil
	})
}

// resetParams sets l's tensors in s, under key, to its ResetParams when l
// declares ParamResetter.
func resetParams(s State, key string, l Layer) {
	if r, ok := l.(ParamResetter); ok {
		for k, t := range r.ResetParams() {
			s[key+"."+l.Params()[k].Name] = t
		}
	}
}

// JetRows is Jet (the `interpolate` policy) with a different α for every
// example: row r of the input jet in (N rows) is taken at α = alphas[r], with
// the layer's tensors θ0 p0 and δ dp in Params order, so each row's
// parameters are p0 + alphas[r]·dp. It is the per-row pass's rule (kink
// refinement evaluates each example at its own α).
func (b *BatchNorm) JetRows(p0, dp []*Tensor, alphas []float64, in *Jet) *Jet {
	c, n := b.Features, in.N
	out := &Jet{N: n, M: mat.NewDense(3*n, c, nil)}
	h := in.Value()
	var hd, hdd *mat.Dense
	if !in.Const {
		hd, hdd = in.Velocity(), in.Acceleration()
	}
	yv, yd, ydd := out.Value(), out.Velocity(), out.Acceleration()
	w0, b0, m0, v0 := p0[0].Data, p0[1].Data, p0[2].Data, p0[3].Data
	dw, db, dm, dv := dp[0].Data, dp[1].Data, dp[2].Data, dp[3].Data
	for r := 0; r < n; r++ {
		a := alphas[r]
		hr := h.RawRowView(r)
		y0, y1, y2 := yv.RawRowView(r), yd.RawRowView(r), ydd.RawRowView(r)
		for j, x := range hr {
			ve := v0[j] + a*dv[j] + b.Eps
			rr := 1 / math.Sqrt(ve)
			rd := -0.5 * rr * dv[j] / ve
			rdd := 0.75 * rr * dv[j] * dv[j] / (ve * ve)
			w := w0[j] + a*dw[j]
			g, gd, gdd := w*rr, dw[j]*rr+w*rd, 2*dw[j]*rd+w*rdd
			u, ud, udd := x-(m0[j]+a*dm[j]), -dm[j], 0.0
			if hd != nil {
				ud += hd.At(r, j)
				udd += hdd.At(r, j)
			}
			y0[j] = g*u + b0[j] + a*db[j]
			y1[j] = gd*u + g*ud + db[j]
			y2[j] = gdd*u + 2*gd*ud + g*udd
		}
	}
	return out
}
