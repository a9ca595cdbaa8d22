package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// TestAutoencoderBadInput: an autoencoder whose output width differs from
// its input width, or trained with cross_entropy, and unknown tasks or
// reductions are refused with exit 2 naming the flag.
func TestAutoencoderBadInput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"output width", []string{"--task", "autoencoder", "--arch", "784-16-10"}, []string{"--arch 784-16-10", "--task autoencoder", "784", "10"}},
		{"cross_entropy", []string{"--task", "autoencoder", "--arch", "784-16-784", "--loss", "cross_entropy"}, []string{"--loss cross_entropy", "--task autoencoder", "mse"}},
		{"unknown task", []string{"--task", "regress", "--arch", "784-16-784"}, []string{"--task", `"regress"`}},
		{"unknown reduction", []string{"--task", "autoencoder", "--arch", "784-16-784", "--reduction", "max"}, []string{"--reduction", `"max"`}},
		{"sum with cross_entropy", []string{"--arch", "784-16-10", "--reduction", "sum"}, []string{"--reduction sum", "mse only"}},
		{"label noise", []string{"--task", "autoencoder", "--arch", "784-16-784", "--label-noise", "0.1"}, []string{"--label-noise", "no labels"}},
	} {
		args := append([]string{"train", "--data", "mnist-small", "--limit", "10", "--out", out, "--quiet"}, c.args...)
		code, _, stderr := runCLI(t, args...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2 (stderr %q)", c.name, code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q does not mention %q", c.name, stderr, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: a run directory was written", c.name)
		}
	}
}

// TestAutoencoderTrainAndAnalyse trains a small autoencoder and checks that
// model.json and the report record the sum reduction, that the report's
// L(1) is (1/N) Σ‖f(x_i; θT) − x_i‖² computed here from the model's plain
// forward pass on the run's own inputs (a second, independent route through
// the code), and that the per-example theory is in the report.
func TestAutoencoderTrainAndAnalyse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ae")
	code, _, stderr := runCLI(t, "train", "--task", "autoencoder", "--data", "mnist-small", "--limit", "64", "--arch", "784-6-784", "--act", "tanh",
		"--optim", "adam", "--lr", "0.01", "--epochs", "2", "--batch", "32", "--out", dir, "--quiet")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	spec, err := nn.ReadSpec(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.LossReduction != "sum" || spec.Loss != "mse" {
		t.Fatalf("model.json: loss %q, loss_reduction %q; want mse, sum", spec.Loss, spec.LossReduction)
	}
	code, out, stderr := runCLI(t, "--run", dir, "--examples", "12", "--alphas", "11", "--max-intervals", "32", "--example-intervals", "8", "--no-figures", "--json")
	if code != 0 && code != 3 { // any verdict
		t.Fatalf("analyse: exit %d: %s", code, stderr)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v", err)
	}
	if rep["loss_reduction"] != "sum" {
		t.Errorf("report loss_reduction %v, want sum", rep["loss_reduction"])
	}
	run, err := rundir.Read(dir, 12)
	if err != nil {
		t.Fatal(err)
	}
	y := run.Model.Forward(run.ThetaT, run.X)
	var want float64
	for i := 0; i < 12; i++ {
		for j, v := range y.RawRowView(i) {
			d := v - run.X.At(i, j)
			want += d * d
		}
	}
	want /= 12
	loss := rep["loss"].([]any)
	if got := loss[len(loss)-1].(float64); math.Abs(got-want) > 1e-9*want {
		t.Errorf("L(1) = %v, want (1/N) Σ‖f(x_i) − x_i‖² = %v", got, want)
	}
	th := rep["conditions"].(map[string]any)["theorems"].(map[string]any)
	ex, ok := th["examples"].(map[string]any)
	if !ok {
		t.Fatalf("no conditions.theorems.examples: %v", th)
	}
	for _, k := range []string{"theorem_b_range_end", "certificate_range_end"} {
		if v, ok := ex[k].([]any); !ok || len(v) != 12 {
			t.Errorf("%s: %v, want 12 values", k, ex[k])
		}
	}
	if c, ok := ex["contradictions"].(float64); !ok || c != 0 {
		t.Errorf("contradictions %v, want 0", ex["contradictions"])
	}
}

