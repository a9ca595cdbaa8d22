package onnx

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"google.golang.org/protobuf/proto"

	"github.com/certify-mli/certify/nn"
	pb "github.com/certify-mli/certify/nn/onnx/onnxpb"
)

// TestResidualAgainstTorch converts the conv nets testdata/gen_conv.py
// exported from PyTorch (conv2d, batchnorm2d, two residual blocks — a conv
// shortcut with a BatchNorm2d in the body, the identity shortcut with a
// scale —, maxpool2d, avgpool2d with padding, global average pooling, and
// layernorm at opset 17) and checks that every tensor lands under the
// module's own state_dict key with torch's values and that the model
// certify builds gives PyTorch's outputs (float64 from the same weights).
func TestResidualAgainstTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/resnet.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx map[string]json.RawMessage
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	var xs [][][][]float64
	if err := json.Unmarshal(fx["x"], &xs); err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(len(xs), 36, nil)
	for i := range xs {
		for r := 0; r < 6; r++ {
			for c := 0; c < 6; c++ {
				x.Set(i, r*6+c, xs[i][0][r][c])
			}
		}
	}
	for _, tag := range []string{"resnet13", "resnet17"} {
		t.Run(tag, func(t *testing.T) {
			var want struct {
				Y         [][]float64 `json:"y"`
				StateDict map[string]struct {
					Values []float64 `json:"values"`
				} `json:"state_dict"`
			}
			if err := json.Unmarshal(fx[tag], &want); err != nil {
				t.Fatal(err)
			}
			m, err := Read(filepath.Join("testdata", tag+".onnx"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			m.Spec.Loss = "cross_entropy"
			model, err := nn.Build(m.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := model.Check(m.State, tag); err != nil {
				t.Fatal(err)
			}
			if len(m.Derived) != 0 || m.BatchNormNodes != 2 {
				t.Errorf("derived %v, %d BatchNormalization nodes: want none and 2", m.Derived, m.BatchNormNodes)
			}
			for k, w := range want.StateDict {
				if strings.HasSuffix(k, "num_batches_tracked") {
					continue
				}
				got, ok := m.State[k]
				if !ok {
					t.Errorf("%s: missing (have %v)", k, m.State.Names())
					continue
				}
				if !slicesEqual(got.Data, w.Values) {
					t.Errorf("%s = %v, torch %v", k, got.Data, w.Values)
				}
			}
			if len(m.State) != len(want.StateDict) {
				t.Errorf("%d tensors, torch's state_dict %d: %v", len(m.State), len(want.StateDict), m.State.Names())
			}
			y := model.Forward(m.State, x)
			for i := range want.Y {
				for k, w := range want.Y[i] {
					if e := math.Abs(y.At(i, k)-w) / math.Max(1, math.Abs(w)); e > 1e-12 {
						t.Errorf("output[%d][%d] = %.17g, torch %.17g", i, k, y.At(i, k), w)
					}
				}
			}
		})
	}
}

func slicesEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConvRefusals: what PyTorch's layers can express and certify's cannot
// is refused naming the attribute and the node; an evaluation-mode export
// (BatchNorm2d folded into the Conv) is refused as folded unless
// AllowFolded, which notes it.
func TestConvRefusals(t *testing.T) {
	for _, c := range []struct{ file, node string }{
		{"group.onnx", "group=2"},
		{"ceil.onnx", "ceil_mode=1"},
		{"nopad.onnx", "count_include_pad=0"},
	} {
		_, err := Read(filepath.Join("testdata", c.file), Options{})
		if err == nil || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.node) || !strings.Contains(err.Error(), `node "/0/`) {
			t.Errorf("%s: error %v: want ErrUnsupported naming %s and the node", c.file, err, c.node)
		}
	}
	_, err := Read("testdata/resnet_folded.onnx", Options{})
	if !errors.Is(err, ErrFolded) || !strings.Contains(err.Error(), "onnx::Conv_") || !strings.Contains(err.Error(), "TrainingMode.PRESERVE") {
		t.Errorf("folded graph: %v: want ErrFolded naming the onnx::Conv weights and the flag that keeps BatchNorm", err)
	}
	m, err := Read("testdata/resnet_folded.onnx", Options{AllowFolded: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.BatchNormNodes != 0 || len(m.Derived) != 4 || !strings.Contains(strings.Join(m.Notes, "\n"), "FOLDED PARAMETERISATION") {
		t.Errorf("folded graph read: %d BatchNorm nodes, derived %v, notes %q", m.BatchNormNodes, m.Derived, m.Notes)
	}
}

// FuzzGraphEdits rewires the residual net of testdata/resnet17.onnx (every
// new operator, two residual blocks) by the fuzzer's bytes — each pair
// (k, v) points input k mod (all inputs) at value v mod (all values), a
// zero pair drops a node — so the branch and merge search of residual
// meets graphs that byte-level fuzzing rarely builds: a model or an
// error, never a panic.
func FuzzGraphEdits(f *testing.F) {
	b, err := os.ReadFile("testdata/resnet17.onnx")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add([]byte{3, 7})
	f.Add([]byte{11, 2, 0, 0, 5, 1})
	f.Fuzz(func(t *testing.T, edits []byte) {
		var m pb.ModelProto
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		nodes := m.GetGraph().GetNode()
		var values []string
		for _, in := range m.GetGraph().GetInput() {
			values = append(values, in.GetName())
		}
		for _, n := range nodes {
			values = append(values, n.GetOutput()...)
		}
		for e := 0; e+1 < len(edits) && len(nodes) > 0; e += 2 {
			k, v := int(edits[e]), int(edits[e+1])
			if k == 0 && v == 0 {
				nodes = nodes[:len(nodes)-1]
				continue
			}
			n := nodes[k%len(nodes)]
			if len(n.Input) > 0 {
				n.Input[v%len(n.Input)] = values[(k*31+v)%len(values)]
			}
		}
		m.Graph.Node = nodes
		out, _ := proto.Marshal(&m)
		if r, err := Decode(out, Options{AllowFolded: true}); err == nil {
			r.Spec.Loss = "mse"
			if err := r.Spec.Validate(); err != nil {
				t.Errorf("a graph read without error gives an invalid model.json: %v", err)
			}
		}
	})
}

// TestNestedResidual: a residual block whose body holds another block
// (identity shortcut, scale) is recovered with both levels of nesting, the
// keys of PyTorch's state_dict, and PyTorch's outputs.
func TestNestedResidual(t *testing.T) {
	b, err := os.ReadFile("testdata/nested.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		X    [][][][]float64 `json:"x"`
		Y    [][]float64     `json:"y"`
		Keys []string        `json:"keys"`
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	m, err := Read("testdata/nested.onnx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := m.State.Names()
	if !slices.Equal(sortedCopy(got), sortedCopy(fx.Keys)) {
		t.Errorf("keys %v, torch's state_dict %v", got, fx.Keys)
	}
	m.Spec.Loss = "mse"
	model, err := nn.Build(m.Spec)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(len(fx.X), 16, nil)
	for i := range fx.X {
		for r := 0; r < 4; r++ {
			for c := 0; c < 4; c++ {
				x.Set(i, r*4+c, fx.X[i][0][r][c])
			}
		}
	}
	y := model.Forward(m.State, x)
	for i := range fx.Y {
		for k, w := range fx.Y[i] {
			if e := math.Abs(y.At(i, k)-w) / math.Max(1, math.Abs(w)); e > 1e-12 {
				t.Errorf("output[%d][%d] = %.17g, torch %.17g", i, k, y.At(i, k), w)
			}
		}
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	slices.Sort(c)
	return c
}
