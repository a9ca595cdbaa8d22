package nn

import "fmt"

// This file holds the declared property weight matching (package align,
// THEORY.md §10) reads: how a permutation of a layer's units acts on its
// tensors. A layer that does not declare it is refused by align with an
// error naming the layer.

// PermRole is how a layer relates the units (features of a flat input,
// channels of an image) of its output to those of its input under a
// permutation of hidden units (THEORY.md §10, weight matching).
type PermRole int

const (
	// PermRefused: the layer declares no permutation of its units
	// (LayerNorm, any layer without Permutable); weight matching refuses
	// the model, naming the layer. It is the zero value.
	PermRefused PermRole = iota
	// PermCarry: output unit u is input unit u, so the input's
	// permutation passes through (elementwise activations, identity, the
	// pools, flatten, batchnorm1d/2d); the layer's per-unit tensors
	// (Permutation.In) move with the units.
	PermCarry
	// PermMix: the layer makes new units (linear, conv2d): the input's
	// permutation acts on the axes Permutation.In (the weight's input
	// axis), and a fresh permutation of Permutation.Units output units
	// acts on the axes Permutation.Out (the weight's output axis, the
	// bias).
	PermMix
	// PermSum: a Block whose branches all start from its input and whose
	// outputs are added (a residual block): one permutation is shared by
	// the outputs of every branch, along the residual stream.
	PermSum
)

// String returns the role's name.
func (r PermRole) String() string {
	switch r {
	case PermRefused:
		return "refused"
	case PermCarry:
		return "carry"
	case PermMix:
		return "mix"
	case PermSum:
		return "sum"
	}
	return fmt.Sprintf("PermRole(%d)", int(r))
}

// PermAxis is one axis of one of a layer's tensors (Param names it as in
// Params, e.g. "weight") that a permutation of units moves.
type PermAxis struct {
	Param string
	Axis  int
}

// Permutation is a layer's declaration of how a permutation of units acts
// on it (Permutable), for one example's input shape.
type Permutation struct {
	Role PermRole
	// In lists the tensor axes indexed by the input units, in the order
	// weight matching visits them: for PermCarry the per-unit tensors
	// (batchnorm's weight, bias, running_mean, running_var, axis 0), for
	// PermMix the weight's input axis (axis 1). Each input unit owns a
	// block of consecutive entries on the axis (one, or H·W after
	// flatten of a [C, H, W] image). An absent tensor (no bias) is
	// skipped.
	In []PermAxis
	// Out lists, for PermMix, the tensor axes indexed by the Units new
	// output units, one entry each (the weight's axis 0, the bias).
	Out []PermAxis
	// Units is, for PermMix, the number of output units (features or
	// channels).
	Units int
	// Blocks is, for PermMix, whether an input unit may own a block of
	// several entries on the In axes (linear after flatten); when false
	// (conv2d's input channels) such an input is refused.
	Blocks bool
	// Spread is, for PermCarry, the factor by which each unit's block of
	// features grows through the layer (flatten of a [C, H, W] image:
	// H·W, PyTorch's flatten order puts channel c's features at
	// c·H·W … (c+1)·H·W − 1); 0 or 1 leaves it.
	Spread int
}

// Permutable is declared by every layer weight matching may permute
// through (THEORY.md §10): Permutation returns how a permutation of its
// units acts on its tensors, for one example's input shape in ([C, H, W]
// or [width], as BuildLayer threads it, ShapeAfter).
type Permutable interface {
	Permutation(in []int) Permutation
}

// PermutationOf returns l's declared Permutation on input shape in, or
// one with Role PermRefused when l does not declare Permutable.
func PermutationOf(l Layer, in []int) Permutation {
	if p, ok := l.(Permutable); ok {
		return p.Permutation(in)
	}
	return Permutation{Role: PermRefused}
}

// ShapeAfter returns one example's output shape of layer l on an input of
// shape in, the shape BuildLayer threads to the next layer: OutShape for a
// Shaper (conv2d, the pools), [OutSize] after flatten or a layer that
// changes the width, in otherwise.
func ShapeAfter(l Layer, in []int) []int {
	width := numel(in)
	if len(in) == 0 {
		width = 0
	}
	switch {
	case isShaper(l):
		return l.(Shaper).OutShape()
	case isFlatten(l) || l.OutSize() != width:
		return []int{l.OutSize()}
	}
	return in
}

func isFlatten(l Layer) bool {
	a, ok := l.(*Activation)
	return ok && a.Kind == Flatten
}

// Permutation implements Permutable: a linear layer makes Out new units;
// its weight's columns are indexed by the input units, in blocks after
// flatten.
func (d *Dense) Permutation(in []int) Permutation {
	return Permutation{Role: PermMix, Units: d.Out, Blocks: true,
		In:  []PermAxis{{"weight", 1}},
		Out: []PermAxis{{"weight", 0}, {"bias", 0}}}
}

// Permutation implements Permutable: a conv2d layer makes Out new
// channels; its weight's axis 1 is indexed by the input channels.
func (l *Conv2d) Permutation(in []int) Permutation {
	return Permutation{Role: PermMix, Units: l.Out,
		In:  []PermAxis{{"weight", 1}},
		Out: []PermAxis{{"weight", 0}, {"bias", 0}}}
}

// Permutation implements Permutable: activations act unit-wise and carry
// the permutation; flatten of a [C, H, W] image spreads each channel over
// its H·W features.
func (a *Activation) Permutation(in []int) Permutation {
	p := Permutation{Role: PermCarry}
	if a.Kind == Flatten && len(in) == 3 {
		p.Spread = in[1] * in[2]
	}
	return p
}

// batchNormAxes are BatchNorm's per-unit tensors, moved with the units.
var batchNormAxes = []PermAxis{{"weight", 0}, {"bias", 0}, {"running_mean", 0}, {"running_var", 0}}

// Permutation implements Permutable: BatchNorm normalises each feature on
// its own; its weight, bias and running statistics move with the units.
func (b *BatchNorm) Permutation(in []int) Permutation {
	return Permutation{Role: PermCarry, In: batchNormAxes}
}

// Permutation implements Permutable: as BatchNorm's, per channel.
func (b *BatchNorm2d) Permutation(in []int) Permutation {
	return Permutation{Role: PermCarry, In: batchNormAxes}
}

// Permutation implements Permutable: pooling acts channel by channel.
func (l *MaxPool2d) Permutation(in []int) Permutation { return Permutation{Role: PermCarry} }

// Permutation implements Permutable: pooling acts channel by channel.
func (l *AvgPool2d) Permutation(in []int) Permutation { return Permutation{Role: PermCarry} }

// Permutation implements Permutable: pooling acts channel by channel.
func (l *AdaptiveAvgPool2d) Permutation(in []int) Permutation { return Permutation{Role: PermCarry} }

// Permutation implements Permutable: the body's and the shortcut's
// outputs are added, so they share one permutation along the residual
// stream (an identity shortcut ties it to the block's input). The scale
// is a scalar and is not permuted.
func (r *Residual) Permutation(in []int) Permutation { return Permutation{Role: PermSum} }

var (
	_ Permutable = (*Dense)(nil)
	_ Permutable = (*Conv2d)(nil)
	_ Permutable = (*Activation)(nil)
	_ Permutable = (*BatchNorm)(nil)
	_ Permutable = (*BatchNorm2d)(nil)
	_ Permutable = (*MaxPool2d)(nil)
	_ Permutable = (*AvgPool2d)(nil)
	_ Permutable = (*AdaptiveAvgPool2d)(nil)
	_ Permutable = (*Residual)(nil)
)
