package nn

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/interval"
)

// BatchNorm2d is PyTorch's nn.BatchNorm2d(features, eps, momentum) on flat
// batches [N, C·H·W] (RUN_FORMAT.md "batchnorm2d", THEORY.md §9): BatchNorm1d
// per channel, with statistics over (N, H, W). Every rule is batchnorm1d's
// (BN, both bn_policy values, training mode, backward, float32 and interval
// rules) applied to the batch seen as [N·H·W, C]: row (i, s) holds the C
// channels of example i at position s. The tensors are batchnorm1d's, [C]
// (weight, bias, running_mean, running_var, num_batches_tracked).
type BatchNorm2d struct {
	BN    BatchNorm // Features = C
	HW    int       // H·W, the positions per channel
	Shape []int     // [C, H, W]
}

func init() {
	registerLayer("batchnorm2d", []string{"features!", "eps", "momentum"}, func(ls LayerSpec, width int) (Layer, error) {
		in := ls.InShape()
		if len(in) != 3 {
			return nil, fmt.Errorf("batchnorm2d: needs an image input [C, H, W], found input shape %s", ShapeString(in))
		}
		f := ls.Features
		if f == 0 {
			f = in[0]
		}
		if f != in[0] {
			return nil, fmt.Errorf("batchnorm2d: features=%d but the input is %s ([C, H, W]) with %d channels", f, ShapeString(in), in[0])
		}
		ls1 := LayerSpec{Type: "batchnorm1d", Features: f, Eps: ls.Eps, Momentum: ls.Momentum}
		b, err := newBatchNorm(ls1, f)
		if err != nil {
			return nil, fmt.Errorf("batchnorm2d%s", err.Error()[len("batchnorm1d"):])
		}
		return &BatchNorm2d{BN: *b, HW: in[1] * in[2], Shape: append([]int(nil), in...)}, nil
	})
}

// Type returns "batchnorm2d".
func (b *BatchNorm2d) Type() string { return "batchnorm2d" }

// InSize returns C·H·W.
func (b *BatchNorm2d) InSize() int { return b.BN.Features * b.HW }

// OutSize returns C·H·W.
func (b *BatchNorm2d) OutSize() int { return b.InSize() }

// OutShape implements Shaper: the input shape [C, H, W].
func (b *BatchNorm2d) OutShape() []int { return append([]int(nil), b.Shape...) }

// Params returns batchnorm1d's tensors, [C] (PyTorch's state_dict order).
func (b *BatchNorm2d) Params() []Param { return b.BN.Params() }

// ResetParams implements ParamResetter: batchnorm1d's (PyTorch's weight 1,
// bias 0, running_mean 0, running_var 1, num_batches_tracked 0).
func (b *BatchNorm2d) ResetParams() []*Tensor { return b.BN.ResetParams() }

// Kinked implements KinkSites: BatchNorm is smooth in its input.
func (b *BatchNorm2d) Kinked() bool { return false }

// toNC copies rows [r, C·HW] (PyTorch [C, H, W] each) to [r·HW, C], row
// i·HW + s holding position s of row i.
func toNC[T float32 | float64](src [][]T, c, hw int, dst [][]T) {
	for i, r := range src {
		for ch := 0; ch < c; ch++ {
			for s, v := range r[ch*hw : (ch+1)*hw] {
				dst[i*hw+s][ch] = v
			}
		}
	}
}

// fromNC is the inverse of toNC.
func fromNC[T float32 | float64](src [][]T, c, hw int, dst [][]T) {
	for i, r := range dst {
		for ch := 0; ch < c; ch++ {
			seg := r[ch*hw : (ch+1)*hw]
			for s := range seg {
				seg[s] = src[i*hw+s][ch]
			}
		}
	}
}

// imatNC is toNC on interval matrices (the recompute policy's statistics).
func (b *BatchNorm2d) imatNC(m interval.Matrix) interval.Matrix {
	if m.Lo == nil {
		return m
	}
	c := b.BN.Features
	out := interval.NewMatrix(m.Rows*b.HW, c)
	for i := 0; i < m.Rows; i++ {
		for ch := 0; ch < c; ch++ {
			for s := 0; s < b.HW; s++ {
				src, dst := i*m.Cols+ch*b.HW+s, (i*b.HW+s)*c+ch
				out.Lo[dst], out.Hi[dst] = m.Lo[src], m.Hi[src]
			}
		}
	}
	return out
}

// spread repeats each example's flag over its HW rows.
func (b *BatchNorm2d) spread(f []bool) []bool {
	if f == nil {
		return nil
	}
	out := make([]bool, len(f)*b.HW)
	for i, v := range f {
		for s := 0; s < b.HW; s++ {
			out[i*b.HW+s] = v
		}
	}
	return out
}

