package nn

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/mat"
)

// Jet32 is Jet in float32, the layer passes of the float32 compute option
// (functionspace.Options.Precision, THEORY.md §2): for N examples the value
// h, the velocity ḣ and the acceleration ḧ along α, stacked as one row-major
// matrix M [3N, D]: rows [0, N) are h, [N, 2N) are ḣ, [2N, 3N) are ḧ. A Jet32
// with Const set holds M [N, D], h only (its derivatives vanish). WS, when
// not nil, is the workspace the rules take their output matrices from (see
// Jet.WS).
type Jet32 struct {
	N     int
	M     blas32.General
	Const bool
	WS    *Workspace
}

// NewJet32 returns a zero jet of n examples of width d, M [3n, d].
func NewJet32(n, d int) *Jet32 {
	return &Jet32{N: n, M: newGeneral32(3*n, d)}
}

// NewConstJet32 wraps a batch x [N, D] of inputs, which do not depend on α.
func NewConstJet32(x blas32.General) *Jet32 {
	return &Jet32{N: x.Rows, M: x, Const: true}
}

func newGeneral32(r, c int) blas32.General {
	return blas32.General{Rows: r, Cols: c, Stride: c, Data: make([]float32, r*c)}
}

// rows32 returns the view of rows [lo, hi) of m.
func rows32(m blas32.General, lo, hi int) blas32.General {
	if hi == lo {
		return blas32.General{Cols: m.Cols, Stride: m.Stride}
	}
	return blas32.General{Rows: hi - lo, Cols: m.Cols, Stride: m.Stride,
		Data: m.Data[lo*m.Stride : (hi-1)*m.Stride+m.Cols]}
}

// row32 returns row i of m, [Cols].
func row32(m blas32.General, i int) []float32 {
	return m.Data[i*m.Stride : i*m.Stride+m.Cols]
}

// Value returns the view h [N, D]; Velocity ḣ and Acceleration ḧ likewise.
// For a Const jet, Velocity and Acceleration are empty (Rows 0).
func (j *Jet32) Value() blas32.General { return j.part(0) }

// Velocity is ḣ [N, D]; see Value.
func (j *Jet32) Velocity() blas32.General { return j.part(1) }

// Acceleration is ḧ [N, D]; see Value.
func (j *Jet32) Acceleration() blas32.General { return j.part(2) }

func (j *Jet32) part(k int) blas32.General {
	if j.Const && k > 0 {
		return blas32.General{Cols: j.M.Cols, Stride: j.M.Stride}
	}
	return rows32(j.M, k*j.N, (k+1)*j.N)
}

// Float64 returns the jet widened exactly to float64 (a new Jet; Const is
// kept).
func (j *Jet32) Float64() *Jet {
	m := mat.NewDense(j.M.Rows, j.M.Cols, nil)
	for i := 0; i < j.M.Rows; i++ {
		dst := m.RawRowView(i)
		for c, v := range row32(j.M, i) {
			dst[c] = float64(v)
		}
	}
	return &Jet{N: j.N, M: m, Const: j.Const}
}

// Round32 returns m [R, C] rounded to the nearest float32, [R, C] row-major.
func Round32(m *mat.Dense) blas32.General {
	r, c := m.Dims()
	g := newGeneral32(r, c)
	for i := 0; i < r; i++ {
		dst := row32(g, i)
		for k, v := range m.RawRowView(i) {
			dst[k] = float32(v)
		}
	}
	return g
}

// RoundJet returns j rounded to float32 element by element (Const is kept).
func RoundJet(j *Jet) *Jet32 {
	return &Jet32{N: j.N, M: Round32(j.M), Const: j.Const}
}

// Tensor32 is a Tensor rounded to float32: Data in row-major order, Shape
// as the Tensor's.
type Tensor32 struct {
	Shape []int
	Data  []float32
}

// Round32 returns t rounded to the nearest float32 (nil for nil: an absent
// parameter stays absent). The functionspace float32 option forms θα =
// θ0 + αδ in float64 and rounds it once with this.
func (t *Tensor) Round32() *Tensor32 {
	if t == nil {
		return nil
	}
	d := make([]float32, len(t.Data))
	for i, v := range t.Data {
		d[i] = float32(v)
	}
	return &Tensor32{Shape: t.Shape, Data: d}
}

// RoundTensors rounds every tensor of ts (Round32), nil entries kept.
func RoundTensors(ts []*Tensor) []*Tensor32 {
	out := make([]*Tensor32, len(ts))
	for i, t := range ts {
		out[i] = t.Round32()
	}
	return out
}

// Jet32Layer is implemented by layers with a float32 jet rule: Jet32 is Jet
// (THEORY.md §2) on float32 jets, with the layer's parameters at α (p, θα
// formed in float64 and rounded once) and their α-derivative dp = δ
// (rounded), in Params order; an absent parameter is nil. Dense, Activation
// and BatchNorm (the `interpolate` policy; BatchNorm.JetStats32 for
// `recompute`) implement it. functionspace refuses the float32 option for a
// model with a layer that does not.
type Jet32Layer interface {
	Jet32(p, dp []*Tensor32, in *Jet32) *Jet32
}

var (
	_ Jet32Layer = (*Dense)(nil)
	_ Jet32Layer = (*Activation)(nil)
	_ Jet32Layer = (*BatchNorm)(nil)
)

// gemmNT32 computes c = beta·c + a·bᵀ for row-major a [m, k], b [n, k],
// c [m, n] with blas32.Gemm (gemmNTOf; kept for float32 rules outside the
// shared ones).
func gemmNT32(c, a, b blas32.General, beta float32) {
	gemmNTOf(general[float32](c), general[float32](a), general[float32](b), beta)
}

// matrix32 is t [R, C] as a row-major float32 matrix.
func matrix32(t *Tensor32) blas32.General {
	return blas32.General{Rows: t.Shape[0], Cols: t.Shape[1], Stride: t.Shape[1], Data: t.Data}
}
