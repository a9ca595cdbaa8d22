package nn

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// This file is the element-type shim behind the rules written once for
// both precisions (issue #11, "each rule written once"): Dense, Activation
// and BatchNorm implement their jet rule as one generic function over
// float32 | float64 (like lnJet), and Jet and Jet32 are thin wrappers that
// convert the jets to and from the generic view jetOf. Only the BLAS call
// differs by type (gemmNTOf).

// elem is the element type of a jet: float64 (Jet) or float32 (Jet32).
type elem interface{ float32 | float64 }

// general is a row-major matrix view [Rows, Cols] with row stride Stride,
// the fields of blas64.General and blas32.General (blas32's order, so that
// the two convert by a type conversion; g64 and b64 convert blas64's).
type general[T elem] struct {
	Rows, Cols int
	Stride     int
	Data       []T
}

// g64 is the view of m.
func g64(m blas64.General) general[float64] {
	return general[float64]{Rows: m.Rows, Cols: m.Cols, Stride: m.Stride, Data: m.Data}
}

// b64 is m as a blas64.General.
func b64(m general[float64]) blas64.General {
	return blas64.General{Rows: m.Rows, Cols: m.Cols, Stride: m.Stride, Data: m.Data}
}

// row returns row i of m, [Cols].
func (m general[T]) row(i int) []T { return m.Data[i*m.Stride : i*m.Stride+m.Cols] }

// rows returns the view of rows [lo, hi) of m.
func (m general[T]) rows(lo, hi int) general[T] {
	if hi == lo {
		return general[T]{Cols: m.Cols, Stride: m.Stride}
	}
	return general[T]{Rows: hi - lo, Cols: m.Cols, Stride: m.Stride, Data: m.Data[lo*m.Stride : (hi-1)*m.Stride+m.Cols]}
}

// gemmNTOf computes c = beta·c + a·bᵀ for row-major a [m, k], b [n, k],
// c [m, n] with blas64.Gemm or blas32.Gemm (the implementation installed
// by Use); nothing for m = 0.
func gemmNTOf[T elem](c, a, b general[T], beta T) {
	if a.Rows == 0 {
		return
	}
	switch cc := any(c).(type) {
	case general[float64]:
		blas64.Gemm(blas.NoTrans, blas.Trans, 1, b64(any(a).(general[float64])), b64(any(b).(general[float64])), any(beta).(float64), b64(cc))
	case general[float32]:
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, blas32.General(any(a).(general[float32])), blas32.General(any(b).(general[float32])), any(beta).(float32), blas32.General(cc))
	}
}

// addRowOf adds row [Cols] to every row of m.
func addRowOf[T elem](m general[T], row []T) {
	for i := 0; i < m.Rows; i++ {
		dst := m.row(i)
		for j, v := range row {
			dst[j] += v
		}
	}
}

// takeGeneral returns an r×c matrix from ws (float64 or float32 buffers by
// T), elements unspecified; a nil workspace allocates a zero matrix.
func takeGeneral[T elem](ws *Workspace, r, c int) general[T] {
	var data []T
	if ws == nil {
		data = make([]T, r*c)
	} else {
		switch any(data).(type) {
		case []float64:
			data = any(take(&ws.bufs, &ws.busy, r*c)).([]T)
		case []float32:
			data = any(take(&ws.bufs32, &ws.busy32, r*c)).([]T)
		}
	}
	return general[T]{Rows: r, Cols: c, Stride: c, Data: data}
}

// jetOf is the generic view of a Jet (T float64) or a Jet32 (T float32):
// the same fields, M [3N, D] (or [N, D] when Const) as a general.
type jetOf[T elem] struct {
	N     int
	M     general[T]
	Const bool
	WS    *Workspace
}

// value returns h [N, D]; velocity ḣ and acceleration ḧ likewise (empty
// views for a Const jet).
func (j jetOf[T]) value() general[T] { return j.part(0) }

func (j jetOf[T]) velocity() general[T] { return j.part(1) }

func (j jetOf[T]) acceleration() general[T] { return j.part(2) }

func (j jetOf[T]) part(k int) general[T] {
	if j.Const && k > 0 {
		return general[T]{Cols: j.M.Cols, Stride: j.M.Stride}
	}
	return j.M.rows(k*j.N, (k+1)*j.N)
}

// newJetOf returns the non-constant output jet [3n, d] of a rule applied to
// in, from in's workspace (newJet, newJet32); the rule must write every
// element.
func newJetOf[T elem](in jetOf[T], n, d int) jetOf[T] {
	return jetOf[T]{N: n, M: takeGeneral[T](in.WS, 3*n, d), WS: in.WS}
}

// view64 is the generic view of j.
func view64(j *Jet) jetOf[float64] {
	return jetOf[float64]{N: j.N, M: g64(j.M.RawMatrix()), Const: j.Const, WS: j.WS}
}

// view32 is the generic view of j.
func view32(j *Jet32) jetOf[float32] {
	return jetOf[float32]{N: j.N, M: general[float32](j.M), Const: j.Const, WS: j.WS}
}

// jet64 returns the Jet of a view whose matrix is contiguous (Stride ==
// Cols, as every matrix the rules allocate), sharing its elements.
func jet64(j jetOf[float64]) *Jet {
	return &Jet{N: j.N, M: mat.NewDense(j.M.Rows, j.M.Cols, j.M.Data[:j.M.Rows*j.M.Cols]), Const: j.Const, WS: j.WS}
}

// jet32 returns the Jet32 of a view, sharing its elements.
func jet32(j jetOf[float32]) *Jet32 {
	return &Jet32{N: j.N, M: blas32.General(j.M), Const: j.Const, WS: j.WS}
}

// data64 returns the element slices of ts (nil entries, and a nil ts, kept).
func data64(ts []*Tensor) [][]float64 {
	if ts == nil {
		return nil
	}
	out := make([][]float64, len(ts))
	for i, t := range ts {
		if t != nil {
			out[i] = t.Data
		}
	}
	return out
}

// data32 is data64 for rounded tensors.
func data32(ts []*Tensor32) [][]float32 {
	if ts == nil {
		return nil
	}
	out := make([][]float32, len(ts))
	for i, t := range ts {
		if t != nil {
			out[i] = t.Data
		}
	}
	return out
}

// wide returns d as float64: d itself when T is float64, else a widened copy.
func wide[T elem](d []T) []float64 {
	if w, ok := any(d).([]float64); ok {
		return w
	}
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out
}
