package optim

import "math"

// powInt returns b^n for n ≥ 0, correctly rounded except in cases within about 2⁻¹⁰⁰
// relative of a rounding boundary. PyTorch computes the bias corrections 1 − βᵗ as
// Python floats, beta ** step, which uses the C library's pow (glibc's is within
// about 0.52 ulp, so correctly rounded but for rare near-halfway cases; 4 of 7790
// (β, t) pairs checked, all at t ≥ 19 with β < 0.3); Go's math.Pow multiplies repeatedly for integer exponents and can be off
// by an ulp or two (0.9⁴ = 0.6561000000000001 instead of 0.6561), which would make
// trajectories drift from PyTorch's in the last bits. Exponentiation by squaring in
// double-double arithmetic (error-free products via FMA) avoids that.
func powInt(b float64, n int) float64 {
	if n == 0 {
		return 1
	}
	if b == 0 || math.IsNaN(b) || math.IsInf(b, 0) {
		return math.Pow(b, float64(n))
	}
	n0 := n
	rh, rl := 1.0, 0.0 // result
	xh, xl := b, 0.0   // b^(2^k)
	for {
		if n&1 == 1 {
			rh, rl = ddMul(rh, rl, xh, xl)
		}
		n >>= 1
		if n == 0 {
			break
		}
		xh, xl = ddMul(xh, xl, xh, xl)
		if xh == 0 || math.IsInf(xh, 0) {
			return math.Pow(b, float64(n0)) // over/underflow: let math.Pow saturate
		}
	}
	return rh + rl
}

// ddMul multiplies two double-double numbers (ah + al)(bh + bl), returning a
// normalised double-double.
func ddMul(ah, al, bh, bl float64) (float64, float64) {
	p := ah * bh
	e := math.FMA(ah, bh, -p)
	e += ah*bl + al*bh
	h := p + e
	return h, e - (h - p)
}
