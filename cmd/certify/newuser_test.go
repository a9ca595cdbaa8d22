package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBudgetFlagsRefused: a certificate budget or width with no meaning
// (--max-intervals -3 or 0, --min-width -1, …) is refused with exit 2 and a
// message naming the flag and its allowed range, before any work. Before,
// the analysis ran with the default budget (certify's WithDefaults replaces
// a value ≤ 0) yet wrote variants/max-intervals=-3/ and recorded -3 in the
// report's options.
func TestBudgetFlagsRefused(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-intervals", "-3"}, "--max-intervals -3: want a positive"},
		{[]string{"--max-intervals", "0"}, "--max-intervals 0: want a positive"},
		{[]string{"--min-width", "-1"}, "--min-width -1: want a leaf width in (0, 1)"},
		{[]string{"--min-width", "0"}, "--min-width 0: want"},
		{[]string{"--min-width", "nan"}, "--min-width NaN: want"},
		{[]string{"--min-width", "2"}, "--min-width 2: want"},
		{[]string{"--accuracy-intervals", "0"}, "--accuracy-intervals 0: want a positive"},
		{[]string{"--example-intervals", "-1"}, "--example-intervals -1: want 0 (skip)"},
		{[]string{"--loss-only", "--no-geometry"}, "--no-geometry with --loss-only: --loss-only already skips the geometry"},
	} {
		code, _, se := runCLI(t, append([]string{"--run", dir, "--no-figures"}, tc.args...)...)
		if code != 2 || !strings.Contains(se, tc.want) || strings.Count(strings.TrimSpace(se), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line containing %q", tc.args, code, se, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "variants")); !os.IsNotExist(err) {
		t.Errorf("a refused budget left %s/variants behind (err %v)", dir, err)
	}
	a := lmcRun(t, []int{4, 6, 3}, 1)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-intervals", "0"}, "--max-intervals"},
		{[]string{"--accuracy-intervals", "-2"}, "--accuracy-intervals"},
		{[]string{"--workers", "-2"}, "--workers -2: want 0 (one per core)"},
	} {
		code, _, se := runCLI(t, append([]string{"lmc", a, a, "--json"}, tc.args...)...)
		if code != 2 || !strings.Contains(se, tc.want) {
			t.Errorf("lmc %v: exit %d, stderr %q; want 2 and %q", tc.args, code, se, tc.want)
		}
	}
	code, _, se := runCLI(t, "bench", "--run", "x", "--torch-threads", "0")
	if code != 2 || !strings.Contains(se, "--torch-threads 0") {
		t.Errorf("bench --torch-threads 0: exit %d, stderr %q; want 2 naming the flag", code, se)
	}
}

