package nn

import (
	"math"
	"testing"

	"github.com/certify-mli/certify/interval"
)

// TestIntervalBatchStatsClosedForm: for the reference rows h(α) = (α, 3α²)
// in one feature over α ∈ [α, α] (point jets), the enclosures contain the
// closed forms μ = (α + 3α²)/2, μ̇ = (1 + 6α)/2, μ̈ = 3,
// σ² = ((3α² − α)/2)², σ̇² = 2·((3α²−α)/2)·((6α−1)/2), σ̈² = 2·[((6α−1)/2)² +
// ((3α²−α)/2)·3]; and a kink in one reference row marks every normalised
// row as kinked.
func TestIntervalBatchStatsClosedForm(t *testing.T) {
	for _, al := range []float64{0, 0.25, 0.7, 1} {
		h := []float64{al, 3 * al * al}
		d1 := []float64{1, 6 * al}
		d2 := []float64{0, 6}
		in := &IJet{N: 2, D: 1, Order: 2, V: interval.PointMatrix(2, 1, h), D1: interval.PointMatrix(2, 1, d1), D2: interval.PointMatrix(2, 1, d2), Kink: make([]bool, 2)}
		st := IntervalBatchStats(in)
		s := (3*al*al - al) / 2
		sd := (6*al - 1) / 2
		for _, c := range []struct {
			name string
			got  interval.I
			want float64
		}{
			{"μ", st.Mean[0], (al + 3*al*al) / 2},
			{"μ̇", st.MeanVel[0], (1 + 6*al) / 2},
			{"μ̈", st.MeanAcc[0], 3},
			{"σ²", st.Var[0], s * s},
			{"σ̇²", st.VarVel[0], 2 * s * sd},
			{"σ̈²", st.VarAcc[0], 2 * (sd*sd + s*3)},
		} {
			if tol := 1e-14 * (1 + math.Abs(c.want)); c.got.Lo > c.want+tol || c.got.Hi < c.want-tol || c.got.Width() > 1e-12 {
				t.Errorf("α = %v: %s = %v, enclosure [%v, %v]", al, c.name, c.want, c.got.Lo, c.got.Hi)
			}
		}
		if st.Kink || st.Var[0].Lo < 0 {
			t.Errorf("α = %v: kink %v, σ² ⊆ [%v, %v]", al, st.Kink, st.Var[0].Lo, st.Var[0].Hi)
		}
		in.Kink[1] = true
		st = IntervalBatchStats(in)
		b := &BatchNorm{Features: 1, Eps: 1e-5}
		one := []*Tensor{{Shape: []int{1}, Data: []float64{1}}, {Shape: []int{1}, Data: []float64{0}}, {Shape: []int{1}, Data: []float64{0}}, {Shape: []int{1}, Data: []float64{1}}}
		zero := []*Tensor{{Shape: []int{1}, Data: []float64{0}}, {Shape: []int{1}, Data: []float64{0}}, {Shape: []int{1}, Data: []float64{0}}, {Shape: []int{1}, Data: []float64{0}}}
		x := &IJet{N: 1, D: 1, Order: 2, V: interval.PointMatrix(1, 1, h[:1]), D1: interval.PointMatrix(1, 1, d1[:1]), D2: interval.PointMatrix(1, 1, d2[:1]), Kink: make([]bool, 1)}
		out := b.IntervalJetStats(NewParamBox(one, zero, interval.Point(al)), st, x)
		if !st.Kink || !out.Kink[0] {
			t.Errorf("α = %v: a reference kink did not mark the row (stats %v, row %v)", al, st.Kink, out.Kink[0])
		}
	}
}
