package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/align"
	"github.com/certify-mli/certify/nn"
)

// lmcRun writes a run directory of an MLP of the given widths whose final
// state is drawn from seed.
func lmcRun(t *testing.T, widths []int, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	spec := nn.MLPSpec(widths, "tanh", "cross_entropy")
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 100+seed)
	sT, _ := nn.Init(m, "pytorch", 1, seed)
	x := mat.NewDense(12, widths[0], nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = math.Sin(float64(i) * 0.7)
	}
	y := make([]int, 12)
	for i := range y {
		y[i] = i % widths[len(widths)-1]
	}
	writeRunDir(t, dir, spec, s0, sT, "F64", x, nn.Targets{Labels: y})
	return dir
}

// The report has every key RUN_FORMAT.md "Two runs" requires, the
// certified barrier containing the grid's, and --json prints the same
// report.
func TestLMCReportKeys(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	out := filepath.Join(t.TempDir(), "out")
	code, so, se := runCLI(t, "lmc", a, b, "--out", out, "--alphas", "11")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	if !strings.Contains(so, "barrier") {
		t.Errorf("summary lacks the barrier:\n%s", so)
	}
	body, err := os.ReadFile(filepath.Join(out, "lmc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"alphas", "loss", "error", "barrier_loss", "barrier_loss_ainsworth", "barrier_error",
		"midpoint_gap", "barrier_bounds", "barrier_witness", "accuracy_bounds", "aligned", "examples", "seconds", "convexity_gap"} {
		if _, ok := r[k]; !ok {
			t.Errorf("lmc.json lacks %s", k)
		}
	}
	// The certified barrier contains the grid's (a float64 value of g at a
	// grid α), up to the float64 rounding of the loss.
	bb, ok := r["barrier_bounds"].([]any)
	if !ok || len(bb) != 2 || r["barrier_witness"] == nil {
		t.Fatalf("barrier_bounds %v, barrier_witness %v", r["barrier_bounds"], r["barrier_witness"])
	}
	if g := r["barrier_loss"].(float64); g > bb[1].(float64)+1e-9 || bb[0].(float64) > bb[1].(float64) {
		t.Errorf("grid barrier %v, certified bounds %v", g, bb)
	}
	if r["aligned"] != false || len(r["alphas"].([]any)) != 11 || r["examples"].(float64) != 12 {
		t.Errorf("aligned %v, %d α, %v examples", r["aligned"], len(r["alphas"].([]any)), r["examples"])
	}
	for _, f := range []string{"lmc.png", "summary.tex"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	// A second run into the same DIR is refused unless --force.
	if code, _, se := runCLI(t, "lmc", a, b, "--out", out, "--alphas", "21"); code != 2 || !strings.Contains(se, "--force") {
		t.Errorf("existing lmc.json: exit %d, %s", code, se)
	}
	if code, _, se := runCLI(t, "lmc", a, b, "--out", out, "--alphas", "11", "--force"); code != 0 {
		t.Errorf("--force: exit %d, %s", code, se)
	}
	// --force replaces the whole result: an earlier aligned checkpoint and
	// a figure this run does not make (--no-figures) do not stay behind.
	if err := os.WriteFile(filepath.Join(out, "b_aligned.safetensors"), []byte("an earlier run's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, se := runCLI(t, "lmc", a, b, "--out", out, "--alphas", "11", "--force", "--no-figures", "--no-certificate"); code != 0 {
		t.Errorf("--force --no-figures: exit %d, %s", code, se)
	}
	for _, f := range []string{"b_aligned.safetensors", "lmc.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after --force without it, %s: %v (want it removed)", f, err)
		}
	}
	code, so, se = runCLI(t, "lmc", a, b, "--json", "--alphas", "11")
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, se)
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(so), &j); err != nil {
		t.Fatalf("--json printed no JSON: %v\n%s", err, so)
	}
	if j["barrier_loss"] != r["barrier_loss"] {
		t.Errorf("--json barrier_loss %v, lmc.json %v", j["barrier_loss"], r["barrier_loss"])
	}
}