// TestLMCDataSplit: certify lmc --data FILE evaluates the file, not a run's
// training data, so the report says so: split "data" with data_file naming
// the file in lmc.json, "data file NAME" in the summary, "NAME (N)" in
// lmc-table. Before, all three said "train". --split test on a run without
// config.json suggests --data.
func TestLMCDataSplit(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	raw, err := os.ReadFile(filepath.Join(a, "data.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	held := filepath.Join(root, "heldout.safetensors")
	if err := os.WriteFile(held, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "lmc", "ab")
	code, so, se := runCLI(t, "lmc", a, b, "--data", held, "--no-figures", "--no-certificate", "--alphas", "5", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	if !strings.Contains(so, "data file heldout.safetensors,") || strings.Contains(so, "train split") {
		t.Errorf("summary does not name the data file:\n%s", so)
	}
	var r struct {
		Split    string `json:"split"`
		DataFile string `json:"data_file"`
		Examples int    `json:"examples"`
	}
	j, err := os.ReadFile(filepath.Join(out, "lmc.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, &r); err != nil {
		t.Fatal(err)
	}
	if r.Split != "data" || r.DataFile != held {
		t.Errorf("lmc.json: split %q, data_file %q; want \"data\" and %q", r.Split, r.DataFile, held)
	}
	code, so, se = runCLI(t, "lmc-table", filepath.Join(root, "lmc"))
	if code != 0 || !strings.Contains(so, fmt.Sprintf("heldout.safetensors (%d)", r.Examples)) || strings.Contains(so, "train (") {
		t.Errorf("lmc-table: exit %d, %s\n%s; want the data file named", code, se, so)
	}
	if code, _, se := runCLI(t, "lmc", a, b, "--split", "test", "--json"); code != 2 || !strings.Contains(se, "--data FILE") {
		t.Errorf("--split test without config.json: exit %d, %q; want 2 and a hint to --data FILE", code, se)
	}
}

// TestTorchCheckDefaultExamples: scripts/torch_check.sh without N checks
// the run's own examples (min(1000, its count)) and says so. Before, N
// defaulted to 1000 and a run with fewer examples failed with
// "--examples 1000 but the file holds 6 examples", a flag the user never gave.
func TestTorchCheckDefaultExamples(t *testing.T) {
	needTorch(t)
	if testing.Short() {
		t.Skip("builds certify and runs PyTorch")
	}
	dir := makeRun(t, "cross_entropy")
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "torch_check.sh"), dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "torch_check: 6 examples (min(1000, the run's 6)") || !strings.Contains(string(out), "PASS") {
		t.Errorf("scripts/torch_check.sh %s: %v\n%s", dir, err, out)
	}
}

// TestModelJSONSyntaxLine: invalid JSON in model.json is reported with the
// line and column of the offending character (the offset of
// json.SyntaxError), not only "invalid character ']' looking for beginning
// of value", which a user cannot find in a long file.
func TestModelJSONSyntaxLine(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"{\"layers\": [\n  {\"type\": \"linear\", \"in\": 2, \"out\": 3},\n]}\n", "line 3, column 1: invalid character ']'"},
		{"{\"layers\": [\n  {\"type\": \"linear\" \"in\": 2}]}", "line 2, column 21: invalid character '\"' after object key:value pair"},
		{"{\"loss\": \"mse\",\n\"layers\": [", "line 2, column 11: unexpected end of JSON input"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(tc.doc), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, se := runCLI(t, "--run", dir, "--no-figures")
		if code != 2 || !strings.Contains(se, filepath.Join(dir, "model.json")+": invalid JSON at "+tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.doc, code, se, tc.want)
		}
	}
}

// TestREADMECNNExample: the README's CNN example block (certify --run on a
// copy of testdata/torchref/cnn-conv-relu-maxpool) shows what certify
// prints now, line for line from the run header to the Gauss length (the
// BLAS and report lines depend on the machine; the certificate's seconds
// are not compared). A first-time user found it stale: Δ ∈ [0.6383, 4.848],
// 32 leaves, where certify printed Δ ∈ [0.6385, 0.6391], 44 leaves.
func TestREADMECNNExample(t *testing.T) {
	const cmdLine = "$ certify --run /tmp/cnn --no-figures\n"
	readme, i := readmeLine(t, cmdLine)
	block := readme[i+len(cmdLine):]
	block = block[:strings.Index(block, "  ...\n")]
	dir := filepath.Join(t.TempDir(), "cnn")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("..", "..", "testdata", "torchref", "cnn-conv-relu-maxpool")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, so, se := runCLI(t, "--run", dir, "--no-figures")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	secs := regexp.MustCompile(`, [0-9.]+s$`)
	for _, want := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
		want = strings.ReplaceAll(want, "/tmp/cnn", dir)
		found := false
		for _, got := range strings.Split(so, "\n") {
			if got == want || (strings.HasPrefix(want, "  certificate") && secs.ReplaceAllString(got, "") == secs.ReplaceAllString(want, "")) {
				found = true
			}
		}
		if !found {
			t.Errorf("README.md shows %q; certify prints:\n%s", want, so)
		}
	}
}

// TestDropoutHint: a model.json with {"type": "dropout"} (a PyTorch user's
// first guess) is refused, and the message says Dropout is written
// "identity" (it is the identity in evaluation mode); other unsupported
// types get no such hint.
func TestDropoutHint(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		hint bool
	}{{"dropout", true}, {"Dropout2d", true}, {"lstm", false}} {
		dir := t.TempDir()
		doc := `{"format": "sequential/v1", "input_shape": [2], "layers": [{"type": "linear", "in": 2, "out": 3}, {"type": "` + tc.typ + `"}], "loss": "mse"}`
		if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, se := runCLI(t, "--run", dir, "--no-figures")
		hint := strings.Contains(se, `nn.Dropout is written {"type": "identity"}`)
		if code != 2 || !strings.Contains(se, `layers[1]: type: unsupported layer type "`+tc.typ+`"`) || hint != tc.hint {
			t.Errorf("%s: exit %d, stderr %q; want 2, the type named, hint %v", tc.typ, code, se, tc.hint)
		}
	}
}

