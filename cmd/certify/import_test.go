package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/nn/importer"
	"github.com/certify-mli/certify/rundir"
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
// in PyTorch (one with two BatchNorms, Dropout, GELU, a bias-free linear and
// LeakyReLU on cross-entropy; one with tanh, sigmoid and softplus on mse), a
// CNN (conv2d, batchnorm2d, relu, maxpool2d, flatten, linear) and a residual
// net (RUN_FORMAT.md's Residual: a block with a conv shortcut and a
// batchnorm2d in its body, a block with the identity shortcut and a scale,
// avgpool2d with padding, global average pooling; ONNX exports of the two
// conv models with training=TrainingMode.PRESERVE, which keeps BatchNorm)
// are saved by tools/torchref/import_fixtures.py as a plain torch.save, with
// DataParallel's "module." prefix, with torch.compile's "_orig_mod." prefix,
// as dicts wrapping the state_dict under "state_dict" (with the optimizer's
// state) and "model", as numpy.savez archives, and through
// torch.onnx.export at opsets 13 and 17.
// Every one is imported with `certify import` (data as .npz, as x.npy +
// y.npy, and as a torch.save'd dict), and `certify --run` must give PyTorch's
// L(α) — computed on the original nn.Module, evaluation mode, every floating
// tensor interpolated — to 1e-12 (the issue asks 1e-9) at all 50 α.
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
		{"npz", ".npz", ""},
		{"onnx13", ".onnx", ""},
		{"onnx17", ".onnx", ""},
	}
	data := [][]string{{"--data", "data.npz"}, {"--data", "x.npy", "--targets", "y.npy"}, {"--data", "data.pt"}}
	for _, model := range []string{"mlp_bn", "mlp_mse", "cnn_bn", "resnet"} {
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
				rec, err := importer.ReadRecord(out)
				if err != nil || rec == nil {
					t.Fatalf("import.json: %v", err)
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
					// The issue asks for 1e-9; float64 gives ~1e-15, and 1e-12
					// catches a float32-rounded attribute (a LeakyReLU slope
					// of 0.20000000298 instead of 0.2 moves L by ~1e-10).
					if e > 1e-12 {
						t.Errorf("α=%.4f: L = %.17g, PyTorch %.17g (relative error %.2g > 1e-12)", alphas[j], loss[j], want.Loss[j], e)
					}
				}
				t.Logf("largest relative error of L(α) against PyTorch: %.2g", worst)
			})
		}
	}
	t.Run("conv mismatches", func(t *testing.T) { convMismatches(t, fx) })
}

