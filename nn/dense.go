package nn

import (
	"fmt"

	"github.com/certify-mli/certify/interval"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

func init() {
	registerLayer("linear", []string{"in!", "out!", "bias"}, func(ls LayerSpec, width int) (Layer, error) {
		if ls.In <= 0 || ls.Out <= 0 {
			return nil, fmt.Errorf("linear: want positive in and out, found in=%d out=%d", ls.In, ls.Out)
		}
		if ls.In != width {
			return nil, fmt.Errorf("linear: in=%d but the previous layer gives %d features", ls.In, width)
		}
		bias := ls.Bias == nil || *ls.Bias
		return &Dense{In: ls.In, Out: ls.Out, HasBias: bias}, nil
	})
}

// Dense is PyTorch's nn.Linear: y = x Wᵀ + b with weight W [Out, In] and bias b [Out].
type Dense struct {
	In, Out int
	HasBias bool
}

// Type returns "linear".
func (d *Dense) Type() string { return "linear" }

// InSize returns In.
func (d *Dense) InSize() int { return d.In }

// OutSize returns Out.
func (d *Dense) OutSize() int { return d.Out }

// Params returns weight [Out, In] and bias [Out].
func (d *Dense) Params() []Param {
	return []Param{{Name: "weight", Shape: []int{d.Out, d.In}}, {Name: "bias", Shape: []int{d.Out}}}
}

// gemm computes c = beta·c + a·bᵀ for row-major a [m, k], b [n, k], c [m, n].
func gemmNT(c, a, b *mat.Dense, beta float64) {
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, a.RawMatrix(), b.RawMatrix(), beta, c.RawMatrix())
}

func addRow(m *mat.Dense, row []float64, scale float64) {
	r := m.RawMatrix()
	for i := 0; i < r.Rows; i++ {
		dst := r.Data[i*r.Stride : i*r.Stride+r.Cols]
		for j, v := range row {
			dst[j] += scale * v
		}
	}
}

// Forward returns x Wᵀ + b, x [N, In], result [N, Out].
func (d *Dense) Forward(p []*Tensor, x *mat.Dense) *mat.Dense {
	n, _ := x.Dims()
	y := mat.NewDense(n, d.Out, nil)
	gemmNT(y, x, p[0].Matrix(), 0)
	if p[1] != nil {
		addRow(y, p[1].Data, 1)
	}
	return y
}

// Backward adds dW = dyᵀ x and db = Σ_rows dy into grads and returns dx = dy W.
func (d *Dense) Backward(p []*Tensor, x, _, dy *mat.Dense, grads []*Tensor) *mat.Dense {
	if grads[0] != nil {
		blas64.Gemm(blas.Trans, blas.NoTrans, 1, dy.RawMatrix(), x.RawMatrix(), 1, grads[0].Matrix().RawMatrix())
	}
	if p[1] != nil && grads[1] != nil {
		r := dy.RawMatrix()
		for i := 0; i < r.Rows; i++ {
			row := r.Data[i*r.Stride : i*r.Stride+r.Cols]
			for j, v := range row {
				grads[1].Data[j] += v
			}
		}
	}
	n, _ := dy.Dims()
	dx := mat.NewDense(n, d.In, nil)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, dy.RawMatrix(), p[0].Matrix().RawMatrix(), 0, dx.RawMatrix())
	return dx
}

// Jet is the affine rule of THEORY.md §2 with W = W(α), ΔW = dp weight:
//
//	z = W h + b,  ż = ΔW h + W ḣ + Δb,  z̈ = 2 ΔW ḣ + W ḧ,
//
// computed as two wide products, [h; ḣ; ḧ]·Wᵀ and [h; ḣ]·ΔWᵀ. When the input
// is Const (ḣ = ḧ = 0) it needs only W h and ΔW h, and z̈ = 0 (denseJet).
func (d *Dense) Jet(p, dp []*Tensor, in *Jet) *Jet {
	return jet64(denseJet(d, data64(p), data64(dp), view64(in)))
}

// Jet32 is Jet (THEORY.md §2's affine rule) in float32, the same rule
// (denseJet) with the products through blas32.Gemm. p and dp are weight
// [Out, In] and bias [Out] at α and δ, rounded to float32.
func (d *Dense) Jet32(p, dp []*Tensor32, in *Jet32) *Jet32 {
	return jet32(denseJet(d, data32(p), data32(dp), view32(in)))
}

