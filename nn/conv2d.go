package nn

import (
	"fmt"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/interval"
)

// Conv2d is PyTorch's nn.Conv2d(in, out, kernel, stride, padding, bias)
// with dilation 1, groups 1 and zero padding (RUN_FORMAT.md "conv2d",
// THEORY.md §9) on flat batches [N, C·H·W] in PyTorch's [C, H, W] order:
//
//	y[o, i, j] = b[o] + Σ_{c,u,v} W[o, c, u, v] · x[c, i·SH − PH + u, j·SW − PW + v]
//
// with x zero outside the image, weight W [Out, In, KH, KW] and bias b
// [Out]; the output is [Out, OH, OW], OH = (H + 2PH − KH)/SH + 1 (floor),
// likewise OW. Every rule is im2col followed by one BLAS GEMM per chunk of
// examples (W [Out, In·KH·KW] times the columns).
type Conv2d struct {
	In, Out        int
	KH, KW         int
	SH, SW, PH, PW int
	H, W           int // input height and width
	OH, OW         int // output height and width
	HasBias        bool
}

func init() {
	registerLayer("conv2d", []string{"in!", "out!", "kernel!", "stride", "padding", "bias"}, func(ls LayerSpec, width int) (Layer, error) {
		in := ls.InShape()
		if err := ls.checkPairs("conv2d"); err != nil {
			return nil, err
		}
		if len(in) != 3 {
			return nil, fmt.Errorf("conv2d: needs an image input [C, H, W], found input shape %s", ShapeString(in))
		}
		if ls.In <= 0 || ls.Out <= 0 {
			return nil, fmt.Errorf("conv2d: want positive in and out, found in=%d out=%d", ls.In, ls.Out)
		}
		if ls.In != in[0] {
			return nil, fmt.Errorf("conv2d: in=%d channels but the input is %s ([C, H, W]) with %d channels", ls.In, ShapeString(in), in[0])
		}
		if len(ls.Kernel) == 0 {
			return nil, fmt.Errorf("conv2d: kernel: missing")
		}
		l := &Conv2d{In: ls.In, Out: ls.Out, H: in[1], W: in[2], HasBias: ls.Bias == nil || *ls.Bias}
		l.KH, l.KW = ls.Kernel.HW(0)
		l.SH, l.SW = ls.Stride.HW(1)
		l.PH, l.PW = ls.Padding.HW(0)
		var err error
		l.OH, l.OW, err = windowOut("conv2d", in, l.KH, l.KW, l.SH, l.SW, l.PH, l.PW, false)
		if err != nil {
			return nil, err
		}
		return l, nil
	})
}

// windowOut checks a sliding window's kernel, stride and padding on an
// input [C, H, W] and returns the output size (floor mode). pool: PyTorch's
// pools also want padding ≤ kernel/2. Errors name the layer type and the
// shapes.
func windowOut(typ string, in []int, kh, kw, sh, sw, ph, pw int, pool bool) (oh, ow int, err error) {
	if kh <= 0 || kw <= 0 {
		return 0, 0, fmt.Errorf("%s: kernel: want positive sizes, found [%d, %d]", typ, kh, kw)
	}
	if sh <= 0 || sw <= 0 {
		return 0, 0, fmt.Errorf("%s: stride: want positive sizes, found [%d, %d]", typ, sh, sw)
	}
	if ph < 0 || pw < 0 {
		return 0, 0, fmt.Errorf("%s: padding: want sizes ≥ 0, found [%d, %d]", typ, ph, pw)
	}
	if pool && (2*ph > kh || 2*pw > kw) {
		return 0, 0, fmt.Errorf("%s: padding [%d, %d] exceeds half the kernel [%d, %d]", typ, ph, pw, kh, kw)
	}
	h, w := in[1]+2*ph, in[2]+2*pw
	if kh > h || kw > w {
		return 0, 0, fmt.Errorf("%s: kernel [%d, %d] is larger than the padded input [%d, %d] (input %s, padding [%d, %d]): the output would be empty", typ, kh, kw, h, w, ShapeString(in), ph, pw)
	}
	return (h-kh)/sh + 1, (w-kw)/sw + 1, nil
}

