package nn

import (
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/num/hyperdual"
	"pgregory.net/rapid"
)

// drawPool draws a pooling layer of type typ with its hyperdual reference.
func drawPool(t *rapid.T, typ string) *imgCase {
	in, n := drawImage(t)
	c := drawPoolOn(t, typ, in, n)
	drawInputs(t, c)
	if typ == "maxpool2d" {
		// distinct values 0.37 apart (shuffled), moving by at most 0.16
		// over α ∈ [0, 1]: no two inputs tie, where max is not
		// differentiable (TestMaxPoolTieAndKink covers ties)
		ranks := make([]int, len(c.a))
		for q := range ranks {
			ranks[q] = q
		}
		ranks = rapid.Permutation(ranks).Draw(t, "ranks")
		for q := range c.a {
			c.a[q] = 0.37*float64(ranks[q]) + 1e-3*c.a[q]
			c.b[q] *= 0.04
			c.c[q] *= 0.04
		}
	}
	return c
}

// drawPoolOn draws a pooling layer of type typ on inputs of shape in with
// its hyperdual reference (no inputs).
func drawPoolOn(t *rapid.T, typ string, in []int, n int) *imgCase {
	var ls LayerSpec
	if typ == "adaptive_avgpool2d" {
		ls = LayerSpec{Type: typ, Output: IntPair{rapid.IntRange(1, 4).Draw(t, "oh"), rapid.IntRange(1, 4).Draw(t, "ow")}}
	} else {
		kh := rapid.IntRange(1, min(3, in[1])).Draw(t, "kh")
		kw := rapid.IntRange(1, min(3, in[2])).Draw(t, "kw")
		ls = LayerSpec{Type: typ, Kernel: IntPair{kh, kw}, Padding: IntPair{rapid.IntRange(0, min(kh, kw)/2).Draw(t, "padding")}}
		if rapid.Bool().Draw(t, "stride") {
			ls.Stride = IntPair{rapid.IntRange(1, 2).Draw(t, "s")}
		}
	}
	l, _, err := BuildLayer(ls, in)
	if err != nil {
		t.Fatalf("build %+v on %v: %v", ls, in, err)
	}
	var g *pool2d
	switch p := l.(type) {
	case *MaxPool2d:
		g = &p.pool2d
	case *AvgPool2d:
		g = &p.pool2d
	case *AdaptiveAvgPool2d:
		g = &p.pool2d
	}
	c := &imgCase{l: l, n: n}
	oq := g.OH * g.OW
	c.ref = func(_ [][]hd, x [][]hd) [][]hd {
		out := make([][]hd, len(x))
		for e := range x {
			out[e] = make([]hd, l.OutSize())
			for ch := 0; ch < g.C; ch++ {
				for q := 0; q < oq; q++ {
					var s hd
					first := true
					for h := g.H0[q]; h < g.H1[q]; h++ {
						for w := g.W0[q]; w < g.W1[q]; w++ {
							v := x[e][(ch*g.H+h)*g.W+w]
							switch {
							case typ != "maxpool2d":
								s = hyperdual.Add(s, v)
							case first || v.Real > s.Real || (v.Real == s.Real && (v.E1mag > s.E1mag || (v.E1mag == s.E1mag && v.E1E2mag > s.E1E2mag))):
								s = v
							}
							first = false
						}
					}
					if typ != "maxpool2d" {
						s = hyperdual.Scale(1/g.Div[q], s)
					}
					out[e][ch*oq+q] = s
				}
			}
		}
		return out
	}
	return c
}

var poolTypes = []string{"maxpool2d", "avgpool2d", "adaptive_avgpool2d"}

// TestPoolJetMatchesHyperdual: the pools' Jet agrees with a hyperdual
// reference (max-pool: the lexicographic (value, velocity, acceleration)
// arg-max); Jet32 agrees with Jet.
func TestPoolJetMatchesHyperdual(t *testing.T) {
	for _, typ := range poolTypes {
		t.Run(typ, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) { checkHyperdual(t, drawPool(t, typ)) })
		})
	}
}

// TestPoolBackwardFiniteDifferences: Backward against central differences.
func TestPoolBackwardFiniteDifferences(t *testing.T) {
	for _, typ := range poolTypes {
		t.Run(typ, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) { checkBackward(t, drawPool(t, typ)) })
		})
	}
}

// TestPoolIntervalJetEncloses: the interval rules contain the point jets.
func TestPoolIntervalJetEncloses(t *testing.T) {
	for _, typ := range poolTypes {
		t.Run(typ, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) { checkInterval(t, drawPool(t, typ), rapid.Bool().Draw(t, "const")) })
		})
	}
}

// TestMaxPoolTieAndKink: two inputs of equal value: the jet follows the one
// with the larger velocity (the right-derivative), and the interval rule
// marks the example as possibly kinked when two candidates overlap.
func TestMaxPoolTieAndKink(t *testing.T) {
	l, _, err := BuildLayer(LayerSpec{Type: "maxpool2d", Kernel: IntPair{1, 2}}, []int{1, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	// x0(α) = 1 + α·0, x1(α) = 1 + α·1 at α = 0: tie, x1 rises
	in := &Jet{N: 1, M: mat.NewDense(3, 2, []float64{1, 1, 0, 1, 5, -3})}
	j := l.Jet(nil, nil, in)
	if got := []float64{j.M.At(0, 0), j.M.At(1, 0), j.M.At(2, 0)}; got[0] != 1 || got[1] != 1 || got[2] != -3 {
		t.Errorf("tie: jet %v, want the rising input's (1, 1, -3)", got)
	}
	c := &imgCase{l: l, n: 1, a: []float64{1, 0.5}, b: []float64{0, 1}, c: []float64{0, 0}}
	ij := l.(*MaxPool2d).IntervalJet(nil, &IJet{N: 1, D: 2, Order: 1, V: intervalPath(c, 0, 1), D1: intervalPath(&imgCase{a: c.b, b: []float64{0, 0}, c: []float64{0, 0}, n: 1}, 0, 1), Kink: []bool{false}})
	if !ij.Kink[0] {
		t.Errorf("x1 = 0.5 + α crosses x0 = 1 at α = 0.5: want Kink on [0, 1]")
	}
	ij = l.(*MaxPool2d).IntervalJet(nil, &IJet{N: 1, D: 2, Order: 1, V: intervalPath(c, 0, 0.25), D1: intervalPath(&imgCase{a: c.b, b: []float64{0, 0}, c: []float64{0, 0}, n: 1}, 0, 0.25), Kink: []bool{false}})
	if ij.Kink[0] {
		t.Errorf("on [0, 0.25] x0 stays the maximum: want no Kink")
	}
}
