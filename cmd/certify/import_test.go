package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/importer"
)

// torchPython returns /usr/bin/python3 when it imports torch, or skips.
func torchPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch, numpy").Run(); err != nil {
		t.Skip("python3-torch is not installed (scripts/test.sh installs it)")
	}
	return py
}

// lossReport runs `certify --run DIR --loss-only --json` and returns α and L(α).
func lossReport(t *testing.T, dir string) ([]float64, []float64) {
	t.Helper()
	code, out, errOut := runCLI(t, "--run", dir, "--loss-only", "--json", "--no-figures", "--quiet")
	if code != 0 {
		t.Fatalf("certify --run %s: exit %d: %s", dir, code, errOut)
	}
	var r struct {
		Alphas []float64 `json:"alphas"`
		Loss   []float64 `json:"loss"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report: %v", err)
	}
	return r.Alphas, r.Loss
}

// TestImportAgainstTorch is the acceptance check: two MLPs trained
// in PyTorch (one with BatchNorm, Dropout, GELU, a bias-free linear and
// LeakyReLU on cross-entropy; one with tanh, sigmoid and softplus on mse)
// are saved by tools/torchref/import_fixtures.py as a plain torch.save, with
// DataParallel's "module." prefix, with torch.compile's "_orig_mod." prefix,
// as dicts wrapping the state_dict under "state_dict" (with the optimizer's
// state) and "model", and through torch.onnx.export at opsets 13 and 17.
// Every one is imported with `certify import` (data as .npz, as x.npy +
// y.npy, and as a torch.save'd dict), and `certify --run` must give PyTorch's
// L(α) — computed on the original nn.Module, evaluation mode, every floating
// tensor interpolated — to 1e-9 at all 50 α.
func TestImportAgainstTorch(t *testing.T) {
	py := torchPython(t)
	fx := t.TempDir()
	if out, err := exec.Command(py, filepath.Join("..", "..", "tools", "torchref", "import_fixtures.py"), fx).CombinedOutput(); err != nil {
		t.Fatalf("import_fixtures.py: %v\n%s", err, out)
	}
	variants := []struct {
		name, ext string
		note      string // expected in import.json's notes
	}{
		{"plain", ".pt", ""},
		{"module", ".pt", `key prefix "module." stripped`},
		{"orig_mod", ".pt", `key prefix "_orig_mod." stripped`},
		{"wrapped", ".pt", `unwrapped from the saved dict's key "state_dict"`},
		{"wrapped_model", ".pt", `unwrapped from the saved dict's key "model"`},
		{"onnx13", ".onnx", ""},
		{"onnx17", ".onnx", ""},
	}
	data := [][]string{{"--data", "data.npz"}, {"--data", "x.npy", "--targets", "y.npy"}, {"--data", "data.pt"}}
	for _, model := range []string{"mlp_bn", "mlp_mse"} {
		src := filepath.Join(fx, model)
		b, err := os.ReadFile(filepath.Join(src, "expected.json"))
		if err != nil {
			t.Fatal(err)
		}
		var want struct {
			Alphas []float64 `json:"alphas"`
			Loss   []float64 `json:"loss"`
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		for k, v := range variants {
			t.Run(model+"/"+v.name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "run")
				args := []string{"import", "--init", filepath.Join(src, v.name, "init"+v.ext),
					"--final", filepath.Join(src, v.name, "final"+v.ext), "--out", out}
				if v.ext != ".onnx" {
					args = append(args, "--model", filepath.Join(src, "model.json"))
				}
				for i, a := range data[k%len(data)] {
					if i%2 == 1 {
						a = filepath.Join(src, a)
					}
					args = append(args, a)
				}
				code, _, errOut := runCLI(t, args...)
				if code != 0 {
					t.Fatalf("certify %s: exit %d: %s", strings.Join(args, " "), code, errOut)
				}
				rb, err := os.ReadFile(filepath.Join(out, importer.RecordFile))
				if err != nil {
					t.Fatal(err)
				}
				var rec importer.Record
				if err := json.Unmarshal(rb, &rec); err != nil {
					t.Fatal(err)
				}
				if v.note != "" && !strings.Contains(strings.Join(rec.Notes, "\n"), v.note) {
					t.Errorf("import.json notes %q: want %q", rec.Notes, v.note)
				}
				if rec.Parameterisation != "raw parameters" {
					t.Errorf("parameterisation %q", rec.Parameterisation)
				}
				alphas, loss := lossReport(t, out)
				if len(loss) != len(want.Loss) {
					t.Fatalf("%d losses, PyTorch %d", len(loss), len(want.Loss))
				}
				worst := 0.0
				for j := range loss {
					if math.Abs(alphas[j]-want.Alphas[j]) > 1e-15 {
						t.Fatalf("α[%d] = %v, PyTorch's %v", j, alphas[j], want.Alphas[j])
					}
					e := math.Abs(loss[j]-want.Loss[j]) / math.Abs(want.Loss[j])
					worst = math.Max(worst, e)
					if e > 1e-9 {
						t.Errorf("α=%.4f: L = %.17g, PyTorch %.17g (relative error %.2g > 1e-9)", alphas[j], loss[j], want.Loss[j], e)
					}
				}
				t.Logf("largest relative error of L(α) against PyTorch: %.2g", worst)
			})
		}
	}
}

// importFixture is a path under nn/onnx/testdata (gen.py there wrote the
// files from PyTorch: an MLP as ONNX, its state_dict as .pt, data as .npz).
func importFixture(name string) string {
	return filepath.Join("..", "..", "nn", "onnx", "testdata", name)
}

