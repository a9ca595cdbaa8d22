package nn

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/mat"
)

// Workspace recycles the matrices of a second-order forward pass. A pass
// over a chunk of examples asks for the same sequence of matrices every time
// (per layer: the output jet [3N, D], and Dense's product [2N, Out]), so a
// Workspace hands them out in order and Reset makes them available to the
// next pass: after the first pass over a chunk no jet is allocated (issue 7:
// no per-example allocation; at 1000 examples × 1024 units one jet is 24 MB).
//
// A Workspace belongs to one goroutine at a time. Jets obtained from it are
// valid until the next Reset; a caller that keeps one longer must copy it.
// The zero value is ready to use.
type Workspace struct {
	bufs   [][]float64
	next   int
	bufs32 [][]float32 // the float32 passes' matrices (Jet32), handed out the same way
	next32 int
}

// Reset makes every matrix handed out so far available again.
func (w *Workspace) Reset() { w.next, w.next32 = 0, 0 }

// Bytes returns the memory held by the workspace, in bytes.
func (w *Workspace) Bytes() int {
	n := 0
	for _, b := range w.bufs {
		n += 8 * cap(b)
	}
	for _, b := range w.bufs32 {
		n += 4 * cap(b)
	}
	return n
}

// matrix returns an r×c matrix; its elements are zero when zero is set and
// unspecified otherwise. A nil workspace allocates a fresh (zero) matrix.
func (w *Workspace) matrix(r, c int, zero bool) *mat.Dense {
	if w == nil {
		return mat.NewDense(r, c, nil)
	}
	return mat.NewDense(r, c, take(&w.bufs, &w.next, r*c, zero))
}

// take hands out the next buffer of *bufs with length n, growing it when it
// is too short; its elements are zero when zero is set (a new buffer always
// is), else unspecified.
func take[T float32 | float64](bufs *[][]T, next *int, n int, zero bool) []T {
	if *next == len(*bufs) {
		*bufs = append(*bufs, nil)
	}
	b := (*bufs)[*next]
	if cap(b) < n {
		b = make([]T, n)
		(*bufs)[*next] = b
		zero = false
	}
	*next++
	b = b[:n]
	if zero {
		clear(b)
	}
	return b
}

// newJet returns the non-constant output jet [3n, d] of a rule applied to
// in, from in's workspace (see Jet.WS). When zero is unset the caller must
// write every element.
func newJet(in *Jet, n, d int, zero bool) *Jet {
	return &Jet{N: n, M: in.WS.matrix(3*n, d, zero), WS: in.WS}
}

// NewJet returns a non-constant jet [3n, d] whose matrix comes from ws (a
// fresh zero matrix when ws is nil) and whose rules will use ws too; its
// elements are unspecified when ws is not nil.
func NewJet(n, d int, ws *Workspace) *Jet {
	return &Jet{N: n, M: ws.matrix(3*n, d, false), WS: ws}
}

// general32 is matrix for the float32 passes: an r×c row-major matrix,
// zero when zero is set, else unspecified; a nil workspace allocates.
func (w *Workspace) general32(r, c int, zero bool) blas32.General {
	if w == nil {
		return newGeneral32(r, c)
	}
	return blas32.General{Rows: r, Cols: c, Stride: c, Data: take(&w.bufs32, &w.next32, r*c, zero)}
}

// newJet32 returns the non-constant float32 output jet [3n, d] of a rule
// applied to in, from in's workspace; see newJet.
func newJet32(in *Jet32, n, d int, zero bool) *Jet32 {
	return &Jet32{N: n, M: in.WS.general32(3*n, d, zero), WS: in.WS}
}

// NewJet32From returns a non-constant float32 jet [3n, d] whose matrix comes
// from ws (a fresh zero matrix when ws is nil) and whose rules will use ws
// too; its elements are unspecified when ws is not nil.
func NewJet32From(n, d int, ws *Workspace) *Jet32 {
	return &Jet32{N: n, M: ws.general32(3*n, d, false), WS: ws}
}
