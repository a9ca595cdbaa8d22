package nn_test

import (
	"fmt"

	"github.com/certify-mli/certify/nn"
)

// A residual block in a model.json spec: its tensors nest like the
// state_dict of RUN_FORMAT.md's PyTorch Residual module, and the walk over
// sites sees the layers inside it.
func ExampleResidual() {
	scale, noBias := true, false
	m, err := nn.Build(&nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{4}, Loss: "mse", Layers: []nn.LayerSpec{
		{Type: "linear", In: 4, Out: 8},
		{Type: "residual", Scale: &scale,
			Body:     []nn.LayerSpec{{Type: "linear", In: 8, Out: 8}, {Type: "relu"}, {Type: "linear", In: 8, Out: 8}},
			Shortcut: []nn.LayerSpec{{Type: "linear", In: 8, Out: 8, Bias: &noBias}}},
		{Type: "linear", In: 8, Out: 2},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range m.Expected() {
		fmt.Println(e.Key, e.Shape)
	}
	_ = m.WalkSites(func(s nn.Site, l nn.Layer) error {
		fmt.Println(s.Index, s.Name, l.Type())
		return nil
	})
	// Output:
	// 0.weight [8 4]
	// 0.bias [8]
	// 1.scale [1]
	// 1.body.0.weight [8 8]
	// 1.body.0.bias [8]
	// 1.body.2.weight [8 8]
	// 1.body.2.bias [8]
	// 1.shortcut.0.weight [8 8]
	// 2.weight [2 8]
	// 2.bias [2]
	// 0 layers[0] linear
	// 1 layers[1].body[0] linear
	// 2 layers[1].body[1] relu
	// 3 layers[1].body[2] linear
	// 4 layers[1].shortcut[0] linear
	// 5 layers[2] linear
}
