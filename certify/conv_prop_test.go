package certify

import (
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// randomConvPath draws a small CNN: conv2d (3×3 padding 1 or 2×2 stride
// 2), an activation, a pool (max, average or adaptive average), sometimes
// batchnorm2d (either policy), flatten and linear, with random θ0, θT,
// inputs and targets.
func randomConvPath(t *rapid.T) *functionspace.Path {
	c := rapid.IntRange(1, 2).Draw(t, "C")
	h := rapid.IntRange(4, 5).Draw(t, "H")
	w := rapid.IntRange(4, 5).Draw(t, "W")
	o := rapid.IntRange(1, 3).Draw(t, "out")
	k := rapid.IntRange(2, 3).Draw(t, "k")
	loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
	conv := nn.LayerSpec{Type: "conv2d", In: c, Out: o, Kernel: nn.IntPair{3}, Padding: nn.IntPair{1}}
	if rapid.Bool().Draw(t, "strided") {
		conv.Kernel, conv.Padding, conv.Stride = nn.IntPair{2}, nil, nn.IntPair{2}
	}
	layers := []nn.LayerSpec{conv}
	bn := rapid.Bool().Draw(t, "batchnorm2d")
	if bn {
		layers = append(layers, nn.LayerSpec{Type: "batchnorm2d", Features: o})
	}
	layers = append(layers, nn.LayerSpec{Type: rapid.SampledFrom([]string{"relu", "tanh", "leaky_relu"}).Draw(t, "act")})
	layers = drawPoolHead(t, layers)
	spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{c, h, w}, Loss: loss, Layers: layers}
	m := buildWithLinearHead(t, spec, k)
	seed := rapid.Uint64().Draw(t, "seed")
	scale := rapid.Float64Range(0.5, 3).Draw(t, "scale")
	s0, _ := nn.Init(m, "pytorch", scale, seed)
	sT, _ := nn.Init(m, "pytorch", scale, seed+1)
	n := rapid.IntRange(2, 5).Draw(t, "n")
	rng := rand.New(rand.NewPCG(seed, 3))
	x, tg := testnets.RandomData(rng, n, spec.InputSize(), k, loss, 2)
	opt := functionspace.Options{Chunk: rapid.IntRange(1, 4).Draw(t, "chunk")}
	if bn && rapid.Bool().Draw(t, "recompute") {
		opt.BNPolicy = functionspace.BNRecompute
	}
	p, err := functionspace.New(m, s0, sT, x, tg, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNeverCertifiesARiseConv is TestNeverCertifiesARise on random small
// CNNs (conv2d, the pools, batchnorm2d under both policies): zero false
// verdicts against a dense grid of 400 α, and an upper bound covering the
// grid's Δ.
func TestNeverCertifiesARiseConv(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { neverCertifiesARise(t, randomConvPath(t)) })
}

// drawPoolHead appends a drawn pool (max-pool 2, average pool 2 with stride
// 1, or global average pooling) and a flatten to layers: the head of the
// random conv nets of this file and conv_residual_prop_test.go.
func drawPoolHead(t *rapid.T, layers []nn.LayerSpec) []nn.LayerSpec {
	switch rapid.SampledFrom([]string{"maxpool2d", "avgpool2d", "adaptive_avgpool2d"}).Draw(t, "pool") {
	case "maxpool2d":
		layers = append(layers, nn.LayerSpec{Type: "maxpool2d", Kernel: nn.IntPair{2}})
	case "avgpool2d":
		layers = append(layers, nn.LayerSpec{Type: "avgpool2d", Kernel: nn.IntPair{2}, Stride: nn.IntPair{1}})
	default:
		layers = append(layers, nn.LayerSpec{Type: "adaptive_avgpool2d", Output: nn.IntPair{1}})
	}
	layers = append(layers, nn.LayerSpec{Type: "flatten"})
	return layers
}

// buildWithLinearHead appends linear(·, k) to spec's layers, its input
// width the flattened output of those layers (nn.BuildLayer), and builds
// the model.
func buildWithLinearHead(t *rapid.T, spec *nn.Spec, k int) *nn.Model {
	shape := spec.InputShape
	for _, ls := range spec.Layers {
		_, out, err := nn.BuildLayer(ls, shape)
		if err != nil {
			t.Fatal(err)
		}
		shape = out
	}
	spec.Layers = append(spec.Layers, nn.LayerSpec{Type: "linear", In: shape[0], Out: k})
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
