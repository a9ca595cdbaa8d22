package nn

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestActivationKind: every kind parses from its model.json name, builds
// an Activation of that kind whose Type is the name, and marshals to the
// same JSON string; an unknown name is an error naming it.
func TestActivationKind(t *testing.T) {
	for _, k := range ActivationKinds {
		got, err := ParseActivationKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseActivationKind(%q) = %q, %v", k.String(), got, err)
		}
		m, err := Build(&Spec{InputShape: []int{3}, Layers: []LayerSpec{{Type: string(k)}}, Loss: "mse"})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		a, ok := m.Layers[0].(*Activation)
		if !ok || a.Kind != k || a.Type() != string(k) {
			t.Errorf("%s: built %T %+v", k, m.Layers[0], m.Layers[0])
		}
		b, err := json.Marshal(k)
		if err != nil || string(b) != `"`+string(k)+`"` {
			t.Errorf("json.Marshal(%s) = %s, %v", k, b, err)
		}
		var back ActivationKind
		if err := json.Unmarshal(b, &back); err != nil || back != k {
			t.Errorf("json.Unmarshal(%s) = %q, %v", b, back, err)
		}
	}
	for _, bad := range []string{"", "ReLU", "linear", "swish"} {
		if _, err := ParseActivationKind(bad); err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("ParseActivationKind(%q): error %v, want one naming it", bad, err)
		}
		var k ActivationKind
		if err := json.Unmarshal([]byte(`"`+bad+`"`), &k); err == nil {
			t.Errorf("json.Unmarshal(%q) accepted", bad)
		}
		if _, err := json.Marshal(ActivationKind(bad)); err == nil {
			t.Errorf("json.Marshal(%q) accepted", bad)
		}
	}
}