// TestInterruptedOutRemoved: Ctrl-C during certify --run R --out out/x
// exits 130 saying nothing was written, and leaves no empty out/x (nor an
// out it made for it) behind; an --out directory that existed before is
// kept.
func TestInterruptedOutRemoved(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(root, "out", "x")
	code, _, se := runCLIContext(t, ctx, "--run", dir, "--out", out, "--no-figures")
	if code != 130 || !strings.Contains(se, "nothing written") {
		t.Fatalf("exit %d, stderr %q; want 130 and nothing written", code, se)
	}
	if _, err := os.Stat(filepath.Join(root, "out")); !os.IsNotExist(err) {
		t.Errorf("%s left behind after the interrupt (stat: %v)", filepath.Join(root, "out"), err)
	}
	kept := filepath.Join(root, "kept")
	if err := os.Mkdir(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _, se := runCLIContext(t, ctx, "--run", dir, "--out", kept, "--no-figures"); code != 130 {
		t.Fatalf("existing --out: exit %d, stderr %q", code, se)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the --out directory that existed before the run was removed: %v", err)
	}
}

// TestLMCPyTorchFolder: certify lmc on a PyTorch output folder (init.pt,
// final.pt, no model.json) points to certify import, as certify --run does,
// instead of "open DIR/model.json: no such file or directory".
func TestLMCPyTorchFolder(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join("..", "..", "nn", "torchpt", "testdata", "tensors.pt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"init.pt", "final.pt"} {
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"lmc", dir, dir, "--json"}, {"--run", dir, "--no-figures"}} {
		code, _, se := runCLI(t, args...)
		if code != 2 || !strings.Contains(se, "model.json: missing, but") || !strings.Contains(se, "certify import") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a pointer to certify import", args, code, se)
		}
	}
}

// TestREADMEBlocksConsistent: the README's blocks of real output follow
// one convention (a first-user walkthrough found some with certify's `run …`
// header line and a date and some without): every `$ certify --run …`
// (or `go run ./cmd/certify --run …`) that shows output shows certify's
// first line, `run NAME (…)`, right after it, and every block that shows
// output says in the paragraph before it when it was recorded (a date).
func TestREADMEBlocksConsistent(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readme), "\n")
	date := regexp.MustCompile(`20[0-9][0-9]-?[01][0-9]-?[0-3][0-9]`)
	analyse := regexp.MustCompile(`^\$ (go run \./cmd/certify|certify) --run (\S+)`)
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") {
			continue
		}
		end := i + 1
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if lines[i] != "```" { // output blocks have no language tag
			i = end
			continue
		}
		block := lines[i+1 : end]
		hasCmd, hasOut := false, false
		for k, l := range block {
			if strings.HasPrefix(l, "$ ") {
				hasCmd = true
				next := k + 1
				for next < len(block) && strings.HasPrefix(block[next], "certificate: ") {
					next++ // the search's stderr notices (verdict decided, resuming) come first
				}
				if m := analyse.FindStringSubmatch(l); m != nil && next < len(block) && !strings.HasPrefix(block[next], "$ ") {
					if want := "run " + m[2] + " ("; !strings.HasPrefix(block[next], want) {
						t.Errorf("README.md:%d: %q is followed by %q, not certify's header line %q…", i+2+next-1, l, block[next], want)
					}
				}
			} else if !strings.HasPrefix(l, "    ") || k == 0 || !strings.HasSuffix(block[k-1], "\\") {
				hasOut = true // not a continuation of a command
			}
		}
		if hasCmd && hasOut {
			para := ""
			for k := i - 1; k >= 0 && k >= i-8 && !strings.HasPrefix(lines[k], "```"); k-- {
				para = lines[k] + "\n" + para
			}
			if !date.MatchString(para) {
				t.Errorf("README.md:%d: a block of output without the date it was recorded in the paragraph before it:\n%s", i+1, para)
			}
		}
		i = end
	}
}

// readmeLine returns the repository's README.md and the offset of line in
// it (a README test's command line, with its newline); the test fails when
// the README lacks it.
func readmeLine(t *testing.T, line string) (readme string, at int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	at = strings.Index(string(b), line)
	if at < 0 {
		t.Fatalf("README.md lacks %q", line)
	}
	return string(b), at
}