// Type returns "conv2d".
func (l *Conv2d) Type() string { return "conv2d" }

// InSize returns In·H·W.
func (l *Conv2d) InSize() int { return l.In * l.H * l.W }

// OutSize returns Out·OH·OW.
func (l *Conv2d) OutSize() int { return l.Out * l.OH * l.OW }

// OutShape implements Shaper: [Out, OH, OW].
func (l *Conv2d) OutShape() []int { return []int{l.Out, l.OH, l.OW} }

// Params returns weight [Out, In, KH, KW] and bias [Out].
func (l *Conv2d) Params() []Param {
	return []Param{{Name: "weight", Shape: []int{l.Out, l.In, l.KH, l.KW}}, {Name: "bias", Shape: []int{l.Out}}}
}

// ParamAbsent implements AbsentParams: the bias when HasBias is false.
func (l *Conv2d) ParamAbsent(name string) bool { return name == "bias" && !l.HasBias }

// InitFans implements InitDrawn: PyTorch's fans of a conv weight,
// fan_in = In·KH·KW and fan_out = Out·KH·KW (torch.nn.init._calculate_fan_in_and_fan_out).
func (l *Conv2d) InitFans() (fanIn, fanOut int, hasBias bool) {
	return l.In * l.KH * l.KW, l.Out * l.KH * l.KW, l.HasBias
}

// Kinked implements KinkSites: a convolution has no corners.
func (l *Conv2d) Kinked() bool { return false }

// JetFLOPs implements FLOPCounter: as Dense with In·KH·KW inputs per
// output position and Out·OH·OW outputs per example.
func (l *Conv2d) JetFLOPs(n int, constInput bool) float64 {
	io := float64(l.In*l.KH*l.KW) * float64(l.Out) * float64(l.OH*l.OW)
	if constInput {
		return 2 * 2 * float64(n) * io
	}
	return 2*3*float64(n)*io + 2*2*float64(n)*io
}

func (l *Conv2d) ckk() int { return l.In * l.KH * l.KW }
func (l *Conv2d) ohw() int { return l.OH * l.OW }

// im2col writes the patches of one example x [C·H·W] into col, row r =
// (c·KH + u)·KW + v holding the OH·OW values x[c, i·SH−PH+u, j·SW−PW+v]
// (0 in the padding) at columns [off, off+OH·OW) of a matrix with leading
// dimension ld. Each output row's in-image columns j ∈ [jlo, jhi) are
// found once (a contiguous copy at stride 1), the padding's are zeroed.
func im2col[T float32 | float64](l *Conv2d, x, col []T, ld, off int) {
	ow := l.OW
	for v := 0; v < l.KW; v++ {
		// columns j whose input column iw = j·SW − PW + v lies in [0, W)
		jlo := 0
		if d := l.PW - v; d > 0 {
			jlo = (d + l.SW - 1) / l.SW
		}
		jhi := 0
		if d := l.W - 1 + l.PW - v; d >= 0 {
			jhi = min(ow, d/l.SW+1)
		}
		jlo = min(jlo, jhi)
		for c := 0; c < l.In; c++ {
			for u := 0; u < l.KH; u++ {
				r := (c*l.KH+u)*l.KW + v
				dst := col[r*ld+off : r*ld+off+l.OH*ow]
				for i := 0; i < l.OH; i++ {
					row := dst[i*ow : (i+1)*ow]
					ih := i*l.SH - l.PH + u
					if ih < 0 || ih >= l.H || jlo == jhi {
						clear(row)
						continue
					}
					src := x[(c*l.H+ih)*l.W : (c*l.H+ih+1)*l.W]
					clear(row[:jlo])
					clear(row[jhi:])
					s0 := jlo*l.SW - l.PW + v
					if l.SW == 1 {
						copy(row[jlo:jhi], src[s0:s0+jhi-jlo])
						continue
					}
					seg := row[jlo:jhi]
					src = src[s0 : s0+(len(seg)-1)*l.SW+1]
					for j := range seg {
						seg[j] = src[j*l.SW]
					}
				}
			}
		}
	}
}

