package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// InitSchemes lists the initialisation schemes Init accepts.
var InitSchemes = []string{"pytorch", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "lecun_normal", "lecun_uniform"}

// Init returns θ0 for the model: every linear layer's weight [out, in] drawn
// by scheme, with fan_in = in and fan_out = out (every InitDrawn layer's
// weight with its InitFans: conv2d's fan_in = in·kh·kw), then multiplied by scale (the
// paper's lever for moving weights far from initialisation: Lucas et al. 2021):
//
//	pytorch:          W ~ U(−1/√fan_in, 1/√fan_in), b ~ U(−1/√fan_in, 1/√fan_in)
//	                  (nn.Linear's reset_parameters: kaiming_uniform_ with a = √5)
//	kaiming_normal:   W ~ N(0, 2/fan_in)           (gain √2, fan_in mode), b = 0
//	kaiming_uniform:  W ~ U(−√(6/fan_in), √(6/fan_in)), b = 0
//	xavier_normal:    W ~ N(0, 2/(fan_in+fan_out)), b = 0
//	xavier_uniform:   W ~ U(−√(6/(fan_in+fan_out)), …), b = 0
//	lecun_normal:     W ~ N(0, 1/fan_in), b = 0
//	lecun_uniform:    W ~ U(−√(3/fan_in), √(3/fan_in)), b = 0
//
// Layers inside residual blocks are drawn in model order (the block's body,
// then its shortcut); a residual's scale starts at 0.
// The scale multiplies biases too. Layers declaring ParamResetter
// (batchnorm1d, batchnorm2d, layernorm) get PyTorch's reset values,
// unscaled. The draws come from a PCG generator seeded
// with seed, in model order, so a (spec, scheme, scale, seed) gives the same θ0
// on every machine; they do not reproduce PyTorch's own random stream.
func Init(m *Model, scheme string, scale float64, seed uint64) (State, error) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	s := State{}
	var drawn []Layer
	var keys []string
	_ = m.walkTree(func(key string, l Layer, _ int, _ bool) error { // in model order, into residual blocks
		if _, ok := l.(InitDrawn); ok {
			drawn, keys = append(drawn, l), append(keys, key)
		}
		return nil
	})
	for i, l := range drawn {
		fi, fo, hasBias := l.(InitDrawn).InitFans()
		fanIn, fanOut := float64(fi), float64(fo)
		var draw func() float64
		biasBound := 0.0
		uniform := func(b float64) func() float64 { return func() float64 { return b * (2*rng.Float64() - 1) } }
		normal := func(sd float64) func() float64 { return func() float64 { return sd * rng.NormFloat64() } }
		switch scheme {
		case "pytorch", "":
			draw = uniform(1 / math.Sqrt(fanIn))
			biasBound = 1 / math.Sqrt(fanIn)
		case "kaiming_normal":
			draw = normal(math.Sqrt(2 / fanIn))
		case "kaiming_uniform":
			draw = uniform(math.Sqrt(6 / fanIn))
		case "xavier_normal":
			draw = normal(math.Sqrt(2 / (fanIn + fanOut)))
		case "xavier_uniform":
			draw = uniform(math.Sqrt(6 / (fanIn + fanOut)))
		case "lecun_normal":
			draw = normal(math.Sqrt(1 / fanIn))
		case "lecun_uniform":
			draw = uniform(math.Sqrt(3 / fanIn))
		default:
			return nil, fmt.Errorf("init: unknown scheme %q (want one of %v)", scheme, InitSchemes)
		}
		ps := l.Params()
		w := NewTensor(ps[0].Shape...)
		for j := range w.Data {
			w.Data[j] = scale * draw()
		}
		s[keys[i]+".weight"] = w
		if hasBias {
			b := NewTensor(ps[1].Shape...)
			for j := range b.Data {
				b.Data[j] = scale * biasBound * (2*rng.Float64() - 1)
			}
			s[keys[i]+".bias"] = b
		}
	}
	_ = m.walkTree(func(key string, l Layer, _ int, leaf bool) error {
		resetParams(s, key, l) // normalisation layers start as PyTorch's do (weight 1, bias 0, statistics 0 and 1)
		if b, ok := l.(Block); ok && !leaf {
			for _, p := range b.OwnParams() { // a residual's scale starts at 0 (RUN_FORMAT.md)
				s[key+"."+p.Name] = NewTensor(p.Shape...)
			}
		}
		return nil
	})
	return s, nil
}
