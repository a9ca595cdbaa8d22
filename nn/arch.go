package nn

import (
	"fmt"
	"strconv"
	"strings"
)

// ResNetVariant is the normalisation and initialisation of a built-in
// ResNet (the paper's CIFAR ResNet variants; Lucas et al. 2021, after He et
// al. 2016 and Zhang et al. 2019).
type ResNetVariant int

// The three variants of `--arch resnet-N-VARIANT`.
const (
	// ResNetBN has a batchnorm2d after every convolution.
	ResNetBN ResNetVariant = iota
	// ResNetBNIdentity is ResNetBN with the γ of the last batchnorm2d of
	// each block's body zero at initialisation (Goyal et al. 2017), so each
	// block starts as its shortcut (ZeroInitResidual).
	ResNetBNIdentity
	// ResNetNoBNScale has no normalisation; each block's body is
	// multiplied by a learnable scalar initialised to 0 (Fixup-like,
	// RUN_FORMAT.md "residual" `scale`), and its convolutions have biases.
	ResNetNoBNScale
)

var resNetVariantNames = [...]string{"bn", "bn-identity", "nobn-scale"}

// String is the variant's --arch suffix: "bn", "bn-identity" or "nobn-scale".
func (v ResNetVariant) String() string {
	if v < 0 || int(v) >= len(resNetVariantNames) {
		return "ResNetVariant(" + strconv.Itoa(int(v)) + ")"
	}
	return resNetVariantNames[v]
}

// BuiltinArchs lists the built-in architecture names of `certify train
// --arch` (besides the "784-256-10" MLP shorthand), all for 28×28×1
// images (input_shape [1, 28, 28]) and 10 classes.
var BuiltinArchs = func() []string {
	var a []string
	for _, n := range []int{8, 14, 20} {
		for _, v := range resNetVariantNames {
			a = append(a, fmt.Sprintf("resnet-%d-%s", n, v))
		}
	}
	return append(a, "vgg-small", "lenet")
}()

// IsBuiltinArch says whether name is one of BuiltinArchs (or names a
// ResNet of the resnet-N-VARIANT family, which BuiltinSpec checks), as
// opposed to an MLP width list.
func IsBuiltinArch(name string) bool {
	return name == "vgg-small" || name == "lenet" || strings.HasPrefix(name, "resnet-")
}

// BuiltinSpec is the model.json of the built-in architecture name (one of
// BuiltinArchs) with the given loss ("cross_entropy" or "mse"):
//
//   - resnet-N-VARIANT, N = 6n+2 ∈ {8, 14, 20}: the CIFAR ResNet of He et
//     al. (2016, §4.2) scaled to 28×28×1: a 3×3 conv with 16 channels, three
//     stages of n basic blocks (conv3×3, [BN], ReLU, conv3×3, [BN]) with 16,
//     32 and 64 channels, the first block of stages 2 and 3 downsampling by
//     stride 2 with a 1×1 conv (+BN) shortcut, a ReLU after each block,
//     global average pooling and a linear layer to 10 classes. Convolutions
//     followed by a BatchNorm have no bias (as torchvision's). VARIANT is a
//     ResNetVariant's String.
//   - vgg-small: two VGG stages (conv3×3-16 ×2, max-pool 2; conv3×3-32 ×2,
//     max-pool 2), then linear 1568→64→10, ReLU throughout.
//   - lenet: LeNet-5 with ReLU and max-pool: conv5×5-6 (padding 2),
//     max-pool 2, conv5×5-16, max-pool 2, linear 400→120→84→10.
//
// It returns the variant too (ResNetBN for the non-ResNets): for
// ResNetBNIdentity the caller zeroes the last γ of each block after
// initialisation (ZeroInitResidual). Unknown names are an error listing
// BuiltinArchs.
func BuiltinSpec(name, loss string) (*Spec, ResNetVariant, error) {
	s := &Spec{Format: FormatSequentialV1, InputShape: []int{1, 28, 28}, Loss: loss}
	switch {
	case name == "vgg-small":
		s.Layers = vggSmall()
		return s, ResNetBN, nil
	case name == "lenet":
		s.Layers = leNet()
		return s, ResNetBN, nil
	}
	unknown := fmt.Errorf("--arch %q: unknown built-in architecture; want an MLP's widths (e.g. 784-256-10) or one of %s", name, strings.Join(BuiltinArchs, ", "))
	rest, ok := strings.CutPrefix(name, "resnet-")
	if !ok {
		return nil, 0, unknown
	}
	depth, variant, ok := strings.Cut(rest, "-")
	if !ok {
		return nil, 0, unknown
	}
	n, err := strconv.Atoi(depth)
	if err != nil || (n != 8 && n != 14 && n != 20) {
		return nil, 0, unknown
	}
	for v, vn := range resNetVariantNames {
		if vn == variant {
			s.Layers = resNet((n-2)/6, ResNetVariant(v))
			return s, ResNetVariant(v), nil
		}
	}
	return nil, 0, unknown
}

