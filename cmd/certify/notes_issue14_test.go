package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// --bn recompute on a model without BatchNorm changes nothing: certify --run
// and certify lmc say so in the report's notes and in the summary, and stay
// silent when the option is not given (newcomer check of issue 14).
func TestBNRecomputeWithoutBatchNormNote(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	const want = "--bn recompute has no effect: the model has no BatchNorm layer"
	for _, bn := range []string{"recompute", "interpolate"} {
		out := filepath.Join(t.TempDir(), "run")
		code, so, se := runCLI(t, "--run", a, "--bn", bn, "--loss-only", "--no-figures", "--alphas", "5", "--out", out)
		if code != 0 {
			t.Fatalf("--run --bn %s: exit %d: %s", bn, code, se)
		}
		r, err := certify.ReadReport(filepath.Join(out, "certificate.json"))
		if err != nil {
			t.Fatal(err)
		}
		inNotes := strings.Contains(strings.Join(r.Notes, "\n"), want)
		if inNotes != (bn == "recompute") || strings.Contains(so, want) != (bn == "recompute") {
			t.Errorf("--run --bn %s: note in report %v, in summary %v (bn_policy %q)\n%s", bn, inNotes, strings.Contains(so, want), r.BNPolicy, so)
		}

		lo := filepath.Join(t.TempDir(), "lmc")
		code, so, se = runCLI(t, "lmc", a, b, "--bn", bn, "--no-certificate", "--no-figures", "--alphas", "5", "--out", lo)
		if code != 0 {
			t.Fatalf("lmc --bn %s: exit %d: %s", bn, code, se)
		}
		notes := lmcNotes(t, lo)
		if strings.Contains(notes, want) != (bn == "recompute") || strings.Contains(so, want) != (bn == "recompute") {
			t.Errorf("lmc --bn %s: notes %q\nsummary:\n%s", bn, notes, so)
		}
	}
}

func lmcNotes(t *testing.T, dir string) string {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(dir, "lmc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Notes []string `json:"notes"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return strings.Join(r.Notes, "\n")
}

// certify lmc A B on runs trained on different data notes both datasets,
// in lmc.json and the summary; runs trained on the same data get no note.
func TestLMCDifferentDatasetsNote(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	cfg := func(dir, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"data":`+data+`}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lmc := func() (string, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "lmc")
		code, so, se := runCLI(t, "lmc", a, b, "--no-certificate", "--no-figures", "--alphas", "5", "--out", out)
		if code != 0 {
			t.Fatalf("lmc: exit %d: %s", code, se)
		}
		return lmcNotes(t, out), so
	}
	cfg(a, `{"name":"fashion-mnist","split":"train","limit":256}`)
	cfg(b, `{"name":"mnist","split":"train","limit":1000}`)
	notes, so := lmc()
	for _, w := range []string{"trained on different data", a + ") on fashion-mnist (first 256 examples)", b + ") on mnist (first 1000 examples)"} {
		if !strings.Contains(notes, w) || !strings.Contains(so, w) {
			t.Errorf("different datasets: %q missing\nnotes: %s\nsummary:\n%s", w, notes, so)
		}
	}
	cfg(b, `{"name":"fashion_mnist","split":"train","limit":256}`) // the same data, by its alias
	if notes, so := lmc(); strings.Contains(notes, "different data") || strings.Contains(so, "different data") {
		t.Errorf("same dataset: a note\n%s\n%s", notes, so)
	}
}

// With --layers, one end of the line is a hybrid of A and B: the summary
// labels that end as the hybrid, not as L(A) (--hold b: the start) or L(B)
// (--hold a: the end).
func TestLMCLayersHybridLabel(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	for hold, want := range map[string]string{
		"a": "L(A) → L(hybrid)",
		"b": "L(hybrid) → L(B)",
	} {
		code, so, se := runCLI(t, "lmc", a, b, "--layers", "0", "--hold", hold, "--no-certificate", "--no-figures", "--alphas", "5", "--out", filepath.Join(t.TempDir(), "lmc"))
		if code != 0 {
			t.Fatalf("--hold %s: exit %d: %s", hold, code, se)
		}
		if !strings.Contains(so, want) || strings.Contains(so, "L(A) → L(B)") {
			t.Errorf("--hold %s: want the label %q, not L(A) → L(B):\n%s", hold, want, so)
		}
	}
	code, so, _ := runCLI(t, "lmc", a, b, "--no-certificate", "--no-figures", "--alphas", "5", "--out", filepath.Join(t.TempDir(), "lmc"))
	if code != 0 || !strings.Contains(so, "L(A) → L(B)") {
		t.Errorf("plain line: exit %d, label missing:\n%s", code, so)
	}
}