func (b *BatchNorm2d) ijetNC(in *IJet) *IJet {
	return &IJet{N: in.N * b.HW, D: b.BN.Features, Order: in.Order, Const: in.Const,
		V: b.imatNC(in.V), D1: b.imatNC(in.D1), D2: b.imatNC(in.D2), DK: b.imatNC(in.DK), Kink: b.spread(in.Kink), Jump: b.spread(in.Jump)}
}

// Forward is evaluation mode, per channel: y = γ (x − running_mean)/√(running_var + ε) + β.
// It works on x [N, C·H·W] as it is: each channel's H·W values are
// contiguous, so y = x·a[c] + s[c] (a = γ/√(running_var + ε), s = β −
// running_mean·a, the products batchnorm1d's Forward forms) needs no
// [N·H·W, C] copy; the result is bit for bit that of batchnorm1d on the
// transposed view.
func (b *BatchNorm2d) Forward(p []*Tensor, x *mat.Dense) *mat.Dense {
	c, hw := b.BN.Features, b.HW
	a, s := make([]float64, c), make([]float64, c)
	for j := range a {
		a[j] = 1 / math.Sqrt(p[3].Data[j]+b.BN.Eps) * p[0].Data[j]
		s[j] = p[1].Data[j] - p[2].Data[j]*a[j]
	}
	return channelAffine(x, a, s, hw)
}

// channelAffine returns y [N, C·HW] with y[i, j·HW + k] = x[i, j·HW + k]·a[j]
// + s[j]: a per-channel affine map of x [N, C·HW] (C = len(a)) as it is,
// without the [N·HW, C] view (batchnorm2d's Forward and ForwardTrain).
func channelAffine(x *mat.Dense, a, s []float64, hw int) *mat.Dense {
	n, _ := x.Dims()
	c := len(a)
	y := mat.NewDense(n, c*hw, nil)
	for i := 0; i < n; i++ {
		src, dst := x.RawRowView(i), y.RawRowView(i)
		for j := 0; j < c; j++ {
			aj, sj := a[j], s[j]
			d := dst[j*hw : (j+1)*hw]
			for k, v := range src[j*hw : (j+1)*hw] {
				d[k] = v*aj + sj
			}
		}
	}
	return y
}

// ForwardTrain implements TrainForwarder: training mode with the statistics
// of the batch over (N, H, W) (the unbiased variance of the running
// statistics divides by N·H·W − 1, as PyTorch's). It is batchnorm1d's
// ForwardTrain on the [N·H·W, C] view, computed on x [N, C·H·W] as it is:
// the sums run over the same values in the same order (example, then
// position), so the result and the running statistics are bit for bit
// those of the transposed route (TestBatchNorm2dTrainIsTransposedBatchNorm1d).
func (b *BatchNorm2d) ForwardTrain(p []*Tensor, x *mat.Dense) *mat.Dense {
	c, hw := b.BN.Features, b.HW
	rows, _ := x.Dims()
	n := rows * hw
	mean, sq := b.batchStats(x)
	invstd := make([]float64, c)
	m := b.BN.Momentum
	for j := range invstd {
		invstd[j] = 1 / math.Sqrt(sq[j]/float64(n)+b.BN.Eps)
		p[2].Data[j] = m*mean[j] + (1-m)*p[2].Data[j]
		p[3].Data[j] = m*(sq[j]/float64(n-1)) + (1-m)*p[3].Data[j]
	}
	if len(p) > 4 && p[4] != nil {
		p[4].Data[0]++
	}
	alpha, beta := make([]float64, c), make([]float64, c)
	for j := range alpha {
		alpha[j] = invstd[j] * p[0].Data[j]
		beta[j] = p[1].Data[j] - mean[j]*alpha[j]
	}
	return channelAffine(x, alpha, beta, hw)
}

// batchStats is batchStats (batchnorm1d) on the [N·H·W, C] view of x
// [N, C·H·W]: per channel the mean and the sum of squared deviations, the
// values summed in the view's row order.
func (b *BatchNorm2d) batchStats(x *mat.Dense) (mean, sqdev []float64) {
	c, hw := b.BN.Features, b.HW
	rows, _ := x.Dims()
	mean, sqdev = make([]float64, c), make([]float64, c)
	for i := 0; i < rows; i++ {
		r := x.RawRowView(i)
		for j := 0; j < c; j++ {
			s := mean[j]
			for _, v := range r[j*hw : (j+1)*hw] {
				s += v
			}
			mean[j] = s
		}
	}
	for j := range mean {
		mean[j] /= float64(rows * hw)
	}
	for i := 0; i < rows; i++ {
		r := x.RawRowView(i)
		for j := 0; j < c; j++ {
			s, mj := sqdev[j], mean[j]
			for _, v := range r[j*hw : (j+1)*hw] {
				d := v - mj
				s += d * d
			}
			sqdev[j] = s
		}
	}
	return mean, sqdev
}