// Two runs of different architectures are refused with exit 2, naming both
// files and the first differing tensor (with the layer count when it
// differs); so are two checkpoint files read with one --model.
func TestLMCRefusesMismatch(t *testing.T) {
	a := lmcRun(t, []int{4, 6, 3}, 1)
	for _, tc := range []struct {
		name  string
		other []int
		want  []string
	}{
		{"width", []int{4, 5, 3}, []string{"0.weight [6, 4] in A", "0.weight [5, 4] in B"}},
		{"layers", []int{4, 6, 6, 3}, []string{"3 layers in A, 5 in B", "first differing tensor 2.weight [3, 6] in A, 2.weight [6, 6] in B"}},
		{"last layer", []int{4, 6, 2}, []string{"2.weight [3, 6] in A", "2.weight [2, 6] in B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := lmcRun(t, tc.other, 2)
			code, _, se := runCLI(t, "lmc", a, b, "--json")
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, se)
			}
			for _, w := range append(tc.want, filepath.Join(a, "final.safetensors"), filepath.Join(b, "final.safetensors")) {
				if !strings.Contains(se, w) {
					t.Errorf("message lacks %q:\n%s", w, se)
				}
			}
			if tc.name == "layers" {
				return
			}
			// The same checkpoints as files, both read with A's model.json.
			fa, fb := filepath.Join(a, "final.safetensors"), filepath.Join(b, "final.safetensors")
			code, _, se = runCLI(t, "lmc", fa, fb, "--model", filepath.Join(a, "model.json"), "--data", filepath.Join(a, "data.safetensors"), "--json")
			if code != 2 {
				t.Fatalf("files: exit %d, want 2: %s", code, se)
			}
			for _, w := range append(tc.want, "A ("+filepath.Join(a, "model.json")+", "+fa, "B ("+filepath.Join(a, "model.json")+", "+fb) {
				if !strings.Contains(se, w) {
					t.Errorf("files: message lacks %q:\n%s", w, se)
				}
			}
		})
	}
	// --model with two run directories, --a-state with a checkpoint file.
	if code, _, se := runCLI(t, "lmc", a, a, "--model", filepath.Join(a, "model.json"), "--json"); code != 2 || !strings.Contains(se, "--model is for checkpoint files") {
		t.Errorf("--model with directories: exit %d, %s", code, se)
	}
	if code, _, se := runCLI(t, "lmc", filepath.Join(a, "final.safetensors"), a, "--model", filepath.Join(a, "model.json"), "--a-state", "init", "--json"); code != 2 || !strings.Contains(se, "--a-state init: applies to run directories") {
		t.Errorf("--a-state with a file: exit %d, %s", code, se)
	}
	// A checkpoint file without --model.
	code, _, se := runCLI(t, "lmc", filepath.Join(a, "final.safetensors"), a, "--json")
	if code != 2 || !strings.Contains(se, "--model") {
		t.Errorf("checkpoint without --model: exit %d, %s", code, se)
	}
}

