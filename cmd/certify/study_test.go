package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const studyDir = "../../testdata/study"

// studyFiles reads every run's config.json and certificate.json under dir
// with plain JSON decoding.
func studyFiles(t *testing.T, dir string) (cfgs, reps []map[string]any) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "certificate.json" {
			return err
		}
		var c, r map[string]any
		for name, dst := range map[string]*map[string]any{"config.json": &c, "certificate.json": &r} {
			b, err := os.ReadFile(filepath.Join(filepath.Dir(p), name))
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, dst); err != nil {
				return err
			}
		}
		cfgs, reps = append(cfgs, c), append(reps, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfgs, reps
}

// TestTableCommandTotals checks the CSV totals of `certify table` with a
// threshold and a training-loss filter (flags after RUNS_DIR) against counts
// made here from the files.
func TestTableCommandTotals(t *testing.T) {
	out := filepath.Join(t.TempDir(), "t.csv")
	code, so, se := runCLI(t, "table", studyDir, "--rows", "optim,batchnorm", "--cols", "lr",
		"--threshold", "0.01", "--max-train-loss", "0.1", "--format", "csv", "--out", out)
	if code != 0 || so != "" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, so, se)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	got := map[string]int{}
	for _, r := range recs[1:] {
		for _, k := range []string{"runs", "non_monotone", "inconclusive"} {
			n, _ := strconv.Atoi(r[col[k]])
			got[k] += n
		}
	}
	want := map[string]int{}
	cfgs, reps := studyFiles(t, studyDir)
	for i, c := range cfgs {
		l, ok := c["train_loss"].(float64)
		if !ok || l > 0.1 {
			continue
		}
		want["runs"]++
		r := reps[i]
		switch {
		case r["verdict"] == "inconclusive":
			want["inconclusive"]++
		case r["delta"].(float64) > 0.01 || r["verdict"] == "non_monotone" && r["tolerance"].(float64) >= 0.01:
			want["non_monotone"]++
		}
	}
	if want["runs"] == len(cfgs) || want["non_monotone"] == 0 {
		t.Fatalf("test data do not exercise the filter and the threshold: %v of %d", want, len(cfgs))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("total %s = %d, want %d", k, got[k], w)
		}
	}
}

func TestTableCommandOutputs(t *testing.T) {
	code, so, se := runCLI(t, "table", "--format", "markdown", studyDir)
	if code != 0 || !strings.HasPrefix(so, "| optim | lr = 0.01: NM (n)") {
		t.Errorf("markdown: exit %d\n%s\n%s", code, so, se)
	}
	code, so, _ = runCLI(t, "table", studyDir)
	if code != 0 || !strings.Contains(so, `\begin{tabular}`) || !strings.Contains(so, `\bottomrule`) {
		t.Errorf("default LaTeX: exit %d\n%s", code, so)
	}
}