// Backward is batchnorm1d's training-mode gradient on the [N·H·W, C] view,
// computed on [N, C·H·W] as it is (the same sums in the same order as
// BatchNorm.Backward on the transposed copies, bit for bit).
func (b *BatchNorm2d) Backward(p []*Tensor, x, _, dy *mat.Dense, grads []*Tensor) *mat.Dense {
	c, hw := b.BN.Features, b.HW
	rows, _ := x.Dims()
	mean, sq := b.batchStats(x)
	fn := float64(rows * hw)
	dotp, sum := make([]float64, c), make([]float64, c)
	for i := 0; i < rows; i++ {
		xr, gr := x.RawRowView(i), dy.RawRowView(i)
		for j := 0; j < c; j++ {
			dp, sm, mj := dotp[j], sum[j], mean[j]
			g := gr[j*hw : (j+1)*hw]
			for k, v := range xr[j*hw : (j+1)*hw] {
				dp += (v - mj) * g[k]
				sm += g[k]
			}
			dotp[j], sum[j] = dp, sm
		}
	}
	invstd, k := make([]float64, c), make([]float64, c)
	for j := range invstd {
		invstd[j] = 1 / math.Sqrt(sq[j]/fn+b.BN.Eps)
		k[j] = dotp[j] * invstd[j] * invstd[j] / fn
		if grads[0] != nil {
			grads[0].Data[j] += dotp[j] * invstd[j]
		}
		if grads[1] != nil {
			grads[1].Data[j] += sum[j]
		}
	}
	dx := mat.NewDense(rows, c*hw, nil)
	for i := 0; i < rows; i++ {
		xr, gr, dr := x.RawRowView(i), dy.RawRowView(i), dx.RawRowView(i)
		for j := 0; j < c; j++ {
			mj, kj, sj, ij, wj := mean[j], k[j], sum[j], invstd[j], p[0].Data[j]
			g, d := gr[j*hw:(j+1)*hw], dr[j*hw:(j+1)*hw]
			for q, v := range xr[j*hw : (j+1)*hw] {
				e := (v - mj) * kj
				d[q] = (g[q] - sj/fn - e) * ij * wj
			}
		}
	}
	return dx
}

// Jet is the `interpolate` policy (THEORY.md §2, §9): JetStats with the
// running statistics' jet.
func (b *BatchNorm2d) Jet(p, dp []*Tensor, in *Jet) *Jet {
	return b.JetStats(p, dp, RunningStatsJet(p, dp), in)
}

// JetStats implements BatchStatistics: the `recompute` policy with the
// statistics jet st ([C]). It is batchnorm1d's rule (BatchNorm.JetStats)
// on the batch seen as [N·H·W, C], computed on [N, C·H·W] as it is
// (batchNorm2dJet): bit for bit the same values without the two transposed
// copies.
func (b *BatchNorm2d) JetStats(p, dp []*Tensor, st *StatsJet, in *Jet) *Jet {
	return jet64(batchNorm2dJet(b, data64(p), data64(dp), st, view64(in)))
}

// JetStats32 implements BatchStatistics in float32.
func (b *BatchNorm2d) JetStats32(p, dp []*Tensor32, st *StatsJet, in *Jet32) *Jet32 {
	return jet32(batchNorm2dJet(b, data32(p), data32(dp), st, view32(in)))
}

// Jet32 implements Jet32Layer (the `interpolate` policy in float32): the
// running statistics' jet of the rounded tensors, as BatchNorm.Jet32.
func (b *BatchNorm2d) Jet32(p, dp []*Tensor32, in *Jet32) *Jet32 {
	return b.JetStats32(p, dp, RunningStatsJet(widen32(p), widen32(dp)), in)
}

