package nn

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// AdaptiveAvgPool2d is PyTorch's nn.AdaptiveAvgPool2d(output) on flat
// batches [N, C·H·W] (RUN_FORMAT.md "adaptive_avgpool2d", THEORY.md §9):
// output (i, j) of [C, OH, OW] averages input rows [⌊iH/OH⌋, ⌈(i+1)H/OH⌉)
// and columns [⌊jW/OW⌋, ⌈(j+1)W/OW⌉) (PyTorch's start_index/end_index);
// output 1 is global average pooling. Linear, no parameters.
type AdaptiveAvgPool2d struct {
	pool2d
}

func init() {
	registerLayer("adaptive_avgpool2d", []string{"output!"}, func(ls LayerSpec, width int) (Layer, error) {
		in := ls.InShape()
		if err := ls.checkPairs("adaptive_avgpool2d"); err != nil {
			return nil, err
		}
		if len(in) != 3 {
			return nil, fmt.Errorf("adaptive_avgpool2d: needs an image input [C, H, W], found input shape %s", ShapeString(in))
		}
		if len(ls.Output) == 0 {
			return nil, fmt.Errorf("adaptive_avgpool2d: output: missing")
		}
		oh, ow := ls.Output.HW(0)
		if oh <= 0 || ow <= 0 {
			return nil, fmt.Errorf("adaptive_avgpool2d: output: want positive sizes, found [%d, %d] (input %s)", oh, ow, ShapeString(in))
		}
		if err := checkExampleShape([]int{in[0], oh, ow}); err != nil { // before the window table of oh·ow entries
			return nil, fmt.Errorf("adaptive_avgpool2d: output: %w", err)
		}
		return &AdaptiveAvgPool2d{adaptivePool(in, oh, ow)}, nil
	})
}

// adaptivePool is PyTorch's adaptive window geometry.
func adaptivePool(in []int, oh, ow int) pool2d {
	g := pool2d{C: in[0], H: in[1], W: in[2], OH: oh, OW: ow}
	for i := 0; i < oh; i++ {
		for j := 0; j < ow; j++ {
			h0, h1 := i*g.H/oh, ((i+1)*g.H+oh-1)/oh
			w0, w1 := j*g.W/ow, ((j+1)*g.W+ow-1)/ow
			g.H0, g.H1 = append(g.H0, h0), append(g.H1, h1)
			g.W0, g.W1 = append(g.W0, w0), append(g.W1, w1)
			g.Div = append(g.Div, float64((h1-h0)*(w1-w0)))
		}
	}
	return g
}

// Type returns "adaptive_avgpool2d".
func (l *AdaptiveAvgPool2d) Type() string { return "adaptive_avgpool2d" }

// InSize returns C·H·W.
func (l *AdaptiveAvgPool2d) InSize() int { return l.inSize() }

// OutSize returns C·OH·OW.
func (l *AdaptiveAvgPool2d) OutSize() int { return l.outSize() }

// OutShape implements Shaper: [C, OH, OW].
func (l *AdaptiveAvgPool2d) OutShape() []int { return []int{l.C, l.OH, l.OW} }

// Params returns nil.
func (l *AdaptiveAvgPool2d) Params() []Param { return nil }

// Kinked implements KinkSites: averaging is linear.
func (l *AdaptiveAvgPool2d) Kinked() bool { return false }

// Forward returns the window averages, x [N, C·H·W], result [N, C·OH·OW].
func (l *AdaptiveAvgPool2d) Forward(_ []*Tensor, x *mat.Dense) *mat.Dense { return l.avgForward(x) }

// Backward spreads dy of every window, divided by its size, over it.
func (l *AdaptiveAvgPool2d) Backward(_ []*Tensor, _, _, dy *mat.Dense, _ []*Tensor) *mat.Dense {
	return l.avgBackward(dy)
}

// Jet implements Layer: the average of h, ḣ and ḧ (THEORY.md §9).
func (l *AdaptiveAvgPool2d) Jet(_, _ []*Tensor, in *Jet) *Jet { return l.avgJet(in) }

// Jet32 implements Jet32Layer: Jet in float32.
func (l *AdaptiveAvgPool2d) Jet32(_, _ []*Tensor32, in *Jet32) *Jet32 { return l.avgJet32(in) }

// IntervalJet implements IntervalLayer: interval averages of the enclosures.
func (l *AdaptiveAvgPool2d) IntervalJet(_ *ParamBox, in *IJet) *IJet { return l.avgIntervalJet(in) }

var (
	_ KinkSites     = (*AdaptiveAvgPool2d)(nil)
	_ Jet32Layer    = (*AdaptiveAvgPool2d)(nil)
	_ IntervalLayer = (*AdaptiveAvgPool2d)(nil)
	_ Shaper        = (*AdaptiveAvgPool2d)(nil)
)
