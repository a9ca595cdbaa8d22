package interval

import (
	"math/rand/v2"
	"testing"
)

// benchIntervals returns n random intervals of mixed signs (a third
// straddle 0), the shapes the certificate's leaf passes multiply.
func benchIntervals(n int, seed uint64) []I {
	r := rand.New(rand.NewPCG(seed, 1))
	xs := make([]I, n)
	for i := range xs {
		c, w := r.NormFloat64(), r.Float64()*0.5
		xs[i] = I{c - w, c + w}
	}
	return xs
}

// BenchmarkMul is the general (mixed-sign) interval product, four products
// and six min/max.
func BenchmarkMul(b *testing.B) {
	xs, ys := benchIntervals(4096, 1), benchIntervals(4096, 2)
	var s I
	for b.Loop() {
		for i := range xs {
			r := Mul(xs[i], ys[i])
			s.Lo += r.Lo
			s.Hi += r.Hi
		}
	}
	sink = s
}

// BenchmarkHullSqr is Hull and Sqr, the ReLU rule's and the loss
// enclosure's other min/max users.
func BenchmarkHullSqr(b *testing.B) {
	xs, ys := benchIntervals(4096, 3), benchIntervals(4096, 4)
	var s I
	for b.Loop() {
		for i := range xs {
			r := Hull(Sqr(xs[i]), ys[i])
			s.Lo += r.Lo
			s.Hi += r.Hi
		}
	}
	sink = s
}

// BenchmarkMidRad is the midpoint–radius conversion of MulNT's interval operand.
func BenchmarkMidRad(b *testing.B) {
	xs := benchIntervals(64*1024, 5)
	m := NewMatrix(64, 1024)
	for i, x := range xs {
		m.Lo[i], m.Hi[i] = x.Lo, x.Hi
	}
	mid, rad := make([]float64, len(xs)), make([]float64, len(xs))
	for b.Loop() {
		m.MidRad(mid, rad)
	}
}

var sink I
