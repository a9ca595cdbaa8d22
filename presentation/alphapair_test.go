package presentation

import (
	"math"
	"testing"
)

// TestAlphaPair: a witness pair prints with the fewest decimals (≥ 4) that
// tell its two α apart, however close they are.
func TestAlphaPair(t *testing.T) {
	third := 2.0 / 3
	for _, c := range []struct {
		a, b   float64
		sa, sb string
	}{
		{0.25, 0.5, "0.2500", "0.5000"},
		{0.374941, 0.374942, "0.374941", "0.374942"},
		{third, math.Nextafter(third, 1), "0.6666666666666666", "0.6666666666666667"},
		{1, 1, "1.0000", "1.0000"},
	} {
		sa, sb := AlphaPair(c.a, c.b)
		if sa != c.sa || sb != c.sb {
			t.Errorf("AlphaPair(%v, %v) = %s, %s; want %s, %s", c.a, c.b, sa, sb, c.sa, c.sb)
		}
	}
}
