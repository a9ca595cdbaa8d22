package testnets

import (
	"math"
	"math/rand/v2"
	"slices"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/nn"
)

// SpecLayerTypes are the model.json layer types DrawSpec draws from
// (RUN_FORMAT.md, README's layer table).
var SpecLayerTypes = []string{"linear", "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softplus",
	"identity", "flatten", "batchnorm1d", "layernorm", "conv2d", "maxpool2d", "avgpool2d",
	"adaptive_avgpool2d", "batchnorm2d", "residual"}

// DrawSpec draws a small valid-looking model.json spec over every layer
// type of SpecLayerTypes: a flat ([d]) or image ([C, H, W]) input, 1 to 5
// layers whose sizes usually (not always) match the shape reaching them,
// kernels, strides and paddings that may leave an empty output, residual
// blocks with random bodies and shortcuts (nested at most twice), absent
// or false biases, mse (mean or sum) or cross_entropy, and usually a final
// linear layer. The spec is meant to be read and built: it is either
// valid or refused by nn.Build, and is never checked here.
func DrawSpec(t *rapid.T) *nn.Spec {
	s := &nn.Spec{Format: nn.FormatSequentialV1, Loss: rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")}
	if s.Loss == "mse" && rapid.IntRange(0, 3).Draw(t, "sum") == 0 {
		s.LossReduction = nn.ReductionSum
	}
	if rapid.Bool().Draw(t, "image") {
		s.InputShape = []int{rapid.IntRange(1, 3).Draw(t, "C"), rapid.IntRange(1, 6).Draw(t, "H"), rapid.IntRange(1, 6).Draw(t, "W")}
	} else {
		s.InputShape = []int{rapid.IntRange(1, 6).Draw(t, "d")}
	}
	g := &specGen{t: t}
	var shape []int
	s.Layers, shape = g.seq(append([]int(nil), s.InputShape...), rapid.IntRange(1, 5).Draw(t, "layers"), 0, "")
	if rapid.IntRange(0, 4).Draw(t, "no_final_linear") > 0 {
		if len(shape) > 1 {
			s.Layers = append(s.Layers, nn.LayerSpec{Type: "flatten"})
		}
		s.Layers = append(s.Layers, g.linear(numel(shape), rapid.IntRange(1, 3).Draw(t, "K"), "final"))
	}
	return s
}

// imageTypes are the layer types that need an image input [C, H, W].
var imageTypes = []string{"conv2d", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "batchnorm2d"}

// specGen draws layers, tracking the shape that reaches them.
type specGen struct{ t *rapid.T }

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// seq draws n layers for inputs of shape in and returns them with the
// shape after them (as nn.BuildLayer finds it; the shape is kept when a
// layer is refused, so that later layers still look plausible).
func (g *specGen) seq(in []int, n, depth int, label string) ([]nn.LayerSpec, []int) {
	var out []nn.LayerSpec
	shape := in
	for i := range n {
		ls := g.layer(shape, depth, label+"["+itoa(i)+"]")
		out = append(out, ls)
		if _, next, err := nn.BuildLayer(ls, shape); err == nil {
			shape = next
		}
	}
	return out, shape
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// size is want most of the time, else another small size (a mismatch).
func (g *specGen) size(want int, label string) int {
	if rapid.IntRange(0, 7).Draw(g.t, label+"_mismatch") == 0 {
		return rapid.IntRange(0, 5).Draw(g.t, label+"_other")
	}
	return want
}

// pair draws an absent key, an int or an [h, w] pair in [lo, hi].
func (g *specGen) pair(lo, hi int, label string) nn.IntPair {
	switch rapid.IntRange(0, 2).Draw(g.t, label+"_form") {
	case 0:
		return nil
	case 1:
		return nn.IntPair{rapid.IntRange(lo, hi).Draw(g.t, label)}
	}
	return nn.IntPair{rapid.IntRange(lo, hi).Draw(g.t, label+"_h"), rapid.IntRange(lo, hi).Draw(g.t, label+"_w")}
}

func (g *specGen) linear(in, out int, label string) nn.LayerSpec {
	ls := nn.LayerSpec{Type: "linear", In: g.size(in, label+"_in"), Out: out}
	if rapid.IntRange(0, 3).Draw(g.t, label+"_nobias") == 0 {
		f := false
		ls.Bias = &f
	}
	return ls
}

func channels(shape []int) int {
	if len(shape) == 3 {
		return shape[0]
	}
	return numel(shape)
}

func (g *specGen) layer(shape []int, depth int, label string) nn.LayerSpec {
	t := g.t
	types := SpecLayerTypes
	if depth >= 2 {
		types = types[:len(types)-1] // no residual deeper than two levels
	}
	// Mostly a type that takes this shape (the image layers need [C, H, W]).
	if rapid.IntRange(0, 7).Draw(t, label+"any_type") > 0 {
		var fit []string
		for _, typ := range types {
			if len(shape) == 3 || !slices.Contains(imageTypes, typ) {
				fit = append(fit, typ)
			}
		}
		types = fit
	}
	typ := rapid.SampledFrom(types).Draw(t, label+"type")
	ls := nn.LayerSpec{Type: typ}
	switch typ {
	case "linear":
		return g.linear(numel(shape), rapid.IntRange(1, 5).Draw(t, label+"out"), label)
	case "leaky_relu":
		if rapid.Bool().Draw(t, label+"slope?") {
			v := rapid.Float64Range(-1, 1).Draw(t, label+"slope")
			ls.Slope = &v
		}
	case "softplus":
		if rapid.Bool().Draw(t, label+"beta?") {
			b := rapid.Float64Range(0.25, 4).Draw(t, label+"beta")
			th := rapid.Float64Range(0.5, 20).Draw(t, label+"threshold")
			ls.Beta, ls.Threshold = &b, &th
		}
	case "gelu":
		ls.Approximate = rapid.SampledFrom([]string{"", "none", "tanh"}).Draw(t, label+"approximate")
	case "batchnorm1d", "batchnorm2d":
		switch rapid.IntRange(0, 3).Draw(t, label+"features_key") {
		case 1:
			ls.Features = g.size(channels(shape), label+"features")
		case 2: // batchnorm1d only (batchnorm2d refuses in and out)
			ls.In = g.size(channels(shape), label+"features")
		case 3:
			ls.Out = g.size(channels(shape), label+"features")
		}
		if typ == "batchnorm2d" && (ls.In != 0 || ls.Out != 0) && rapid.IntRange(0, 7).Draw(t, label+"keep_in") > 0 {
			ls.Features, ls.In, ls.Out = max(ls.In, ls.Out), 0, 0
		}
		if rapid.Bool().Draw(t, label+"eps?") {
			e := rapid.Float64Range(1e-5, 0.1).Draw(t, label+"eps")
			ls.Eps = &e
		}
	case "layernorm":
		switch rapid.IntRange(0, 2).Draw(t, label+"shape_key") {
		case 1:
			ls.Shape = []int{g.size(shape[len(shape)-1], label+"shape")}
		case 2:
			ls.Shape = append([]int(nil), shape...)
		}
		if rapid.Bool().Draw(t, label+"eps?") {
			e := rapid.Float64Range(1e-5, 0.1).Draw(t, label+"eps")
			ls.Eps = &e
		}
		if rapid.Bool().Draw(t, label+"affine?") {
			a := rapid.Bool().Draw(t, label+"affine")
			ls.Affine = &a
		}
	case "conv2d":
		ls.In = g.size(channels(shape), label+"in")
		ls.Out = rapid.IntRange(1, 3).Draw(t, label+"out")
		ls.Kernel = g.pair(1, 4, label+"kernel")
		if ls.Kernel == nil {
			ls.Kernel = nn.IntPair{rapid.IntRange(1, 3).Draw(t, label+"kernel1")}
		}
		ls.Stride = g.pair(1, 3, label+"stride")
		ls.Padding = g.pair(0, 2, label+"padding")
		if rapid.IntRange(0, 3).Draw(t, label+"nobias") == 0 {
			f := false
			ls.Bias = &f
		}
	case "maxpool2d", "avgpool2d":
		ls.Kernel = g.pair(1, 4, label+"kernel")
		if ls.Kernel == nil {
			ls.Kernel = nn.IntPair{rapid.IntRange(1, 3).Draw(t, label+"kernel1")}
		}
		ls.Stride = g.pair(1, 3, label+"stride")
		ls.Padding = g.pair(0, 2, label+"padding")
	case "adaptive_avgpool2d":
		ls.Output = g.pair(1, 4, label+"output")
		if ls.Output == nil {
			ls.Output = nn.IntPair{1}
		}
	case "residual":
		body, out := g.seq(shape, rapid.SampledFrom([]int{0, 1, 1, 2, 2, 3, 3, 3}).Draw(t, label+"body_len"), depth+1, label+"body")
		ls.Body = body
		switch rapid.IntRange(0, 3).Draw(t, label+"shortcut_kind") {
		case 1: // a projection to the body's output shape
			if len(out) == 3 && len(shape) == 3 {
				ls.Shortcut = []nn.LayerSpec{{Type: "conv2d", In: shape[0], Out: out[0], Kernel: nn.IntPair{1},
					Stride: nn.IntPair{max(1, shape[1]/max(1, out[1])), max(1, shape[2]/max(1, out[2]))}}}
			} else {
				if len(shape) > 1 {
					ls.Shortcut = []nn.LayerSpec{{Type: "flatten"}}
				}
				ls.Shortcut = append(ls.Shortcut, g.linear(numel(shape), numel(out), label+"shortcut"))
			}
		case 2: // random
			ls.Shortcut, _ = g.seq(shape, rapid.IntRange(1, 2).Draw(t, label+"shortcut_len"), depth+1, label+"shortcut")
		}
		if rapid.Bool().Draw(t, label+"scale?") {
			sc := rapid.Bool().Draw(t, label+"scale")
			ls.Scale = &sc
		}
	}
	return ls
}

// RandomState returns a state with every tensor m expects (nn.Model.Expected)
// filled with scale·N(0, 1) values; BatchNorm running variances are
// |N(0, 1)| + 0.1 and num_batches_tracked is a small count.
func RandomState(m *nn.Model, rng *rand.Rand, scale float64) nn.State {
	s := nn.State{}
	for _, e := range m.Expected() {
		t := nn.NewTensor(e.Shape...)
		for i := range t.Data {
			switch {
			case hasSuffix(e.Key, "running_var"):
				t.Data[i] = math.Abs(rng.NormFloat64()) + 0.1
			case hasSuffix(e.Key, "num_batches_tracked"):
				t.Data[i] = float64(rng.IntN(10))
			default:
				t.Data[i] = scale * rng.NormFloat64()
			}
		}
		s[e.Key] = t
	}
	return s
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }
