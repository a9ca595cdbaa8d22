package nn

import (
	"math"
	"testing"

	"github.com/certify-mli/certify/interval"
	"pgregory.net/rapid"
)

// patchRoute is the conv2d interval product of the earlier rule (interval
// patches [N·OH·OW, In·KH·KW], interval.MulNT, transposed back), the
// independent layout MulCols's column route replaces.
func patchRoute(l *Conv2d, x interval.Matrix, w *interval.Weights, scale float64) interval.Matrix {
	return l.unpatch(interval.MulNT(l.patches(x, x.Rows), w, scale), x.Rows)
}

// TestConv2dIntervalJetMatchesPatchRoute: every output of Conv2d.IntervalJet
// (V, D1, D2, DK of order 2 with kinked examples) is the sum of the
// earlier patch route's products (V = W⋆V + b, D1 = ΔW⋆V + W⋆D1 + Δb,
// D2 = 2ΔW⋆D1 + W⋆D2, DK = W⋆DK) up to the rounding of the sums and the
// radius of padded zeros (relative 1e-12 of the magnitudes) and the
// float32 radius products (relative 1e-5 of the width, never narrower): a layout or
// scatter error would move entries by their own size. The inputs hold
// exact points, exact zeros over whole examples (whose outputs must stay
// exactly 0 without a bias) and wide intervals; the chunk size is drawn
// so that several chunks of examples are taken.
func TestConv2dIntervalJetMatchesPatchRoute(t *testing.T) {
	defer func(k int) { convColElems = k }(convColElems)
	rapid.Check(t, func(t *rapid.T) {
		convColElems = rapid.SampledFrom([]int{1, 40, 1 << 20}).Draw(t, "colElems")
		c := drawConv(t)
		l := c.l.(*Conv2d)
		n, d := c.n, l.InSize()
		zeroEx := rapid.IntRange(-1, n-1).Draw(t, "zeroExample")
		draw := func(name string) interval.Matrix {
			m := interval.NewMatrix(n, d)
			for i := 0; i < n; i++ {
				if i == zeroEx {
					continue
				}
				for k := 0; k < d; k++ {
					v := rapid.Float64Range(-3, 3).Draw(t, name)
					r := rapid.SampledFrom([]float64{0, 1e-9, 0.1, 2}).Draw(t, name+"r")
					if rapid.IntRange(0, 4).Draw(t, name+"z") == 0 {
						v, r = 0, 0
					}
					m.Set(i, k, interval.I{Lo: v - r, Hi: v + r})
				}
			}
			return m
		}
		in := &IJet{N: n, D: d, Order: 2, V: draw("v"), D1: draw("d1"), D2: draw("d2"), DK: draw("dk"), Kink: make([]bool, n), Jump: make([]bool, n)}
		for i := range in.Kink {
			in.Kink[i] = i != zeroEx
		}
		al := interval.I{Lo: c.alpha, Hi: c.alpha + rapid.SampledFrom([]float64{0, 1e-3}).Draw(t, "h")}
		box := NewParamBox(c.p0, c.dp, al)
		out := l.IntervalJet(box, in)
		w := interval.NewWeights(l.Out, l.ckk(), box.Mid[0].Data, box.Rad[0].Data)
		dw := interval.NewWeights(l.Out, l.ckk(), box.Delta[0].Data, nil)
		sum := func(ms ...interval.Matrix) interval.Matrix {
			s := ms[0]
			for _, m := range ms[1:] {
				s.AddTo(m)
			}
			return s
		}
		want := map[string]interval.Matrix{
			"V":  patchRoute(l, in.V, w, 1),
			"D1": sum(patchRoute(l, in.V, dw, 1), patchRoute(l, in.D1, w, 1)),
			"D2": sum(patchRoute(l, in.D1, dw, 2), patchRoute(l, in.D2, w, 1)),
			"DK": patchRoute(l, in.DK, w, 1),
		}
		if box.Mid[1] != nil {
			lo, hi := boxRow(l.channelRow(box.Mid[1].Data), l.channelRow(box.Rad[1].Data))
			want["V"].AddRow(lo, hi)
			db := l.channelRow(box.Delta[1].Data)
			want["D1"].AddRow(db, db)
		}
		got := map[string]interval.Matrix{"V": out.V, "D1": out.D1, "D2": out.D2, "DK": out.DK}
		for name, g := range got {
			wm := want[name]
			for q := range g.Lo {
				mag := 1 + math.Abs(wm.Lo[q]) + math.Abs(wm.Hi[q])
				// the column route's radius products are float32
				// (MulCols32): its radii are up to ~1e-5 relative wider
				// than the float64 patch route's, never narrower
				tol := 1e-12*mag + 1e-5*(wm.Hi[q]-wm.Lo[q])
				if math.Abs(g.Lo[q]-wm.Lo[q]) > tol || math.Abs(g.Hi[q]-wm.Hi[q]) > tol ||
					g.Lo[q] > wm.Lo[q]+1e-12*mag || g.Hi[q] < wm.Hi[q]-1e-12*mag {
					t.Fatalf("%s entry %d: column route [%v, %v], patch route [%v, %v]", name, q, g.Lo[q], g.Hi[q], wm.Lo[q], wm.Hi[q])
				}
				if q/l.OutSize() == zeroEx && (name == "D2" || name == "DK" || box.Mid[1] == nil) && (g.Lo[q] != 0 || g.Hi[q] != 0) {
					t.Fatalf("%s entry %d of the all-zero example %d: [%v, %v], want exactly 0", name, q, zeroEx, g.Lo[q], g.Hi[q])
				}
			}
		}
	})
}