// TestAutoencoderAgreesWithPyTorch trains an autoencoder with `certify
// train --task autoencoder` (784-32-8-32-784 ReLU, linear output, summed
// squared error), exports it with its float targets in data.safetensors,
// analyses it, and has PyTorch (tools/torchref/torchref.py: nested
// functorch.jvp, F.mse_loss(reduction="sum")/N) evaluate the same 50 α: L(α)
// must agree to 1e-9 relative and the trapezoid Gauss length to 1e-6.
func TestAutoencoderAgreesWithPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network and runs PyTorch")
	}
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import torch, functorch").CombinedOutput(); err != nil {
		t.Skipf("PyTorch with functorch not available in %s: %v %s", python, err, out)
	}
	tmp := t.TempDir()
	dir, exp := filepath.Join(tmp, "ae"), filepath.Join(tmp, "ae-export")
	code, _, stderr := runCLI(t, "train", "--task", "autoencoder", "--data", "mnist-small", "--limit", "256", "--arch", "784-32-8-32-784",
		"--optim", "adam", "--lr", "0.003", "--epochs", "2", "--batch", "32", "--dtype", "f64", "--out", dir, "--quiet")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "export", "--run", dir, "--examples", "24", "--out", exp); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	code, out, stderr := runCLI(t, "--run", exp, "--loss-only", "--no-figures", "--json")
	if code != 0 && code != 3 {
		t.Fatalf("analyse: exit %d: %s", code, stderr)
	}
	var rep struct {
		LossReduction string    `json:"loss_reduction"`
		Alphas        []float64 `json:"alphas"`
		Loss          []float64 `json:"loss"`
		GaussTrap     float64   `json:"gauss_length_mean_trapezoid"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join("..", "..", "tools", "torchref", "torchref.py"), exp, "--grid", "50", "--derivs", "--no-paths")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	tb, err := cmd.Output()
	if err != nil {
		t.Fatalf("torchref.py: %v\n%s", err, errb.Bytes())
	}
	var want struct {
		Alphas    []float64 `json:"alphas"`
		Loss      []float64 `json:"loss"`
		GaussTrap float64   `json:"gauss_length_mean_trapezoid"`
	}
	if err := json.Unmarshal(tb, &want); err != nil {
		t.Fatal(err)
	}
	if rep.LossReduction != "sum" || len(want.Loss) != len(rep.Loss) {
		t.Fatalf("loss_reduction %q, %d losses against PyTorch's %d", rep.LossReduction, len(rep.Loss), len(want.Loss))
	}
	worst := 0.0
	for j := range rep.Loss {
		if math.Abs(rep.Alphas[j]-want.Alphas[j]) > 1e-15 {
			t.Fatalf("grid differs at %d: %v vs %v", j, rep.Alphas[j], want.Alphas[j])
		}
		worst = math.Max(worst, math.Abs(rep.Loss[j]-want.Loss[j])/math.Abs(want.Loss[j]))
	}
	if worst > 1e-9 {
		t.Errorf("L(α) differs from PyTorch by %.2g relative (> 1e-9)", worst)
	}
	if e := math.Abs(rep.GaussTrap - want.GaussTrap); e > 1e-6 {
		t.Errorf("trapezoid Gauss length %.12g, PyTorch %.12g (|Δ| %.2g > 1e-6)", rep.GaussTrap, want.GaussTrap, e)
	}
	t.Logf("L(α) within %.2g relative; trapezoid Gauss length %.10g vs %.10g", worst, rep.GaussTrap, want.GaussTrap)
	if want.Loss[len(want.Loss)-1] >= want.Loss[0] {
		t.Errorf("training did not lower the loss: %v → %v", want.Loss[0], want.Loss[len(want.Loss)-1])
	}
}
