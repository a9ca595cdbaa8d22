package importer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/certify-mli/certify/nn/importer"
	"github.com/certify-mli/certify/rundir"
)

// Import two ONNX graphs exported from PyTorch (nn/onnx/testdata/gen.py) with
// their evaluation data; the graph gives model.json, the labels the loss.
func ExampleImport() {
	dir, _ := os.MkdirTemp("", "import-example")
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "run")
	rec, err := importer.Import(importer.Options{
		Init:  "../onnx/testdata/mlp13.onnx",
		Final: "../onnx/testdata/mlp17.onnx",
		Data:  "../onnx/testdata/mlp_data.npz",
		Out:   out,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec.Init.Format, "→", rec.Parameterisation, "; loss", rec.LossSource)
	run, err := rundir.Read(out, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	var layers []string
	for i, l := range run.Spec.Layers {
		layers = append(layers, fmt.Sprintf("%d:%s", i, l.Type))
	}
	fmt.Println(strings.Join(layers, " "))
	// The bias-free linear (layer 6): opset 13's constant folding stored its
	// transposed weight as an exporter constant; opset 17 without folding
	// kept the parameter's name.
	fmt.Println(len(rec.Init.Derived), "derived;", rec.Final.Keys["6.weight"])
	// Output:
	// onnx → raw parameters ; loss inferred: cross_entropy, as the data hold integer labels (--loss to change)
	// 0:flatten 1:linear 2:batchnorm1d 3:relu 4:linear 5:gelu 6:linear 7:leaky_relu 8:linear 9:tanh 10:linear 11:sigmoid 12:linear 13:softplus 14:linear
	// 1 derived; 6.weight
}
