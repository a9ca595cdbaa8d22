package certify

import (
	"math"
	"slices"
	"testing"

	"github.com/certify-mli/certify/interval"
)

// TestChooseSplitsNaNSlack: a leaf whose slack is NaN (unknown enclosures)
// is split first and alone (issue 12, cert-5000: it counts as +Inf), and
// the choice does not depend on where the NaN leaf stands; without NaN
// the largest slacks up to half the total are chosen (here the two
// largest of four interior leaves, minBatch 1).
func TestChooseSplitsNaNSlack(t *testing.T) {
	mk := func(in []float64) ([]*Leaf, []float64, []float64) {
		n := len(in)
		ls := make([]*Leaf, n)
		for k := range ls {
			a, b := float64(k)/float64(n), float64(k+1)/float64(n)
			ls[k] = &Leaf{A: a, B: b, DL: interval.I{Lo: -1, Hi: 1}, DLC: interval.I{Lo: -1, Hi: 1}, LA: wholeLine, LB: wholeLine, LC: wholeLine}
		}
		return ls, make([]float64, n), in
	}
	ls, end, in := mk([]float64{0, 1, 5, 4, 0.5, 0})
	if got := chooseSplits(ls, end, in, 0, len(ls)-1, 1e-9, 10, 1); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("finite slacks: split %v, want [2 3]", got)
	}
	for _, k := range []int{1, 3, 4} {
		v := []float64{0, 1, 5, 4, 0.5, 0}
		v[k] = math.NaN()
		ls, end, in := mk(v)
		if got := chooseSplits(ls, end, in, 0, len(ls)-1, 1e-9, 10, 4); !slices.Equal(got, []int{k}) {
			t.Errorf("NaN slack at leaf %d: split %v, want [%d]", k, got, k)
		}
	}
	v := []float64{0, math.NaN(), 5, math.NaN(), 0.5, 0}
	ls, end, in = mk(v)
	if got := chooseSplits(ls, end, in, 0, len(ls)-1, 1e-9, 10, 4); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("two NaN slacks: split %v, want [1 3]", got)
	}
	if got := chooseSplits(ls, end, in, 0, len(ls)-1, 1e-9, 1, 4); len(got) != 1 || (got[0] != 1 && got[0] != 3) {
		t.Errorf("two NaN slacks, budget 1: split %v, want one of them", got)
	}
}
