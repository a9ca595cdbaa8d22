package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// TestHelpAtEveryLevel: certify --help lists the analysis flags; every
// command's -h exits 0 with readable argument names; unexpected arguments
// name the command once.
func TestHelpAtEveryLevel(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	for _, f := range []string{"-alphas int", "-loss-only", "-out string", "-examples N", "-json", "certify train", "certify sweep"} {
		if code != 0 || !strings.Contains(out, f) {
			t.Errorf("certify --help (exit %d) lacks %q", code, f)
		}
	}
	for _, cmd := range []string{"train", "sweep", "export", "table", "figures", "demo", "bench"} {
		code, out, e := runCLI(t, cmd, "-h")
		out += e
		if code != 0 || !strings.Contains(out, "certify "+cmd) || strings.Contains(out, " value\n") {
			t.Errorf("certify %s -h: exit %d, %q %q", cmd, code, out, e)
		}
		// An argument name taken from backquotes must be a word (flag.UnquoteUsage).
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(f[0], "-") && !strings.HasPrefix(line, "    \t") {
				t.Errorf("certify %s -h: %q: flag line with more than one argument word", cmd, line)
			}
		}
	}
	dir := makeRun(t, "mse")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--run", dir, "stray"}, `unexpected argument "stray"`},
		{[]string{"train", "--out", filepath.Join(dir, "x"), "stray"}, `train: unexpected argument "stray" (see certify train -h)`},
		{[]string{"--run", dir, "--no-such-flag"}, "see certify --help"},
	} {
		code, _, e := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(e, c.want) || strings.Contains(e, "certify certify") {
			t.Errorf("%v: exit %d, %q; want %q", c.args, code, e, c.want)
		}
	}
}

// TestTrainRefusesToDiscardInterruptedRun: OUT.partial left by an
// interrupted train is not silently discarded by a train without --resume.
func TestTrainRefusesToDiscardInterruptedRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	partial := out + ".partial"
	os.MkdirAll(filepath.Join(partial, "checkpoints"), 0o755)
	os.WriteFile(filepath.Join(partial, "checkpoints", "step-4.safetensors"), []byte("x"), 0o644)
	code, _, e := runCLI(t, "train", "--data", "mnist-small", "--arch", "784-4-10", "--limit", "100", "--out", out, "--quiet")
	if code != 2 || !strings.Contains(e, "--resume") || !strings.Contains(e, "--force") || !strings.Contains(e, "step-4") {
		t.Errorf("exit %d, %q; want a refusal saying --resume or --force", code, e)
	}
	if _, err := os.Stat(filepath.Join(partial, "checkpoints", "step-4.safetensors")); err != nil {
		t.Errorf("the interrupted run was discarded: %v", err)
	}
	// --act lists activations, not layer types.
	code, _, e = runCLI(t, "train", "--act", "rellu", "--out", filepath.Join(t.TempDir(), "y"))
	if code != 2 || !strings.Contains(e, "relu, leaky_relu, tanh, sigmoid, gelu, softplus, identity") || strings.Contains(e, "flatten") {
		t.Errorf("--act rellu: exit %d, %q", code, e)
	}
}

// TestExamplesSemantics: on a run trained on config.json's first 300
// examples, unset --examples evaluates those 300 (min of 5000 and the
// limit), --examples 0 all 300, --examples 100 the first 100, and
// --examples 400 the 400 with the 100 unseen ones labelled in data and
// notes.
func TestExamplesSemantics(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a network")
	}
	dir := filepath.Join(t.TempDir(), "run")
	if code, _, e := runCLI(t, "train", "--data", "mnist-small", "--arch", "784-4-10", "--limit", "300", "--epochs", "1", "--out", dir, "--quiet"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, e)
	}
	for _, c := range []struct {
		args   []string
		n      int
		beyond bool
	}{{nil, 300, false}, {[]string{"--examples", "0"}, 300, false}, {[]string{"--examples", "100"}, 100, false}, {[]string{"--examples", "400"}, 400, true}} {
		code, out, e := runCLI(t, append([]string{"--run", dir, "--loss-only", "--alphas", "3", "--json"}, c.args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, e)
		}
		var m struct {
			Examples int      `json:"examples"`
			Data     string   `json:"data"`
			Notes    []string `json:"notes"`
		}
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		labelled := strings.Contains(m.Data, "not the training loss") && strings.Contains(strings.Join(m.Notes, " "), "100 of the 400 examples lie beyond the first 300")
		if m.Examples != c.n || labelled != c.beyond {
			t.Errorf("%v: %d examples, data %q, notes %v; want %d, labelled %v", c.args, m.Examples, m.Data, m.Notes, c.n, c.beyond)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "certificate.json")); err == nil {
		t.Error("--json wrote certificate.json")
	}
}

