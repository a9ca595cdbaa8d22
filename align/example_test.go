package align_test

import (
	"fmt"

	"github.com/certify-mli/certify/align"
	"github.com/certify-mli/certify/nn"
)

// The assignment with the largest total weight; taking the largest entry
// first (9) would end at 11, the optimum pairs the two 8s.
func ExampleMaxAssignment() {
	w := [][]float64{
		{9, 8, 1},
		{8, 1, 1},
		{1, 1, 1},
	}
	p, total, err := align.MaxAssignment(w)
	if err != nil {
		panic(err)
	}
	fmt.Println(p, total)
	// Output: [1 0 2] 17
}

// The permutation groups of a small residual net: the stem's channels and
// the identity block's output are one residual stream (one group, named by
// the stem), the block's inner channels another; the head's outputs are
// never permuted.
func ExampleGroups() {
	k3, p1 := nn.IntPair{3}, nn.IntPair{1}
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1, 4, 4}, Loss: "cross_entropy", Layers: []nn.LayerSpec{
		{Type: "conv2d", In: 1, Out: 3, Kernel: k3, Padding: p1},
		{Type: "residual", Body: []nn.LayerSpec{
			{Type: "conv2d", In: 3, Out: 5, Kernel: k3, Padding: p1},
			{Type: "relu"},
			{Type: "conv2d", In: 5, Out: 3, Kernel: k3, Padding: p1},
		}},
		{Type: "flatten"},
		{Type: "linear", In: 48, Out: 2},
	}}
	names, sizes, err := align.Groups(spec)
	if err != nil {
		panic(err)
	}
	fmt.Println(names, sizes)
	// Output: [0 1.body.0] [3 5]
}
