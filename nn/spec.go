package nn

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/internal/jsondup"
)

// FormatSequentialV1 is the only model.json format this build reads (RUN_FORMAT.md).
const FormatSequentialV1 = "sequential/v1"

// Spec is the architecture of a run, the content of model.json (RUN_FORMAT.md):
// a PyTorch nn.Sequential described layer by layer, the input shape of one
// example (e.g. [784]) and the training loss ("mse" or "cross_entropy").
type Spec struct {
	Format     string      `json:"format"`
	InputShape []int       `json:"input_shape"`
	Layers     []LayerSpec `json:"layers"`
	Loss       string      `json:"loss"`
	// LossReduction is how an mse loss reduces over the K outputs of one
	// example: "mean" (absent; PyTorch's default, L = (1/(N·K)) Σ‖γ_i − y_i‖²)
	// or "sum" (the per-example summed squared error of Lucas et al. 2021's
	// autoencoders, L = (1/N) Σ‖γ_i − y_i‖², THEORY.md §11). Either way the
	// mean is taken over the N examples. cross_entropy accepts only "mean".
	LossReduction string `json:"loss_reduction,omitempty"`
}

// Loss reductions of Spec.LossReduction.
const (
	ReductionMean = "mean"
	ReductionSum  = "sum"
)

// Reduction is the spec's loss reduction, ReductionMean when absent.
func (s *Spec) Reduction() string {
	if s.LossReduction == "" {
		return ReductionMean
	}
	return s.LossReduction
}

// OutputDivisor is what the summed per-example loss of an example with k
// outputs is divided by, besides the number of examples: k for mse with mean
// reduction, 1 for mse with sum reduction and for cross_entropy (THEORY.md
// §4, §11).
func (s *Spec) OutputDivisor(k int) int {
	if s.Loss == "mse" && s.Reduction() == ReductionMean {
		return k
	}
	return 1
}

// LayerSpec is one layer of a Spec. Type is one of the names in LayerTypes;
// the other fields apply to some types only and zero means "PyTorch's default".
type LayerSpec struct {
	Type string `json:"type"`
	// In and Out are a linear layer's input and output widths (and a
	// batchnorm1d's feature count in In or Out, called num_features in PyTorch).
	In  int `json:"in,omitempty"`
	Out int `json:"out,omitempty"`
	// Features is batchnorm1d's num_features, accepted instead of In or Out;
	// absent (with In and Out) means the previous layer's width.
	Features int `json:"features,omitempty"`
	// Bias says whether a linear layer has a bias; absent means true.
	Bias *bool `json:"bias,omitempty"`
	// Slope is leaky_relu's negative slope; absent means PyTorch's 0.01.
	Slope *float64 `json:"slope,omitempty"`
	// Eps and Momentum are batchnorm1d's; absent means 1e-5 and 0.1.
	Eps      *float64 `json:"eps,omitempty"`
	Momentum *float64 `json:"momentum,omitempty"`
	// Beta and Threshold are softplus's; absent means 1 and 20.
	Beta      *float64 `json:"beta,omitempty"`
	Threshold *float64 `json:"threshold,omitempty"`
	// Approximate is gelu's "none" (exact, the default) or "tanh".
	Approximate string `json:"approximate,omitempty"`
	// Shape is layernorm's normalised trailing dimensions (PyTorch's
	// normalized_shape); absent means the previous layer's width.
	Shape []int `json:"shape,omitempty"`
	// Affine is layernorm's elementwise_affine; absent means true.
	Affine *bool `json:"affine,omitempty"`
	// Kernel, Stride and Padding are conv2d's and the pools' (RUN_FORMAT.md
	// "Convolutional and residual models"): an int or [h, w]; absent stride
	// means 1 for conv2d and the kernel for the pools, absent padding 0.
	Kernel  IntPair `json:"kernel,omitempty"`
	Stride  IntPair `json:"stride,omitempty"`
	Padding IntPair `json:"padding,omitempty"`
	// Output is adaptive_avgpool2d's output size [oh, ow] (an int: square).
	Output IntPair `json:"output,omitempty"`

	// inShape is the shape of one example entering the layer ([C, H, W]
	// for images, [width] otherwise), set by Build from input_shape and the
	// layers before (not a model.json key).
	inShape []int
	// Body and Shortcut are a residual block's two sequences of layers
	// (RUN_FORMAT.md "residual"); an empty or absent shortcut is the identity.
	Body     []LayerSpec `json:"body,omitempty"`
	Shortcut []LayerSpec `json:"shortcut,omitempty"`
	// Scale is a residual block's learnable scalar gain on the body
	// (initialised to 0); absent means false (gain 1, no tensor).
	Scale *bool `json:"scale,omitempty"`
}

