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