// TestImportErrors: mismatches exit 2 with a message naming the file and
// what is wrong — weights for another architecture, a missing tensor, an
// unsupported operator, a malicious pickle, an existing --out (left as it
// was) — and the ONNX and .pt imports of the same committed MLP agree.
func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	writeSpec := func(name string, mutate func(*nn.Spec)) string {
		m, err := os.ReadFile(filepath.Join("..", "..", "nn", "onnx", "testdata", "mlp.json"))
		if err != nil || len(m) == 0 {
			t.Fatal(err)
		}
		// The architecture of the committed MLP, from its ONNX graph.
		out := filepath.Join(dir, "ref")
		os.RemoveAll(out)
		if code, _, e := runCLI(t, "import", "--init", importFixture("mlp13.onnx"), "--final", importFixture("mlp17.onnx"),
			"--data", importFixture("mlp_data.npz"), "--out", out); code != 0 {
			t.Fatalf("ONNX import: %s", e)
		}
		s, err := nn.ReadSpec(filepath.Join(out, "model.json"))
		if err != nil {
			t.Fatal(err)
		}
		mutate(s)
		p := filepath.Join(dir, name)
		if err := s.Write(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writeSpec("good.json", func(*nn.Spec) {})
	wide := writeSpec("wide.json", func(s *nn.Spec) { s.Layers[1].Out, s.Layers[2].Features, s.Layers[4].In = 9, 9, 9 })
	extra := writeSpec("extra.json", func(s *nn.Spec) { f := true; s.Layers[6].Bias = &f })

	// The .pt and the ONNX graph of the same weights give the same run.
	ptRun := filepath.Join(dir, "pt")
	if code, _, e := runCLI(t, "import", "--init", importFixture("mlp.pt"), "--final", importFixture("mlp_module.pt"),
		"--model", good, "--data", importFixture("mlp_data.npz"), "--out", ptRun); code != 0 {
		t.Fatalf(".pt import: %s", e)
	}
	a, err := nn.ReadState(filepath.Join(ptRun, "final.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := nn.ReadState(filepath.Join(dir, "ref", "final.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for k, ta := range a {
		tb, ok := b[k]
		if !ok {
			t.Errorf("%s: in the .pt import, not in the ONNX one", k)
			continue
		}
		if strings.HasSuffix(k, "num_batches_tracked") {
			continue
		}
		for j := range ta.Data {
			if ta.Data[j] != tb.Data[j] {
				t.Errorf("%s[%d]: .pt %v, ONNX %v", k, j, ta.Data[j], tb.Data[j])
				break
			}
		}
	}

	exists := filepath.Join(dir, "exists")
	os.Mkdir(exists, 0o755)
	os.WriteFile(filepath.Join(exists, "keep"), []byte("x"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		msg  []string
	}{
		{"wrong architecture", []string{"--init", importFixture("mlp.pt"), "--final", importFixture("mlp.pt"), "--model", wide},
			[]string{"mlp.pt", "1.weight: expected shape [9, 6], found [7, 6]", "wrong architecture"}},
		{"missing tensor", []string{"--init", importFixture("mlp.pt"), "--final", importFixture("mlp.pt"), "--model", extra},
			[]string{"mlp.pt", "6.bias: missing"}},
		{"unsupported operator", []string{"--init", importFixture("conv.onnx"), "--final", importFixture("conv.onnx")},
			[]string{"conv.onnx", `node "/0/Conv"`, "Conv", `"conv2d"`, "not support yet"}},
		{"malicious pickle", []string{"--init", filepath.Join("..", "..", "nn", "torchpt", "testdata", "evil.pt"), "--final", importFixture("mlp.pt"), "--model", good},
			[]string{"evil.pt", "refused", "posix.system"}},
		{"pickled module", []string{"--init", filepath.Join("..", "..", "nn", "torchpt", "testdata", "module.pt"), "--final", importFixture("mlp.pt"), "--model", good},
			[]string{"module.pt", "state_dict()"}},
		{"mixed kinds", []string{"--init", importFixture("mlp13.onnx"), "--final", importFixture("mlp.pt")},
			[]string{"both be ONNX"}},
		{"no model.json", []string{"--init", importFixture("mlp.pt"), "--final", importFixture("mlp.pt")},
			[]string{"--model model.json is required"}},
	} {
		out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
		args := append([]string{"import"}, c.args...)
		args = append(args, "--data", importFixture("mlp_data.npz"), "--out", out)
		code, _, errOut := runCLI(t, args...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2 (%s)", c.name, code, errOut)
		}
		for _, m := range c.msg {
			if !strings.Contains(errOut, m) {
				t.Errorf("%s: error %q lacks %q", c.name, errOut, m)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: %s was written", c.name, out)
		}
	}
	code, _, errOut := runCLI(t, "import", "--init", importFixture("mlp.pt"), "--final", importFixture("mlp.pt"), "--model", good,
		"--data", importFixture("mlp_data.npz"), "--out", exists)
	if code != 2 || !strings.Contains(errOut, "exists") {
		t.Errorf("existing --out: exit %d, %q", code, errOut)
	}
	if ents, _ := os.ReadDir(exists); len(ents) != 1 {
		t.Errorf("existing --out was changed: %v", ents)
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, ".*partial*")); len(ents) != 0 {
		t.Errorf("temporary directories left behind: %v", ents)
	}
}
