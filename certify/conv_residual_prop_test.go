package certify

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/nn"
)

// randomConvResidualPath draws a small ResNet: a conv2d stem, a basic
// residual block whose body is conv2d → [batchnorm2d] → relu → conv2d →
// [batchnorm2d] and whose shortcut is the identity or a strided 1×1 conv2d
// (with batchnorm2d when the body has it), optionally a residual scale,
// then relu, a pool (max, average or global average), flatten and linear;
// random θ0, θT, BatchNorm parameters and statistics, inputs and targets,
// either BatchNorm policy.
func randomConvResidualPath(t *rapid.T) *functionspace.Path {
	m, spec, k, scale, bn := drawResidualModel(t)
	// under either policy, BatchNorm inside the block too (recompute: the
	// nested BatchNorms normalise with the reference batch's statistics)
	recompute := bn && rapid.Bool().Draw(t, "recompute")
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 1, seed+1)
	rng := rand.New(rand.NewPCG(seed, 13))
	randomizeNested(rng, scale, s0, sT)
	n := rapid.IntRange(2, 5).Draw(t, "n")
	x, tg := testnets.RandomData(rng, n, spec.InputSize(), k, spec.Loss, 2)
	opt := functionspace.Options{Chunk: rapid.IntRange(1, 3).Draw(t, "chunk")}
	if recompute {
		opt.BNPolicy = functionspace.BNRecompute
	}
	p, err := functionspace.New(m, s0, sT, x, tg, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// drawResidualModel draws the small ResNet of randomConvResidualPath and
// randomBlankResidualPath: a conv2d stem, a basic residual block whose body
// is conv2d → [batchnorm2d] → relu → conv2d → [batchnorm2d] and whose
// shortcut is the identity or a strided 1×1 conv2d (with batchnorm2d when
// the body has it; a conv before a BatchNorm has no bias, as in the
// built-in resnets), optionally a residual scale, then relu, a pool (max,
// average or global average), flatten and a linear head of k outputs. It
// returns the model, its spec (input shape [C, H, H], loss), k, whether the
// block has a residual scale and whether it has BatchNorm.
func drawResidualModel(t *rapid.T) (m *nn.Model, spec *nn.Spec, k int, scale, bn bool) {
	c := rapid.IntRange(1, 2).Draw(t, "C")
	h := rapid.IntRange(4, 6).Draw(t, "H")
	o := rapid.IntRange(1, 3).Draw(t, "width")
	k = rapid.IntRange(2, 3).Draw(t, "k")
	loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
	bn = rapid.Bool().Draw(t, "batchnorm2d")
	conv := func(in, out, kern, stride int) nn.LayerSpec {
		s := nn.LayerSpec{Type: "conv2d", In: in, Out: out, Kernel: nn.IntPair{kern}, Padding: nn.IntPair{kern / 2}, Stride: nn.IntPair{stride}}
		if bn {
			f := false
			s.Bias = &f
		}
		return s
	}
	norm := func(ls []nn.LayerSpec, f int) []nn.LayerSpec {
		if bn {
			return append(ls, nn.LayerSpec{Type: "batchnorm2d", Features: f})
		}
		return ls
	}
	layers := append(norm([]nn.LayerSpec{conv(c, o, 3, 1)}, o), nn.LayerSpec{Type: "relu"})
	stride := rapid.IntRange(1, 2).Draw(t, "stride")
	o2 := o
	if rapid.Bool().Draw(t, "widen") {
		o2 = o + 1
	}
	body := append(norm([]nn.LayerSpec{conv(o, o2, 3, stride)}, o2), nn.LayerSpec{Type: "relu"})
	body = norm(append(body, conv(o2, o2, 3, 1)), o2)
	var short []nn.LayerSpec
	if stride != 1 || o2 != o {
		short = norm([]nn.LayerSpec{conv(o, o2, 1, stride)}, o2)
	}
	scale = rapid.Bool().Draw(t, "scale")
	layers = append(layers, nn.LayerSpec{Type: "residual", Body: body, Shortcut: short, Scale: &scale}, nn.LayerSpec{Type: "relu"})
	layers = drawPoolHead(t, layers)
	spec = &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{c, h, h}, Loss: loss, Layers: layers}
	return buildWithLinearHead(t, spec, k), spec, k, scale, bn
}

// randomizeNested draws every BatchNorm's weight, bias, running mean and
// running variance (≥ 0.1) and every residual scale at any depth, in
// sorted key order (a map's order would make the draws differ per run).
func randomizeNested(rng *rand.Rand, scale bool, states ...nn.State) {
	for _, s := range states {
		keys := make([]string, 0, len(s))
		for key := range s {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			if pre, ok := strings.CutSuffix(key, "running_var"); ok {
				for _, name := range []string{"weight", "bias", "running_mean", "running_var"} {
					for j := range s[pre+name].Data {
						v := rng.NormFloat64()
						if name == "running_var" {
							v = 0.1 + rng.Float64()
						}
						s[pre+name].Data[j] = v
					}
				}
			}
			if scale && strings.HasSuffix(key, ".scale") {
				s[key].Data[0] = 2*rng.Float64() - 1
			}
		}
	}
}

// TestConvResidualCertificateSound: on random small ResNets (conv2d in a
// residual block's body and strided 1×1 conv shortcut, batchnorm2d under
// both policies, a residual scale, relu, max/average/global pools) the L′
// enclosure of a random leaf contains functionspace's dense float64 L′ at
// five points of it, the certificate is never certified_monotone when a
// dense grid of 400 α rises above the tolerance, and its upper bound
// covers the grid's Δ (checkBNCertificateSound): zero false verdicts.
func TestConvResidualCertificateSound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		checkBNCertificateSound(t, randomConvResidualPath(t))
	})
}
