package certify

import (
	"context"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// TestResidualCertificateSound: on random small residual networks (a ReLU
// or tanh inside the block's body, optionally a linear shortcut, a scale
// gain, a batchnorm1d in the body under the interpolate policy), the
// certificate is never certified_monotone when a dense grid of 400 α rises
// above the tolerance, its upper bound covers the grid's Δ, and the L′
// enclosure of a random leaf contains functionspace's L′
// (checkBNCertificateSound).
func TestResidualCertificateSound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		act := rapid.SampledFrom([]string{"relu", "tanh"}).Draw(t, "act")
		loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
		in := rapid.IntRange(1, 3).Draw(t, "in")
		w := rapid.IntRange(2, 4).Draw(t, "w")
		k := rapid.IntRange(2, 3).Draw(t, "k")
		body := []nn.LayerSpec{{Type: "linear", In: w, Out: w}, {Type: act}, {Type: "linear", In: w, Out: w}}
		bn := rapid.Bool().Draw(t, "bn")
		if bn {
			body = append(body, nn.LayerSpec{Type: "batchnorm1d"})
		}
		var short []nn.LayerSpec
		if rapid.Bool().Draw(t, "linear shortcut") {
			short = []nn.LayerSpec{{Type: "linear", In: w, Out: w}}
		}
		scale := rapid.Bool().Draw(t, "scale")
		m, err := nn.Build(&nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{in}, Loss: loss, Layers: []nn.LayerSpec{
			{Type: "linear", In: in, Out: w},
			{Type: "residual", Body: body, Shortcut: short, Scale: &scale},
			{Type: act},
			{Type: "linear", In: w, Out: k},
		}})
		if err != nil {
			t.Fatal(err)
		}
		seed := rapid.Uint64().Draw(t, "seed")
		s0, _ := nn.Init(m, "pytorch", 1, seed)
		sT, _ := nn.Init(m, "pytorch", 1, seed+1)
		rng := rand.New(rand.NewPCG(seed, 5))
		if scale {
			s0["1.scale"].Data[0], sT["1.scale"].Data[0] = 2*rng.Float64()-1, 2*rng.Float64()-1
		}
		if bn {
			key := "1.body.3."
			for _, s := range []nn.State{s0, sT} {
				for j := 0; j < w; j++ {
					s[key+"weight"].Data[j] = 0.5 + rng.Float64()
					s[key+"bias"].Data[j] = rng.NormFloat64() * 0.1
					s[key+"running_mean"].Data[j] = rng.NormFloat64() * 0.1
					s[key+"running_var"].Data[j] = 0.5 + rng.Float64()
				}
			}
		}
		n := rapid.IntRange(2, 6).Draw(t, "n")
		x, tg := testnets.RandomData(rng, n, in, k, loss, 2)
		p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: rapid.IntRange(1, 3).Draw(t, "chunk")})
		if err != nil {
			t.Fatal(err)
		}
		checkBNCertificateSound(t, p)
		// a non_monotone verdict's witness is a real rise: plain evaluation
		// at its two ends agrees with the rigorous rise up to rounding
		cert, err := Certify(context.Background(), p, CertifyOptions{MaxIntervals: 64, InitialIntervals: 8, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if cert.Verdict == NonMonotone {
			w := cert.Witness
			rise := p.At(w.Beta).Loss - p.At(w.Alpha).Loss
			if re := 2 * RoundingError(p.At(w.Alpha).Loss, p.N); rise < w.Rise-re || rise <= 0 {
				t.Fatalf("witness α=%v β=%v claims rise %v; evaluation gives %v", w.Alpha, w.Beta, w.Rise, rise)
			}
		}
	})
}

// TestResidualWithoutParamsFirst: a residual block without parameters (an
// activation body, the identity shortcut, no scale) before the model's
// first parametrised layer is evaluated by the interval path with no
// parameter box, as every parameter-free layer there is. It panicked in
// Residual.subBox (found by TestModelFuzz); now its L′ enclosure contains
// functionspace's L′ and the certificate's upper bound covers a dense
// grid's Δ (checkBNCertificateSound).
func TestResidualWithoutParamsFirst(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		act := rapid.SampledFrom([]string{"relu", "tanh", "sigmoid"}).Draw(t, "act")
		loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
		in := rapid.IntRange(1, 3).Draw(t, "in")
		k := rapid.IntRange(1, 3).Draw(t, "k")
		bias := rapid.Bool().Draw(t, "bias")
		m, err := nn.Build(&nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{in}, Loss: loss, Layers: []nn.LayerSpec{
			{Type: "residual", Body: []nn.LayerSpec{{Type: act}}},
			{Type: "linear", In: in, Out: k, Bias: &bias},
		}})
		if err != nil {
			t.Fatal(err)
		}
		seed := rapid.Uint64().Draw(t, "seed")
		rng := rand.New(rand.NewPCG(seed, 7))
		s0, sT := testnets.RandomState(m, rng, 1), testnets.RandomState(m, rng, 1)
		x, tg := testnets.RandomData(rng, rapid.IntRange(1, 5).Draw(t, "n"), in, k, loss, 2)
		p, err := functionspace.New(m, s0, sT, x, tg, functionspace.Options{Chunk: rapid.IntRange(1, 3).Draw(t, "chunk")})
		if err != nil {
			t.Fatal(err)
		}
		checkBNCertificateSound(t, p)
	})
}