// denseJet is Jet and Jet32, written once over the element type: the
// output jet [3N, Out] is [h; ḣ; ḧ]·Wᵀ, to which the halves of
// [h; ḣ]·ΔWᵀ [2N, Out] are added (to ż, and doubled to z̈), then the bias
// rows; p and dp hold weight [Out, In] and bias [Out] (nil when absent).
func denseJet[T elem](d *Dense, p, dp [][]T, in jetOf[T]) jetOf[T] {
	n := in.N
	out := newJetOf(in, n, d.Out) // every element is written below
	w := general[T]{Rows: d.Out, Cols: d.In, Stride: d.In, Data: p[0]}
	dw := general[T]{Rows: d.Out, Cols: d.In, Stride: d.In, Data: dp[0]}
	value, vel, acc := out.value(), out.velocity(), out.acceleration()
	if in.Const {
		gemmNTOf(value, in.M, w, 0)
		gemmNTOf(vel, in.M, dw, 0)
		clear(acc.Data)
	} else {
		gemmNTOf(out.M, in.M, w, 0)
		tmp := takeGeneral[T](in.WS, 2*n, d.Out)
		gemmNTOf(tmp, in.M.rows(0, 2*n), dw, 0)
		for i := 0; i < n; i++ {
			dv, sv := vel.row(i), tmp.row(i)
			for j, v := range sv {
				dv[j] += v
			}
			da, sa := acc.row(i), tmp.row(n+i)
			for j, v := range sa {
				da[j] += 2 * v
			}
		}
	}
	if len(p) > 1 && p[1] != nil {
		addRowOf(value, p[1])
		addRowOf(vel, dp[1])
	}
	return out
}

// JetRows implements RowJetter: the affine rule with a per-row α, row r
// at α = alphas[r] and parameters p0 + α·dp (the five products of Jet).
func (d *Dense) JetRows(p0, dp []*Tensor, alphas []float64, in *Jet) *Jet {
	n := in.N
	w0, dw := p0[0].Matrix(), dp[0].Matrix()
	rin, _ := in.M.Dims()
	P0 := mat.NewDense(rin, d.Out, nil)
	P1 := mat.NewDense(rin, d.Out, nil)
	gemmNT(P0, in.M, w0, 0)
	gemmNT(P1, in.M, dw, 0)
	out := &Jet{N: n, M: mat.NewDense(3*n, d.Out, nil)}
	var b0, db []float64
	if p0[1] != nil {
		b0, db = p0[1].Data, dp[1].Data
	}
	for r := 0; r < n; r++ {
		al := alphas[r]
		z, zd := rowJetProducts(out, P0, P1, r, al, in.Const)
		if b0 != nil {
			for u := range z {
				z[u] += b0[u] + al*db[u]
				zd[u] += db[u]
			}
		}
	}
	return out
}

// rowJetProducts writes row r of a per-row jet of an affine layer whose
// parameters move along the line (JetRows; THEORY.md §2, the product rule
// in α): with P0 = W0·[h; ḣ; ḧ] and P1 = ΔW·[h; ḣ; ḧ] (rows r, n+r, 2n+r of
// [3n, d]) it sets z = P0h + α·P1h, ż = P1h + P0ḣ + α·P1ḣ and
// z̈ = 2·P1ḣ + P0ḧ + α·P1ḧ, or only z and ż = P1h when the input is
// constant. It returns z and ż for the caller's bias terms. Dense and
// Conv2d share it.
func rowJetProducts(out *Jet, P0, P1 *mat.Dense, r int, al float64, konst bool) (z, zd []float64) {
	n := out.N
	z, zd = out.M.RawRowView(r), out.M.RawRowView(n+r)
	p0h, p1h := P0.RawRowView(r), P1.RawRowView(r)
	if konst {
		for u := range z {
			z[u] = p0h[u] + al*p1h[u]
			zd[u] = p1h[u]
		}
		return z, zd
	}
	zdd := out.M.RawRowView(2*n + r)
	p0d, p1d := P0.RawRowView(n+r), P1.RawRowView(n+r)
	p0a, p1a := P0.RawRowView(2*n+r), P1.RawRowView(2*n+r)
	for u := range z {
		z[u] = p0h[u] + al*p1h[u]
		zd[u] = p1h[u] + p0d[u] + al*p1d[u]
		zdd[u] = 2*p1d[u] + p0a[u] + al*p1a[u]
	}
	return z, zd
}

// transposedKey is the WeightsCache key of a box tensor's transpose
// (boxWeightsT), apart from the tensor's own Weights (BoxWeights).
type transposedKey struct{ t *Tensor }

// boxWeightsT returns interval.NewWeights(cols, rows, Midᵀ, Radᵀ): the
// enclosure of tensor j [rows, cols] over Alpha transposed, as
// Dense.IntervalVJP multiplies by it (g·W = g·(Wᵀ)ᵀ, interval.MulNT). It
// is built once per box and shared by every chunk the box serves, as
// BoxWeights is (a box built as a literal builds it on every call); the
// same values as building it each time, so the products are bit for bit
// the same.
func (p *ParamBox) boxWeightsT(j, rows, cols int) *interval.Weights {
	return p.own.get(transposedKey{p.Mid[j]}, func() *interval.Weights {
		return interval.NewWeights(cols, rows, transposed(p.Mid[j].Data, rows, cols), transposed(p.Rad[j].Data, rows, cols))
	})
}
