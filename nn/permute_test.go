package nn

import "testing"

func TestPermRoleString(t *testing.T) {
	for _, c := range []struct {
		r    PermRole
		want string
	}{{PermRefused, "refused"}, {PermCarry, "carry"}, {PermMix, "mix"}, {PermSum, "sum"}, {PermRole(9), "PermRole(9)"}} {
		if got := c.r.String(); got != c.want {
			t.Errorf("%d: %q, want %q", int(c.r), got, c.want)
		}
	}
}

// permCheck walks layers on input shape in, descending into blocks as
// weight matching does, and checks every declaration against the layer's
// tensors: each named tensor exists with the axis in range, a PermMix
// layer's output axes have Units entries and its input axes one per input
// unit (channel or feature), a PermCarry layer's tensors one per unit,
// flatten's Spread is H·W. It records the roles and types it saw.
func permCheck(t *testing.T, layers []Layer, in []int, seen map[string]PermRole) {
	t.Helper()
	shape := in
	for _, l := range layers {
		pm := PermutationOf(l, shape)
		if r, ok := seen[l.Type()]; ok && r != pm.Role {
			t.Errorf("%s: role %v here, %v elsewhere", l.Type(), pm.Role, r)
		}
		seen[l.Type()] = pm.Role
		params := map[string][]int{}
		for _, p := range l.Params() {
			params[p.Name] = p.Shape
		}
		units := shape[0] // channels of [C, H, W], features of [width]
		size := func(ax PermAxis) int {
			s, ok := params[ax.Param]
			if !ok || ax.Axis >= len(s) {
				t.Fatalf("%s declares %s axis %d; its tensors are %v", l.Type(), ax.Param, ax.Axis, params)
			}
			return s[ax.Axis]
		}
		for _, ax := range pm.In {
			if got := size(ax); got != units {
				t.Errorf("%s on %v: %s axis %d has %d entries, want one per input unit (%d)", l.Type(), shape, ax.Param, ax.Axis, got, units)
			}
		}
		switch pm.Role {
		case PermMix:
			out := ShapeAfter(l, shape)
			if pm.Units != out[0] {
				t.Errorf("%s: %d units, output %v", l.Type(), pm.Units, out)
			}
			for _, ax := range pm.Out {
				if got := size(ax); got != pm.Units {
					t.Errorf("%s: %s axis %d has %d entries, want %d", l.Type(), ax.Param, ax.Axis, got, pm.Units)
				}
			}
		case PermCarry:
			if len(pm.Out) != 0 || pm.Units != 0 {
				t.Errorf("%s: carries the permutation but declares new units", l.Type())
			}
			wantSpread := 0
			if l.Type() == "flatten" && len(shape) == 3 {
				wantSpread = shape[1] * shape[2]
			}
			if pm.Spread != wantSpread {
				t.Errorf("%s on %v: spread %d, want %d", l.Type(), shape, pm.Spread, wantSpread)
			}
		case PermSum:
			b, ok := l.(Block)
			if !ok {
				t.Fatalf("%s: a sum of branches without branches", l.Type())
			}
			for _, br := range b.Branches() {
				permCheck(t, br.Layers, shape, seen)
			}
		}
		shape = ShapeAfter(l, shape)
	}
}

// Every layer type's permutation declaration agrees with its tensors, on
// the built-in architectures and models holding every other layer type;
// layernorm declares none (weight matching refuses it).
func TestPermutationDeclarations(t *testing.T) {
	var specs []*Spec
	for _, name := range []string{"resnet-8-bn", "resnet-8-nobn-scale", "vgg-small", "lenet"} {
		s, _, err := BuiltinSpec(name, "cross_entropy")
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	specs = append(specs,
		InsertBatchNorm(MLPSpec([]int{5, 7, 4}, "tanh", "mse")),
		&Spec{Format: FormatSequentialV1, InputShape: []int{2, 6, 6}, Loss: "mse", Layers: []LayerSpec{
			{Type: "conv2d", In: 2, Out: 3, Kernel: IntPair{3}, Padding: IntPair{1}}, {Type: "leaky_relu"},
			{Type: "avgpool2d", Kernel: IntPair{2}}, {Type: "sigmoid"}, {Type: "gelu"}, {Type: "softplus"},
			{Type: "batchnorm2d"}, {Type: "adaptive_avgpool2d", Output: IntPair{2}}, {Type: "identity"},
			{Type: "flatten"}, {Type: "layernorm"}, {Type: "linear", In: 12, Out: 4, Bias: new(bool)},
			{Type: "residual", Body: []LayerSpec{{Type: "linear", In: 4, Out: 4}, {Type: "relu"}}, Shortcut: []LayerSpec{{Type: "linear", In: 4, Out: 4}}},
		}})
	seen := map[string]PermRole{}
	for _, s := range specs {
		m, err := Build(s)
		if err != nil {
			t.Fatal(err)
		}
		permCheck(t, m.Layers, s.InputShape, seen)
	}
	for _, typ := range LayerTypes {
		r, ok := seen[typ]
		switch {
		case !ok:
			t.Errorf("layer type %s not exercised: add it to this test", typ)
		case typ == "layernorm" && r != PermRefused:
			t.Errorf("layernorm declares %v", r)
		case typ != "layernorm" && r == PermRefused:
			t.Errorf("%s declares no permutation", typ)
		}
	}
	want := map[string]PermRole{"linear": PermMix, "conv2d": PermMix, "residual": PermSum, "batchnorm1d": PermCarry, "batchnorm2d": PermCarry, "maxpool2d": PermCarry, "relu": PermCarry, "flatten": PermCarry}
	for typ, r := range want {
		if seen[typ] != r {
			t.Errorf("%s: role %v, want %v", typ, seen[typ], r)
		}
	}
}
