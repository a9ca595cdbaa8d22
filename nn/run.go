package nn

// The run directory itself (config.json, the checkpoints' names, the
// evaluation data's resolution) is package rundir's; nn converts tensors.

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn/safetensors"
)

// DataFromTensors converts the evaluation tensors of file — x [N, …]
// floating and finite, y [N] integer labels or [N, K] float targets
// (RUN_FORMAT.md, data.safetensors) — into X [n, D] and the targets, keeping
// the first n = limit examples (all when limit ≤ 0; more than N is an error
// naming flag, the option that asked for them). X and the targets share
// the tensors' storage. Errors name the file and the tensor.
func DataFromTensors(x, y *safetensors.Tensor, file, flag string, limit int) (*mat.Dense, Targets, error) {
	if !safetensors.IsFloat(x.DType) {
		return nil, Targets{}, fmt.Errorf("%s: x: expected a floating tensor, found %s", file, x.DType)
	}
	if len(x.Shape) < 1 || x.Shape[0] == 0 {
		return nil, Targets{}, fmt.Errorf("%s: x: empty data (shape %s)", file, ShapeString(x.Shape))
	}
	n := x.Shape[0]
	d := numel(x.Shape[1:])
	if len(y.Shape) < 1 || y.Shape[0] != n {
		return nil, Targets{}, fmt.Errorf("%s: y: expected %d rows to match x, found shape %s", file, n, ShapeString(y.Shape))
	}
	for j, v := range x.Float {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, Targets{}, fmt.Errorf("%s: x: non-finite value %v at flat index %d", file, v, j)
		}
	}
	if limit > n {
		return nil, Targets{}, fmt.Errorf("%s: x: %s %d but the file holds %d examples", file, flag, limit, n)
	}
	if limit > 0 {
		n = limit
	}
	xm := mat.NewDense(n, d, x.Float[:n*d])
	switch {
	case safetensors.IsInt(y.DType) && len(y.Shape) == 1:
		labels := make([]int, n)
		for i := range labels {
			labels[i] = int(y.Int[i])
		}
		return xm, Targets{Labels: labels}, nil
	case safetensors.IsFloat(y.DType) && len(y.Shape) == 2:
		return xm, Targets{Values: mat.NewDense(n, y.Shape[1], y.Float[:n*y.Shape[1]])}, nil
	}
	return nil, Targets{}, fmt.Errorf("%s: y: expected integer labels [N] or float targets [N, K], found %s %s", file, y.DType, ShapeString(y.Shape))
}

// CheckInputShape checks the shape of the evaluation inputs x [N, …] of
// file against the model's input_shape (model.json; RUN_FORMAT.md: inputs
// are [N, C, H, W] in PyTorch's layout): the per-example shape must be
// input_shape itself up to dimensions of size 1 (which do not change the
// order of the values: [N, 28, 28] or [N, 28, 28, 1] for [1, 28, 28]), or
// flat [N, D] with D its number of elements (the layout certify writes,
// row-major in input_shape's order). Anything else —
// channels-last images [N, H, W, C] of the same size above all, which a
// size check passes and which would be analysed wrongly — is an error
// naming the file, the tensor (name) and both shapes.
func CheckInputShape(file, name string, shape, input []int) error {
	if len(shape) < 1 {
		return fmt.Errorf("%s: %s: expected [N, …], found shape %s", file, name, ShapeString(shape))
	}
	per := shape[1:]
	if sameShape(dropOnes(per), dropOnes(input)) || (len(per) == 1 && per[0] == numel(input)) {
		return nil
	}
	want := ShapeString(append([]int{shape[0]}, input...))
	flat := ShapeString([]int{shape[0], numel(input)})
	hint := ""
	if len(input) == 3 && len(per) == 3 && per[0] == input[1] && per[1] == input[2] && per[2] == input[0] {
		hint = " (channels-last images: permute them to [N, C, H, W], in PyTorch x.permute(0, 3, 1, 2))"
	} else if numel(per) == numel(input) {
		hint = " (the same number of values in another layout: certify would read them in the wrong order)"
	}
	return fmt.Errorf("%s: %s: shape %s does not match the model's input_shape %s: expected %s or flat %s%s", file, name, ShapeString(shape), ShapeString(input), want, flat, hint)
}

// dropOnes is shape without its dimensions of size 1.
func dropOnes(shape []int) []int {
	var out []int
	for _, d := range shape {
		if d != 1 {
			out = append(out, d)
		}
	}
	return out
}
