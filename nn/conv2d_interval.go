package nn

import "github.com/certify-mli/certify/interval"

// IntervalJet implements IntervalLayer: Dense's rule (THEORY.md §7, §9)
// with the products taken on the im2col patches; a Const input uses
// ConstProducts and AffineIJet.
//
// The products are interval.MulCols on patches in midpoint–radius form
// (issue 13): every input tensor (V, D1, D2, DK) is converted to midpoint,
// |midpoint| and radius once per activation entry (interval.MidRad), and
// the patches are float64 im2col copies of those, a chunk of examples side
// by side, multiplied as W·cols so that the product lands in the output's
// [Out, OH·OW] layout (no transpose back). The earlier form built interval
// patches [N·OH·OW, In·KH·KW] (twice the float64 im2col), converted them
// entry by entry inside interval.MulNT (9 times the entries for a 3×3
// kernel) and transposed the product back; all of that was ~35 % of a
// resnet-8 leaf's CPU. The enclosures are the same products' (the same
// midpoints, radii and rounding terms) up to the radius of a padded 0,
// which is now exactly 0.
func (l *Conv2d) IntervalJet(p *ParamBox, in *IJet) *IJet {
	if in.Const {
		a, b := l.ConstProducts(p, in.V)
		return AffineIJet(a, b, p.Alpha, in.Order, in.Kink)
	}
	n := in.N
	w := interval.NewWeights(l.Out, l.ckk(), p.Mid[0].Data, p.Rad[0].Data)
	out := &IJet{N: n, D: l.OutSize(), Order: in.Order, Kink: in.Kink, Jump: in.Jump}
	out.V = interval.NewMatrix(n, l.OutSize())
	// each source's products in the order of the sums below (the first sets
	// its destination, the later ones add to it, rounded outward)
	type prod struct {
		w     *interval.Weights
		scale float64
		dst   *interval.Matrix
		add   bool
	}
	src := []interval.Matrix{in.V}
	prods := [][]prod{{{w, 1, &out.V, false}}}
	if in.Order >= 1 {
		dw := interval.NewWeights(l.Out, l.ckk(), p.Delta[0].Data, nil)
		out.D1 = interval.NewMatrix(n, l.OutSize())
		prods[0] = append(prods[0], prod{dw, 1, &out.D1, false})
		src = append(src, in.D1)
		prods = append(prods, []prod{{w, 1, &out.D1, true}})
		if in.Order >= 2 {
			out.D2 = interval.NewMatrix(n, l.OutSize())
			prods[1] = append(prods[1], prod{dw, 2, &out.D2, false})
			src = append(src, in.D2)
			prods = append(prods, []prod{{w, 1, &out.D2, true}})
			if in.HasDK() { // the jump term maps by W (Dense.IntervalJet)
				out.DK = interval.NewMatrix(n, l.OutSize())
				if in.anyKink() {
					src = append(src, in.DK)
					prods = append(prods, []prod{{w, 1, &out.DK, false}})
				}
			}
		}
	}
	ckk, ohw, d := l.ckk(), l.ohw(), l.InSize()
	b := min(l.convChunk(), n)
	// the magnitudes and radii in float32, rounded up (interval.MidRad32,
	// interval.MulCols32: the radius products in single precision, half
	// the memory and GEMM time; docs/soundness.md, "leafcost round")
	bufs := make([]*[]float64, 4)
	get := func(i, size int) []float64 { bufs[i] = getConvBuf(size); return *bufs[i] }
	bufs32 := make([]*[]float32, 3)
	get32 := func(i, size int) []float32 { bufs32[i] = interval.Scratch32(size); return *bufs32[i] }
	mid, cm := get(0, b*d), get(1, ckk*b*ohw)
	plo, phi := get(2, l.Out*b*ohw), get(3, l.Out*b*ohw)
	abs, rad, ca := get32(0, b*d), get32(1, b*d), get32(2, 2*ckk*b*ohw)
	defer func() {
		for _, q := range bufs {
			putConvBuf(q)
		}
		for _, q := range bufs32 {
			interval.PutScratch32(q)
		}
	}()
	for e0 := 0; e0 < n; e0 += b {
		m := min(b, n-e0)
		ld := m * ohw
		for s, x := range src {
			interval.MidRad32(x.Lo[e0*d:(e0+m)*d], x.Hi[e0*d:(e0+m)*d], mid, abs, rad)
			for e := 0; e < m; e++ {
				im2col(l, mid[e*d:(e+1)*d], cm, ld, e*ohw)
				im2col(l, abs[e*d:(e+1)*d], ca, ld, e*ohw)
				im2col(l, rad[e*d:(e+1)*d], ca[ckk*ld:], ld, e*ohw)
			}
			cols := interval.Cols32{K: ckk, N: ld, Mid: cm[:ckk*ld], Abs: ca[:2*ckk*ld]}
			for _, q := range prods[s] {
				interval.MulCols32(q.w, cols, q.scale, plo, phi)
				scatterCols(l, plo, phi, ld, *q.dst, e0, m, q.add)
			}
		}
	}
	if p.Mid[1] != nil {
		lo, hi := boxRow(l.channelRow(p.Mid[1].Data), l.channelRow(p.Rad[1].Data))
		out.V.AddRow(lo, hi)
	}
	if in.Order >= 1 && p.Delta[1] != nil {
		db := l.channelRow(p.Delta[1].Data)
		out.D1.AddRow(db, db)
	}
	return out
}

// scatterCols moves a product [Out, ld] (ld = m·OH·OW, example e's
// positions at columns e·OH·OW …) into rows e0 … e0+m−1 of dst [N,
// Out·OH·OW], setting them, or adding to them rounded outward when add is
// set (an exact 0 operand keeps the sum exact, as interval.Matrix.AddTo).
func scatterCols(l *Conv2d, lo, hi []float64, ld int, dst interval.Matrix, e0, m int, add bool) {
	ohw := l.ohw()
	for e := 0; e < m; e++ {
		dl, dh := dst.Row(e0 + e)
		for o := 0; o < l.Out; o++ {
			sl, sh := lo[o*ld+e*ohw:o*ld+(e+1)*ohw], hi[o*ld+e*ohw:o*ld+(e+1)*ohw]
			tl, th := dl[o*ohw:(o+1)*ohw], dh[o*ohw:(o+1)*ohw]
			if !add {
				copy(tl, sl)
				copy(th, sh)
				continue
			}
			for j := range sl {
				tl[j] = addDownF(tl[j], sl[j])
				th[j] = addUpF(th[j], sh[j])
			}
		}
	}
}

// addDownF and addUpF bound a + b from below and above; a sum with a zero
// operand is exact (interval.Matrix.AddTo's rule).
func addDownF(a, b float64) float64 {
	if a == 0 || b == 0 {
		return a + b
	}
	return interval.Down(a + b)
}

func addUpF(a, b float64) float64 {
	if a == 0 || b == 0 {
		return a + b
	}
	return interval.Up(a + b)
}

// HasConvOrBlocks reports whether some top-level layer of m is a conv2d
// or a block (residual): the certificate's drop-out of kinked settled
// examples and its multi-way splits apply to such nets (certify's
// IntervalPath.keepKinked), whose examples are rarely smooth on a leaf.
func (m *Model) HasConvOrBlocks() bool {
	for _, l := range m.Layers {
		switch l.(type) {
		case *Conv2d, Block:
			return true
		}
	}
	return false
}
