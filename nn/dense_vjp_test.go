package nn

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
)

// denseVJPReference is Dense.IntervalVJP as it was before its transposed
// Weights were cached on the box: Wᵀ's midpoint and radius transposed and
// prepared for interval.MulNT on every call.
func denseVJPReference(d *Dense, p *ParamBox, g interval.Matrix) interval.Matrix {
	wt := interval.NewWeights(d.In, d.Out, transposed(p.Mid[0].Data, d.Out, d.In), transposed(p.Rad[0].Data, d.Out, d.In))
	return interval.MulNT(g, wt, 1)
}

// sameMatrix reports whether a and b are bit for bit equal (NaN payloads
// aside, NaN equal to NaN).
func sameMatrix(a, b interval.Matrix) bool {
	if a.Rows != b.Rows || a.Cols != b.Cols || len(a.Lo) != len(b.Lo) {
		return false
	}
	eq := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) || (x != x && y != y) }
	for k := range a.Lo {
		if !eq(a.Lo[k], b.Lo[k]) || !eq(a.Hi[k], b.Hi[k]) {
			return false
		}
	}
	return true
}

// TestDenseIntervalVJPCachedOnBox: Dense.IntervalVJP is bit for bit the
// product with Wᵀ transposed afresh (denseVJPReference), on the first call
// with a box and on later calls (other chunks' gradients) that reuse the
// box's cached Wᵀ, for boxes from NewParamBox and literal boxes (no
// cache), on random layers whose entries span 40 binades with point and
// interval gradients. And it builds Wᵀ once per box: after the first call,
// overwriting the box's Mid and Rad does not change a later product (the
// box's tensors are fixed once built; the Weights made from them are kept,
// as BoxWeights keeps the forward's). Transposing on every call fails the
// second part.
func TestDenseIntervalVJPCachedOnBox(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in, out := rapid.IntRange(1, 7).Draw(t, "in"), rapid.IntRange(1, 6).Draw(t, "out")
		val := func(name string) float64 {
			return rapid.Float64Range(-1, 1).Draw(t, name) * pow2(rapid.IntRange(-30, 10).Draw(t, name+"e"))
		}
		d := &Dense{In: in, Out: out, HasBias: true}
		w0, dw, b0, db := NewTensor(out, in), NewTensor(out, in), NewTensor(out), NewTensor(out)
		for k := range w0.Data {
			w0.Data[k], dw.Data[k] = val("w0"), val("dw")
		}
		a := rapid.Float64Range(0, 1).Draw(t, "a")
		al := interval.I{Lo: a, Hi: a + rapid.SampledFrom([]float64{0, 1e-9, 1e-3, 0.5}).Draw(t, "w")}
		box := NewParamBox([]*Tensor{w0, b0}, []*Tensor{dw, db}, al)
		literal := &ParamBox{Alpha: box.Alpha, Theta0: box.Theta0, Delta: box.Delta, Mid: box.Mid, Rad: box.Rad}
		grads := make([]interval.Matrix, rapid.IntRange(1, 4).Draw(t, "chunks"))
		for c := range grads {
			n := rapid.IntRange(1, 5).Draw(t, "n")
			g := interval.NewMatrix(n, out)
			point := rapid.Bool().Draw(t, "point")
			for k := range g.Lo {
				lo := val("g")
				g.Lo[k], g.Hi[k] = lo, lo
				if !point {
					g.Hi[k] = lo + rapid.SampledFrom([]float64{0, 1e-12, 1e-3, 1}).Draw(t, "gw")
				}
			}
			grads[c] = g
		}
		for c, g := range grads {
			want := denseVJPReference(d, box, g)
			for _, p := range []*ParamBox{box, literal} {
				got, dk, err := d.IntervalVJP(p, nil, g)
				if err != nil || dk != nil || !sameMatrix(got, want) {
					t.Fatalf("chunk %d (box cached %v): IntervalVJP %v (dk %v, err %v), want %v", c, p.own != nil, got, dk, err, want)
				}
			}
		}
		// the box's Wᵀ was built once: later products read it, not Mid and Rad
		want := denseVJPReference(d, box, grads[0])
		mid, rad := append([]float64(nil), box.Mid[0].Data...), append([]float64(nil), box.Rad[0].Data...)
		for k := range box.Mid[0].Data {
			box.Mid[0].Data[k], box.Rad[0].Data[k] = 3, 0
		}
		got, _, _ := d.IntervalVJP(box, nil, grads[0])
		copy(box.Mid[0].Data, mid)
		copy(box.Rad[0].Data, rad)
		if !sameMatrix(got, want) {
			t.Fatalf("the second call on a box rebuilt Wᵀ from its tensors: %v, want the cached %v", got, want)
		}
	})
}

// BenchmarkDenseIntervalVJP is the backward interval pass through a
// 1024-wide Dense layer (the benchmark network's second layer) for one
// leaf of 4 chunks of 64 examples: "fresh" transposes and prepares Wᵀ on
// every chunk (a literal box, as every call did before boxWeightsT),
// "box" once per leaf (NewParamBox's cache). Compare the two's ns/op
// (or CPU) as a ratio; the products are bit for bit the same
// (TestDenseIntervalVJPCachedOnBox).
func BenchmarkDenseIntervalVJP(b *testing.B) {
	const width, chunks, rows = 1024, 4, 64
	d := &Dense{In: width, Out: width, HasBias: true}
	w0, dw, b0, db := NewTensor(width, width), NewTensor(width, width), NewTensor(width), NewTensor(width)
	for k := range w0.Data {
		w0.Data[k], dw.Data[k] = math.Sin(float64(k)), 0.1*math.Cos(float64(3*k))
	}
	g := interval.NewMatrix(rows, width)
	for k := range g.Lo {
		g.Lo[k] = math.Sin(0.7 * float64(k))
		g.Hi[k] = g.Lo[k] + 1e-3
	}
	al := interval.I{Lo: 0.25, Hi: 0.25 + 1.0/64}
	for _, c := range []struct {
		name   string
		cached bool
	}{{"fresh", false}, {"box", true}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				box := NewParamBox([]*Tensor{w0, b0}, []*Tensor{dw, db}, al) // one leaf's box, built by its first chunk
				if !c.cached {
					box = &ParamBox{Alpha: box.Alpha, Theta0: box.Theta0, Delta: box.Delta, Mid: box.Mid, Rad: box.Rad}
				}
				b.StartTimer()
				for k := 0; k < chunks; k++ {
					if _, _, err := d.IntervalVJP(box, nil, g); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
