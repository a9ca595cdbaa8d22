package interval

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestArithmeticAgainstBig (issue 18): Add, Sub, Mul, Scale, AddF, Sqr,
// Cube, Recip and Div of point intervals hold the exact result, computed in
// math/big (sums and products of float64 are exact at 2200 bits; a quotient
// q = a/b is checked as lo·b ≤ a ≤ hi·b, exact), on 10,000 random operand
// pairs per operation drawn over the whole exponent range (including
// subnormals, zeros and signs).
func TestArithmeticAgainstBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 1))
	draw := func() float64 {
		switch rng.IntN(10) {
		case 0:
			return 0
		case 1: // subnormal
			return math.Float64frombits(rng.Uint64()&(1<<52-1)) * float64(1-2*rng.IntN(2))
		}
		return math.Ldexp(1+rng.Float64(), rng.IntN(600)-300) * float64(1-2*rng.IntN(2))
	}
	exact := func(v float64) *big.Float { return new(big.Float).SetPrec(2200).SetFloat64(v) }
	holds := func(r I, v *big.Float) bool {
		return !math.IsNaN(r.Lo) && !math.IsNaN(r.Hi) && exact(r.Lo).Cmp(v) <= 0 && v.Cmp(exact(r.Hi)) <= 0
	}
	for k := 0; k < 10000; k++ {
		a, b := draw(), draw()
		ea, eb := exact(a), exact(b)
		sum := new(big.Float).SetPrec(2200).Add(ea, eb)
		dif := new(big.Float).SetPrec(2200).Sub(ea, eb)
		prod := new(big.Float).SetPrec(2200).Mul(ea, eb)
		sq := new(big.Float).SetPrec(2200).Mul(ea, ea)
		cube := new(big.Float).SetPrec(2200).Mul(sq, ea)
		for name, c := range map[string]struct {
			r I
			v *big.Float
		}{
			"add": {Add(Point(a), Point(b)), sum}, "sub": {Sub(Point(a), Point(b)), dif},
			"mul": {Mul(Point(a), Point(b)), prod}, "scale": {Scale(a, Point(b)), prod},
			"addf": {AddF(Point(a), b), sum}, "sqr": {Sqr(Point(a)), sq}, "cube": {Cube(Point(a)), cube},
		} {
			if !holds(c.r, c.v) {
				t.Fatalf("%s(%v, %v) = %v misses %s", name, a, b, c.r, c.v.Text('g', 30))
			}
		}
		if b == 0 {
			continue
		}
		// q ∈ [lo, hi] iff lo·b ≤ a ≤ hi·b for b > 0 (reversed for b < 0)
		for name, r := range map[string]I{"div": Div(Point(a), Point(b)), "recip": Recip(Point(b))} {
			num := ea
			if name == "recip" {
				num = exact(1)
			}
			lo := new(big.Float).SetPrec(2200).Mul(exact(r.Lo), eb)
			hi := new(big.Float).SetPrec(2200).Mul(exact(r.Hi), eb)
			if b < 0 {
				lo, hi = hi, lo
			}
			if math.IsInf(r.Lo, 0) || math.IsInf(r.Hi, 0) {
				continue // an infinite bound holds anything (overflow)
			}
			if lo.Cmp(num) > 0 || num.Cmp(hi) > 0 {
				t.Fatalf("%s(%v, %v) = %v misses the quotient", name, a, b, r)
			}
		}
	}
}