// batchNorm2dJet is batchNormJet (BatchNorm.JetStats' rule) for
// batchnorm2d on rows [C·H·W]: channel j's gains apply to the H·W
// contiguous values of its plane, and every output element is the same
// float64 expression batchNormJet evaluates for it on the [N·H·W, C] view,
// rounded once to T, so the result is bit for bit that of the transposed
// route (TestBatchNorm2dJetIsTransposedBatchNorm1d).
func batchNorm2dJet[T elem](b *BatchNorm2d, p, dp [][]T, st *StatsJet, in jetOf[T]) jetOf[T] {
	c, hw, n := b.BN.Features, b.HW, in.N
	w, bias := wide(p[0]), wide(p[1])
	dw, db := make([]float64, c), make([]float64, c)
	if dp != nil {
		dw, db = wide(dp[0]), wide(dp[1])
	}
	g, gd, gdd, moving := b.BN.gains(w, dw, db, st)
	h := in.value()
	if in.Const && !moving {
		y := takeGeneral[T](in.WS, n, c*hw)
		for i := 0; i < n; i++ {
			src, dst := h.row(i), y.row(i)
			for j := 0; j < c; j++ {
				gj, mj, bj := g[j], st.Mean[j], bias[j]
				d := dst[j*hw : (j+1)*hw]
				for k, v := range src[j*hw : (j+1)*hw] {
					d[k] = T(gj*(float64(v)-mj) + bj)
				}
			}
		}
		return jetOf[T]{N: n, M: y, Const: true, WS: in.WS}
	}
	out := newJetOf(in, n, c*hw) // every element is written below
	yv, yd, ydd := out.value(), out.velocity(), out.acceleration()
	hd, hdd := in.velocity(), in.acceleration()
	for i := 0; i < n; i++ {
		hr := h.row(i)
		y0, y1, y2 := yv.row(i), yd.row(i), ydd.row(i)
		var hdr, hddr []T
		if !in.Const {
			hdr, hddr = hd.row(i), hdd.row(i)
		}
		for j := 0; j < c; j++ {
			gj, gdj, gddj, mj, bj, dbj := g[j], gd[j], gdd[j], st.Mean[j], bias[j], db[j]
			mv, ma := -st.MeanVel[j], -st.MeanAcc[j]
			lo, hi := j*hw, (j+1)*hw
			v0, v1, v2 := y0[lo:hi], y1[lo:hi], y2[lo:hi]
			if hdr == nil {
				for k, v := range hr[lo:hi] {
					u := float64(v) - mj
					v0[k] = T(gj*u + bj)
					v1[k] = T(gdj*u + gj*mv + dbj)
					v2[k] = T(gddj*u + 2*gdj*mv + gj*ma)
				}
				continue
			}
			d1, d2 := hdr[lo:hi], hddr[lo:hi]
			for k, v := range hr[lo:hi] {
				u := float64(v) - mj
				ud := mv + float64(d1[k])
				udd := ma + float64(d2[k])
				v0[k] = T(gj*u + bj)
				v1[k] = T(gdj*u + gj*ud + dbj)
				v2[k] = T(gddj*u + 2*gdj*ud + gj*udd)
			}
		}
	}
	return out
}

// JetRows implements RowJetter: every position of example r at alphas[r].
// It is batchnorm1d's JetRows (BatchNorm.JetRows) on the [N·H·W, C] view,
// computed on [N, C·H·W] as it is: channel j's gains at alphas[r] apply to
// the H·W contiguous values of its plane, each output element the same
// float64 expression, so the result is bit for bit that of the transposed
// route without its two copies (TestBatchNorm2dRowsStatsAreTransposed).
func (b *BatchNorm2d) JetRows(p0, dp []*Tensor, alphas []float64, in *Jet) *Jet {
	c, hw, n := b.BN.Features, b.HW, in.N
	out := &Jet{N: n, M: mat.NewDense(3*n, c*hw, nil)}
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
		var hdr, hddr []float64
		if hd != nil {
			hdr, hddr = hd.RawRowView(r), hdd.RawRowView(r)
		}
		for j := 0; j < c; j++ {
			ve := v0[j] + a*dv[j] + b.BN.Eps
			rr := 1 / math.Sqrt(ve)
			rd := -0.5 * rr * dv[j] / ve
			rdd := 0.75 * rr * dv[j] * dv[j] / (ve * ve)
			w := w0[j] + a*dw[j]
			g, gd, gdd := w*rr, dw[j]*rr+w*rd, 2*dw[j]*rd+w*rdd
			m, adb := m0[j]+a*dm[j], a*db[j]
			for k := j * hw; k < (j+1)*hw; k++ {
				u, ud, udd := hr[k]-m, -dm[j], 0.0
				if hdr != nil {
					ud += hdr[k]
					udd += hddr[k]
				}
				y0[k] = g*u + b0[j] + adb
				y1[k] = gd*u + g*ud + db[j]
				y2[k] = gdd*u + 2*gd*ud + g*udd
			}
		}
	}
	return out
}

