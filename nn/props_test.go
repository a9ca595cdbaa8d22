package nn

import "testing"

// TestModelMayJump: only a model with a softplus (PyTorch's threshold
// switch) may be discontinuous along the line; the other activations and
// layers are continuous.
func TestModelMayJump(t *testing.T) {
	for act, want := range map[string]bool{"relu": false, "tanh": false, "gelu": false, "identity": false, "softplus": true} {
		m, err := Build(MLPSpec([]int{3, 4, 2}, act, "mse"))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.MayJump(); got != want {
			t.Errorf("%s: MayJump() = %v, want %v", act, got, want)
		}
	}
}

// TestMayKink: corners are found at any depth (a ReLU inside a residual
// body counts), and smooth models have none.
func TestMayKink(t *testing.T) {
	lin := func(in, out int) LayerSpec { return LayerSpec{Type: "linear", In: in, Out: out} }
	for _, c := range []struct {
		name   string
		layers []LayerSpec
		want   bool
	}{
		{"tanh", []LayerSpec{lin(3, 4), {Type: "tanh"}, lin(4, 2)}, false},
		{"relu", []LayerSpec{lin(3, 4), {Type: "relu"}, lin(4, 2)}, true},
		{"leaky_relu", []LayerSpec{lin(3, 4), {Type: "leaky_relu"}, lin(4, 2)}, true},
		{"relu in a residual body", []LayerSpec{lin(3, 4), {Type: "residual", Body: []LayerSpec{lin(4, 4), {Type: "relu"}, lin(4, 4)}}, lin(4, 2)}, true},
		{"tanh in a residual body", []LayerSpec{lin(3, 4), {Type: "residual", Body: []LayerSpec{lin(4, 4), {Type: "tanh"}, lin(4, 4)}}, lin(4, 2)}, false},
	} {
		m, err := Build(&Spec{Format: "sequential/v1", InputShape: []int{3}, Layers: c.layers, Loss: "mse"})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := m.MayKink(); got != c.want {
			t.Errorf("%s: MayKink %v, want %v", c.name, got, c.want)
		}
	}
}
