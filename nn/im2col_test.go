package nn

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"pgregory.net/rapid"
)

// im2colNaive is im2col's definition element by element (the loop im2col
// replaced): x[c, i·SH−PH+u, j·SW−PW+v], 0 outside the image.
func im2colNaive(l *Conv2d, x, col []float64, ld, off int) {
	for c := 0; c < l.In; c++ {
		for u := 0; u < l.KH; u++ {
			for v := 0; v < l.KW; v++ {
				r := (c*l.KH+u)*l.KW + v
				for i := 0; i < l.OH; i++ {
					for j := 0; j < l.OW; j++ {
						ih, iw := i*l.SH-l.PH+u, j*l.SW-l.PW+v
						val := 0.0
						if ih >= 0 && ih < l.H && iw >= 0 && iw < l.W {
							val = x[(c*l.H+ih)*l.W+iw]
						}
						col[r*ld+off+i*l.OW+j] = val
					}
				}
			}
		}
	}
}

// TestIm2colIsElementwise: im2col (row ranges, contiguous copies at
// stride 1) writes exactly the naive patches, padding and stride up to 3
// included, at an offset inside a wider matrix whose other columns it
// leaves alone.
func TestIm2colIsElementwise(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := []int{rapid.IntRange(1, 3).Draw(t, "C"), rapid.IntRange(1, 9).Draw(t, "H"), rapid.IntRange(1, 9).Draw(t, "W")}
		ph, pw := rapid.IntRange(0, 3).Draw(t, "ph"), rapid.IntRange(0, 3).Draw(t, "pw")
		kh := rapid.IntRange(1, in[1]+2*ph).Draw(t, "kh")
		kw := rapid.IntRange(1, in[2]+2*pw).Draw(t, "kw")
		ls := LayerSpec{Type: "conv2d", In: in[0], Out: 1, Kernel: IntPair{kh, kw},
			Stride: IntPair{rapid.IntRange(1, 3).Draw(t, "sh"), rapid.IntRange(1, 3).Draw(t, "sw")}, Padding: IntPair{ph, pw}}
		ly, _, err := BuildLayer(ls, in)
		if err != nil {
			t.Fatalf("build %+v on %v: %v", ls, in, err)
		}
		l := ly.(*Conv2d)
		x := rapid.SliceOfN(rapid.Float64Range(1, 2), l.InSize(), l.InSize()).Draw(t, "x")
		extra := rapid.IntRange(0, 2).Draw(t, "extra")
		ld := l.ohw() * (1 + extra)
		off := l.ohw() * rapid.IntRange(0, extra).Draw(t, "block")
		got, want := make([]float64, l.ckk()*ld), make([]float64, l.ckk()*ld)
		for i := range got {
			got[i], want[i] = -7, -7
		}
		im2col(l, x, got, ld, off)
		im2colNaive(l, x, want, ld, off)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%+v: element %d (row %d, column %d): %v, want %v", *l, i, i/ld, i%ld, got[i], want[i])
			}
		}
	})
}

// TestConv2dJetChunksAgree: convJet on one example per pass (the chunking
// of the resnet's wide layers) gives bit for bit the jet of one pass over
// the whole batch, for moving and constant inputs, in float64 and
// float32 (TestConv2dJetMatchesHyperdual checks the one-pass jet).
func TestConv2dJetChunksAgree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := drawConv(t)
		c.n = len(c.a) / c.l.InSize()
		in := c.inJet(c.alpha)
		if rapid.Bool().Draw(t, "constInput") {
			in = &Jet{N: c.n, M: mat.DenseCopyOf(in.Value()), Const: true}
		}
		p := c.at(c.alpha)
		run := func(elems int) (*Jet, *Jet32) {
			defer func(v int) { convJetColElems = v }(convJetColElems)
			convJetColElems = elems
			return c.l.Jet(p, c.dp, in), c.l.(Jet32Layer).Jet32(RoundTensors(p), RoundTensors(c.dp), RoundJet(in))
		}
		whole, whole32 := run(1 << 30)
		one, one32 := run(1)
		if i := sameBits(one.M.RawMatrix().Data, whole.M.RawMatrix().Data); i >= 0 {
			t.Fatalf("float64 element %d: one example per pass %v, all at once %v", i, one.M.RawMatrix().Data[i], whole.M.RawMatrix().Data[i])
		}
		for i, v := range one32.M.Data {
			if math.Float32bits(v) != math.Float32bits(whole32.M.Data[i]) {
				t.Fatalf("float32 element %d: one example per pass %v, all at once %v", i, v, whole32.M.Data[i])
			}
		}
	})
}