// The done-when test on the command line: A a trained MLP run (ReLU,
// BatchNorm), B = P(A) for a random permutation P of its hidden units. The
// unaligned barrier is clearly positive; with --align weights P is recovered
// exactly, the aligned checkpoint equals A, and the barrier is 0 to
// rounding; the certified barrier_bounds of the aligned line contain 0.
func TestLMCAlignUndoesPermutation(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	code, _, se := runCLI(t, "train", "--data", "mnist-small", "--limit", "1000", "--arch", "784-32-24-10", "--act", "relu",
		"--batchnorm", "--optim", "sgd", "--lr", "0.1", "--epochs", "2", "--batch", "64", "--seed", "3", "--out", a, "--quiet")
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, se)
	}
	spec, err := nn.ReadSpec(filepath.Join(a, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	sa, err := nn.ReadState(filepath.Join(a, "final.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	p := map[string][]int{"0": rng.Perm(32), "3": rng.Perm(24)} // linear layers 0 and 3 (batchnorm1d and relu between)
	sb, err := align.Permute(spec, sa, p)
	if err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "b")
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.json", "init.safetensors", "config.json"} {
		body, err := os.ReadFile(filepath.Join(a, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(b, f), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := nn.WriteState(filepath.Join(b, "final.safetensors"), sb, "F64"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "lmc")
	code, _, se = runCLI(t, "lmc", a, b, "--align", "weights", "--examples", "500", "--alphas", "21", "--accuracy-intervals", "64", "--out", out)
	if code != 0 {
		t.Fatalf("lmc: exit %d: %s", code, se)
	}
	body, err := os.ReadFile(filepath.Join(out, "lmc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Aligned      bool             `json:"aligned"`
		BarrierLoss  float64          `json:"barrier_loss"`
		BarrierError float64          `json:"barrier_error"`
		Loss         []float64        `json:"loss"`
		Permutations map[string][]int `json:"permutations"`
		Unaligned    struct {
			BarrierLoss   float64     `json:"barrier_loss"`
			BarrierBounds *[2]float64 `json:"barrier_bounds"`
		} `json:"unaligned"`
		BarrierBounds *[2]float64 `json:"barrier_bounds"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("unaligned barrier %.4g, aligned %.3g (L(A) = %.4g)", r.Unaligned.BarrierLoss, r.BarrierLoss, r.Loss[0])
	if !r.Aligned || r.Unaligned.BarrierLoss < 0.05*r.Loss[0] {
		t.Errorf("aligned %v; unaligned barrier %v is not clearly positive (L(A) = %v)", r.Aligned, r.Unaligned.BarrierLoss, r.Loss[0])
	}
	if math.Abs(r.BarrierLoss) > 1e-12 || r.BarrierError != 0 {
		t.Errorf("aligned barrier %v (error %v), want 0 to rounding", r.BarrierLoss, r.BarrierError)
	}
	// The certified barrier of the aligned line contains 0; the unaligned
	// one contains the grid's barrier and is clearly positive.
	if bb := r.BarrierBounds; bb == nil || bb[0] > 0 || bb[1] < 0 {
		t.Errorf("aligned barrier_bounds %v do not contain 0", bb)
	}
	if ub := r.Unaligned.BarrierBounds; ub == nil || ub[0] < 0.05*r.Loss[0] || ub[1] < r.Unaligned.BarrierLoss-1e-9 {
		t.Errorf("unaligned barrier_bounds %v (grid barrier %v)", ub, r.Unaligned.BarrierLoss)
	} else {
		t.Logf("certified: unaligned B ∈ %v, aligned B ∈ %v", *ub, *r.BarrierBounds)
	}
	for l, pl := range p {
		got := r.Permutations[l]
		for i, v := range pl {
			if got[v] != i { // unit v of B is unit P[v] of A: π = P⁻¹
				t.Fatalf("layer %s: recovered %v, want the inverse of %v", l, got, pl)
			}
		}
	}
	aligned, err := nn.ReadState(filepath.Join(out, "b_aligned.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for k, ta := range sa {
		for i, v := range ta.Data {
			if aligned[k].Data[i] != v {
				t.Fatalf("b_aligned %s[%d] = %v, A has %v", k, i, aligned[k].Data[i], v)
			}
		}
	}
}

// Checkpoint files with --model and --data give the same report as the run
// directories; --split test reads the held-out split of config.json's
// dataset and is refused for a run with only data.safetensors.
func TestLMCFilesAndSplits(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	_, dirOut, _ := runCLI(t, "lmc", a, b, "--json")
	code, fileOut, se := runCLI(t, "lmc", filepath.Join(a, "final.safetensors"), filepath.Join(b, "final.safetensors"),
		"--model", filepath.Join(a, "model.json"), "--data", filepath.Join(a, "data.safetensors"), "--json")
	if code != 0 {
		t.Fatalf("files: exit %d: %s", code, se)
	}
	var rd, rf map[string]any
	if err := json.Unmarshal([]byte(dirOut), &rd); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(fileOut), &rf); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"loss", "error", "barrier_loss", "midpoint_gap"} {
		jd, _ := json.Marshal(rd[k])
		jf, _ := json.Marshal(rf[k])
		if string(jd) != string(jf) {
			t.Errorf("%s: directories %s, files %s", k, jd, jf)
		}
	}
	if code, _, se := runCLI(t, "lmc", a, b, "--split", "test", "--json"); code != 2 || !strings.Contains(se, "no held-out split") {
		t.Errorf("--split test without a dataset: exit %d, %s", code, se)
	}
	dir := t.TempDir()
	for _, s := range []string{"1", "2"} {
		if code, _, se := runCLI(t, "train", "--data", "mnist-small", "--limit", "200", "--arch", "784-8-10", "--epochs", "1", "--batch", "50",
			"--seed", s, "--out", filepath.Join(dir, s), "--quiet"); code != 0 {
			t.Fatalf("train: %s", se)
		}
	}
	code, so, se := runCLI(t, "lmc", filepath.Join(dir, "1"), filepath.Join(dir, "2"), "--split", "test", "--examples", "300", "--alphas", "5", "--json")
	if code != 0 {
		t.Fatalf("--split test: exit %d: %s", code, se)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(so), &r); err != nil {
		t.Fatal(err)
	}
	if r["split"] != "test" || r["examples"].(float64) != 300 || !strings.Contains(r["data"].(string), "test") {
		t.Errorf("split %v, examples %v, data %v", r["split"], r["examples"], r["data"])
	}
	// More test examples than the split has: the message blames --examples
	// (the limit's source), not config.json alone.
	code, _, se = runCLI(t, "lmc", filepath.Join(dir, "1"), filepath.Join(dir, "2"), "--split", "test", "--examples", "2000000", "--alphas", "5", "--json")
	if code != 2 || !strings.Contains(se, "--examples 2000000 --split test") || !strings.Contains(se, "config.json") {
		t.Errorf("--examples beyond the test split: exit %d: %s", code, se)
	}
}

// The loss and error along the line between two BatchNorm MLPs against
// PyTorch (tools/torchref/torchref.py, which shares no code with certify),
// given a run directory whose θ0 is A's final state and θT is B's.
func TestLMCAgainstPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PyTorch")
	}
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import torch, functorch").CombinedOutput(); err != nil {
		t.Skipf("PyTorch with functorch not available in %s: %v %s", python, err, out)
	}
	spec := nn.InsertBatchNorm(nn.MLPSpec([]int{5, 9, 7, 4}, "tanh", "cross_entropy"))
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 9))
	var states []nn.State
	for seed := uint64(1); seed <= 2; seed++ {
		s, _ := nn.Init(m, "pytorch", 1, seed)
		for _, k := range s.Names() {
			switch {
			case strings.HasSuffix(k, ".running_mean"), strings.HasSuffix(k, ".weight") && len(s[k].Shape) == 1:
				for i := range s[k].Data {
					s[k].Data[i] = rng.NormFloat64()
				}
			case strings.HasSuffix(k, ".running_var"):
				for i := range s[k].Data {
					s[k].Data[i] = 0.3 + rng.Float64()
				}
			}
		}
		states = append(states, s)
	}
	x := mat.NewDense(40, 5, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	y := make([]int, 40)
	for i := range y {
		y[i] = rng.IntN(4)
	}
	a, b, pair := t.TempDir(), t.TempDir(), t.TempDir()
	writeRunDir(t, a, spec, states[1], states[0], "F64", x, nn.Targets{Labels: y})
	writeRunDir(t, b, spec, states[0], states[1], "F64", x, nn.Targets{Labels: y})
	writeRunDir(t, pair, spec, states[0], states[1], "F64", x, nn.Targets{Labels: y}) // θ0 = A's final, θT = B's final
	code, so, se := runCLI(t, "lmc", a, b, "--alphas", "9", "--json")
	if code != 0 {
		t.Fatalf("lmc: exit %d: %s", code, se)
	}
	var r struct {
		Alphas []float64 `json:"alphas"`
		Loss   []float64 `json:"loss"`
		Error  []float64 `json:"error"`
	}
	if err := json.Unmarshal([]byte(so), &r); err != nil {
		t.Fatal(err)
	}
	var as []string
	for _, al := range r.Alphas {
		as = append(as, strconv.FormatFloat(al, 'g', -1, 64))
	}
	out, err := exec.Command(python, filepath.Join("..", "..", "tools", "torchref", "torchref.py"), pair, "--alphas", strings.Join(as, ",")).Output()
	if err != nil {
		t.Fatalf("torchref.py: %v", err)
	}
	var want struct {
		Loss     []float64 `json:"loss"`
		Accuracy []float64 `json:"accuracy"`
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("torchref.py: %v\n%s", err, out)
	}
	for i, al := range r.Alphas {
		if math.Abs(r.Loss[i]-want.Loss[i]) > 1e-12*math.Max(1, want.Loss[i]) {
			t.Errorf("L(%v) = %.17g, PyTorch %.17g", al, r.Loss[i], want.Loss[i])
		}
		if math.Abs(r.Error[i]-(1-want.Accuracy[i])) > 1e-15 {
			t.Errorf("E(%v) = %v, PyTorch %v", al, r.Error[i], 1-want.Accuracy[i])
		}
	}
}

// Two runs whose tensors all agree but whose architectures differ (tanh in
// A, relu in B) are refused with exit 2 naming both model files and the
// first differing layer: the line between them is not one network's.
func TestLMCRefusesOtherActivation(t *testing.T) {
	a := lmcRun(t, []int{4, 6, 3}, 1)
	b := lmcRun(t, []int{4, 6, 3}, 2)
	rewrite(t, filepath.Join(b, "model.json"), `"tanh"`, `"relu"`)
	code, _, se := runCLI(t, "lmc", a, b, "--json")
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, se)
	}
	for _, w := range []string{filepath.Join(a, "model.json"), filepath.Join(b, "model.json"), "layer 1 is tanh in A, relu in B"} {
		if !strings.Contains(se, w) {
			t.Errorf("message lacks %q:\n%s", w, se)
		}
	}
}
