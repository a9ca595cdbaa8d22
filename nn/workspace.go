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

// matrix returns an r×c matrix whose elements are unspecified (the rules
// write every one); a nil workspace allocates a fresh (zero) matrix.
func (w *Workspace) matrix(r, c int) *mat.Dense {
	if w == nil {
		return mat.NewDense(r, c, nil)
	}
	return mat.NewDense(r, c, take(&w.bufs, &w.next, r*c))
}

// take hands out the next buffer of *bufs with length n, growing it when it
// is too short; its elements are whatever the previous pass left.
func take[T float32 | float64](bufs *[][]T, next *int, n int) []T {
	if *next == len(*bufs) {
		*bufs = append(*bufs, nil)
	}
	if cap((*bufs)[*next]) < n {
		(*bufs)[*next] = make([]T, n)
	}
	b := (*bufs)[*next][:n]
	*next++
	return b
}

// newJet returns the non-constant output jet [3n, d] of a rule applied to
// in, from in's workspace (see Jet.WS); the rule must write every element.
func newJet(in *Jet, n, d int) *Jet {
	return &Jet{N: n, M: in.WS.matrix(3*n, d), WS: in.WS}
}

// NewJet returns a non-constant jet [3n, d] whose matrix comes from ws (a
// fresh zero matrix when ws is nil) and whose rules will use ws too; its
// elements are unspecified when ws is not nil.
func NewJet(n, d int, ws *Workspace) *Jet {
	return &Jet{N: n, M: ws.matrix(3*n, d), WS: ws}
}

// general32 is matrix for the float32 passes: an r×c row-major matrix,
// unspecified elements; a nil workspace allocates.
func (w *Workspace) general32(r, c int) blas32.General {
	if w == nil {
		return newGeneral32(r, c)
	}
	return blas32.General{Rows: r, Cols: c, Stride: c, Data: take(&w.bufs32, &w.next32, r*c)}
}

// newJet32 returns the non-constant float32 output jet [3n, d] of a rule
// applied to in, from in's workspace; see newJet.
func newJet32(in *Jet32, n, d int) *Jet32 {
	return &Jet32{N: n, M: in.WS.general32(3*n, d), WS: in.WS}
}

// NewJet32From returns a non-constant float32 jet [3n, d] whose matrix comes
// from ws (a fresh zero matrix when ws is nil) and whose rules will use ws
// too; its elements are unspecified when ws is not nil.
func NewJet32From(n, d int, ws *Workspace) *Jet32 {
	return &Jet32{N: n, M: ws.general32(3*n, d), WS: ws}
}
