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
	busy   []bool      // busy[i]: bufs[i] is handed out (until Reset or Release)
	bufs32 [][]float32 // the float32 passes' matrices (Jet32), handed out the same way
	busy32 []bool
}

// Reset makes every matrix handed out so far available again.
func (w *Workspace) Reset() {
	clear(w.busy)
	clear(w.busy32)
}

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
	return mat.NewDense(r, c, take(&w.bufs, &w.busy, r*c))
}

// take hands out a free buffer of *bufs with length n: the smallest free
// one that holds n elements, else the largest free one grown to n, else a
// new one; its elements are whatever an earlier use left. Which buffer is
// handed out cannot change a result: every rule writes each element of
// its matrices before reading it (TestWorkspaceJetsMatchFreshOnes).
func take[T float32 | float64](bufs *[][]T, busy *[]bool, n int) []T {
	fit, big := -1, -1
	for i, b := range *bufs {
		if (*busy)[i] {
			continue
		}
		if cap(b) >= n && (fit < 0 || cap(b) < cap((*bufs)[fit])) {
			fit = i
		}
		if big < 0 || cap(b) > cap((*bufs)[big]) {
			big = i
		}
	}
	switch {
	case fit >= 0:
	case big >= 0:
		fit = big
		(*bufs)[fit] = make([]T, n)
	default:
		fit = len(*bufs)
		*bufs = append(*bufs, make([]T, n))
		*busy = append(*busy, false)
	}
	(*busy)[fit] = true
	return (*bufs)[fit][:n]
}

// sameArray reports whether slices a and b share their backing array (the
// last element of their capacities is the same element): a matrix and any
// view of it, as gonum slices them, do.
func sameArray[T float32 | float64](a, b []T) bool {
	if cap(a) == 0 || cap(b) == 0 {
		return false
	}
	return &a[:cap(a)][cap(a)-1] == &b[:cap(b)][cap(b)-1]
}

// release marks the buffer of *bufs that holds data as free before the
// next Reset, unless keep (any number of slices still in use) shares its
// backing array; data not from the workspace (a caller's input, a freshly
// allocated matrix) is left alone. The caller must not read data again.
func release[T float32 | float64](bufs [][]T, busy []bool, data []T, keep ...[]T) {
	for _, k := range keep {
		if sameArray(data, k) {
			return
		}
	}
	for i, b := range bufs {
		if busy[i] && sameArray(b, data) {
			busy[i] = false
			return
		}
	}
}

// Release makes the matrix of jet dead available again before the next
// Reset, unless one of the jets keep shares it (an identity layer returns
// its input): the second-order passes release each jet once the next layer
// has consumed it, so that a deep network's pass holds a few jets, not one
// per layer (issue 13: a resnet-20's chunk of 1000 examples would hold
// ~70 jets of 300 MB). A nil workspace, a nil jet and a jet whose matrix
// the workspace did not hand out are no-ops. dead must not be read again.
func (w *Workspace) Release(dead *Jet, keep ...*Jet) {
	if w == nil || dead == nil || dead.M == nil {
		return
	}
	ks := make([][]float64, 0, len(keep))
	for _, k := range keep {
		if k != nil && k.M != nil {
			ks = append(ks, k.M.RawMatrix().Data)
		}
	}
	release(w.bufs, w.busy, dead.M.RawMatrix().Data, ks...)
}

// Release32 is Release for float32 jets.
func (w *Workspace) Release32(dead *Jet32, keep ...*Jet32) {
	if w == nil || dead == nil {
		return
	}
	ks := make([][]float32, 0, len(keep))
	for _, k := range keep {
		if k != nil {
			ks = append(ks, k.M.Data)
		}
	}
	release(w.bufs32, w.busy32, dead.M.Data, ks...)
}

// releaseData frees a scratch buffer handed out by matrix (Conv2d's
// columns and products).
func (w *Workspace) releaseData(data []float64) {
	if w != nil {
		release(w.bufs, w.busy, data)
	}
}

// releaseData32 is releaseData in float32.
func (w *Workspace) releaseData32(data []float32) {
	if w != nil {
		release(w.bufs32, w.busy32, data)
	}
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
	return blas32.General{Rows: r, Cols: c, Stride: c, Data: take(&w.bufs32, &w.busy32, r*c)}
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
