package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
)

// cnnSpec is a small CNN on [1, 5, 5] inputs: conv2d 3×3 padding 1, relu,
// maxpool2d 2, batchnorm2d, avgpool2d 1, flatten, linear.
func cnnSpec() *nn.Spec {
	return &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{1, 5, 5}, Loss: "cross_entropy", Layers: []nn.LayerSpec{
		{Type: "conv2d", In: 1, Out: 2, Kernel: nn.IntPair{3}, Padding: nn.IntPair{1}},
		{Type: "relu"},
		{Type: "maxpool2d", Kernel: nn.IntPair{2}},
		{Type: "batchnorm2d", Features: 2},
		{Type: "adaptive_avgpool2d", Output: nn.IntPair{2}},
		{Type: "flatten"},
		{Type: "linear", In: 8, Out: 3},
	}}
}

// makeCNNRun writes a valid run directory of cnnSpec on 6 examples.
func makeCNNRun(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	spec := cnnSpec()
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 1)
	sT, _ := nn.Init(m, "pytorch", 1, 2)
	x := mat.NewDense(6, 25, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = math.Sin(float64(i))
	}
	writeRunDir(t, dir, spec, s0, sT, "F64", x, nn.Targets{Labels: []int{0, 1, 2, 0, 1, 2}})
	return dir
}

// TestCNNRunAnalyses: certify --run reads a convolutional run directory and
// writes its report.
func TestCNNRunAnalyses(t *testing.T) {
	dir := makeCNNRun(t)
	code, out, errOut := runCLI(t, "--run", dir, "--no-figures")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "verdict") {
		t.Errorf("summary lacks the verdict:\n%s", out)
	}
}

// TestCNNBadShapes: a model.json whose kernel, channels or padding/stride do
// not fit its input is refused with exit 2, one line naming the file, the
// layer and the shapes.
func TestCNNBadShapes(t *testing.T) {
	for _, c := range []struct {
		name  string
		spoil func(s *nn.Spec)
		want  []string
	}{
		{"channels", func(s *nn.Spec) { s.Layers[0].In = 3 }, []string{"model.json", "layers[0]", "conv2d: in=3 channels but the input is [1, 5, 5]"}},
		{"kernel too large", func(s *nn.Spec) { s.Layers[0].Kernel, s.Layers[0].Padding = nn.IntPair{7}, nil }, []string{"model.json", "layers[0]", "kernel [7, 7] is larger than the padded input [5, 5]", "output would be empty"}},
		{"kernel zero", func(s *nn.Spec) { s.Layers[0].Kernel = nn.IntPair{0, 3} }, []string{"model.json", "layers[0]", "conv2d: kernel: want positive sizes, found [0, 3]"}},
		{"pool empties", func(s *nn.Spec) { s.Layers[2].Kernel = nn.IntPair{6} }, []string{"model.json", "layers[2]", "maxpool2d: kernel [6, 6] is larger than the padded input [5, 5] (input [2, 5, 5]"}},
		{"batchnorm channels", func(s *nn.Spec) { s.Layers[3].Features = 4 }, []string{"model.json", "layers[3]", "batchnorm2d: features=4 but the input is [2, 2, 2]"}},
		{"linear after flatten", func(s *nn.Spec) { s.Layers[6].In = 9 }, []string{"model.json", "layers[6]", "in=9 but the previous layer gives 8 features"}},
		// A wrong kernel whose shape chain still closes until a later layer:
		// the weights show where the disagreement starts (rundir
		// blameEarlierLayer), so layers[0] is named beside layers[6].
		{"kernel wrong, chain breaks later", func(s *nn.Spec) {
			s.Layers[0].Kernel = nn.IntPair{5}
			s.Layers[4] = nn.LayerSpec{Type: "avgpool2d", Kernel: nn.IntPair{1}}
		}, []string{"model.json", "layers[6]", "in=8 but the previous layer gives 2 features", "init.safetensors: 0.weight has shape [2, 1, 3, 3], where model.json's layers[0] (conv2d) gives [2, 1, 5, 5]"}},
		{"conv on flat input", func(s *nn.Spec) { s.InputShape = []int{25} }, []string{"model.json", "layers[0]", "needs an image input [C, H, W], found input shape [25]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := makeCNNRun(t)
			s := cnnSpec()
			c.spoil(s)
			if err := s.Write(filepath.Join(dir, "model.json")); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := runCLI(t, "--run", dir, "--no-figures")
			if code != 2 {
				t.Errorf("exit status %d, want 2 (stderr %q)", code, errOut)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("error is not one line: %q", errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error %q does not mention %q", errOut, w)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "certificate.json")); err == nil {
				t.Error("a report was written for bad input")
			}
		})
	}
}
