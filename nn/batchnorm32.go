package nn

// Jet32 is Jet, the `interpolate` policy (THEORY.md §2), on float32 jets:
// JetStats32 with the running statistics' jet of the rounded tensors p, dp
// (weight, bias, running_mean, running_var at α and δ, Params order).
func (b *BatchNorm) Jet32(p, dp []*Tensor32, in *Jet32) *Jet32 {
	w := func(ts []*Tensor32) []*Tensor {
		if ts == nil {
			return nil
		}
		out := make([]*Tensor, len(ts))
		for i, t := range ts {
			if t != nil {
				out[i] = &Tensor{Shape: t.Shape, Data: widen(t.Data)}
			}
		}
		return out
	}
	return b.JetStats32(p, dp, RunningStatsJet(w(p), w(dp)), in)
}

// JetStats32 is JetStats on float32 jets: the per-feature coefficients g,
// ġ, g̈ (THEORY.md §2, see JetStats) are computed in float64 from the
// float32 parameters p, dp and the float64 statistics' jet st (the
// `recompute` policy's reference batch statistics, BatchStatsJet, or
// RunningStatsJet); every element's y, ẏ, ÿ is then formed in float64 from
// the float32 input and rounded once. The result is Const only when the
// input is Const and nothing depends on α.
func (b *BatchNorm) JetStats32(p, dp []*Tensor32, st *StatsJet, in *Jet32) *Jet32 {
	c, n := b.Features, in.N
	w, bias := widen(p[0].Data), widen(p[1].Data)
	dw, db := make([]float64, c), make([]float64, c)
	if dp != nil {
		dw, db = widen(dp[0].Data), widen(dp[1].Data)
	}
	g, gd, gdd, moving := b.gains(w, dw, db, st)
	constant := in.Const && !moving
	h := in.Value()
	if constant {
		y := newGeneral32(n, c)
		for i := 0; i < n; i++ {
			src, dst := row32(h, i), row32(y, i)
			for j, v := range src {
				dst[j] = float32(g[j]*(float64(v)-st.Mean[j]) + bias[j])
			}
		}
		return &Jet32{N: n, M: y, Const: true, WS: in.WS}
	}
	out := newJet32(in, n, c) // every element is written below
	yv, yd, ydd := out.Value(), out.Velocity(), out.Acceleration()
	hd, hdd := in.Velocity(), in.Acceleration()
	for i := 0; i < n; i++ {
		hr := row32(h, i)
		y0, y1, y2 := row32(yv, i), row32(yd, i), row32(ydd, i)
		var hdr, hddr []float32
		if !in.Const {
			hdr, hddr = row32(hd, i), row32(hdd, i)
		}
		for j, v := range hr {
			u := float64(v) - st.Mean[j]
			ud, udd := -st.MeanVel[j], -st.MeanAcc[j]
			if hdr != nil {
				ud += float64(hdr[j])
				udd += float64(hddr[j])
			}
			y0[j] = float32(g[j]*u + bias[j])
			y1[j] = float32(gd[j]*u + g[j]*ud + db[j])
			y2[j] = float32(gdd[j]*u + 2*gd[j]*ud + g[j]*udd)
		}
	}
	return out
}