func TestStudyCommandErrors(t *testing.T) {
	root := t.TempDir()
	good := filepath.Join(root, "good")
	bad := filepath.Join(root, "bad")
	for _, d := range []string{good, bad} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(good, "certificate.json"), []byte(`{"verdict":"non_monotone","delta":0.1,"tolerance":0,"weight_distance_normalized":0.5,"gauss_length_mean":0.3}`), 0o644)
	os.WriteFile(filepath.Join(good, "config.json"), []byte(`{"optim":"sgd","lr":0.1,"arch":"4-8-2"}`), 0o644)
	os.WriteFile(filepath.Join(bad, "certificate.json"), []byte(`{"verdict": 3}`), 0o644)
	badFile := filepath.Join(bad, "certificate.json")
	noArch := filepath.Join(t.TempDir(), "runs")
	os.MkdirAll(filepath.Join(noArch, "a"), 0o755)
	os.WriteFile(filepath.Join(noArch, "a", "certificate.json"), []byte(`{"verdict":"non_monotone","delta":0.1,"tolerance":0,"weight_distance_normalized":0.5,"gauss_length_mean":0.3}`), 0o644)
	os.WriteFile(filepath.Join(noArch, "a", "config.json"), []byte(`{"optim":"sgd","lr":0.1}`), 0o644)

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"table", root}, 2, badFile},
		{[]string{"table", root, "--skip-bad"}, 0, "skipped " + badFile},
		{[]string{"table", root, "--skip-bad", "--rows", "optimiser"}, 2, `"optimiser"`},
		{[]string{"table", root, "--format", "html"}, 2, "--format"},
		{[]string{"table"}, 2, "RUNS_DIR"},
		{[]string{"table", root, root}, 2, "RUNS_DIR"},
		{[]string{"table", root, "--threshold", "-1"}, 2, "threshold"},
		{[]string{"table", filepath.Join(root, "none")}, 2, "none"},
		{[]string{"figures", root, "--skip-bad"}, 2, "--out"},
		{[]string{"figures", root, "--skip-bad", "--out", filepath.Join(root, "f"), "--format", "gif"}, 2, "--format"},
		{[]string{"figures", root, "--skip-bad", "--out", filepath.Join(root, "f"), "--heat-y", "colour"}, 2, `"colour"`},
		{[]string{"figures", noArch, "--out", filepath.Join(root, "g"), "--format", "png,svg"}, 0, `warning: delta_heatmap not drawn: no run has a value for key "depth"`},
	} {
		code, so, se := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(se, c.msg) {
			t.Errorf("%v: exit %d (want %d), stderr %q lacks %q (stdout %q)", c.args, code, c.code, se, c.msg, so)
		}
	}
	// without the default heatmap keys, the other figures are still drawn
	for _, n := range []string{"delta_distance", "delta_gauss", "gauss_distance"} {
		if _, err := os.Stat(filepath.Join(root, "g", n+".png")); err != nil {
			t.Errorf("figures without the heatmap's keys: %v", err)
		}
	}
	// the titles name the runs directory
	if b, err := os.ReadFile(filepath.Join(root, "g", "delta_distance.svg")); err != nil || !strings.Contains(string(b), "(runs: "+noArch+")") {
		t.Errorf("delta_distance.svg title does not name %s (%v)", noArch, err)
	}
	if _, err := os.Stat(filepath.Join(root, "g", "delta_heatmap.png")); err == nil {
		t.Error("delta_heatmap.png drawn without its keys")
	}
	for _, c := range [][]string{{"figures", root, "--skip-bad", "--out", filepath.Join(root, "f"), "--format", "gif"}, {"--run", filepath.Join(root, "good"), "--bn", "recomput"}, {"--run", filepath.Join(root, "good"), "--bn-reference", "-1"}} {
		if _, _, se := runCLI(t, c...); strings.Contains(se, "certify: certify:") || strings.Contains(se, "WriteStudyFigures") || strings.Contains(se, "functionspace:") || !strings.Contains(se, c[len(c)-2]) {
			t.Errorf("%v: message names a package or function: %q", c, se)
		}
	}
	if code, _, _ := runCLI(t, "table", "-h"); code != 0 {
		t.Errorf("table -h: exit %d", code)
	}
}

// TestFiguresCommand writes the figures and checks the printed power law
// against a least-squares fit computed here from the trapezoid Gauss
// lengths (--paper-gauss).
func TestFiguresCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "figs")
	code, so, se := runCLI(t, "figures", studyDir, "--out", out, "--paper-gauss", "--heat-y", "width", "--format", "png")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	for _, n := range []string{"delta_distance", "delta_gauss", "gauss_distance", "delta_heatmap"} {
		b, err := os.ReadFile(filepath.Join(out, n+".png"))
		if err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
			t.Errorf("%s.png: %v", n, err)
		}
	}
	_, reps := studyFiles(t, studyDir)
	var x, y []float64
	for _, r := range reps {
		x = append(x, math.Log10(r["weight_distance_normalized"].(float64)))
		y = append(y, math.Log10(r["gauss_length_mean_trapezoid"].(float64)))
	}
	n := float64(len(x))
	var mx, my, sxy, sxx, syy float64
	for i := range x {
		mx, my = mx+x[i]/n, my+y[i]/n
	}
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	b := sxy / sxx
	r2 := sxy * sxy / (sxx * syy) // for a least-squares line, R² = r²
	want := fmt.Sprintf("Gauss length ∝ distance^%.3g (R² = %.3g, %d runs)", b, r2, len(x))
	if !strings.Contains(so, want) {
		t.Errorf("stdout %q lacks %q", so, want)
	}
}