func intPair(k int) IntPair { return IntPair{k} }

func conv(in, out, k, stride, pad int, bias bool) LayerSpec {
	ls := LayerSpec{Type: "conv2d", In: in, Out: out, Kernel: intPair(k)}
	if stride != 1 {
		ls.Stride = intPair(stride)
	}
	if pad != 0 {
		ls.Padding = intPair(pad)
	}
	if !bias {
		f := false
		ls.Bias = &f
	}
	return ls
}

// resNet is the layer list of a 6n+2-layer ResNet of variant v.
func resNet(n int, v ResNetVariant) []LayerSpec {
	bn := v != ResNetNoBNScale
	norm := func(c int) []LayerSpec {
		if !bn {
			return nil
		}
		return []LayerSpec{{Type: "batchnorm2d", Features: c}}
	}
	relu := LayerSpec{Type: "relu"}
	layers := append([]LayerSpec{conv(1, 16, 3, 1, 1, !bn)}, norm(16)...)
	layers = append(layers, relu)
	in := 16
	for stage, c := range []int{16, 32, 64} {
		for b := 0; b < n; b++ {
			stride := 1
			if stage > 0 && b == 0 {
				stride = 2
			}
			body := append([]LayerSpec{conv(in, c, 3, stride, 1, !bn)}, norm(c)...)
			body = append(body, relu, conv(c, c, 3, 1, 1, !bn))
			body = append(body, norm(c)...)
			block := LayerSpec{Type: "residual", Body: body}
			if stride != 1 || in != c {
				block.Shortcut = append([]LayerSpec{conv(in, c, 1, stride, 0, !bn)}, norm(c)...)
			}
			if !bn {
				t := true
				block.Scale = &t
			}
			layers = append(layers, block, relu)
			in = c
		}
	}
	return append(layers,
		LayerSpec{Type: "adaptive_avgpool2d", Output: intPair(1)},
		LayerSpec{Type: "flatten"},
		LayerSpec{Type: "linear", In: 64, Out: 10})
}

func vggSmall() []LayerSpec {
	relu, pool := LayerSpec{Type: "relu"}, LayerSpec{Type: "maxpool2d", Kernel: intPair(2)}
	return []LayerSpec{
		conv(1, 16, 3, 1, 1, true), relu, conv(16, 16, 3, 1, 1, true), relu, pool,
		conv(16, 32, 3, 1, 1, true), relu, conv(32, 32, 3, 1, 1, true), relu, pool,
		{Type: "flatten"}, {Type: "linear", In: 32 * 7 * 7, Out: 64}, relu, {Type: "linear", In: 64, Out: 10},
	}
}

func leNet() []LayerSpec {
	relu, pool := LayerSpec{Type: "relu"}, LayerSpec{Type: "maxpool2d", Kernel: intPair(2)}
	return []LayerSpec{
		conv(1, 6, 5, 1, 2, true), relu, pool,
		conv(6, 16, 5, 1, 0, true), relu, pool,
		{Type: "flatten"}, {Type: "linear", In: 16 * 5 * 5, Out: 120}, relu,
		{Type: "linear", In: 120, Out: 84}, relu, {Type: "linear", In: 84, Out: 10},
	}
}
