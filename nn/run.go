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
