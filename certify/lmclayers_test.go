package certify

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// Moving no layer gives a constant line (at A or at B, by the hold);
// moving every layer gives the plain line A → B, value for value.
func TestLayerEndpoints(t *testing.T) {
	spec := nn.InsertBatchNorm(nn.MLPSpec([]int{3, 5, 4, 2}, "tanh", "cross_entropy"))
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := nn.Init(m, "pytorch", 1, 1)
	b, _ := nn.Init(m, "pytorch", 1, 2)
	x := mat.NewDense(8, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = math.Cos(float64(i))
	}
	tg := nn.Targets{Labels: []int{0, 1, 1, 0, 1, 0, 0, 1}}
	alphas, _ := LMCGrid(11)
	line := func(s0, s1 nn.State) []Num {
		p, err := functionspace.New(m, s0, s1, x, tg, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := LineMeasures(p, alphas)
		if err != nil {
			t.Fatal(err)
		}
		return r.Loss
	}
	plain := line(a, b)
	for _, hold := range []string{"a", "b"} {
		s0, s1, moved, err := LayerEndpoints(a, b, nil, hold)
		if err != nil || moved != nil {
			t.Fatalf("no layers: %v, moved %v", err, moved)
		}
		l := line(s0, s1)
		want := plain[0]
		if hold == "b" {
			want = plain[len(plain)-1]
		}
		for i, v := range l {
			if v != want {
				t.Errorf("hold %s, nothing moves: L(%v) = %v, want %v everywhere", hold, alphas[i], v, want)
			}
		}
		s0, s1, moved, err = LayerEndpoints(a, b, []string{"0", "1", "3", "4", "6"}, hold)
		if err != nil {
			t.Fatal(err)
		}
		if len(moved) != len(a) {
			t.Errorf("every layer: moved %d of %d tensors", len(moved), len(a))
		}
		if l := line(s0, s1); !slices.Equal(l, plain) {
			t.Errorf("hold %s, every layer moves: %v, plain %v", hold, l, plain)
		}
	}
	if _, _, _, err := LayerEndpoints(a, b, []string{"2"}, "a"); err == nil {
		t.Error("layer 2 (tanh, no tensors) accepted")
	}
}