// IntPair is a model.json size written as an int or as [h, w] (PyTorch's
// int-or-tuple arguments). It keeps the form it was read in: one element
// for an int, two for a pair.
type IntPair []int

// UnmarshalJSON reads an int or an array of two ints.
func (p *IntPair) UnmarshalJSON(b []byte) error {
	var k int
	if err := json.Unmarshal(b, &k); err == nil {
		*p = IntPair{k}
		return nil
	}
	var hw []int
	if err := json.Unmarshal(b, &hw); err != nil || len(hw) != 2 {
		return fmt.Errorf("want an int or [h, w], found %s", b)
	}
	*p = hw
	return nil
}

// check refuses a pair that is neither an int nor [h, w], naming the layer
// type and the key.
func (p IntPair) check(typ, key string) error {
	if len(p) > 2 || (len(p) == 0 && p != nil) {
		return fmt.Errorf("%s: %s: want an int or [h, w], found %v", typ, key, []int(p))
	}
	return nil
}

// checkPairs applies check to the kernel, stride, padding and output of ls.
func (ls LayerSpec) checkPairs(typ string) error {
	for _, f := range []struct {
		key string
		p   IntPair
	}{{"kernel", ls.Kernel}, {"stride", ls.Stride}, {"padding", ls.Padding}, {"output", ls.Output}} {
		if err := f.p.check(typ, f.key); err != nil {
			return err
		}
	}
	return nil
}

// MarshalJSON writes the form read: an int or [h, w].
func (p IntPair) MarshalJSON() ([]byte, error) {
	if len(p) == 1 {
		return json.Marshal(p[0])
	}
	return json.Marshal([]int(p))
}

// HW returns the (h, w) pair, def for both when p is absent.
func (p IntPair) HW(def int) (h, w int) {
	switch len(p) {
	case 0:
		return def, def
	case 1:
		return p[0], p[0]
	}
	return p[0], p[1]
}

// InShape is the shape of one example entering the layer, as Build found
// it from input_shape and the layers before ([C, H, W] for an image;
// [width] after a layer that flattens).
func (ls LayerSpec) InShape() []int { return ls.inShape }

// LayerTypes lists the layer type names this build supports, in the spelling of
// RUN_FORMAT.md.
var LayerTypes []string

// ReadSpec reads and validates model.json at path. Errors name the file and
// the offending field (e.g. "model.json: layers[3].type: unsupported layer type \"conv2d\"").
func ReadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSpec(path, b)
}