// TestSweepGridValues: a bad value (a misspelt dataset, 1 α, an unknown
// activation) is refused by --dry-run and before any point runs, naming
// the grid, the point and the value; nothing is created.
func TestSweepGridValues(t *testing.T) {
	for _, c := range []struct {
		axes, analysis string
		want           string
	}{
		{`{"data": ["mnist-small", "fashion-mnsit"]}`, "", `--data "fashion-mnsit": unknown data set`},
		{`{"act": ["relu", "rellu"]}`, "", `--act "rellu": unknown activation`},
		{`{"lr": [0.1]}`, `, "analysis": {"alphas": 1}`, "--alphas 1: the grid needs at least 2 points"},
		{`{"optim": ["sgd", "adamm"]}`, "", "adamm"},
	} {
		path := filepath.Join(t.TempDir(), "g.json")
		base := `{"limit": 50, "arch": "784-4-10"`
		if !strings.Contains(c.axes, `"data"`) {
			base += `, "data": "mnist-small"`
		}
		os.WriteFile(path, []byte(`{"base": `+base+`}, "axes": `+c.axes+c.analysis+`}`), 0o644)
		for _, extra := range [][]string{{"--dry-run"}, nil} {
			out := filepath.Join(t.TempDir(), "runs")
			code, _, e := runCLI(t, append([]string{"sweep", path, "--out", out}, extra...)...)
			if code != 2 || !strings.Contains(e, c.want) || !strings.Contains(e, path) || !strings.Contains(e, "point ") {
				t.Errorf("%s %v: exit %d, %q; want 2 and %q", c.axes, extra, code, e, c.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s %v: the output directory was created", c.axes, extra)
			}
		}
	}
}

// TestSweepEmitCPUsAndDone: the SLURM script asks for
// DefaultCPUsPerTask cores unless told otherwise, lists only the points
// not done, and is not written when every point is done.
func TestSweepEmitCPUsAndDone(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a sweep")
	}
	grid := tinyGrid(t, `{"lr": [0.05, 0.2]}`)
	out := filepath.Join(t.TempDir(), "runs")
	emit := func(extra ...string) (int, string, string) {
		return runCLI(t, append([]string{"sweep", grid, "--out", out, "--emit", "slurm", "--certify", "/opt/certify"}, extra...)...)
	}
	if code, _, e := emit(); code != 0 {
		t.Fatal(e)
	}
	if s := mustRead(t, filepath.Join(out, "sweep.sbatch")); !strings.Contains(s, "#SBATCH --cpus-per-task=4\n") || !strings.Contains(s, "--array=0-1\n") {
		t.Errorf("script:\n%s", s)
	}
	if code, _, e := emit("--slurm-opt", "--cpus-per-task=2"); code != 0 {
		t.Fatal(e)
	}
	if s := mustRead(t, filepath.Join(out, "sweep.sbatch")); strings.Count(s, "cpus-per-task") != 1 || !strings.Contains(s, "--cpus-per-task=2") {
		t.Errorf("script with --cpus-per-task=2:\n%s", s)
	}
	if code, _, e := runCLI(t, "sweep", grid, "--out", out, "--only", "lr=0.05", "--quiet"); code != 0 {
		t.Fatal(e)
	}
	code, msg, e := emit()
	if s := mustRead(t, filepath.Join(out, "sweep.sbatch")); code != 0 || !strings.Contains(s, "--array=1\n") || !strings.Contains(msg, "1 array task (") || !strings.Contains(msg, "1 already done") {
		t.Errorf("after one point: exit %d %s, %q, script:\n%s", code, e, msg, s)
	}
	if code, _, e := runCLI(t, "sweep", grid, "--out", out, "--quiet"); code != 0 {
		t.Fatal(e)
	}
	os.Remove(filepath.Join(out, "sweep.sbatch"))
	code, msg, _ = emit()
	if _, err := os.Stat(filepath.Join(out, "sweep.sbatch")); code != 0 || err == nil || !strings.Contains(msg, "is done; no script written") {
		t.Errorf("every point done: exit %d, %q, script %v", code, msg, err)
	}
}

// TestSweepLossOnly: a grid whose analysis is --loss-only finishes, and its
// index and records leave delta_continuous out (not computed) instead of
// failing on NaN or writing 0.
func TestSweepLossOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lo.json")
	os.WriteFile(path, []byte(`{"base": {"data": "mnist-small", "limit": 100, "arch": "784-4-10", "batch": 50, "epochs": 1},
  "axes": {"seed": [1]}, "analysis": {"alphas": 3, "loss-only": true, "no-figures": true}}`), 0o644)
	out := filepath.Join(t.TempDir(), "runs")
	if code, _, e := runCLI(t, "sweep", path, "--out", out, "--quiet"); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	idx := readIndex(t, out)
	if e := idx.Points[0]; e.Status != "done" || e.Delta == nil || e.DeltaContinuous != nil {
		t.Errorf("index entry %+v: want done, delta set, delta_continuous absent", e)
	}
	// The printed summary names the BatchNorm policy.
	var b strings.Builder
	printSummary(&b, out, &certify.Report{Loss: []float64{1, 0.5}, Accuracy: []float64{0, 1}, Alphas: []float64{0, 1}, BNPolicy: "recompute"})
	if !strings.Contains(b.String(), "BatchNorm          recompute along the line") {
		t.Errorf("summary does not name the BatchNorm policy:\n%s", b.String())
	}
}
