package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/nn/safetensors"
)

// TestChannelsLastDataRefused: a data file holding channels-last images
// x [N, H, W, C] of the same size as the model's [N, C, H, W] passed the
// size check and was analysed with its values in the wrong order. certify
// --run, lmc --data and import --data now refuse it with exit 2, naming
// the file, the tensor and both shapes.
func TestChannelsLastDataRefused(t *testing.T) {
	src := filepath.Join("..", "..", "testdata", "torchref", "cnn-conv-relu-maxpool")
	dir := filepath.Join(t.TempDir(), "cnn")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.json", "init.safetensors", "final.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ts, _, err := safetensors.Read(filepath.Join(src, "data.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range ts {
		if ts[i].Name != "x" {
			continue
		}
		x := &ts[i]
		n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
		if c != 2 || h != 7 || w != 7 {
			t.Fatalf("fixture x shape %v, want [N, 2, 7, 7]", x.Shape)
		}
		perm := make([]float64, len(x.Float))
		for e := 0; e < n; e++ {
			for k := 0; k < c; k++ {
				for r := 0; r < h; r++ {
					for q := 0; q < w; q++ {
						perm[((e*h+r)*w+q)*c+k] = x.Float[((e*c+k)*h+r)*w+q]
					}
				}
			}
		}
		x.Float, x.Shape = perm, []int{n, h, w, c}
	}
	data := filepath.Join(dir, "data.safetensors")
	if err := safetensors.Write(data, ts, "F64", nil); err != nil {
		t.Fatal(err)
	}
	want := []string{data + ": x: shape [8, 7, 7, 2]", "input_shape [2, 7, 7]", "expected [8, 2, 7, 7]", "channels-last"}
	check := func(what string, code int, se string) {
		t.Helper()
		if code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr %q", what, code, se)
		}
		for _, w := range want {
			if !strings.Contains(se, w) {
				t.Errorf("%s: stderr %q lacks %q", what, se, w)
			}
		}
	}
	code, _, se := runCLI(t, "--run", dir, "--no-figures", "--loss-only", "--json")
	check("--run", code, se)
	code, _, se = runCLI(t, "lmc", dir, dir, "--data", data, "--no-figures", "--no-certificate", "--alphas", "3", "--json")
	check("lmc --data", code, se)
	code, _, se = runCLI(t, "import", "--init", filepath.Join(dir, "init.safetensors"), "--final", filepath.Join(dir, "final.safetensors"),
		"--model", filepath.Join(dir, "model.json"), "--data", data, "--out", filepath.Join(t.TempDir(), "imported"))
	check("import --data", code, se)
}
