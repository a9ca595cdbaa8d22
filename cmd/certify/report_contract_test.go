package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// jsonKeys returns every object key at every depth of the JSON value v,
// with its dotted path.
func jsonKeys(v any, path string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			out[path+"."+k] = k
			jsonKeys(x, path+"."+k, out)
		}
	case []any:
		for _, x := range v {
			jsonKeys(x, path+"[]", out)
		}
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestReportKeysSnakeCase: every key at every depth of a full report (with
// bumps, a certificate and Theorem conditions: an mse run) is snake_case,
// and the witness is stated once.
func TestReportKeysSnakeCase(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z0-9_]+$`)
	for _, loss := range []string{"mse", "cross_entropy"} {
		dir := makeRun(t, loss)
		if code, _, e := runCLI(t, "--run", dir, "--no-figures", "--quiet"); code != 0 {
			t.Fatalf("%s: exit %d: %s", loss, code, e)
		}
		m := readJSON(t, filepath.Join(dir, "certificate.json"))
		keys := map[string]string{}
		jsonKeys(m, "", keys)
		var bad []string
		for p, k := range keys {
			if !snake.MatchString(k) {
				bad = append(bad, p)
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			t.Errorf("%s: keys not snake_case: %v", loss, bad)
		}
		for _, want := range []string{".verdict", ".gauss_length_quantiles.median", ".conditions.theorem_a", ".certificate.delta_upper"} {
			if _, ok := keys[want]; !ok {
				t.Errorf("%s: report lacks %s", loss, want)
			}
		}
	}
	// A report with a bump and a certified witness: keys snake_case, the
	// witness once (top level, with the certificate's enclosures).
	w := &certify.Witness{Alpha: 0.25, Beta: 0.5, Rise: 0.1, RoundingError: 1e-12}
	r := &certify.Report{Verdict: certify.NonMonotone, Alphas: []float64{0, 1}, Loss: []float64{1, 1.1},
		Bumps:       []certify.Bump{{Start: 0, End: 1, EndIndex: 1, Height: 0.1}},
		Witness:     w,
		Certificate: &certify.Certificate{Verdict: certify.NonMonotone, Witness: &certify.CertWitness{Alpha: 0.25, Beta: 0.5, Rise: 0.09, LossAlpha: [2]float64{1, 1.01}, LossBeta: [2]float64{1.1, 1.11}}}}
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	jsonKeys(m, "", keys)
	for p, k := range keys {
		if !snake.MatchString(k) {
			t.Errorf("key %s not snake_case", p)
		}
	}
	if _, ok := keys[".certificate.witness"]; ok {
		t.Error("the witness appears twice (witness and certificate.witness)")
	}
	for _, k := range []string{".witness.alpha", ".witness.rounding_error", ".witness.loss_alpha", ".bumps[].start", ".bumps[].height"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("report lacks %s", k)
		}
	}
}

// TestLossOnlyNulls: what --loss-only does not compute is null, never 0,
// with a note; read back it is NaN (not computed), not 0.
func TestLossOnlyNulls(t *testing.T) {
	dir := makeRun(t, "mse")
	out := filepath.Join(t.TempDir(), "lo")
	if code, _, e := runCLI(t, "--run", dir, "--loss-only", "--out", out, "--quiet"); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	m := readJSON(t, filepath.Join(out, "certificate.json"))
	for _, k := range []string{"delta_continuous", "delta_continuous_pair", "gauss_length_mean", "gauss_length_stacked",
		"gauss_length_mean_error", "gauss_length_stacked_converged", "gauss_length_quantiles", "arc_length", "arc_length_mean",
		"zero_speed_events", "gauss_length_intervals"} {
		v, ok := m[k]
		if ok && v != nil {
			t.Errorf("--loss-only: %s = %v, want null or absent", k, v)
		}
	}
	if notes, _ := m["notes"].([]any); len(notes) == 0 || !strings.Contains(notes[0].(string), "loss_only") {
		t.Errorf("--loss-only: notes %v do not say what was not computed", m["notes"])
	}
	// absent conditions and the null delta_bounds are explained too, and
	// the trapezoid the help promises is there
	for _, k := range []string{"conditions.theorem_a", "conditions.theorem_b", "delta_bounds: null"} {
		if !strings.Contains(fmtNotes(m), k) {
			t.Errorf("--loss-only: notes lack %q:\n%s", k, fmtNotes(m))
		}
	}
	if v, ok := m["gauss_length_mean_trapezoid"].(float64); !ok || !(v > 0) {
		t.Errorf("--loss-only: gauss_length_mean_trapezoid %v, want the paper's trapezoid value", m["gauss_length_mean_trapezoid"])
	}
	r, err := certify.ReadReport(filepath.Join(out, "certificate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.GaussLengthMean == r.GaussLengthMean || r.DeltaContinuous == r.DeltaContinuous || r.ArcLength == r.ArcLength {
		t.Errorf("read back: gauss_length_mean %v, delta_continuous %v, arc_length %v; want NaN (not computed)", r.GaussLengthMean, r.DeltaContinuous, r.ArcLength)
	}
	// The summary.tex does not print a number for them.
	tex, err := os.ReadFile(filepath.Join(out, "summary.tex"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(tex), "NaN") || regexp.MustCompile(`Gauss length[^\n]*& 0 `).Match(tex) {
		t.Errorf("summary.tex prints a not-computed value:\n%s", tex)
	}
}

// TestReportNonFinite: a non-finite value anywhere in the report is written
// as null with a note naming its key; the report stays valid JSON.
func TestReportNonFinite(t *testing.T) {
	inf := 1 / zero()
	r := &certify.Report{Verdict: certify.MonotoneOnGrid, Alphas: []float64{0, 1}, Loss: []float64{1, inf},
		WeightDistance: inf - inf, Conditions: certify.Conditions{Theorems: &certify.TheoremReport{Applies: true, TheoremAFraction: inf}}}
	b, err := r.JSON()
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, b)
	}
	if m["weight_distance"] != nil || m["loss"].([]any)[1] != nil || m["loss"].([]any)[0] != 1.0 {
		t.Errorf("non-finite values not null: weight_distance %v, loss %v", m["weight_distance"], m["loss"])
	}
	notes := fmtNotes(m)
	for _, k := range []string{"weight_distance: NaN", "loss: 1 of 2 values not finite (+Inf)", "conditions.theorems.theorem_a_fraction: +Inf"} {
		if !strings.Contains(notes, k) {
			t.Errorf("notes lack %q:\n%s", k, notes)
		}
	}
}

func zero() float64 { return 0 }

func fmtNotes(m map[string]any) string {
	var s []string
	for _, n := range m["notes"].([]any) {
		s = append(s, n.(string))
	}
	return strings.Join(s, "\n")
}

// snapshot lists every file under dir with its size, mode and modification time.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			b.WriteString(p + " " + fi.Mode().String() + " " + fi.ModTime().Format(time.RFC3339Nano) + "\n")
		}
		return nil
	})
	return b.String()
}

// TestNoSilentReplacement: a --loss-only re-run, one with other
// --examples, and --json leave certificate.json byte-identical; a report
// made with other settings is refused, not replaced, with the ways
// forward; the same settings re-run replaces it.
func TestNoSilentReplacement(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	if code, _, e := runCLI(t, "--run", dir, "--quiet"); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	cert := filepath.Join(dir, "certificate.json")
	before, _ := os.ReadFile(cert)
	for _, args := range [][]string{
		{"--loss-only"}, {"--examples", "4"}, {"--alphas", "7", "--no-certificate"}, {"--json"}, {"--json", "--loss-only"}, {"--tolerance", "1e-3"},
	} {
		code, out, e := runCLI(t, append([]string{"--run", dir, "--no-figures"}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, e)
		}
		if after, _ := os.ReadFile(cert); !bytes.Equal(before, after) {
			t.Fatalf("%v changed certificate.json", args)
		}
		if args[0] == "--json" && !json.Valid([]byte(out)) {
			t.Errorf("%v: stdout is not the JSON report", args)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "variants", "loss-only", VariantReportFile)); err != nil {
		t.Errorf("--loss-only report not in variants/loss-only: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "variants", "examples=4", VariantReportFile)); err != nil {
		t.Errorf("--examples 4 report not in variants/examples=4: %v", err)
	}
	// certificate.json made with other settings (as a sweep point's is):
	// the default analysis refuses to replace it, naming the setting.
	other := makeRun(t, "cross_entropy")
	if code, _, e := runCLI(t, "--run", other, "--out", other, "--alphas", "9", "--quiet", "--no-figures"); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	prev, _ := os.ReadFile(filepath.Join(other, "certificate.json"))
	code, _, e := runCLI(t, "--run", other, "--quiet", "--no-figures")
	if code != 2 || !strings.Contains(e, "other settings") || !strings.Contains(e, "alphas 9 → 50") || !strings.Contains(e, "--out") {
		t.Errorf("replacing a report of other settings: exit %d, %s", code, e)
	}
	if now, _ := os.ReadFile(filepath.Join(other, "certificate.json")); !bytes.Equal(prev, now) {
		t.Error("refused analysis changed certificate.json")
	}
	if code, _, e := runCLI(t, "--run", other, "--out", other, "--alphas", "9", "--quiet", "--no-figures"); code != 0 {
		t.Errorf("same settings re-run: exit %d: %s", code, e)
	}
	// The refusal's advice, re-run with its settings (without --out, as its
	// "command" key of a sweep point reads), refreshes certificate.json in
	// place instead of writing variants/alphas=9.
	os.WriteFile(filepath.Join(other, "certificate.json"), bytes.Replace(prev, []byte(`"seconds": `), []byte(`"seconds": 1234`), 1), 0o644)
	if code, _, e := runCLI(t, "--run", other, "--alphas", "9", "--quiet", "--no-figures"); code != 0 {
		t.Errorf("re-run with the report's settings: exit %d: %s", code, e)
	}
	if _, err := os.Stat(filepath.Join(other, "variants")); err == nil {
		t.Error("re-run with the report's settings wrote a variant instead of refreshing certificate.json")
	}
	if now, _ := os.ReadFile(filepath.Join(other, "certificate.json")); bytes.Contains(now, []byte(`"seconds": 1234`)) {
		t.Error("re-run with the report's settings did not refresh certificate.json")
	}
}

// TestOutReadOnlyRun: --out analyses a run directory without writing into
// it (a read-only one included); without --out an unwritable directory is
// refused before the analysis, suggesting --out.
func TestOutReadOnlyRun(t *testing.T) {
	dir := makeRun(t, "mse")
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	before := snapshot(t, dir)
	out := filepath.Join(t.TempDir(), "report")
	if code, _, e := runCLI(t, "--run", dir, "--out", out, "--quiet"); code != 0 {
		t.Fatalf("--out: exit %d: %s", code, e)
	}
	if after := snapshot(t, dir); after != before {
		t.Errorf("--out wrote into the run directory:\nbefore\n%s\nafter\n%s", before, after)
	}
	for _, f := range []string{"certificate.json", "summary.tex", "interpolation.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("--out: %v", err)
		}
	}
	if os.Geteuid() == 0 {
		t.Log("running as root: a 0555 directory is writable, the refusal without --out is not checked")
		return
	}
	code, _, e := runCLI(t, "--run", dir, "--quiet")
	if code != 2 || !strings.Contains(e, "--out") {
		t.Errorf("read-only run without --out: exit %d, %s", code, e)
	}
}

// TestBadBatchNormAndDuplicateKeys: a BatchNorm running variance below 0
// (PyTorch gives NaN losses) and a key twice in model.json or config.json
// are bad input (exit 2), named in a one-line error, before any report.
func TestBadBatchNormAndDuplicateKeys(t *testing.T) {
	bnRun := func(t *testing.T) string {
		dir := t.TempDir()
		spec := &nn.Spec{Format: nn.FormatSequentialV1, InputShape: []int{4}, Loss: "cross_entropy", Layers: []nn.LayerSpec{
			{Type: "linear", In: 4, Out: 5}, {Type: "batchnorm1d", Features: 5}, {Type: "tanh"}, {Type: "linear", In: 5, Out: 3}}}
		m, err := nn.Build(spec)
		if err != nil {
			t.Fatal(err)
		}
		s0, _ := nn.Init(m, "pytorch", 1, 1)
		sT, _ := nn.Init(m, "pytorch", 1, 2)
		sT["1.running_var"].Data[3] = -2
		if err := spec.Write(filepath.Join(dir, "model.json")); err != nil {
			t.Fatal(err)
		}
		nn.WriteState(filepath.Join(dir, "init.safetensors"), s0, "F64")
		nn.WriteState(filepath.Join(dir, "final.safetensors"), sT, "F64")
		x := mat.NewDense(6, 4, nil)
		for i := range x.RawMatrix().Data {
			x.RawMatrix().Data[i] = math.Cos(float64(i))
		}
		rundir.WriteData(filepath.Join(dir, "data.safetensors"), x, nn.Targets{Labels: []int{0, 1, 2, 0, 1, 2}})
		return dir
	}
	dupModel := func(t *testing.T) string {
		dir := makeRun(t, "cross_entropy")
		p := filepath.Join(dir, "model.json")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, append([]byte(`{"loss": "mse", `), bytes.TrimPrefix(bytes.TrimSpace(b), []byte("{"))...), 0o644)
		return dir
	}
	dupConfig := func(t *testing.T) string {
		dir := makeRun(t, "cross_entropy")
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"data": {"name": "mnist", "limit": 10, "limit": 20}, "seed": 1}`), 0o644)
		return dir
	}
	for _, c := range []struct {
		name string
		make func(*testing.T) string
		want []string
	}{
		{"negative running_var", bnRun, []string{"final.safetensors", "1.running_var", "negative variance -2"}},
		{"duplicate key in model.json", dupModel, []string{"model.json", "loss: duplicate key"}},
		{"duplicate nested key in config.json", dupConfig, []string{"config.json", "data.limit: duplicate key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := c.make(t)
			for _, args := range [][]string{{"--loss-only"}, nil} {
				code, _, e := runCLI(t, append([]string{"--run", dir, "--no-figures"}, args...)...)
				if code != 2 || strings.Count(strings.TrimSpace(e), "\n") != 0 {
					t.Errorf("%v: exit %d, want 2 with one line: %q", args, code, e)
				}
				for _, w := range c.want {
					if !strings.Contains(e, w) {
						t.Errorf("%v: error %q does not name %q", args, e, w)
					}
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "certificate.json")); err == nil {
				t.Error("a report was written")
			}
		})
	}
}

