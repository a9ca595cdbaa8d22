package certify

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
)

// TestCentredPassInsideBlocks: the centred forms applied after every
// sub-layer of a residual block (nn.Residual.IntervalJetHook, centredPass)
// keep enclosures: on random small ResNets (randomConvResidualPath, both
// BatchNorm policies) and a random leaf of random width, on all
// rows or a random subset of them, every example's enclosures of ℓ_i and
// ℓ_i′ over the leaf contain functionspace's dense float64 ℓ_i(α), ℓ_i′(α)
// at random α of the leaf and at its ends, and the midpoint's point
// enclosures contain them at the midpoint.
func TestCentredPassInsideBlocks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := randomConvResidualPath(t)
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		a := rapid.Float64Range(0, 0.9).Draw(t, "a")
		w := rapid.SampledFrom([]float64{1e-7, 1e-4, 1e-2, 0.1}).Draw(t, "width")
		b := a + w
		mid := 0.5*a + 0.5*b
		ab := interval.I{Lo: a, Hi: b}
		c := rapid.IntRange(0, len(e.chunks)-1).Draw(t, "chunk")
		ch := e.chunks[c]
		var rows []int32
		if rapid.Bool().Draw(t, "subset") {
			for i := 0; i < ch[1]-ch[0]; i++ {
				if rapid.Bool().Draw(t, "row") {
					rows = append(rows, int32(i))
				}
			}
			if len(rows) == 0 {
				rows = []int32{0}
			}
		}
		l, dl, _, _, jump, lc, dlc := e.centredPass(c, ab, mid, e.boxes(ab), e.boxes(interval.Point(mid)), rows)
		check := func(what string, al float64, enc []interval.I, sub bool, val func(s []float64, i int) float64) {
			s := p.At(al)
			n := ch[1] - ch[0]
			if sub && rows != nil {
				n = len(rows)
			}
			for q := 0; q < n; q++ {
				i := q
				if sub && rows != nil {
					i = int(rows[q])
				}
				if sub && jump[q] {
					continue
				}
				v := val(s.ExampleLoss, ch[0]+i)
				if what != "ℓ" {
					v = val(s.ExampleDLoss, ch[0]+i)
				}
				sl := 1e-9 * (1 + math.Abs(v))
				if v < enc[q].Lo-sl || v > enc[q].Hi+sl {
					t.Fatalf("example %d: %s(%v) = %v outside [%v, %v] (leaf [%v, %v])", ch[0]+i, what, al, v, enc[q].Lo, enc[q].Hi, a, b)
				}
			}
		}
		get := func(s []float64, i int) float64 { return s[i] }
		for _, al := range []float64{a, b, a + w*rapid.Float64Range(0, 1).Draw(t, "u1"), a + w*rapid.Float64Range(0, 1).Draw(t, "u2")} {
			al = math.Min(math.Max(al, a), b)
			check("ℓ", al, l, true, get)
			check("ℓ′", al, dl, true, get)
		}
		check("ℓ", mid, lc, false, get)
		check("ℓ′", mid, dlc, false, get)
	})
}