// ParseSpec decodes and validates the model.json document b as ReadSpec
// does, naming path (the file b came from) in its errors. It touches no
// file, so the fuzz test of the reader can run it thousands of times a
// second.
func ParseSpec(path string, b []byte) (*Spec, error) {
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, locateDecodeError(b, err))
	}
	if err := jsondup.Check(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkLayerKeys(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// locateDecodeError names the model.json field a failed decode of b
// stopped at, in model.json's own terms: "layers[2].body[0].in: want an
// integer, found a string", where encoding/json would name the Go struct
// field ("Go struct field LayerSpec.layers.in of type int"). It decodes
// each layer on its own to find the index; errors it cannot place are
// returned as "invalid JSON: ..." unchanged.
func locateDecodeError(b []byte, err error) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineColumn(b, se.Offset)
			return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, err)
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if raw, ok := top["layers"]; ok {
		if e := locateInLayers("layers", raw); e != nil {
			return e
		}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" && !strings.Contains(te.Field, ".") {
		return fmt.Errorf("%s: want %s, found %s", te.Field, jsonKind(te.Type.Kind().String()), jsonValueName(te.Value))
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// lineColumn is the 1-based line and column (in bytes) of the byte just
// before offset in b: json.SyntaxError.Offset counts the bytes read,
// including the offending one, so this is where the error was found.
func lineColumn(b []byte, offset int64) (line, col int) {
	if offset > int64(len(b)) {
		offset = int64(len(b))
	}
	line, col = 1, 1
	for _, c := range b[:max(offset-1, 0)] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// locateInLayers decodes the layer list raw at path one layer at a time and
// returns the first layer's error with its path, or nil.
func locateInLayers(path string, raw json.RawMessage) error {
	var layers []json.RawMessage
	if err := json.Unmarshal(raw, &layers); err != nil {
		return fmt.Errorf("%s: want a list of layers: %v", path, err)
	}
	for i, l := range layers {
		at := fmt.Sprintf("%s[%d]", path, i)
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(l, &fields); err != nil {
			return fmt.Errorf("%s: want an object, found %s", at, jsonValueName(firstToken(l)))
		}
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			if k == "body" || k == "shortcut" {
				if e := locateInLayers(at+"."+k, fields[k]); e != nil {
					return e
				}
				continue
			}
			one := map[string]json.RawMessage{k: fields[k]}
			ob, _ := json.Marshal(one)
			var ls LayerSpec
			if err := json.Unmarshal(ob, &ls); err != nil {
				var te *json.UnmarshalTypeError
				if errors.As(err, &te) {
					return fmt.Errorf("%s.%s: want %s, found %s", at, k, jsonKind(te.Type.Kind().String()), jsonValueName(te.Value))
				}
				return fmt.Errorf("%s.%s: %v", at, k, err)
			}
		}
	}
	return nil
}

// jsonKind names a Go kind as the JSON value it reads.
func jsonKind(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "float64", "float32":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a " + kind
}

// jsonValueName names a JSON value kind as encoding/json reports it
// ("string", "number", "number 1.5", "array", "object", "bool").
func jsonValueName(v string) string {
	switch {
	case v == "array":
		return "a list"
	case v == "object":
		return "an object"
	case v == "bool":
		return "true or false"
	case strings.HasPrefix(v, "number"):
		return "a " + v
	}
	return "a " + v
}

// firstToken names the kind of the JSON value b.
func firstToken(b []byte) string {
	t := strings.TrimSpace(string(b))
	switch {
	case t == "":
		return "nothing"
	case t[0] == '[':
		return "array"
	case t[0] == '"':
		return "string"
	case t[0] == 't' || t[0] == 'f':
		return "bool"
	case t == "null":
		return "null"
	}
	return "number"
}

// layerKeys lists, per layer type, the model.json keys a layer of that type
// may carry (RUN_FORMAT.md, plus softplus's beta and threshold and gelu's
// approximate, which this build also reads). A type missing here is left to
// Build, which refuses unsupported types. Layer types with their own file
// add their keys when they register (registerLayer).
var layerKeys = map[string][]string{}

// requiredKeys lists, per layer type, the model.json keys a layer of that
// type must carry (registerLayer's keys marked "!"): ReadSpec refuses a
// layer without one, naming it.
var requiredKeys = map[string][]string{}

// keyHints suggests the model.json key for a PyTorch argument name.
var keyHints = map[string]string{
	"negative_slope": "slope", "in_features": "in", "out_features": "out", "num_features": "features",
}

// checkLayerKeys refuses a layer key its type does not read (a misspelt
// or PyTorch-named key would otherwise be ignored and the default used),
// naming the layer index, the key and the accepted keys.
func checkLayerKeys(b []byte) error {
	if err := checkTopKeys(b); err != nil {
		return err
	}
	var raw struct {
		Layers []map[string]json.RawMessage `json:"layers"`
	}
	if json.Unmarshal(b, &raw) != nil {
		return nil // the typed decode already accepted it; Validate reports shape faults
	}
	return checkKeys("layers", raw.Layers)
}

// topKeys are model.json's top-level keys: the json names of Spec's fields.
var topKeys = func() []string {
	var out []string
	t := reflect.TypeFor[Spec]()
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}()

// checkTopKeys refuses a top-level key of model.json that is not one of
// topKeys: a misspelt "loss" or "input_shape" would otherwise be dropped
// and the field reported missing under its right name, and an unknown key
// silently ignored (the layers' keys are refused the same way,
// checkKeys).
func checkTopKeys(b []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return nil // the typed decode already accepted it
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if !slices.Contains(topKeys, k) {
			return fmt.Errorf("unknown top-level key %q (accepted: %s)", k, strings.Join(topKeys, ", "))
		}
	}
	return nil
}

// checkKeys is checkLayerKeys for the layers at path ("layers", or a
// residual block's "layers[2].body"), descending into the sub-layers of
// composite layers (a residual's body and shortcut).
func checkKeys(path string, layers []map[string]json.RawMessage) error {
	for i, l := range layers {
		for _, branch := range []string{"body", "shortcut"} {
			if raw, ok := l[branch]; ok {
				var subs []map[string]json.RawMessage
				if json.Unmarshal(raw, &subs) == nil {
					if err := checkKeys(fmt.Sprintf("%s[%d].%s", path, i, branch), subs); err != nil {
						return err
					}
				}
			}
		}
		var typ string
		if json.Unmarshal(l["type"], &typ) != nil {
			continue
		}
		allowed, ok := layerKeys[typ]
		if !ok {
			continue
		}
		keys := make([]string, 0, len(l))
		for k := range l {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if slices.Contains(allowed, k) {
				continue
			}
			hint := ""
			if h, ok := keyHints[k]; ok && slices.Contains(allowed, h) {
				hint = fmt.Sprintf("; PyTorch's %s is written %q here", k, h)
			}
			return fmt.Errorf("%s[%d]: unknown key %q for layer type %q (accepted: %s)%s", path, i, k, typ, strings.Join(allowed, ", "), hint)
		}
		for _, k := range requiredKeys[typ] {
			if _, ok := l[k]; !ok {
				return fmt.Errorf("%s[%d]: %s: missing key %q (a %s layer needs %s)", path, i, typ, k, typ, strings.Join(requiredKeys[typ], ", "))
			}
		}
	}
	return nil
}

// Validate checks the format, the loss, every layer's type and fields, and
// that consecutive widths agree. The error names the field.
func (s *Spec) Validate() error {
	if s.Format != FormatSequentialV1 {
		return fmt.Errorf("format: want %q, found %q", FormatSequentialV1, s.Format)
	}
	if s.Loss != "mse" && s.Loss != "cross_entropy" {
		return fmt.Errorf("loss: want \"mse\" or \"cross_entropy\", found %q", s.Loss)
	}
	switch s.LossReduction {
	case "", ReductionMean:
	case ReductionSum:
		if s.Loss != "mse" {
			return fmt.Errorf("loss_reduction: \"sum\" (over the outputs of an example) applies to mse only, found loss %q", s.Loss)
		}
	default:
		return fmt.Errorf("loss_reduction: want \"mean\" or \"sum\", found %q", s.LossReduction)
	}
	if len(s.InputShape) == 0 {
		return fmt.Errorf("input_shape: missing")
	}
	for i, d := range s.InputShape {
		if d <= 0 {
			return fmt.Errorf("input_shape[%d]: want a positive size, found %d", i, d)
		}
	}
	if len(s.Layers) == 0 {
		return fmt.Errorf("layers: empty")
	}
	_, err := Build(s)
	return err
}

// InputSize is the number of input features of one example, the product of InputShape.
func (s *Spec) InputSize() int {
	n := 1
	for _, d := range s.InputShape {
		n *= d
	}
	return n
}

// Write stores the spec as indented JSON at path, atomically (temporary name, then rename).
func (s *Spec) Write(path string) error {
	b, err := s.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

// Marshal returns the model.json document Write writes: indented JSON
// ending in a newline.
func (s *Spec) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// MLPSpec returns the spec of a multilayer perceptron with the given widths
// (e.g. [784, 64, 10]) and activation between consecutive linear layers.
func MLPSpec(widths []int, activation, loss string) *Spec {
	s := &Spec{Format: FormatSequentialV1, InputShape: []int{widths[0]}, Loss: loss}
	for i := 0; i+1 < len(widths); i++ {
		if i > 0 {
			s.Layers = append(s.Layers, LayerSpec{Type: activation})
		}
		s.Layers = append(s.Layers, LayerSpec{Type: "linear", In: widths[i], Out: widths[i+1]})
	}
	return s
}
