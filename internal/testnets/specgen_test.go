package testnets

import (
	"slices"
	"testing"

	"github.com/certify-mli/certify/nn"
)

// TestDrawSpecCoversLayerTypes: DrawSpec, which the model fuzz tests
// (certify.TestModelFuzz, cmd/certify's TestModelFuzzCLI) draw from, draws
// every layer type this build registers, so a new layer is fuzzed once it
// is added here (docs/architecture.md "How to add a layer").
func TestDrawSpecCoversLayerTypes(t *testing.T) {
	for _, typ := range nn.LayerTypes {
		if !slices.Contains(SpecLayerTypes, typ) {
			t.Errorf("layer type %q is registered but DrawSpec never draws it: add it to SpecLayerTypes and to specGen.layer", typ)
		}
	}
	for _, typ := range SpecLayerTypes {
		if !slices.Contains(nn.LayerTypes, typ) {
			t.Errorf("SpecLayerTypes lists %q, which no layer registers", typ)
		}
	}
}
