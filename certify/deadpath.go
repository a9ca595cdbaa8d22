package certify

import (
	"strconv"
	"strings"

	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// deadApplies reports whether a dead first ReLU makes the loss constant
// (issue 12, dead networks and flat tails): the first ReLU follows the
// cached affine layer (patternsApply), and δ = 0 exactly in every tensor
// the path moves other than the cached layer's (BatchNorm buffers
// included), so where every unit of that ReLU is at 0 the output is the
// rest of the network applied to 0 with fixed parameters, whatever α.
func (e *IntervalPath) deadApplies() bool {
	if !e.patternsApply() {
		return false
	}
	own := strconv.Itoa(e.start-1) + "."
	for k, t := range e.p.Delta {
		if strings.HasPrefix(k, own) {
			continue
		}
		for _, v := range t.Data {
			if v != 0 {
				return false
			}
		}
	}
	return true
}

// deadLosses encloses, for chunk c, each example's loss with the first
// ReLU's output exactly 0 (the constant value of ℓ_i wherever the example
// is dead; deadApplies), and its derivative, exactly 0.
func (e *IntervalPath) deadLosses(c int) []interval.I {
	ch := e.chunks[c]
	n, m := ch[1]-ch[0], e.a[c].Cols
	j := &nn.IJet{N: n, D: m, Order: 1, V: interval.NewMatrix(n, m), D1: interval.NewMatrix(n, m), Kink: make([]bool, n), Jump: make([]bool, n)}
	bs := e.boxes(interval.Point(0))
	for i := e.start + 1; i < len(e.layers); i++ {
		j = e.layers[i].IntervalJet(bs[i], j)
	}
	l, _, _ := nn.LossEnclosure(e.p.Model.Spec.Loss, j, e.p.Targets.Rows(ch[0], ch[1]))
	return l
}

// deadRows marks the rows of chunk c dead on all of [a, b]: every
// pre-activation of the first ReLU, z = A + αB, is ≤ 0 over [a, b]
// (enclosed); it returns how many.
func (e *IntervalPath) deadRows(c int, a, b float64) ([]bool, int) {
	A, B := e.a[c], e.b[c]
	n, m := A.Rows, A.Cols
	ab := interval.I{Lo: a, Hi: b}
	dead := make([]bool, n)
	count := 0
	for i := 0; i < n; i++ {
		if e.kink0[c] != nil && e.kink0[c][i] {
			continue
		}
		d := true
		for k := i * m; k < (i+1)*m && d; k++ {
			v := interval.Mul(ab, interval.I{Lo: B.Lo[k], Hi: B.Hi[k]})
			d = interval.Up(A.Hi[k]+v.Hi) <= 0
		}
		if d {
			dead[i] = true
			count++
		}
	}
	return dead, count
}

// deadLine reports whether every example is dead on all of [0, 1] with
// nothing after the first ReLU moving (deadApplies): L is then constant.
func (e *IntervalPath) deadLine() bool {
	if e.dead == nil {
		return false
	}
	for c := range e.chunks {
		if _, k := e.deadRows(c, 0, 1); k != e.chunks[c][1]-e.chunks[c][0] {
			return false
		}
	}
	return true
}
