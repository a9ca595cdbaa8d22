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

type mlpFixture struct {
	X         [][][]float64 `json:"x"`
	Y         [][]float64   `json:"y"`
	StateDict map[string]struct {
		Shape  []int     `json:"shape"`
		Values []float64 `json:"values"`
	} `json:"state_dict"`
}

// TestMLPAgainstTorch converts the MLP that testdata/gen.py exported from
// PyTorch (opset 13 with constant folding, opset 17 without) and checks that
// the model certify builds from the graph gives PyTorch's outputs (float64
// from the same float32 weights) and that every tensor lands under the
// module's own state_dict key with torch's values.
func TestMLPAgainstTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/mlp.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx mlpFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	n := len(fx.X)
	x := mat.NewDense(n, 6, nil)
	for i := range fx.X {
		for a := range fx.X[i] {
			for c := range fx.X[i][a] {
				x.Set(i, a*3+c, fx.X[i][a][c])
			}
		}
	}
	for _, file := range []string{"mlp13.onnx", "mlp17.onnx"} {
		t.Run(file, func(t *testing.T) {
			m, err := Read(filepath.Join("testdata", file), Options{})
			if err != nil {
				t.Fatal(err)
			}
			m.Spec.Loss = "cross_entropy"
			if err := m.Spec.Validate(); err != nil {
				t.Fatal(err)
			}
			model, err := nn.Build(m.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := model.Check(m.State, file); err != nil {
				t.Fatal(err)
			}
			for k, want := range fx.StateDict {
				if strings.HasSuffix(k, "num_batches_tracked") {
					continue // not in ONNX
				}
				got, ok := m.State[k]
				if !ok {
					t.Errorf("%s: missing (have %v)", k, m.State.Names())
					continue
				}
				for j, v := range want.Values {
					if got.Data[j] != v {
						t.Errorf("%s[%d] = %v, torch %v", k, j, got.Data[j], v)
						break
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
		})
	}
}

// TestRefusedOperators: operators outside the supported set are refused
// naming the operator and the node, with a hint where one helps.
func TestRefusedOperators(t *testing.T) {
	for _, c := range []struct{ file, op, node, hint string }{
		{"scale.onnx", "Mul", "/1/Mul", "outside a residual block"},
		{"softmax.onnx", "Softmax", "/1/Softmax", "already applies log-softmax"},
		{"logsoftmax.onnx", "LogSoftmax", "/1/LogSoftmax", "already applies log-softmax"},
		{"silu.onnx", "SiLU", "/1/Sigmoid", ""},
		{"layernorm13.onnx", "LayerNorm", "/1/ReduceMean", "opset_version=17"},
	} {
		_, err := Read(filepath.Join("testdata", c.file), Options{})
		if err == nil {
			t.Errorf("%s: no error", c.file)
			continue
		}
		msg := err.Error()
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(msg, c.op) || !strings.Contains(msg, `"`+c.node+`"`) || !strings.Contains(msg, c.file) {
			t.Errorf("%s: error %q: want ErrUnsupported naming the file, %s and node %s", c.file, msg, c.op, c.node)
		}
		if strings.Contains(msg, "branching") || !strings.Contains(msg, c.hint) {
			t.Errorf("%s: error %q: want the operator's own hint %q", c.file, msg, c.hint)
		}
	}
}

// foldedGraph builds x → Gemm(W, b) → y with initialiser names as an
// eval-mode export gives a BatchNorm folded into the Gemm.
func foldedGraph(wName string) []byte {
	f32 := int32(pb.TensorProto_FLOAT)
	dim := func(v int64) *pb.TensorShapeProto_Dimension {
		return &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	m := &pb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*pb.OperatorSetIdProto{{Version: proto.Int64(17)}},
		Graph: &pb.GraphProto{
			Name: proto.String("g"),
			Node: []*pb.NodeProto{{OpType: proto.String("Gemm"), Name: proto.String("/0/Gemm"), Input: []string{"x", wName, "b"}, Output: []string{"y"},
				Attribute: []*pb.AttributeProto{{Name: proto.String("transB"), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(1)}}}},
			Initializer: []*pb.TensorProto{
				{Name: proto.String(wName), Dims: []int64{2, 3}, DataType: &f32, FloatData: []float32{1, 2, 3, 4, 5, 6}},
				{Name: proto.String("b"), Dims: []int64{2}, DataType: &f32, FloatData: []float32{7, 8}},
			},
			Input: []*pb.ValueInfoProto{{Name: proto.String("x"), Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{
				ElemType: &f32, Shape: &pb.TensorShapeProto{Dim: []*pb.TensorShapeProto_Dimension{{Value: &pb.TensorShapeProto_Dimension_DimParam{DimParam: "n"}}, dim(3)}}}}}}},
			Output: []*pb.ValueInfoProto{{Name: proto.String("y")}},
		},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// TestFoldDetection: a Gemm whose weight is an exporter constant
// (onnx::Gemm_12) in a graph without BatchNormalization is refused as
// folded, imported with a loud note under AllowFolded, and a raw name is
// imported with its values (float_data, transB).
func TestFoldDetection(t *testing.T) {
	_, err := Decode(foldedGraph("onnx::Gemm_12"), Options{})
	if !errors.Is(err, ErrFolded) || !strings.Contains(err.Error(), "onnx::Gemm_12") || !strings.Contains(err.Error(), ".pt state_dicts") {
		t.Errorf("error %v: want ErrFolded naming onnx::Gemm_12 and the .pt route", err)
	}
	m, err := Decode(foldedGraph("onnx::Gemm_12"), Options{AllowFolded: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Notes) == 0 || !strings.HasPrefix(m.Notes[len(m.Notes)-1], "FOLDED") {
		t.Errorf("notes %q: want a FOLDED note", m.Notes)
	}
	m, err = Decode(foldedGraph("0.weight"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := m.State["0.weight"]
	if len(m.Spec.Layers) != 1 || m.Spec.Layers[0].In != 3 || m.Spec.Layers[0].Out != 2 || w.Data[5] != 6 || m.State["0.bias"].Data[1] != 8 {
		t.Errorf("spec %+v, weight %v", m.Spec.Layers, w)
	}
}

// TestMalformed: bytes that are not a model, an initialiser whose raw data
// disagree with huge dims, and external data are refused without
// allocating what the dims declare.
func TestMalformed(t *testing.T) {
	if _, err := Decode([]byte("not a protobuf at all"), Options{}); !errors.Is(err, ErrFormat) {
		t.Errorf("garbage: %v", err)
	}
	f32 := int32(pb.TensorProto_FLOAT)
	for _, c := range []struct {
		t   *pb.TensorProto
		msg string
	}{
		{&pb.TensorProto{Name: proto.String("w"), Dims: []int64{1 << 21, 1 << 20}, DataType: &f32, RawData: []byte{0, 0, 0x80, 0x3f}}, "too many elements"},
		{&pb.TensorProto{Name: proto.String("w"), Dims: []int64{1 << 19, 1 << 19}, DataType: &f32, RawData: []byte{0, 0, 0x80, 0x3f}}, "raw_data holds 4"},
		{&pb.TensorProto{Name: proto.String("w"), Dims: []int64{2}, DataType: &f32, DataLocation: pb.TensorProto_EXTERNAL.Enum()}, "external data"},
	} {
		if _, _, err := tensorValues(c.t); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: error %v, want %q", c.t.GetDims(), err, c.msg)
		}
	}
}

// TestDegenerateNodes: every operator the import knows, given no inputs,
// one input, or no outputs, is refused with an error (never a panic).
func TestDegenerateNodes(t *testing.T) {
	var ops []string
	for op := range opHandlers {
		ops = append(ops, op)
	}
	for _, op := range ops {
		for _, io := range []struct{ in, out []string }{
			{nil, []string{"y"}}, {[]string{"x"}, []string{"y"}}, {[]string{"x"}, nil}, {[]string{"x", "", "x"}, []string{"y"}},
		} {
			b := foldedGraph("0.weight")
			var m pb.ModelProto
			if err := proto.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			m.Graph.Node = []*pb.NodeProto{{OpType: proto.String(op), Input: io.in, Output: io.out}}
			b, _ = proto.Marshal(&m)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s with inputs %q outputs %q: panic %v", op, io.in, io.out, r)
					}
				}()
				Decode(b, Options{})
			}()
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the ONNX reader, seeded with the
// committed graphs: a model or an error, never a panic, and no allocation
// beyond what the input holds (dims are checked against the data first).
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.onnx")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(foldedGraph("onnx::Gemm_1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b, Options{AllowFolded: true})
		if err == nil {
			m.Spec.Loss = "mse"
			m.Spec.Validate()
		}
	})
}

// TestHandBuiltChain converts a graph using the operators torch 1.13 does
// not emit (Gelu of opset 20, a Reshape with a constant shape, Dropout,
// Identity on the activation) and checks the layers and attributes read.
func TestHandBuiltChain(t *testing.T) {
	var m pb.ModelProto
	if err := proto.Unmarshal(foldedGraph("0.weight"), &m); err != nil {
		t.Fatal(err)
	}
	i64 := int32(pb.TensorProto_INT64)
	g := m.Graph
	g.Node[0].Output = []string{"h0"}
	node := func(op, in, out string, extra ...string) *pb.NodeProto {
		return &pb.NodeProto{OpType: proto.String(op), Name: proto.String(out), Input: append([]string{in}, extra...), Output: []string{out}}
	}
	gelu := node("Gelu", "h0", "h1")
	gelu.Attribute = []*pb.AttributeProto{{Name: proto.String("approximate"), Type: pb.AttributeProto_STRING.Enum(), S: []byte("tanh")}}
	g.Node = append(g.Node, gelu, node("Dropout", "h1", "h2"), node("Identity", "h2", "h3"),
		node("Reshape", "h3", "h4", "shape"), node("LeakyRelu", "h4", "y"))
	g.Initializer = append(g.Initializer, &pb.TensorProto{Name: proto.String("shape"), Dims: []int64{2}, DataType: &i64, Int64Data: []int64{-1, 2}})
	b, _ := proto.Marshal(&m)
	got, err := Decode(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, l := range got.Spec.Layers {
		types = append(types, l.Type)
	}
	if strings.Join(types, " ") != "linear gelu flatten leaky_relu" {
		t.Fatalf("layers %v", types)
	}
	if l := got.Spec.Layers[1]; l.Approximate != "tanh" {
		t.Errorf("gelu approximate %q", l.Approximate)
	}
	if l := got.Spec.Layers[3]; l.Slope == nil || *l.Slope != 0.01 {
		t.Errorf("leaky_relu slope %v, want ONNX's default 0.01", l.Slope)
	}
	if !strings.Contains(strings.Join(got.Notes, "\n"), "Dropout") {
		t.Errorf("notes %q lack the Dropout note", got.Notes)
	}
	// A Reshape to anything but [N, features] is refused.
	g.Initializer[len(g.Initializer)-1].Int64Data = []int64{1, -1}
	b, _ = proto.Marshal(&m)
	if _, err := Decode(b, Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "Reshape") {
		t.Errorf("Reshape to [1, -1]: %v", err)
	}
}

// bnGraph is foldedGraph("0.weight") followed by a BatchNormalization over
// its 2 outputs; training sets training_mode=1 and the three outputs of a
// training-mode export (opset ≥ 14).
func bnGraph(t *testing.T, training bool) []byte {
	var m pb.ModelProto
	if err := proto.Unmarshal(foldedGraph("0.weight"), &m); err != nil {
		t.Fatal(err)
	}
	f32 := int32(pb.TensorProto_FLOAT)
	g := m.Graph
	g.Node[0].Output = []string{"h0"}
	bn := &pb.NodeProto{OpType: proto.String("BatchNormalization"), Name: proto.String("/1/BatchNormalization"),
		Input: []string{"h0", "1.weight", "1.bias", "1.running_mean", "1.running_var"}, Output: []string{"y"}}
	if training {
		bn.Output = []string{"y", "rm", "rv"}
		bn.Attribute = []*pb.AttributeProto{{Name: proto.String("training_mode"), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(1)}}
	}
	g.Node = append(g.Node, bn)
	for k, name := range []string{"1.weight", "1.bias", "1.running_mean", "1.running_var"} {
		g.Initializer = append(g.Initializer, &pb.TensorProto{Name: proto.String(name), Dims: []int64{2}, DataType: &f32, FloatData: []float32{float32(k) + 1, float32(k) + 2}})
	}
	b, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrainingModeBatchNorm: a BatchNormalization exported in training mode
// (whose running statistics the export's forward pass updated) is refused
// with the reason and the alternatives, read with a TRAINING-MODE note under
// AllowTrainingBatchNorm; an evaluation-mode node is read without one.
func TestTrainingModeBatchNorm(t *testing.T) {
	_, err := Decode(bnGraph(t, true), Options{})
	if !errors.Is(err, ErrTrainingBatchNorm) {
		t.Fatalf("error %v: want ErrTrainingBatchNorm", err)
	}
	for _, w := range []string{"/1/BatchNormalization", "running_mean", ".pt", "model.eval()", "--allow-training-batchnorm"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	m, err := Decode(bnGraph(t, true), Options{AllowTrainingBatchNorm: true})
	if err != nil {
		t.Fatal(err)
	}
	if !m.TrainingBatchNorm || !slices.Contains(m.Notes, TrainingBatchNormNote) {
		t.Errorf("TrainingBatchNorm %v notes %q: want the TRAINING-MODE note", m.TrainingBatchNorm, m.Notes)
	}
	if got := m.State["1.running_var"].Data; got[0] != 4 || got[1] != 5 {
		t.Errorf("1.running_var %v, want the graph's [4 5]", got)
	}
	m, err = Decode(bnGraph(t, false), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.TrainingBatchNorm || slices.Contains(m.Notes, TrainingBatchNormNote) {
		t.Errorf("evaluation-mode node: TrainingBatchNorm %v notes %q", m.TrainingBatchNorm, m.Notes)
	}
}

// TestConstantFoldedIndices: with torch.onnx.export's defaults (constant
// folding), the bias-free Linear's weight becomes onnx::MatMul_N, so only
// its node's name ("/2/MatMul") gives its nn.Sequential index; the import
// must still write the module's own layer list (Dropout as identity) and
// state_dict keys and values (testdata/drop.json, from PyTorch).
func TestConstantFoldedIndices(t *testing.T) {
	b, err := os.ReadFile("testdata/drop.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Types     []string             `json:"types"`
		StateDict map[string][]float64 `json:"state_dict"`
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	m, err := Read("testdata/drop.onnx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, l := range m.Spec.Layers {
		types = append(types, l.Type)
	}
	if strings.Join(types, " ") != strings.Join(fx.Types, " ") {
		t.Errorf("layers %v, the nn.Sequential's %v", types, fx.Types)
	}
	if len(m.State) != len(fx.StateDict) {
		t.Errorf("keys %v, torch's %d", m.State.Names(), len(fx.StateDict))
	}
	for k, want := range fx.StateDict {
		got, ok := m.State[k]
		if !ok {
			t.Errorf("%s: missing (have %v)", k, m.State.Names())
			continue
		}
		for j, v := range want {
			if got.Data[j] != v {
				t.Errorf("%s[%d] = %v, torch %v", k, j, got.Data[j], v)
				break
			}
		}
	}
	for _, n := range m.Notes {
		if strings.HasPrefix(n, LayerIndexWarning) {
			t.Errorf("unexpected warning %q", n)
		}
	}
}

// TestUncertainIndices: when neither initialiser nor node names give an
// unindexed layer's place and a dropped module could sit before or after it,
// the import says so (LayerIndexWarning) instead of claiming the indices.
func TestUncertainIndices(t *testing.T) {
	var m pb.ModelProto
	if err := proto.Unmarshal(foldedGraph("0.weight"), &m); err != nil {
		t.Fatal(err)
	}
	f32 := int32(pb.TensorProto_FLOAT)
	g := m.Graph
	g.Node[0].Output = []string{"h0"}
	g.Node[0].Input[2], g.Initializer[1].Name = "0.bias", proto.String("0.bias")
	// 0.weight [2, 3] → Relu (unnamed) → Gemm 3.weight: the Relu could be
	// index 1 or 2.
	g.Node = append(g.Node,
		&pb.NodeProto{OpType: proto.String("Relu"), Input: []string{"h0"}, Output: []string{"h1"}},
		&pb.NodeProto{OpType: proto.String("Gemm"), Name: proto.String("/3/Gemm"), Input: []string{"h1", "3.weight"}, Output: []string{"y"},
			Attribute: []*pb.AttributeProto{{Name: proto.String("transB"), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(1)}}})
	g.Initializer = append(g.Initializer, &pb.TensorProto{Name: proto.String("3.weight"), Dims: []int64{1, 2}, DataType: &f32, FloatData: []float32{1, 2}})
	b, _ := proto.Marshal(&m)
	got, err := Decode(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range got.Notes {
		if strings.HasPrefix(n, LayerIndexWarning) && strings.Contains(n, "relu") {
			found = true
		}
		if strings.Contains(n, "indices are the nn.Sequential's") {
			t.Errorf("note %q claims the indices", n)
		}
	}
	if !found {
		t.Errorf("notes %q: want a %s note naming the relu", got.Notes, LayerIndexWarning)
	}
	// Named "/2/Relu", the place is known: no warning, the relu at 2.
	g.Node[1].Name = proto.String("/2/Relu")
	b, _ = proto.Marshal(&m)
	if got, err = Decode(b, Options{}); err != nil {
		t.Fatal(err)
	}
	if n := len(got.Spec.Layers); n != 4 || got.Spec.Layers[2].Type != "relu" || got.Spec.Layers[1].Type != "identity" {
		t.Errorf("layers %+v: want linear identity relu linear", got.Spec.Layers)
	}
	for _, n := range got.Notes {
		if strings.HasPrefix(n, LayerIndexWarning) {
			t.Errorf("unexpected warning %q", n)
		}
	}
}

// TestRenamedNotMerged: initialisers of a custom module (fc1.weight) are
// renamed to the layer's key, which the notes call a rename; equal tensors
// torch.onnx shared (2.running_var ← 2.weight) are called merged.
func TestRenamedNotMerged(t *testing.T) {
	m, err := Decode(foldedGraph("fc1.weight"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(m.Notes, "\n")
	if !strings.Contains(notes, "renamed") || !strings.Contains(notes, "0.weight ← fc1.weight") || strings.Contains(notes, "merged") {
		t.Errorf("notes %q: want 0.weight ← fc1.weight as a rename, nothing merged", notes)
	}
	m, err = Read("testdata/drop.onnx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if notes := strings.Join(m.Notes, "\n"); strings.Contains(notes, "renamed") || strings.Contains(notes, "merged") {
		t.Errorf("drop.onnx notes %q: nothing was renamed or merged", notes)
	}
}
