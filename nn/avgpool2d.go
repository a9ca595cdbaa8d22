package nn

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// AvgPool2d is PyTorch's nn.AvgPool2d(kernel, stride, padding) with
// ceil_mode=False and count_include_pad=True (RUN_FORMAT.md "avgpool2d",
// THEORY.md §9) on flat batches [N, C·H·W]: every output [C, OH, OW] is the
// sum of its window divided by KH·KW, OH = (H + 2PH − KH)/SH + 1. It is
// linear and has no parameters: every rule applies the same map to h, ḣ, ḧ
// and to interval bounds.
type AvgPool2d struct {
	pool2d
	KH, KW, SH, SW, PH, PW int
}

func init() {
	registerLayer("avgpool2d", []string{"kernel!", "stride", "padding"}, func(ls LayerSpec, width int) (Layer, error) {
		in := ls.InShape()
		if err := ls.checkPairs("avgpool2d"); err != nil {
			return nil, err
		}
		if len(in) != 3 {
			return nil, fmt.Errorf("avgpool2d: needs an image input [C, H, W], found input shape %s", ShapeString(in))
		}
		if len(ls.Kernel) == 0 {
			return nil, fmt.Errorf("avgpool2d: kernel: missing")
		}
		l := &AvgPool2d{}
		l.KH, l.KW = ls.Kernel.HW(0)
		l.SH, l.SW = l.KH, l.KW
		if len(ls.Stride) > 0 {
			l.SH, l.SW = ls.Stride.HW(0)
		}
		l.PH, l.PW = ls.Padding.HW(0)
		oh, ow, err := windowOut("avgpool2d", in, l.KH, l.KW, l.SH, l.SW, l.PH, l.PW, true)
		if err != nil {
			return nil, err
		}
		l.pool2d = slidingPool(in, l.KH, l.KW, l.SH, l.SW, l.PH, l.PW, oh, ow)
		return l, nil
	})
}

// Type returns "avgpool2d".
func (l *AvgPool2d) Type() string { return "avgpool2d" }

// InSize returns C·H·W.
func (l *AvgPool2d) InSize() int { return l.inSize() }

// OutSize returns C·OH·OW.
func (l *AvgPool2d) OutSize() int { return l.outSize() }

// OutShape implements Shaper: [C, OH, OW].
func (l *AvgPool2d) OutShape() []int { return []int{l.C, l.OH, l.OW} }

// Params returns nil: average pooling has no parameters.
func (l *AvgPool2d) Params() []Param { return nil }

// Kinked implements KinkSites: averaging is linear.
func (l *AvgPool2d) Kinked() bool { return false }

// Forward returns the window averages, x [N, C·H·W], result [N, C·OH·OW].
func (l *AvgPool2d) Forward(_ []*Tensor, x *mat.Dense) *mat.Dense { return l.avgForward(x) }

// Backward returns dx: dy of every window divided by KH·KW, spread over it.
func (l *AvgPool2d) Backward(_ []*Tensor, _, _, dy *mat.Dense, _ []*Tensor) *mat.Dense {
	return l.avgBackward(dy)
}

// Jet implements Layer: the average of h, ḣ and ḧ (THEORY.md §9).
func (l *AvgPool2d) Jet(_, _ []*Tensor, in *Jet) *Jet { return l.avgJet(in) }

// Jet32 implements Jet32Layer: Jet in float32.
func (l *AvgPool2d) Jet32(_, _ []*Tensor32, in *Jet32) *Jet32 { return l.avgJet32(in) }

// IntervalJet implements IntervalLayer: the average of the bounds' enclosures
// in outward-rounded interval arithmetic.
func (l *AvgPool2d) IntervalJet(_ *ParamBox, in *IJet) *IJet { return l.avgIntervalJet(in) }

var (
	_ KinkSites     = (*AvgPool2d)(nil)
	_ Jet32Layer    = (*AvgPool2d)(nil)
	_ IntervalLayer = (*AvgPool2d)(nil)
	_ Shaper        = (*AvgPool2d)(nil)
)