// convMismatches: the conv fixtures with a model.json of another
// architecture, a model.json expecting a tensor the checkpoint lacks, and
// the default (evaluation-mode) ONNX export, whose BatchNorm2d torch folded
// into the Conv, exit 2 naming the file and the fault; --allow-folded
// imports the folded graphs and import.json says which parameterisation
// was interpolated.
func convMismatches(t *testing.T, fx string) {
	dir := t.TempDir()
	spec := func(name string, mutate func(*nn.Spec)) string {
		s, err := nn.ReadSpec(filepath.Join(fx, "resnet", "model.json"))
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
	wide := spec("wide.json", func(s *nn.Spec) {
		b := s.Layers[2].Body
		b[0].Out, b[1].Features, b[3].In = 4, 4, 4
	})
	extra := spec("extra.json", func(s *nn.Spec) {
		s.Layers[4].Shortcut = []nn.LayerSpec{{Type: "conv2d", In: 3, Out: 3, Kernel: nn.IntPair{1}}}
	})
	res := filepath.Join(fx, "resnet")
	for _, c := range []struct {
		name string
		args []string
		msg  []string
	}{
		{"wrong architecture", []string{"--init", filepath.Join(res, "plain", "init.pt"), "--final", filepath.Join(res, "plain", "final.pt"), "--model", wide},
			[]string{"init.pt", "2.body.0.weight: expected shape [4, 2, 3, 3], found [3, 2, 3, 3] (model.json's layers[2], residual)"}},
		{"missing tensor", []string{"--init", filepath.Join(res, "module", "init.pt"), "--final", filepath.Join(res, "module", "final.pt"), "--model", extra},
			[]string{"init.pt", "4.shortcut.0.weight: missing"}},
		{"folded", []string{"--init", filepath.Join(res, "onnx_eval", "init.onnx"), "--final", filepath.Join(res, "onnx_eval", "final.onnx")},
			[]string{"init.onnx", "onnx::Conv_", "folded", "TrainingMode.PRESERVE"}},
	} {
		out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
		args := append(append([]string{"import"}, c.args...), "--data", filepath.Join(res, "data.npz"), "--out", out)
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
	for _, model := range []string{"cnn_bn", "resnet"} {
		out := filepath.Join(dir, model+"_folded")
		src := filepath.Join(fx, model)
		code, _, errOut := runCLI(t, "import", "--init", filepath.Join(src, "onnx_eval", "init.onnx"), "--final", filepath.Join(src, "onnx_eval", "final.onnx"),
			"--allow-folded", "--data", filepath.Join(src, "data.npz"), "--out", out)
		if code != 0 {
			t.Fatalf("%s --allow-folded: exit %d: %s", model, code, errOut)
		}
		rec, err := importer.ReadRecord(out)
		if err != nil || rec == nil {
			t.Fatalf("import.json: %v", err)
		}
		if !strings.HasPrefix(rec.Parameterisation, "folded") || len(rec.Init.Derived) == 0 {
			t.Errorf("%s: parameterisation %q, derived %v: want folded, naming the onnx::Conv initialisers", model, rec.Parameterisation, rec.Init.Derived)
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
	// the chain breaks at layers[4] (its in is still 7); the weights show
	// the disagreement starts at layers[1]
	wideLater := writeSpec("wide_later.json", func(s *nn.Spec) { s.Layers[1].Out, s.Layers[2].Features = 9, 9 })
	extra := writeSpec("extra.json", func(s *nn.Spec) { f := true; s.Layers[6].Bias = &f })
	extraIn := writeSpec("extra_in.json", func(s *nn.Spec) { s.InputShape = []int{7}; s.Layers[1].In = 7 })

	// --loss against model.json's own loss: the flag wins and a note says
	// what it replaced (a first user found it silent).
	gs, err := nn.ReadSpec(good)
	if err != nil {
		t.Fatal(err)
	}
	other := "mse"
	if gs.Loss == "mse" {
		other = "cross_entropy"
	}
	if code, o, e := runCLI(t, "import", "--init", importFixture("mlp.pt"), "--final", importFixture("mlp_module.pt"),
		"--model", good, "--loss", other, "--data", importFixture("mlp_data.npz"), "--out", filepath.Join(dir, "lossflag")); code != 0 {
		t.Errorf("--loss %s: exit %d: %s", other, code, e)
	} else if want := fmt.Sprintf("note: --loss %s replaces the loss %q of %s", other, gs.Loss, good); !strings.Contains(o, want) {
		t.Errorf("--loss %s over model.json's %s: output\n%s\nwant a line containing %q", other, gs.Loss, o, want)
	}

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
		{"wrong width, chain breaks later", []string{"--init", importFixture("mlp.pt"), "--final", importFixture("mlp.pt"), "--model", wideLater},
			[]string{"wide_later.json", "layers[4]", "but the disagreement starts earlier: " + importFixture("mlp.pt") + ": 1.weight has shape [7, 6], where model.json's layers[1] (linear) gives [9, 6]"}},
		{"missing tensor", []string{"--init", importFixture("mlp.pt"), "--final", importFixture("mlp.pt"), "--model", extra},
			[]string{"mlp.pt", "6.bias: missing"}},
		{"unsupported operator", []string{"--init", importFixture("softmax.onnx"), "--final", importFixture("softmax.onnx")},
			[]string{"softmax.onnx", `node "/1/Softmax"`, "operator Softmax"}},
		{"unsupported attribute", []string{"--init", importFixture("group.onnx"), "--final", importFixture("group.onnx")},
			[]string{"group.onnx", `node "/0/Conv"`, "group=2"}},
		{"malicious pickle", []string{"--init", filepath.Join("..", "..", "nn", "torchpt", "testdata", "evil.pt"), "--final", importFixture("mlp.pt"), "--model", good},
			[]string{"evil.pt", "refused", "posix.system"}},
		{"pickled module", []string{"--init", filepath.Join("..", "..", "nn", "torchpt", "testdata", "module.pt"), "--final", importFixture("mlp.pt"), "--model", good},
			[]string{"module.pt", "state_dict()"}},
		{"mixed kinds", []string{"--init", importFixture("mlp13.onnx"), "--final", importFixture("mlp.pt")},
			[]string{"both be ONNX"}},
		{"no model.json", []string{"--init", importFixture("mlp.pt"), "--final", importFixture("mlp.pt")},
			[]string{"--model model.json is required"}},
		{"data without x and y", []string{"--init", importFixture("mlp.pt"), "--final", importFixture("mlp.pt"), "--model", good,
			"--data", filepath.Join("..", "..", "nn", "torchpt", "testdata", "tensors.pt")},
			[]string{"tensors.pt: want tensors x and y, found p, f64"}},
		{"data of another width", []string{"--init", importFixture("mlp.pt"), "--final", importFixture("mlp.pt"), "--model", extraIn},
			[]string{"mlp_data.npz: x: 6 features per example", "needs 7"}},
	} {
		out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
		args := append([]string{"import"}, c.args...)
		if !strings.HasPrefix(c.name, "data without") {
			args = append(args, "--data", importFixture("mlp_data.npz"))
		}
		args = append(args, "--out", out)
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

// docBlocks returns the fenced code blocks of a Markdown file with the given
// info string ("python", "json", "sh"), in order.
func docBlocks(t *testing.T, path, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(line) == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// TestFromPyTorchDoc runs docs/from-pytorch.md as written: its Python block
// (a training script with the lines a user adds) under python3-torch, its
// model.json, then every command of its sh block. Both import routes (.pt
// with model.json, ONNX) must give the same θ0, θT and L(α), and the report
// must say where the run came from.
func TestFromPyTorchDoc(t *testing.T) {
	py := torchPython(t)
	doc, err := filepath.Abs(filepath.Join("..", "..", "docs", "from-pytorch.md"))
	if err != nil {
		t.Fatal(err)
	}
	pyBlocks, jsonBlocks, shBlocks := docBlocks(t, doc, "python"), docBlocks(t, doc, "json"), docBlocks(t, doc, "sh")
	if len(pyBlocks) != 2 || len(jsonBlocks) != 2 || len(shBlocks) != 2 {
		t.Fatalf("docs/from-pytorch.md has %d python, %d json and %d sh blocks, want two each (the MLP, the conv/residual net)", len(pyBlocks), len(jsonBlocks), len(shBlocks))
	}
	for k, name := range []string{"mlp", "conv"} {
		t.Run(name, func(t *testing.T) { docExample(t, py, pyBlocks[k], jsonBlocks[k], shBlocks[k]) })
	}
}

// docExample runs one example of docs/from-pytorch.md as written: the
// script, then the certify commands on what it wrote (one import of the
// .pt files, one of the ONNX files), and checks that both imports hold the
// same tensors and give the same L(α).
func docExample(t *testing.T, py, script, modelJSON, commands string) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("train.py", []byte(script), 0o644)
	os.WriteFile("model.json", []byte(modelJSON), 0o644)
	if out, err := exec.Command(py, "train.py").CombinedOutput(); err != nil {
		t.Fatalf("the doc's script: %v\n%s", err, out)
	}
	var runs []string
	for _, line := range strings.Split(strings.TrimSpace(commands), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "certify" {
			t.Fatalf("sh block line %q is not a certify command", line)
		}
		if f[1] == "--run" { // as written, plus --quiet to keep the log short
			f = append(f, "--quiet")
		}
		if code, _, errOut := runCLI(t, f[1:]...); code != 0 {
			t.Fatalf("%s: exit %d: %s", line, code, errOut)
		}
		for i, a := range f {
			if a == "--out" {
				runs = append(runs, f[i+1])
			}
		}
	}
	if len(runs) != 2 {
		t.Fatalf("the doc imports %d runs, want 2 (.pt and ONNX)", len(runs))
	}
	var rep struct {
		Import *struct {
			Format           string `json:"format"`
			Parameterisation string `json:"parameterisation"`
		} `json:"import"`
	}
	// The report: certificate.json, or a variant's report when the doc's
	// command has settings other than the defaults (--loss-only).
	report := filepath.Join(runs[0], "certificate.json")
	if v, _ := filepath.Glob(filepath.Join(runs[0], "variants", "*", "variant.json")); len(v) == 1 {
		report = v[0]
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.Import == nil || rep.Import.Format != "torch.save" || rep.Import.Parameterisation != "raw parameters" {
		t.Errorf("report's import: %+v (%v)", rep.Import, err)
	}
	for _, name := range []string{"init.safetensors", "final.safetensors"} {
		a, err := nn.ReadState(filepath.Join(runs[0], name))
		if err != nil {
			t.Fatal(err)
		}
		o, err := nn.ReadState(filepath.Join(runs[1], name))
		if err != nil {
			t.Fatal(err)
		}
		for k, ta := range a {
			if strings.HasSuffix(k, "num_batches_tracked") {
				continue
			}
			to, ok := o[k]
			if !ok {
				t.Fatalf("%s: %s in the .pt import, not in the ONNX one", name, k)
			}
			for j := range ta.Data {
				if ta.Data[j] != to.Data[j] {
					t.Fatalf("%s: %s[%d]: .pt %v, ONNX %v", name, k, j, ta.Data[j], to.Data[j])
				}
			}
		}
	}
	_, l0 := lossReport(t, runs[0])
	_, l1 := lossReport(t, runs[1])
	for j := range l0 {
		if l0[j] != l1[j] {
			t.Errorf("α #%d: L = %v from .pt, %v from ONNX", j, l0[j], l1[j])
		}
	}
}

// TestImportSafetensorsDataset imports safetensors checkpoints whose keys
// carry DataParallel's prefix, with a named data set instead of a data file:
// the prefix is stripped and noted, config.json names the data set, and the
// run evaluates its first --limit examples.
func TestImportSafetensorsDataset(t *testing.T) {
	dir := t.TempDir()
	spec := nn.MLPSpec([]int{784, 5, 10}, "relu", "cross_entropy")
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "model.json")
	if err := spec.Write(specPath); err != nil {
		t.Fatal(err)
	}
	var want [2]nn.State
	for k, name := range []string{"a.safetensors", "b.safetensors"} {
		s, _ := nn.Init(m, "pytorch", 1, uint64(k+1))
		want[k] = s
		p := nn.State{}
		for key, v := range s {
			p["module."+key] = v
		}
		if err := nn.WriteState(filepath.Join(dir, name), p, "F64"); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "runs", "imported")
	code, stdout, errOut := runCLI(t, "import", "--init", filepath.Join(dir, "a.safetensors"), "--final", filepath.Join(dir, "b.safetensors"),
		"--model", specPath, "--dataset", "mnist-small", "--limit", "100", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(stdout, `key prefix "module." stripped`) {
		t.Errorf("output %q does not note the stripped prefix", stdout)
	}
	run, err := rundir.Read(out, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := run.X.Dims(); n != 100 || run.Config == nil || run.Config.Data.Name != "mnist-small" {
		t.Errorf("%d examples, config %+v", n, run.Config)
	}
	for k, s := range []nn.State{run.Theta0, run.ThetaT} {
		for key, v := range want[k] {
			for j := range v.Data {
				if s[key].Data[j] != v.Data[j] {
					t.Fatalf("%s[%d] = %v, want %v", key, j, s[key].Data[j], v.Data[j])
				}
			}
		}
	}
}

// TestImportTrainingModeBatchNorm: the committed MLP exported with
// training=TrainingMode.TRAINING (testdata/gen.py) holds running statistics
// the export's own forward pass moved away from the model's (mlp.pt), so the
// import refuses it with exit 2, the reason and the alternatives;
// --allow-training-batchnorm imports it, warns, and records that in
// import.json.
func TestImportTrainingModeBatchNorm(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	args := []string{"import", "--init", importFixture("mlp_train.onnx"), "--final", importFixture("mlp_train.onnx"),
		"--data", importFixture("mlp_data.npz"), "--out", out}
	code, _, errOut := runCLI(t, args...)
	if code != 2 {
		t.Fatalf("exit %d, want 2 (%s)", code, errOut)
	}
	for _, w := range []string{"mlp_train.onnx", "/2/BatchNormalization", "training mode", ".pt state_dicts", "do_constant_folding=False", "--allow-training-batchnorm"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("error %q lacks %q", errOut, w)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written", out)
	}
	code, _, errOut = runCLI(t, append(args[:len(args)-2], "--allow-training-batchnorm", "--out", out)...)
	if code != 0 {
		t.Fatalf("with --allow-training-batchnorm: exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "warning: TRAINING-MODE BATCHNORM") {
		t.Errorf("stderr %q: want the TRAINING-MODE warning", errOut)
	}
	rec, err := importer.ReadRecord(out)
	if err != nil || rec == nil {
		t.Fatalf("import.json: %v", err)
	}
	if !rec.TrainingModeBatchNorm {
		t.Errorf("import.json %+v: want training_mode_batchnorm_accepted", rec)
	}
	// Why it is refused: the statistics differ from the model's.
	got, err := nn.ReadState(filepath.Join(out, "init.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ref, _, _, err := importer.ReadCheckpoint(importFixture("mlp.pt"))
	if err != nil {
		t.Fatal(err)
	}
	moved := false
	for j, v := range ref["2.running_mean"].Data {
		if got["2.running_mean"].Data[j] != v {
			moved = true
		}
	}
	if !moved {
		t.Errorf("2.running_mean of the training-mode export equals the model's: the fixture does not show the trap")
	}
}

// TestImportInputChecks: labels outside the model's outputs are refused
// naming the user's data file (not the run directory being written), a
// negative --limit is refused, and import.json records absolute paths
// although the command was given relative ones.
func TestImportInputChecks(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.safetensors")
	code, _, errOut := runCLI(t, "import", "--init", importFixture("mlp13.onnx"), "--final", importFixture("mlp17.onnx"),
		"--data", importFixture("mlp_data.npz"), "--limit", "-5", "--out", filepath.Join(dir, "neg"))
	if code != 2 || !strings.Contains(errOut, "--limit -5") {
		t.Errorf("--limit -5: exit %d, %q", code, errOut)
	}
	// Label 7 for the MLP's 3 outputs.
	if err := rundir.WriteData(bad, mat.NewDense(5, 6, nil), nn.Targets{Labels: []int{0, 1, 2, 7, 0}}); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "import", "--init", importFixture("mlp13.onnx"), "--final", importFixture("mlp17.onnx"),
		"--data", bad, "--out", filepath.Join(dir, "badrun"))
	if code != 2 || !strings.Contains(errOut, bad+": y: label 7 of example 3 out of range [0, 3)") || strings.Contains(errOut, "partial") {
		t.Errorf("bad label: exit %d, %q: want the data file named", code, errOut)
	}
	out := filepath.Join(dir, "good")
	if code, _, errOut := runCLI(t, "import", "--init", importFixture("mlp13.onnx"), "--final", importFixture("mlp17.onnx"),
		"--data", importFixture("mlp_data.npz"), "--out", out); code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	rec, err := importer.ReadRecord(out)
	if err != nil || rec == nil {
		t.Fatalf("import.json: %v", err)
	}
	for _, c := range []struct{ got, rel string }{{rec.Init.File, importFixture("mlp13.onnx")}, {rec.Final.File, importFixture("mlp17.onnx")}, {rec.Data, importFixture("mlp_data.npz")}} {
		want, _ := filepath.Abs(c.rel)
		if c.got != want {
			t.Errorf("import.json records %q, want %q", c.got, want)
		}
	}
}

// TestBrokenImportRecord: a run directory whose import.json is not valid
// JSON is refused (exit 2, the file named) instead of analysed as if it had
// not been imported; a run without import.json has no import key.
func TestBrokenImportRecord(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	if rec, err := importer.ReadRecord(dir); rec != nil || err != nil {
		t.Fatalf("no import.json: %+v, %v", rec, err)
	}
	if err := os.WriteFile(filepath.Join(dir, importer.RecordFile), []byte(`{"init": `), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "--run", dir, "--no-figures", "--quiet", "--json")
	if code != 2 || !strings.Contains(errOut, importer.RecordFile) {
		t.Errorf("broken import.json: exit %d, %q; want 2 naming the file", code, errOut)
	}
}