// TestDirectoryInTheWay: a directory where certificate.json goes is refused
// before the analysis, naming it, and nothing (no .tmp file) is left.
func TestDirectoryInTheWay(t *testing.T) {
	dir := makeRun(t, "mse")
	os.MkdirAll(filepath.Join(dir, "certificate.json", "x"), 0o755)
	before := snapshot(t, dir)
	code, _, e := runCLI(t, "--run", dir, "--quiet")
	if code != 2 || !strings.Contains(e, "certificate.json is a directory") {
		t.Errorf("exit %d, %q", code, e)
	}
	if after := snapshot(t, dir); after != before {
		t.Errorf("the run directory changed:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// TestNoGeometryNulls: --no-geometry leaves the geometry null with a note
// naming it, and keeps the certificate: its verdict and Δ bounds equal
// those of the default analysis of the same run.
func TestNoGeometryNulls(t *testing.T) {
	dir := makeRun(t, "mse")
	out, full := filepath.Join(t.TempDir(), "ng"), filepath.Join(t.TempDir(), "full")
	code, so, e := runCLI(t, "--run", dir, "--no-geometry", "--no-figures", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	if !strings.Contains(so, "Δ continuous       null (--no-geometry: not computed)") {
		t.Errorf("--no-geometry: the summary does not say Δ continuous was not computed:\n%s", so)
	}
	if code, _, e := runCLI(t, "--run", dir, "--no-figures", "--out", full, "--quiet"); code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	m, f := readJSON(t, filepath.Join(out, "certificate.json")), readJSON(t, filepath.Join(full, "certificate.json"))
	for _, k := range []string{"delta_continuous", "gauss_length_mean", "gauss_length_stacked", "arc_length", "zero_speed_events"} {
		if v, ok := m[k]; ok && v != nil {
			t.Errorf("--no-geometry: %s = %v, want null or absent", k, v)
		}
		if f[k] == nil {
			t.Errorf("default analysis: %s is null: the comparison tests nothing", k)
		}
	}
	if !strings.Contains(fmtNotes(m), "not computed (no_geometry)") {
		t.Errorf("--no-geometry: notes do not say what was not computed:\n%s", fmtNotes(m))
	}
	c, cf := m["certificate"].(map[string]any), f["certificate"].(map[string]any)
	if c == nil || cf == nil {
		t.Fatalf("certificate missing: --no-geometry %v, default %v", m["certificate"], f["certificate"])
	}
	for _, k := range []string{"verdict", "delta_upper", "delta_lower", "leaves"} {
		if fmt.Sprint(c[k]) != fmt.Sprint(cf[k]) {
			t.Errorf("certificate.%s: %v with --no-geometry, %v without", k, c[k], cf[k])
		}
	}
	if v, ok := m["gauss_length_mean_trapezoid"].(float64); !ok || v != f["gauss_length_mean_trapezoid"].(float64) {
		t.Errorf("gauss_length_mean_trapezoid %v, want the default analysis's %v", m["gauss_length_mean_trapezoid"], f["gauss_length_mean_trapezoid"])
	}
}
