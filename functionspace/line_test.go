package functionspace

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// TestLineCheck: a line whose ends do not fit the model is refused, naming
// the end, the first differing tensor and both shapes (the model's and the
// one found); a fitting one passes.
func TestLineCheck(t *testing.T) {
	m, err := nn.Build(nn.MLPSpec([]int{3, 4, 2}, "tanh", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := nn.Init(m, "pytorch", 1, 1)
	other, _ := nn.Init(m, "pytorch", 1, 2)
	bad := other.Clone()
	bad["2.weight"] = &nn.Tensor{Shape: []int{4, 2}, Data: make([]float64, 8)}
	missing := other.Clone()
	delete(missing, "0.bias")
	cases := []struct {
		name string
		line Line
		want []string // substrings of the error; nil: no error
	}{
		{"fits", Line{Start: good, End: other}, nil},
		{"end shape", Line{Start: good, End: bad}, []string{"θT: 2.weight: expected shape [2, 4], found [4, 2]"}},
		{"start shape named", Line{Start: bad, End: good, StartName: "a.safetensors"}, []string{"a.safetensors: 2.weight: expected shape [2, 4], found [4, 2]"}},
		{"end missing named", Line{Start: good, End: missing, EndName: "θB"}, []string{"θB: 0.bias: missing", "[4]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.line.Check(m)
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// NewLine refuses it with the same error
			x := mat.NewDense(1, 3, []float64{1, 2, 3})
			y := mat.NewDense(1, 2, nil)
			if _, err2 := NewLine(m, c.line, x, nn.Targets{Values: y}, Options{}); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("NewLine: %v, want %v", err2, err)
			}
		})
	}
}

// TestLineEnds: the path along a line evaluates the model at its ends:
// γ(0) = f(Start) and γ(1) = f(End) by the model's own forward pass, and
// at an interior α, f(Line.At(α)); the names default to θ0 and θT.
func TestLineEnds(t *testing.T) {
	m, err := nn.Build(nn.MLPSpec([]int{3, 5, 5, 2}, "tanh", "mse"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := nn.Init(m, "pytorch", 1, 7)
	b, _ := nn.Init(m, "pytorch", 2, 8)
	rng := rand.New(rand.NewPCG(1, 2))
	x := mat.NewDense(4, 3, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	l := Line{Start: a, End: b}
	p, err := NewLine(m, l, x, nn.Targets{Values: mat.NewDense(4, 2, nil)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		alpha float64
		s     nn.State
	}{{0, a}, {1, b}, {0.3, l.At(0.3)}} {
		want := m.Forward(c.s, x)
		got := p.At(c.alpha).Output
		for i := 0; i < 4; i++ {
			for k := 0; k < 2; k++ {
				if d := math.Abs(got.At(i, k) - want.At(i, k)); d > 1e-12*(1+math.Abs(want.At(i, k))) {
					t.Errorf("α = %v: γ[%d][%d] = %v, f(θ(α)) = %v", c.alpha, i, k, got.At(i, k), want.At(i, k))
				}
			}
		}
	}
	if s, e := l.Names(); s != "θ0" || e != "θT" || l.String() != "θ0 → θT" {
		t.Errorf("names %q %q %q", s, e, l.String())
	}
	// New is NewLine on θ0 → θT
	q, err := New(m, a, b, x, nn.Targets{Values: mat.NewDense(4, 2, nil)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if q.Line.Start["0.weight"] != a["0.weight"] || q.Line.End["0.weight"] != b["0.weight"] {
		t.Error("New does not record its line")
	}
}