// IntervalJet implements IntervalLayer (the `interpolate` policy).
func (b *BatchNorm2d) IntervalJet(p *ParamBox, in *IJet) *IJet {
	return b.BN.intervalJet(p, in, b.HW) // per channel on [N, C·H·W]: no transposes
}

// IntervalJetStats implements BatchStatistics (the `recompute` policy).
func (b *BatchNorm2d) IntervalJetStats(p *ParamBox, st *IStats, in *IJet) *IJet {
	return b.BN.intervalJetStats(p, st, in, b.HW) // per channel on [N, C·H·W]: no transposes
}

// BatchStats implements BatchStatistics: the statistics jet of a reference
// batch over (N, H, W) per channel, biased: BatchStatsJet on the
// [N·H·W, C] view, computed on [N, C·H·W] as it is. Each channel's sums
// run over the same values in the same order (example, then position) as
// on the view, so the statistics are bit for bit those of the transposed
// route without its copy (TestBatchNorm2dRowsStatsAreTransposed).
func (b *BatchNorm2d) BatchStats(in *Jet) *StatsJet {
	c, hw, n := b.BN.Features, b.HW, in.N
	st := &StatsJet{
		Mean: make([]float64, c), MeanVel: make([]float64, c), MeanAcc: make([]float64, c),
		Var: make([]float64, c), VarVel: make([]float64, c), VarAcc: make([]float64, c),
	}
	h, hv, ha := in.Value(), in.Velocity(), in.Acceleration()
	fn := float64(n * hw)
	sum := func(dst []float64, r []float64) {
		for j := range dst {
			s := dst[j]
			for _, v := range r[j*hw : (j+1)*hw] {
				s += v
			}
			dst[j] = s
		}
	}
	for i := 0; i < n; i++ {
		sum(st.Mean, h.RawRowView(i))
		if !in.Const {
			sum(st.MeanVel, hv.RawRowView(i))
			sum(st.MeanAcc, ha.RawRowView(i))
		}
	}
	for j := 0; j < c; j++ {
		st.Mean[j] /= fn
		st.MeanVel[j] /= fn
		st.MeanAcc[j] /= fn
	}
	for i := 0; i < n; i++ {
		hr := h.RawRowView(i)
		for j := 0; j < c; j++ {
			s, mj := st.Var[j], st.Mean[j]
			for _, v := range hr[j*hw : (j+1)*hw] {
				u := v - mj
				s += u * u
			}
			st.Var[j] = s
		}
		if in.Const {
			continue
		}
		vr, ar := hv.RawRowView(i), ha.RawRowView(i)
		for j := 0; j < c; j++ {
			sv, sa, mj, mvj, maj := st.VarVel[j], st.VarAcc[j], st.Mean[j], st.MeanVel[j], st.MeanAcc[j]
			for k := j * hw; k < (j+1)*hw; k++ {
				u := hr[k] - mj
				ud := vr[k] - mvj
				udd := ar[k] - maj
				sv += 2 * u * ud
				sa += 2 * (ud*ud + u*udd)
			}
			st.VarVel[j], st.VarAcc[j] = sv, sa
		}
	}
	for j := 0; j < c; j++ {
		st.Var[j] /= fn
		st.VarVel[j] /= fn
		st.VarAcc[j] /= fn
	}
	return st
}

// IntervalStats implements BatchStatistics: IntervalBatchStats per channel
// over (N, H, W).
func (b *BatchNorm2d) IntervalStats(in *IJet) *IStats { return IntervalBatchStats(b.ijetNC(in)) }

var (
	_ BatchStatistics = (*BatchNorm2d)(nil)
	_ RowJetter       = (*BatchNorm2d)(nil)
	_ KinkSites       = (*BatchNorm2d)(nil)
	_ Jet32Layer      = (*BatchNorm2d)(nil)
	_ IntervalLayer   = (*BatchNorm2d)(nil)
	_ TrainForwarder  = (*BatchNorm2d)(nil)
	_ ParamResetter   = (*BatchNorm2d)(nil)
	_ Shaper          = (*BatchNorm2d)(nil)
)

// widen32 returns float64 copies of the float32 tensors ts (nil entries,
// and a nil ts, kept): what BatchNorm.Jet32 builds the running statistics'
// jet from.
func widen32(ts []*Tensor32) []*Tensor {
	if ts == nil {
		return nil
	}
	out := make([]*Tensor, len(ts))
	for i, t := range ts {
		if t != nil {
			out[i] = &Tensor{Shape: t.Shape, Data: wide(t.Data)}
		}
	}
	return out
}