// TestTableVariantsColumns checks `certify table --variants --cols bn`:
// each run's variants/NAME/variant.json is counted in the column of its
// BatchNorm policy beside the run's own certificate.json, and without
// --variants the variants are left out.
func TestTableVariantsColumns(t *testing.T) {
	root := t.TempDir()
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep := func(verdict string, delta float64, bn string) string {
		return fmt.Sprintf(`{"verdict":%q,"delta":%g,"tolerance":0,"bn_policy":%q}`, verdict, delta, bn)
	}
	// Two BatchNorm runs, non-monotone with interpolated statistics and
	// monotone on the grid with recomputed ones, and one without BatchNorm.
	for i, d := range []float64{0.5, 0.25} {
		run := filepath.Join(root, fmt.Sprintf("bn%d", i))
		write(filepath.Join(run, "config.json"), `{"optim":"sgd"}`)
		write(filepath.Join(run, "certificate.json"), rep("non_monotone", d, "interpolate"))
		write(filepath.Join(run, "variants", "bn=recompute_loss-only", VariantReportFile), rep("monotone_on_grid", 0, "recompute"))
	}
	write(filepath.Join(root, "nobn", "config.json"), `{"optim":"sgd"}`)
	write(filepath.Join(root, "nobn", "certificate.json"), rep("monotone_on_grid", 0, "none"))

	table := func(args ...string) map[string]map[string]string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "t.csv")
		code, _, se := runCLI(t, append([]string{"table", root, "--rows", "optim", "--cols", "bn", "--format", "csv", "--out", out}, args...)...)
		if code != 0 {
			t.Fatalf("table %v: exit %d: %s", args, code, se)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		cells := map[string]map[string]string{} // bn level → column → value
		for _, r := range recs[1:] {
			row := map[string]string{}
			for i, h := range recs[0] {
				row[h] = r[i]
			}
			cells[row["bn"]] = row
		}
		return cells
	}
	got := table("--variants")
	for bn, want := range map[string][3]string{
		"interpolate": {"2", "2", "0.375"}, "recompute": {"2", "0", ""}, "none": {"1", "0", ""},
	} {
		c, ok := got[bn]
		if !ok {
			t.Errorf("--variants: no bn = %s column: %v", bn, got)
			continue
		}
		if c["runs"] != want[0] || c["non_monotone"] != want[1] || c["mean_delta_non_monotone"] != want[2] {
			t.Errorf("--variants: bn = %s: runs %s, non_monotone %s, mean_delta %q; want %v (%v)", bn, c["runs"], c["non_monotone"], c["mean_delta_non_monotone"], want, c)
		}
	}
	// --variant GLOB keeps only the variants it matches (here none).
	if only := table("--variant", "examples=*"); len(only) != 2 || only["recompute"] != nil {
		t.Errorf("--variant examples=*: the bn=recompute variants are counted: %v", only)
	}
	if only := table("--variant", "bn=recompute_*"); only["recompute"]["runs"] != "2" {
		t.Errorf("--variant bn=recompute_*: %v", only)
	}
	// The note counts the variants apart: 5 reports are 3 trained runs.
	if code, so, se := runCLI(t, "table", root, "--variants", "--cols", "bn", "--format", "markdown"); code != 0 || !strings.Contains(so, "; 5 runs (2 of them analysis variants of another run") {
		t.Errorf("markdown note: exit %d\n%s\n%s", code, so, se)
	}
	if plain := table(); len(plain) != 2 || plain["recompute"] != nil {
		t.Errorf("without --variants the variants are counted: %v", plain)
	}
}
