package nn

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

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
// is Const (ḣ = ḧ = 0) it needs only W h and ΔW h, and z̈ = 0.
func (d *Dense) Jet(p, dp []*Tensor, in *Jet) *Jet {
	n := in.N
	out := newJet(in, n, d.Out) // every element is written below
	w, dw := p[0].Matrix(), dp[0].Matrix()
	value, vel, acc := out.Value(), out.Velocity(), out.Acceleration()
	if in.Const {
		gemmNT(value, in.M, w, 0)
		gemmNT(vel, in.M, dw, 0)
		acc.Zero()
	} else {
		gemmNT(out.M, in.M, w, 0)
		hh := in.M.Slice(0, 2*n, 0, d.In).(*mat.Dense)
		tmp := in.WS.matrix(2*n, d.Out)
		gemmNT(tmp, hh, dw, 0)
		tr, vr, ar := tmp.RawMatrix(), vel.RawMatrix(), acc.RawMatrix()
		for i := 0; i < n; i++ {
			dv := vr.Data[i*vr.Stride : i*vr.Stride+d.Out]
			sv := tr.Data[i*tr.Stride : i*tr.Stride+d.Out]
			for j, v := range sv {
				dv[j] += v
			}
			da := ar.Data[i*ar.Stride : i*ar.Stride+d.Out]
			sa := tr.Data[(n+i)*tr.Stride : (n+i)*tr.Stride+d.Out]
			for j, v := range sa {
				da[j] += 2 * v
			}
		}
	}
	if p[1] != nil {
		addRow(value, p[1].Data, 1)
		addRow(vel, dp[1].Data, 1)
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
		z, zd := out.M.RawRowView(r), out.M.RawRowView(n+r)
		p0h, p1h := P0.RawRowView(r), P1.RawRowView(r)
		if in.Const {
			for u := range z {
				z[u] = p0h[u] + al*p1h[u]
				zd[u] = p1h[u]
			}
		} else {
			zdd := out.M.RawRowView(2*n + r)
			p0d, p1d := P0.RawRowView(n+r), P1.RawRowView(n+r)
			p0a, p1a := P0.RawRowView(2*n+r), P1.RawRowView(2*n+r)
			for u := range z {
				z[u] = p0h[u] + al*p1h[u]
				zd[u] = p1h[u] + p0d[u] + al*p1d[u]
				zdd[u] = 2*p1d[u] + p0a[u] + al*p1a[u]
			}
		}
		if b0 != nil {
			for u := range z {
				z[u] += b0[u] + al*db[u]
				zd[u] += db[u]
			}
		}
	}
	return out
}
