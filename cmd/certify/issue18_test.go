package main

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// TestBatchNormFirstCLI (issue 18): a model.json whose first layer is a
// batchnorm1d, and one with no linear layer, used to panic (exit 2,
// "BatchNorm.IntervalJet: … a ParamBox is required"); both are analysed
// with the certificate under either --bn policy and without it, exit 0 and
// write a report with rigorous bounds.
func TestBatchNormFirstCLI(t *testing.T) {
	for name, layers := range map[string][]nn.LayerSpec{
		"batchnorm first": {{Type: "batchnorm1d", Features: 4}, {Type: "linear", In: 4, Out: 5}, {Type: "tanh"}, {Type: "linear", In: 5, Out: 3}},
		"no linear":       {{Type: "batchnorm1d", Features: 3}, {Type: "tanh"}},
	} {
		dir := t.TempDir()
		in := layers[0].Features
		spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{in}, Loss: "cross_entropy", Layers: layers}
		m, err := nn.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		s0, _ := nn.Init(m, "pytorch", 1, 1)
		sT, _ := nn.Init(m, "pytorch", 1, 2)
		testnets.RandomizeBatchNorm(m, rand.New(rand.NewPCG(1, 2)), 0.1, s0, sT)
		x := mat.NewDense(6, in, nil)
		for i := range x.RawMatrix().Data {
			x.RawMatrix().Data[i] = math.Sin(float64(i))
		}
		writeRunDir(t, dir, spec, s0, sT, "F64", x, nn.Targets{Labels: []int{0, 1, 2, 0, 1, 2}})
		for _, extra := range [][]string{nil, {"--bn", "recompute"}, {"--no-certificate"}} {
			// Each setting writes into its own --out directory (a
			// non-default setting would otherwise go to variants/NAME/).
			out := t.TempDir()
			args := append([]string{"--run", dir, "--no-figures", "--quiet", "--alphas", "11", "--out", out}, extra...)
			code, _, e := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("%s %v: exit %d: %s", name, extra, code, e)
			}
			r, err := certify.ReadReport(filepath.Join(out, "certificate.json"))
			if err != nil {
				t.Fatal(err)
			}
			withCert := len(extra) == 0 || extra[0] != "--no-certificate"
			if withCert && (r.Certificate == nil || r.DeltaBounds == nil || r.DeltaBounds[0] > r.DeltaBounds[1] || r.DeltaBounds[1] < r.Delta-1e-12) {
				t.Errorf("%s %v: verdict %s, bounds %v, grid Δ %v", name, extra, r.Verdict, r.DeltaBounds, r.Delta)
			}
		}
	}
}
