package certify

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
	"gonum.org/v1/gonum/mat"
)

// TestOverflowedLossNullsDerived: a 1-1-1 linear network with weights
// 1e100·w at θ0 and −3e100·w at θT has outputs of about 1e200 and an mse
// loss of +Inf on every grid α; Δ is then not 0 but null, like the bumps,
// the barrier and the Gauss lengths, with notes saying why, and the 50
// null loss values get one note, not 50.
func TestOverflowedLossNullsDerived(t *testing.T) {
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1}, Loss: "mse", Layers: []nn.LayerSpec{{Type: "linear", In: 1, Out: 1}, {Type: "linear", In: 1, Out: 1}}}
	s0 := map[string][]float64{"0.weight": {1e100}, "0.bias": {0}, "1.weight": {1e100}, "1.bias": {0}}
	sT := map[string][]float64{"0.weight": {-3e100}, "0.bias": {0}, "1.weight": {-3e100}, "1.bias": {0}}
	p := scalarPath(t, spec, s0, sT, mat.NewDense(1, 1, []float64{1}), nn.Targets{Values: mat.NewDense(1, 1, []float64{0})}, functionspace.Options{})
	r, err := Analyze(context.Background(), p, Options{Alphas: 50})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"delta", "delta_continuous", "bumps", "barrier_height", "gauss_length_mean", "gauss_length_mean_trapezoid", "gauss_length_stacked_trapezoid"} {
		if m[k] != nil {
			t.Errorf("%s = %v, want null", k, m[k])
		}
	}
	notes := strings.Join(func() []string {
		var s []string
		for _, n := range m["notes"].([]any) {
			s = append(s, n.(string))
		}
		return s
	}(), "\n")
	if strings.Contains(notes, "loss[0]") || !strings.Contains(notes, "loss: 50 of 50 values not finite (+Inf)") {
		t.Errorf("notes on the loss not collapsed:\n%s", notes)
	}
	if !strings.Contains(notes, "50 of 50 loss values on the grid are not finite") || !strings.Contains(notes, "delta,") {
		t.Errorf("no note explains the null delta:\n%s", notes)
	}
}

// TestCollapseNonFiniteNotes: per-element notes become one per key path;
// other notes keep their place.
func TestCollapseNonFiniteNotes(t *testing.T) {
	in := []string{"a", "loss[0]: +Inf (not finite), written as null", "x: NaN (not finite), written as null",
		"loss[3]: NaN (not finite), written as null", "per[1].dloss[2]: NaN (not finite), written as null"}
	got := collapseNonFiniteNotes(in, map[string]int{"loss": 4, "per[].dloss": 5})
	want := []string{"a", "loss: 2 of 4 values not finite (+Inf, NaN), written as null", "x: NaN (not finite), written as null",
		"per[].dloss: 1 of 5 values not finite (NaN), written as null"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
