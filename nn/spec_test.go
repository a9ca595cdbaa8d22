package nn

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestReadSpecUnknownLayerKeys: a key a layer type does not read is refused
// (a PyTorch argument name such as negative_slope would otherwise be
// ignored and the default slope 0.01 used), naming the file, the layer
// index, the key and the accepted keys; the keys the type reads are accepted.
func TestReadSpecUnknownLayerKeys(t *testing.T) {
	head := `{"format": "sequential/v1", "input_shape": [3], "loss": "mse", "layers": [{"type": "linear", "in": 3, "out": 2}, `
	for _, c := range []struct {
		name, layer string
		want        []string // substrings of the error; nil: accepted
	}{
		{"leaky_relu slope", `{"type": "leaky_relu", "slope": 0.2}`, nil},
		{"leaky_relu negative_slope", `{"type": "leaky_relu", "negative_slope": 0.2}`, []string{"layers[1]", `"negative_slope"`, "accepted: type, slope", `written "slope"`}},
		{"softplus threshhold", `{"type": "softplus", "threshhold": 5}`, []string{"layers[1]", `"threshhold"`, "beta, threshold"}},
		{"softplus beta threshold", `{"type": "softplus", "beta": 2, "threshold": 5}`, nil},
		{"gelu approximate", `{"type": "gelu", "approximate": "tanh"}`, nil},
		{"relu slope", `{"type": "relu", "slope": 0.1}`, []string{"layers[1]", `"slope"`, `"relu"`, "accepted: type)"}},
		{"batchnorm1d features", `{"type": "batchnorm1d", "features": 2, "eps": 1e-3, "momentum": 0.2}`, nil},
		{"batchnorm1d num_features", `{"type": "batchnorm1d", "num_features": 2}`, []string{`"num_features"`, `written "features"`}},
		// a key without a default, missing: named, not reported as its zero
		// value ("out=0", a first-user walkthrough)
		{"linear without out", `{"type": "linear", "in": 2}`, []string{"layers[1]: linear: missing key \"out\" (a linear layer needs in, out)"}},
		{"conv2d without kernel", `{"type": "conv2d", "in": 1, "out": 2}`, []string{"layers[1]: conv2d: missing key \"kernel\""}},
		{"nested, without out", `{"type": "residual", "body": [{"type": "linear", "in": 2}]}`, []string{"layers[1].body[0]: linear: missing key \"out\""}},
		{"residual without body", `{"type": "residual", "scale": true}`, []string{"layers[1]: residual: missing key \"body\""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "model.json")
			if err := os.WriteFile(p, []byte(head+c.layer+`]}`), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadSpec(p)
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(c.want, p) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestLayerKeysCoverLayerTypes: every supported type has an allowed-keys
// entry, and every LayerSpec JSON field is allowed for some type (so the
// table and the struct do not drift apart).
func TestLayerKeysCoverLayerTypes(t *testing.T) {
	for _, typ := range LayerTypes {
		if _, ok := layerKeys[typ]; !ok {
			t.Errorf("layer type %q has no entry in layerKeys", typ)
		}
	}
	used := map[string]bool{}
	for _, ks := range layerKeys {
		for _, k := range ks {
			used[k] = true
		}
	}
	rt := reflect.TypeOf(LayerSpec{})
	for i := 0; i < rt.NumField(); i++ {
		k := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
		if k != "" && k != "-" && !used[k] {
			t.Errorf("LayerSpec field %s (json %q) is accepted by no layer type", rt.Field(i).Name, k)
		}
	}
}

// TestReadSpecRefusesHugeShapes: a model.json whose input or a layer's
// output has more than MaxExampleElements values per example is refused,
// naming the file and the field, instead of exhausting memory (an
// adaptive_avgpool2d output of [4294967296, 1] built a window table of 2^32
// entries; found by FuzzReadSpec) or overflowing the size arithmetic; the
// bound itself is accepted.
func TestReadSpecRefusesHugeShapes(t *testing.T) {
	const big = "4294967296"
	for _, c := range []struct {
		name, spec string
		want       string // substring of the error; "": accepted
	}{
		{"adaptive output", `"input_shape": [2, 1, 1], "layers": [{"type": "adaptive_avgpool2d", "output": [` + big + `, 1]}]`,
			"layers[0]: adaptive_avgpool2d: output: shape [2, 4294967296, 1] has more than 2^24"},
		{"adaptive output square", `"input_shape": [1, 1, 1], "layers": [{"type": "adaptive_avgpool2d", "output": 65536}]`,
			"layers[0]: adaptive_avgpool2d: output: shape [1, 65536, 65536]"},
		{"input", `"input_shape": [65536, 65536, 65536], "layers": [{"type": "relu"}]`, "input_shape: shape [65536, 65536, 65536]"},
		{"linear out", `"input_shape": [1], "layers": [{"type": "linear", "in": 1, "out": ` + big + `}]`, "layers[0]: linear: output: shape [4294967296]"},
		{"in a residual body", `"input_shape": [1, 1, 1], "layers": [{"type": "residual", "body": [{"type": "conv2d", "in": 1, "out": 16777217, "kernel": 1}], "shortcut": [{"type": "flatten"}]}]`,
			"body[0]: conv2d: output: shape [16777217, 1, 1]"},
		{"below the bound", `"input_shape": [1, 1, 1], "layers": [{"type": "adaptive_avgpool2d", "output": [16384, 1]}, {"type": "flatten"}, {"type": "linear", "in": 16384, "out": 16384}]`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "model.json")
			if err := os.WriteFile(path, []byte(`{"format": "sequential/v1", "loss": "mse", `+c.spec+`}`), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadSpec(path)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path)):
				t.Fatalf("error %v, want one naming %s and containing %q", err, path, c.want)
			}
		})
	}
}

// TestSpecRefusesUnknownTopLevelKeys: a misspelt or unknown top-level key
// of model.json is refused by name (a typo of "loss" used to be reported
// as "loss: ... found \"\"" and a comment key ignored), and every key
// Marshal writes is accepted back.
func TestSpecRefusesUnknownTopLevelKeys(t *testing.T) {
	ok := `{"format": "sequential/v1", "input_shape": [3], "layers": [{"type": "linear", "in": 3, "out": 2}], "loss": "mse"`
	if _, err := ParseSpec("m.json", []byte(ok+`}`)); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	for _, c := range []struct{ extra, key string }{
		{`, "comment": "x"`, "comment"},
		{`, "los": "mse"`, "los"},
		{`, "input_shap": [3]`, "input_shap"},
	} {
		_, err := ParseSpec("m.json", []byte(ok+c.extra+`}`))
		if err == nil || !strings.Contains(err.Error(), `m.json: unknown top-level key "`+c.key+`"`) {
			t.Errorf("extra %s: err %v, want the unknown key %q named", c.extra, err, c.key)
		}
	}
	s := MLPSpec([]int{3, 4, 2}, "relu", "mse")
	s.LossReduction = "sum"
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSpec("m.json", b); err != nil {
		t.Errorf("Marshal's own output refused: %v", err)
	}
}
