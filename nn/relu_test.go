package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"
)

// BenchmarkReLUJet times the ReLU jet rule on one chunk of the benchmark
// network's hidden layer: 1000 examples × 1024 units (value, velocity and
// acceleration rows), half the pre-activations negative, output from a
// reused workspace as in the analysis.
func BenchmarkReLUJet(b *testing.B) {
	n, c := 1000, 1024
	rng := rand.New(rand.NewPCG(1, 2))
	in := &Jet{N: n, M: mat.NewDense(3*n, c, nil), WS: new(Workspace)}
	for i := range in.M.RawMatrix().Data {
		in.M.RawMatrix().Data[i] = rng.NormFloat64()
	}
	a := &Activation{Kind: "relu", Width: c}
	b.SetBytes(int64(6 * n * c * 8)) // reads and writes 3n·c float64s
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in.WS.Reset()
		a.Jet(nil, nil, in)
	}
}

// TestReLUJetMatchesBranchingRule checks reluJet bit for bit against the
// rule as first written, with branches (THEORY.md §2's kink side), on
// arbitrary bit patterns (subnormals, ±Inf, NaNs) and on signed zeros with
// every sign of ż and z̈.
func TestReLUJetMatchesBranchingRule(t *testing.T) {
	ref := func(z, zd, zdd float64) (float64, float64, float64) {
		if z > 0 || (z == 0 && (zd > 0 || (zd == 0 && zdd >= 0))) {
			return z, zd, zdd
		}
		return 0, 0, 0
	}
	special := []float64{0, math.Copysign(0, -1), 1, -1, math.Inf(1), math.Inf(-1), math.NaN(), -math.NaN(), 5e-324, -5e-324}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "n")
		val := func(name string) float64 {
			if rapid.Bool().Draw(t, name+"special") {
				return rapid.SampledFrom(special).Draw(t, name)
			}
			return math.Float64frombits(rapid.Uint64().Draw(t, name))
		}
		z, zd, zdd := make([]float64, n), make([]float64, n), make([]float64, n)
		for j := range z {
			z[j], zd[j], zdd[j] = val("z"), val("zd"), val("zdd")
		}
		s, sd, sdd := make([]float64, n), make([]float64, n), make([]float64, n)
		for j := range s { // poison: every element must be written
			s[j], sd[j], sdd[j] = math.NaN(), math.NaN(), math.NaN()
		}
		reluJet(z, zd, zdd, s, sd, sdd)
		for j := range z {
			w0, w1, w2 := ref(z[j], zd[j], zdd[j])
			for k, pair := range [][2]float64{{s[j], w0}, {sd[j], w1}, {sdd[j], w2}} {
				if math.Float64bits(pair[0]) != math.Float64bits(pair[1]) {
					t.Fatalf("z=%v ż=%v z̈=%v: part %d is %v (%#x), the branching rule gives %v (%#x)",
						z[j], zd[j], zdd[j], k, pair[0], math.Float64bits(pair[0]), pair[1], math.Float64bits(pair[1]))
				}
			}
		}
	})
}

// TestReLUJet32MatchesBranchingRule is TestReLUJetMatchesBranchingRule for
// reluJet in float32, on float32 bit patterns.
func TestReLUJet32MatchesBranchingRule(t *testing.T) {
	ref := func(z, zd, zdd float32) (float32, float32, float32) {
		if z > 0 || (z == 0 && (zd > 0 || (zd == 0 && zdd >= 0))) {
			return z, zd, zdd
		}
		return 0, 0, 0
	}
	nan := float32(math.NaN())
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)), nan, -nan, math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "n")
		val := func(name string) float32 {
			if rapid.Bool().Draw(t, name+"special") {
				return rapid.SampledFrom(special).Draw(t, name)
			}
			return math.Float32frombits(rapid.Uint32().Draw(t, name))
		}
		z, zd, zdd := make([]float32, n), make([]float32, n), make([]float32, n)
		for j := range z {
			z[j], zd[j], zdd[j] = val("z"), val("zd"), val("zdd")
		}
		s, sd, sdd := make([]float32, n), make([]float32, n), make([]float32, n)
		for j := range s {
			s[j], sd[j], sdd[j] = nan, nan, nan
		}
		reluJet(z, zd, zdd, s, sd, sdd)
		for j := range z {
			w0, w1, w2 := ref(z[j], zd[j], zdd[j])
			for k, pair := range [][2]float32{{s[j], w0}, {sd[j], w1}, {sdd[j], w2}} {
				if math.Float32bits(pair[0]) != math.Float32bits(pair[1]) {
					t.Fatalf("z=%v ż=%v z̈=%v: part %d is %v, the branching rule gives %v", z[j], zd[j], zdd[j], k, pair[0], pair[1])
				}
			}
		}
	})
}
