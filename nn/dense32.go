package nn

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// gemmNT32 computes c = beta·c + a·bᵀ for row-major a [m, k], b [n, k],
// c [m, n] with blas32.Gemm (the BLAS implementation installed by
// blas32.Use).
func gemmNT32(c, a, b blas32.General, beta float32) {
	if a.Rows == 0 {
		return
	}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, b, beta, c)
}

func matrix32(t *Tensor32) blas32.General {
	return blas32.General{Rows: t.Shape[0], Cols: t.Shape[1], Stride: t.Shape[1], Data: t.Data}
}

func addRow32(m blas32.General, row []float32) {
	for i := 0; i < m.Rows; i++ {
		dst := row32(m, i)
		for j, v := range row {
			dst[j] += v
		}
	}
}

// Jet32 is Jet (THEORY.md §2's affine rule) in float32, with the same two
// wide products through blas32.Gemm: [h; ḣ; ḧ]·Wᵀ into the output jet
// [3N, Out] and [h; ḣ]·ΔWᵀ [2N, Out], whose halves are added to ż and, doubled,
// to z̈. A Const input needs W h and ΔW h only, and z̈ = 0. p and dp are
// weight [Out, In] and bias [Out] at α and δ, rounded to float32.
func (d *Dense) Jet32(p, dp []*Tensor32, in *Jet32) *Jet32 {
	n := in.N
	out := newJet32(in, n, d.Out) // every element is written below
	w, dw := matrix32(p[0]), matrix32(dp[0])
	value, vel, acc := out.Value(), out.Velocity(), out.Acceleration()
	if in.Const {
		gemmNT32(value, in.M, w, 0)
		gemmNT32(vel, in.M, dw, 0)
		clear(acc.Data)
	} else {
		gemmNT32(out.M, in.M, w, 0)
		tmp := in.WS.general32(2*n, d.Out)
		gemmNT32(tmp, rows32(in.M, 0, 2*n), dw, 0)
		for i := 0; i < n; i++ {
			dv, sv := row32(vel, i), row32(tmp, i)
			for j, v := range sv {
				dv[j] += v
			}
			da, sa := row32(acc, i), row32(tmp, n+i)
			for j, v := range sa {
				da[j] += 2 * v
			}
		}
	}
	if p[1] != nil {
		addRow32(value, p[1].Data)
		addRow32(vel, dp[1].Data)
	}
	return out
}
