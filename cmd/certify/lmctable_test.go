package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Tables across pairs and the instability plot on real spawns: a parent,
// two spawns at each of k = 0 and k = 4, the lmc of each pair, the pair
// (parent, spawn at k = 4) — the parent is its own spawn at every k with its
// own seed, so this pair has k = 4 — and one pair of spawns at different
// steps (k = 0 and k = 4) and one of a spawn and a run that is not its
// parent, which have no k.
//   - lmc-table's CSV holds every lmc.json's barrier_loss and midpoint_gap
//     exactly, k from the spawns' config.json, sorted by k, the pair without
//     k last; barrier_bounds empty (null: the lmc runs use --no-certificate; TestLMCTableBounds has them).
//   - certify table ROOT (a tree of lmc results) writes the same table.
//   - Markdown and LaTeX have one row per pair.
//   - certify figures ROOT draws lmc-instability from the three pairs with a
//     k and says the other two are not drawn.
func TestLMCTableAndInstability(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "parent")
	if code, _, se := runCLI(t, "train", "--data", "mnist-small", "--limit", "200", "--arch", "784-8-10", "--optim", "sgd",
		"--lr", "0.1", "--epochs", "1", "--batch", "25", "--seed", "1", "--out", parent, "--quiet"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, se)
	}
	root := filepath.Join(dir, "lmc")
	for _, k := range []string{"0", "4"} {
		for _, s := range []string{"11", "12"} {
			if code, _, se := runCLI(t, "train", "--spawn-from", parent, "--at-step", k, "--seed", s, "--out", filepath.Join(dir, "k"+k+"-s"+s), "--quiet"); code != 0 {
				t.Fatalf("spawn: exit %d: %s", code, se)
			}
		}
		if code, _, se := runCLI(t, "lmc", filepath.Join(dir, "k"+k+"-s11"), filepath.Join(dir, "k"+k+"-s12"), "--alphas", "11",
			"--no-figures", "--no-certificate", "--out", filepath.Join(root, "k"+k)); code != 0 {
			t.Fatalf("lmc: exit %d: %s", code, se)
		}
	}
	if code, _, se := runCLI(t, "lmc", parent, filepath.Join(dir, "k4-s11"), "--alphas", "11", "--no-figures", "--no-certificate", "--out", filepath.Join(root, "k4-parent")); code != 0 {
		t.Fatalf("lmc: exit %d: %s", code, se)
	}
	if code, _, se := runCLI(t, "lmc", filepath.Join(dir, "k0-s11"), filepath.Join(dir, "k4-s12"), "--alphas", "11", "--no-figures", "--no-certificate", "--out", filepath.Join(root, "a-mixed")); code != 0 {
		t.Fatalf("lmc: exit %d: %s", code, se)
	}
	other := filepath.Join(dir, "other") // same flags, another seed: not the spawns' parent
	if code, _, se := runCLI(t, "train", "--data", "mnist-small", "--limit", "200", "--arch", "784-8-10", "--optim", "sgd",
		"--lr", "0.1", "--epochs", "1", "--batch", "25", "--seed", "2", "--out", other, "--quiet"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, se)
	}
	if code, _, se := runCLI(t, "lmc", other, filepath.Join(dir, "k4-s11"), "--alphas", "11", "--no-figures", "--no-certificate", "--out", filepath.Join(root, "b-other")); code != 0 {
		t.Fatalf("lmc: exit %d: %s", code, se)
	}
	code, so, se := runCLI(t, "lmc-table", root, "--format", "csv")
	if code != 0 {
		t.Fatalf("lmc-table: exit %d: %s", code, se)
	}
	recs, err := csv.NewReader(strings.NewReader(so)).ReadAll()
	if err != nil || len(recs) != 6 {
		t.Fatalf("csv: %v, %d records:\n%s", err, len(recs), so)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for i, want := range []struct{ name, k string }{{"k0", "0"}, {"k4", "4"}, {"k4-parent", "4"}, {"a-mixed", ""}, {"b-other", ""}} {
		rec := recs[i+1]
		if filepath.Base(rec[col["dir"]]) != want.name || rec[col["spawn_step"]] != want.k {
			t.Errorf("row %d: dir %s, k %q; want %s, %q", i, rec[col["dir"]], rec[col["spawn_step"]], want.name, want.k)
		}
		body, err := os.ReadFile(filepath.Join(root, want.name, "lmc.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r map[string]any
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"barrier_loss", "midpoint_gap", "barrier_error"} {
			if got, _ := strconv.ParseFloat(rec[col[key]], 64); got != r[key].(float64) {
				t.Errorf("%s %s: table %s, lmc.json %v", want.name, key, rec[col[key]], r[key])
			}
		}
		if rec[col["barrier_bounds_lo"]] != "" || rec[col["barrier_bounds_hi"]] != "" {
			t.Errorf("%s: barrier bounds %q %q, want empty (null)", want.name, rec[col["barrier_bounds_lo"]], rec[col["barrier_bounds_hi"]])
		}
	}
	if code, so2, se := runCLI(t, "table", root, "--format", "csv"); code != 0 || so2 != so {
		t.Errorf("certify table on lmc results: exit %d %s\n%s\nwant\n%s", code, se, so2, so)
	}
	for _, f := range []string{"markdown", "latex"} {
		code, out, se := runCLI(t, "lmc-table", root, "--format", f)
		if code != 0 || strings.Count(out, "not computed") != 5 {
			t.Errorf("%s: exit %d %s; want 5 rows with the bounds not computed:\n%s", f, code, se, out)
		}
	}
	figs := filepath.Join(dir, "figs")
	code, so, se = runCLI(t, "figures", root, "--out", figs, "--format", "png")
	if code != 0 || !strings.Contains(so, "3 pairs of spawns") || !strings.Contains(se, "2 lmc.json not between two spawns") {
		t.Fatalf("figures: exit %d, %q, %q", code, so, se)
	}
	if st, err := os.Stat(filepath.Join(figs, "lmc-instability.png")); err != nil || st.Size() < 1000 {
		t.Errorf("lmc-instability.png: %v", err)
	}
	if code, _, se := runCLI(t, "lmc-table", dir+"/nothing", "--format", "csv"); code != 2 {
		t.Errorf("missing dir: exit %d, %s", code, se)
	}
	if code, _, se := runCLI(t, "table", root, "--rows", "lr"); code != 2 || !strings.Contains(se, "--rows does not apply") {
		t.Errorf("table --rows on lmc results: exit %d, %s", code, se)
	}
	if code, _, se := runCLI(t, "lmc-table", root, "--format", "html"); code != 2 || !strings.Contains(se, "--format") {
		t.Errorf("--format html: exit %d, %s", code, se)
	}
}