// col2im adds the patches in col (im2col's layout) back into dx [C·H·W].
func col2im(l *Conv2d, col []float64, ld, off int, dx []float64) {
	for c := 0; c < l.In; c++ {
		for u := 0; u < l.KH; u++ {
			for v := 0; v < l.KW; v++ {
				r := (c*l.KH+u)*l.KW + v
				src := col[r*ld+off : r*ld+off+l.OH*l.OW]
				for i := 0; i < l.OH; i++ {
					ih := i*l.SH - l.PH + u
					if ih < 0 || ih >= l.H {
						continue
					}
					dst := dx[(c*l.H+ih)*l.W : (c*l.H+ih+1)*l.W]
					for j, s := range src[i*l.OW : (i+1)*l.OW] {
						if iw := j*l.SW - l.PW + v; iw >= 0 && iw < l.W {
							dst[iw] += s
						}
					}
				}
			}
		}
	}
}

// gemm is C = alpha·op(A)·op(B) + beta·C on row-major slices, through
// gonum's blas64 or blas32 (the project's BLAS backend).
func gemm[T float32 | float64](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	switch a := any(a).(type) {
	case []float64:
		blas64.Implementation().Dgemm(ta, tb, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	case []float32:
		blas32.Implementation().Sgemm(ta, tb, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	}
}

// convColElems bounds the elements of one im2col buffer (8 MB in float64).
var convColElems = 1 << 20

// convChunk is the number of examples whose columns one GEMM takes (the
// column buffer stays within convColElems elements, at least one example).
func (l *Conv2d) convChunk() int {
	return max(1, convColElems/max(1, l.ckk()*l.ohw()))
}

// convApply computes, for every example e, w ⋆ src[e] (w [Out, In·KH·KW],
// no bias) times scale[e] (1 when scale is nil) and stores it in dst[e]
// [Out·OH·OW], or adds it when acc is set: im2col of a chunk of examples
// side by side, then one GEMM.
func convApply[T float32 | float64](l *Conv2d, w []T, src, dst [][]T, scale []T, acc bool) {
	ckk, ohw := l.ckk(), l.ohw()
	b := min(l.convChunk(), len(src))
	if _, ok := any(w).([]float64); ok { // float64: the training path, buffers reused
		col, tmp := getConvBuf(ckk*b*ohw), getConvBuf(l.Out*b*ohw)
		defer putConvBuf(col)
		defer putConvBuf(tmp)
		convApplyBuf(l, w, src, dst, scale, acc, any(*col).([]T), any(*tmp).([]T))
		return
	}
	convApplyBuf(l, w, src, dst, scale, acc, make([]T, ckk*b*ohw), make([]T, l.Out*b*ohw))
}

// convBufPool holds float64 scratch buffers of Conv2d's Forward and
// Backward (im2col columns, products), so that a training step does not
// allocate and clear megabytes per layer: every element of a buffer taken
// from it is written before it is read (im2col writes the padding's zeros;
// the products are GEMMs with beta 0 or copies), so reuse cannot change a
// result.
var convBufPool sync.Pool

// getConvBuf returns a buffer of n float64 from convBufPool (its content
// is garbage) or a new one.
func getConvBuf(n int) *[]float64 {
	if v, ok := convBufPool.Get().(*[]float64); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	b := make([]float64, n)
	return &b
}

func putConvBuf(b *[]float64) { convBufPool.Put(b) }

// convApplyBuf is convApply with its buffers given: col at least
// In·KH·KW·b·OH·OW and tmp Out·b·OH·OW elements, b = min(convChunk, len(src)).
func convApplyBuf[T float32 | float64](l *Conv2d, w []T, src, dst [][]T, scale []T, acc bool, col, tmp []T) {
	ckk, ohw := l.ckk(), l.ohw()
	b := min(l.convChunk(), len(src))
	for e0 := 0; e0 < len(src); e0 += b {
		m := min(b, len(src)-e0)
		ld := m * ohw
		for e := 0; e < m; e++ {
			im2col(l, src[e0+e], col, ld, e*ohw)
		}
		gemm(false, false, l.Out, ld, ckk, 1, w, ckk, col, ld, 0, tmp, ld)
		for e := 0; e < m; e++ {
			s := T(1)
			if scale != nil {
				s = scale[e0+e]
			}
			d := dst[e0+e]
			for o := 0; o < l.Out; o++ {
				dr, sr := d[o*ohw:(o+1)*ohw], tmp[o*ld+e*ohw:o*ld+(e+1)*ohw]
				switch {
				case acc:
					for j, v := range sr {
						dr[j] += s * v
					}
				case s == 1:
					copy(dr, sr)
				default:
					for j, v := range sr {
						dr[j] = s * v
					}
				}
			}
		}
	}
}

// addChannel adds scale·b[o] to every position of channel o of each row
// ([Out·OH·OW]).
func addChannel[T float32 | float64](rows [][]T, b []T, ohw int, scale T) {
	for _, r := range rows {
		for o, bo := range b {
			v := scale * bo
			seg := r[o*ohw : (o+1)*ohw]
			for j := range seg {
				seg[j] += v
			}
		}
	}
}

// rowsOf returns rows [lo, hi) of m as slices.
func rowsOf(m *mat.Dense, lo, hi int) [][]float64 {
	out := make([][]float64, hi-lo)
	for i := range out {
		out[i] = m.RawRowView(lo + i)
	}
	return out
}

// rowsOf32 returns rows [lo, hi) of m as slices.
func rowsOf32(m blas32.General, lo, hi int) [][]float32 {
	out := make([][]float32, hi-lo)
	for i := range out {
		out[i] = row32(m, lo+i)
	}
	return out
}

// Forward returns W ⋆ x + b, x [N, In·H·W], result [N, Out·OH·OW].
func (l *Conv2d) Forward(p []*Tensor, x *mat.Dense) *mat.Dense {
	n, _ := x.Dims()
	y := mat.NewDense(n, l.OutSize(), nil)
	convApply(l, p[0].Data, rowsOf(x, 0, n), rowsOf(y, 0, n), nil, false)
	if p[1] != nil {
		addChannel(rowsOf(y, 0, n), p[1].Data, l.ohw(), 1)
	}
	return y
}

// Backward adds dW = Σ_e dy_e · col(x_e)ᵀ and db = Σ dy into grads and
// returns dx = col2im(Wᵀ · dy_e) (GEMMs on chunks of examples).
func (l *Conv2d) Backward(p []*Tensor, x, _, dy *mat.Dense, grads []*Tensor) *mat.Dense {
	n, _ := x.Dims()
	ckk, ohw := l.ckk(), l.ohw()
	dx := mat.NewDense(n, l.InSize(), nil)
	b := min(l.convChunk(), n)
	colBuf, dymBuf := getConvBuf(ckk*b*ohw), getConvBuf(l.Out*b*ohw)
	defer putConvBuf(colBuf)
	defer putConvBuf(dymBuf)
	col, dym := *colBuf, *dymBuf
	for e0 := 0; e0 < n; e0 += b {
		m := min(b, n-e0)
		ld := m * ohw
		for e := 0; e < m; e++ {
			im2col(l, x.RawRowView(e0+e), col, ld, e*ohw)
			dr := dy.RawRowView(e0 + e)
			for o := 0; o < l.Out; o++ {
				copy(dym[o*ld+e*ohw:o*ld+(e+1)*ohw], dr[o*ohw:(o+1)*ohw])
			}
		}
		if grads[0] != nil {
			gemm(false, true, l.Out, ckk, ld, 1, dym, ld, col, ld, 1, grads[0].Data, ckk)
		}
		gemm(true, false, ckk, ld, l.Out, 1, p[0].Data, ckk, dym, ld, 0, col, ld)
		for e := 0; e < m; e++ {
			col2im(l, col, ld, e*ohw, dx.RawRowView(e0+e))
		}
	}
	if p[1] != nil && grads[1] != nil {
		for e := 0; e < n; e++ {
			r := dy.RawRowView(e)
			for o := 0; o < l.Out; o++ {
				for _, v := range r[o*ohw : (o+1)*ohw] {
					grads[1].Data[o] += v
				}
			}
		}
	}
	return dx
}

// convJet is the bilinear rule of THEORY.md §9 on rows (in: n rows h for a
// constant input, else 3n rows h, ḣ, ḧ; out: 3n rows), generic in the
// precision:
//
//	y = W⋆h + b,  ẏ = ΔW⋆h + W⋆ḣ + Δb,  ÿ = 2 ΔW⋆ḣ + W⋆ḧ,
//
// on a constant input y = W⋆h + b, ẏ = ΔW⋆h + Δb, ÿ = 0. b, db are nil
// without a bias. The patches of h, ḣ and ḧ of a chunk of m examples are
// built once (im2col into col, side by side) and shared by two GEMMs: the
// stacked [W; ΔW] (wd, [2·Out, In·KH·KW]) times the columns of h and ḣ,
// and W times those of ḧ — the five products W⋆h, W⋆ḣ, ΔW⋆h, ΔW⋆ḣ, W⋆ḧ
// and no other. col, tmp and wd are convJetBufs' buffers.
func convJet[T float32 | float64](l *Conv2d, w, dw, b, db []T, in, out [][]T, n int, konst bool, col, tmp, wd []T) {
	ckk, ohw, o := l.ckk(), l.ohw(), l.Out
	copy(wd, w)
	copy(wd[o*ckk:], dw)
	m := min(l.jetChunk(), n)
	parts := 3 // h, ḣ, ḧ
	if konst {
		parts = 1
		for _, r := range out[2*n:] {
			clear(r)
		}
	}
	for e0 := 0; e0 < n; e0 += m {
		k := min(m, n-e0)
		ld := parts * k * ohw
		for q := 0; q < parts; q++ {
			for e := 0; e < k; e++ {
				im2col(l, in[q*n+e0+e], col, ld, (q*k+e)*ohw)
			}
		}
		hd := min(2, parts) * k * ohw // the columns of h (and ḣ)
		t1, t2 := tmp[:2*o*hd], tmp[2*o*hd:]
		gemm(false, false, 2*o, hd, ckk, 1, wd, ckk, col, ld, 0, t1, hd) // [W; ΔW]⋆[h ḣ]
		if !konst {
			gemm(false, false, o, k*ohw, ckk, 1, w, ckk, col[hd:], ld, 0, t2, k*ohw) // W⋆ḧ
		}
		for e := 0; e < k; e++ {
			y0, y1, y2 := out[e0+e], out[n+e0+e], out[2*n+e0+e]
			for c := 0; c < o; c++ {
				wh := t1[c*hd+e*ohw : c*hd+(e+1)*ohw]
				dwh := t1[(o+c)*hd+e*ohw : (o+c)*hd+(e+1)*ohw]
				seg := c * ohw
				copy(y0[seg:seg+ohw], wh)
				if konst {
					copy(y1[seg:seg+ohw], dwh)
					continue
				}
				whd := t1[c*hd+(k+e)*ohw : c*hd+(k+e+1)*ohw]
				dwhd := t1[(o+c)*hd+(k+e)*ohw : (o+c)*hd+(k+e+1)*ohw]
				whdd := t2[c*k*ohw+e*ohw : c*k*ohw+(e+1)*ohw]
				d1, d2 := y1[seg:seg+ohw], y2[seg:seg+ohw]
				for j := range d1 {
					d1[j] = whd[j] + dwh[j]
					d2[j] = whdd[j] + 2*dwhd[j]
				}
			}
		}
	}
	if b != nil {
		addChannel(out[:n], b, ohw, 1)
		addChannel(out[n:2*n], db, ohw, 1)
	}
}

// convJetColElems bounds the elements of convJet's column buffer (2 MB in
// float64; at least one example's h, ḣ, ḧ). Smaller than convColElems:
// the columns im2col writes are read back by the GEMMs right away, and
// on the resnet-20 grid (100 × 3, CPU seconds of the grid, three
// alternations at load 15–19) 8 MB buffers took 5.9 s, 2 MB 4.7 s and
// 1 MB 4.8 s (docs/performance.md, "resnet20-grid").
var convJetColElems = 1 << 18

// jetChunk is the number of examples whose patches of h, ḣ and ḧ one
// pass of convJet holds (3·jetChunk examples' columns within
// convJetColElems elements, at least one example).
func (l *Conv2d) jetChunk() int {
	return max(1, convJetColElems/max(1, 3*l.ckk()*l.ohw()))
}

// convJetBufs returns the sizes of convJet's column, product and stacked
// weight buffers for n examples.
func (l *Conv2d) convJetBufs(n int) (col, tmp, wd int) {
	m := min(l.jetChunk(), n)
	return l.ckk() * 3 * m * l.ohw(), 5 * l.Out * m * l.ohw(), 2 * l.Out * l.ckk()
}

// Jet implements Layer (THEORY.md §2, §9; see convJet).
func (l *Conv2d) Jet(p, dp []*Tensor, in *Jet) *Jet {
	n := in.N
	out := newJet(in, n, l.OutSize())
	rin, _ := in.M.Dims()
	var b, db []float64
	if p[1] != nil {
		b, db = p[1].Data, dp[1].Data
	}
	nc, nt, nw := l.convJetBufs(n)
	col, tmp, wd := in.WS.matrix(1, nc).RawMatrix().Data, in.WS.matrix(1, nt).RawMatrix().Data, in.WS.matrix(1, nw).RawMatrix().Data
	convJet(l, p[0].Data, dp[0].Data, b, db, rowsOf(in.M, 0, rin), rowsOf(out.M, 0, 3*n), n, in.Const, col, tmp, wd)
	in.WS.releaseData(col)
	in.WS.releaseData(tmp)
	in.WS.releaseData(wd)
	return out
}

// Jet32 implements Jet32Layer: convJet in float32 (sgemm).
func (l *Conv2d) Jet32(p, dp []*Tensor32, in *Jet32) *Jet32 {
	n := in.N
	out := newJet32(in, n, l.OutSize())
	var b, db []float32
	if p[1] != nil {
		b, db = p[1].Data, dp[1].Data
	}
	nc, nt, nw := l.convJetBufs(n)
	col, tmp, wd := in.WS.general32(1, nc).Data, in.WS.general32(1, nt).Data, in.WS.general32(1, nw).Data
	convJet(l, p[0].Data, dp[0].Data, b, db, rowsOf32(in.M, 0, in.M.Rows), rowsOf32(out.M, 0, 3*n), n, in.Const, col, tmp, wd)
	in.WS.releaseData32(col)
	in.WS.releaseData32(tmp)
	in.WS.releaseData32(wd)
	return out
}

// JetRows implements RowJetter: row r at α = alphas[r] with parameters
// p0 + α·dp, from P0 = W0⋆[h ḣ ḧ] and P1 = ΔW⋆[h ḣ ḧ]:
// y = P0h + αP1h + b, ẏ = P1h + P0ḣ + αP1ḣ + Δb, ÿ = 2P1ḣ + P0ḧ + αP1ḧ.
func (l *Conv2d) JetRows(p0, dp []*Tensor, alphas []float64, in *Jet) *Jet {
	n, d := in.N, l.OutSize()
	rin, _ := in.M.Dims()
	P0, P1 := mat.NewDense(rin, d, nil), mat.NewDense(rin, d, nil)
	convApply(l, p0[0].Data, rowsOf(in.M, 0, rin), rowsOf(P0, 0, rin), nil, false)
	convApply(l, dp[0].Data, rowsOf(in.M, 0, rin), rowsOf(P1, 0, rin), nil, false)
	out := &Jet{N: n, M: mat.NewDense(3*n, d, nil)}
	ohw := l.ohw()
	for r := 0; r < n; r++ {
		al := alphas[r]
		z, zd := rowJetProducts(out, P0, P1, r, al, in.Const)
		if p0[1] != nil {
			for u := range z {
				o := u / ohw
				z[u] += p0[1].Data[o] + al*dp[1].Data[o]
				zd[u] += dp[1].Data[o]
			}
		}
	}
	return out
}

// patches returns the interval im2col of x [n, In·H·W]: [n·OH·OW, In·KH·KW],
// row e·OH·OW + q holding output position q's patch of example e.
func (l *Conv2d) patches(x interval.Matrix, n int) interval.Matrix {
	ckk, ohw := l.ckk(), l.ohw()
	out := interval.NewMatrix(n*ohw, ckk)
	col := make([]float64, ckk*ohw)
	for k, src := range [][]float64{x.Lo, x.Hi} {
		dst := out.Lo
		if k == 1 {
			dst = out.Hi
		}
		for e := 0; e < n; e++ {
			im2col(l, src[e*x.Cols:(e+1)*x.Cols], col, ohw, 0)
			for r := 0; r < ckk; r++ {
				for q := 0; q < ohw; q++ {
					dst[(e*ohw+q)*ckk+r] = col[r*ohw+q]
				}
			}
		}
	}
	return out
}

// unpatch turns a product [n·OH·OW, Out] into activations [n, Out·OH·OW].
func (l *Conv2d) unpatch(m interval.Matrix, n int) interval.Matrix {
	ohw := l.ohw()
	out := interval.NewMatrix(n, l.OutSize())
	for e := 0; e < n; e++ {
		for q := 0; q < ohw; q++ {
			for o := 0; o < l.Out; o++ {
				s, d := (e*ohw+q)*l.Out+o, e*out.Cols+o*ohw+q
				out.Lo[d], out.Hi[d] = m.Lo[s], m.Hi[s]
			}
		}
	}
	return out
}

// channelRow expands a per-channel vector [Out] to [Out·OH·OW].
func (l *Conv2d) channelRow(v []float64) []float64 {
	out := make([]float64, l.OutSize())
	for o, x := range v {
		for q := 0; q < l.ohw(); q++ {
			out[o*l.ohw()+q] = x
		}
	}
	return out
}

// ConstProducts implements AffineInAlpha: A = W0⋆x + b0 and B = ΔW⋆x + Δb
// [N, Out·OH·OW] for inputs x [N, In·H·W] that do not depend on α.
func (l *Conv2d) ConstProducts(p *ParamBox, x interval.Matrix) (a, b interval.Matrix) {
	w0 := interval.NewWeights(l.Out, l.ckk(), p.Theta0[0].Data, nil)
	dw := interval.NewWeights(l.Out, l.ckk(), p.Delta[0].Data, nil)
	pt := l.patches(x, x.Rows)
	a = l.unpatch(interval.MulNT(pt, w0, 1), x.Rows)
	b = l.unpatch(interval.MulNT(pt, dw, 1), x.Rows)
	if p.Theta0[1] != nil {
		b0, db := l.channelRow(p.Theta0[1].Data), l.channelRow(p.Delta[1].Data)
		a.AddRow(b0, b0)
		b.AddRow(db, db)
	}
	return a, b
}

var (
	_ AffineInAlpha = (*Conv2d)(nil)
	_ RowJetter     = (*Conv2d)(nil)
	_ KinkSites     = (*Conv2d)(nil)
	_ FLOPCounter   = (*Conv2d)(nil)
	_ Jet32Layer    = (*Conv2d)(nil)
	_ IntervalLayer = (*Conv2d)(nil)
	_ Shaper        = (*Conv2d)(nil)
)
