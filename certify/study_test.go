package certify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestClassify(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	bounds := &[2]float64{0, 2e-4}
	for _, c := range []struct {
		name      string
		r         Report
		threshold *float64
		want      Verdict
	}{
		{"own tolerance keeps the verdict", Report{Verdict: MonotoneOnGrid, Delta: 5e-4, Tolerance: 1e-3}, nil, MonotoneOnGrid},
		{"own tolerance keeps non_monotone", Report{Verdict: NonMonotone, Delta: 5e-4, Tolerance: 0}, nil, NonMonotone},
		{"inconclusive is never monotone", Report{Verdict: Inconclusive, Delta: 0}, f(1), Inconclusive},
		{"inconclusive is never non-monotone", Report{Verdict: Inconclusive, Delta: 5}, f(0), Inconclusive},
		{"stricter threshold re-judges a grid verdict", Report{Verdict: MonotoneOnGrid, Delta: 5e-4, Tolerance: 1e-3}, f(1e-4), NonMonotone},
		{"stricter threshold, Δ below it", Report{Verdict: MonotoneOnGrid, Delta: 5e-5, Tolerance: 1e-3}, f(1e-4), MonotoneOnGrid},
		{"looser threshold keeps a grid verdict", Report{Verdict: MonotoneOnGrid, Delta: 5e-4, Tolerance: 1e-3}, f(1e-2), MonotoneOnGrid},
		{"looser threshold forgives a small rise", Report{Verdict: NonMonotone, Delta: 5e-4, Tolerance: 0}, f(1e-3), MonotoneOnGrid},
		{"looser threshold, rise above it", Report{Verdict: NonMonotone, Delta: 5e-3, Tolerance: 0}, f(1e-3), NonMonotone},
		{"stricter threshold keeps non_monotone", Report{Verdict: NonMonotone, Delta: 5e-3, Tolerance: 1e-3}, f(0), NonMonotone},
		{"certificate covers a looser threshold", Report{Verdict: CertifiedMonotone, Delta: 0, Tolerance: 0}, f(1e-3), CertifiedMonotone},
		{"certificate bounds cover a stricter threshold", Report{Verdict: CertifiedMonotone, Delta: 1e-4, Tolerance: 1e-3, DeltaBounds: bounds}, f(3e-4), CertifiedMonotone},
		{"certificate does not reach a stricter threshold", Report{Verdict: CertifiedMonotone, Delta: 1e-4, Tolerance: 1e-3, DeltaBounds: bounds}, f(1e-4), MonotoneOnGrid},
		{"stricter threshold below a certified run's grid Δ", Report{Verdict: CertifiedMonotone, Delta: 1e-4, Tolerance: 1e-3, DeltaBounds: bounds}, f(5e-5), NonMonotone},
	} {
		if got := Classify(&c.r, c.threshold); got != c.want {
			t.Errorf("%s: Classify = %s, want %s", c.name, got, c.want)
		}
	}
}

// TestClassifyMonotoneInThreshold: raising τ never makes a run
// non-monotonic that was not, and never makes an inconclusive run decided.
func TestClassifyMonotoneInThreshold(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		verdicts := []Verdict{CertifiedMonotone, MonotoneOnGrid, NonMonotone, Inconclusive}
		r := Report{
			Verdict:   rapid.SampledFrom(verdicts).Draw(t, "verdict"),
			Delta:     rapid.Float64Range(0, 1).Draw(t, "delta"),
			Tolerance: rapid.SampledFrom([]float64{0, 1e-3, 0.1}).Draw(t, "tol"),
		}
		lo := rapid.Float64Range(0, 1).Draw(t, "lo")
		hi := lo + rapid.Float64Range(0, 1).Draw(t, "step")
		a, b := Classify(&r, &lo), Classify(&r, &hi)
		if a != NonMonotone && b == NonMonotone {
			t.Fatalf("%+v: %s at τ=%v but %s at τ=%v", r, a, lo, b, hi)
		}
		if (a == Inconclusive) != (r.Verdict == Inconclusive) || (b == Inconclusive) != (r.Verdict == Inconclusive) {
			t.Fatalf("%+v: inconclusive changed: %s, %s", r, a, b)
		}
		if b == NonMonotone && r.Delta <= hi && r.Tolerance < hi {
			t.Fatalf("%+v: non-monotonic at τ=%v above both Δ and the tolerance", r, hi)
		}
	})
}

func TestStudyRunValue(t *testing.T) {
	r := StudyRun{Config: map[string]any{
		"data": map[string]any{"name": "mnist", "limit": 1000.0}, "arch": "784-64-128-10",
		"optim": "adam", "lr": 0.1, "init_scale": 2.0, "batchnorm": true,
	}}
	for _, c := range []struct {
		key  string
		want any
		ok   bool
	}{
		{"optim", "adam", true}, {"lr", 0.1, true}, {"data.name", "mnist", true}, {"data.limit", 1000.0, true},
		{"init-scale", 2.0, true}, {"batchnorm", true, true},
		{"depth", 2.0, true}, {"width", 128.0, true},
		{"momentum", 0.0, true},     // omitted zero of rundir.RunConfig
		{"nesterov", false, true},   // omitted false
		{"act", nil, false},         // an omitted string has no known value
		{"data.split", nil, false},  // nor a nested one
		{"data.name.x", nil, false}, // not an object
		{"colour", nil, false},      // unknown key
	} {
		got, ok := r.Value(c.key)
		if ok != c.ok || got != c.want {
			t.Errorf("Value(%q) = %v, %v; want %v, %v", c.key, got, ok, c.want, c.ok)
		}
	}
	lin := StudyRun{Config: map[string]any{"arch": "784-10"}}
	if d, ok := lin.Value("depth"); !ok || d != 0.0 {
		t.Errorf("linear model depth = %v, %v", d, ok)
	}
	if _, ok := lin.Value("width"); ok {
		t.Error("linear model has a width")
	}
	own := StudyRun{Config: map[string]any{"arch": "784-10", "depth": 5.0}}
	if d, _ := own.Value("depth"); d != 5.0 {
		t.Errorf("config.json's depth not preferred: %v", d)
	}
}

func TestCompareLevels(t *testing.T) {
	sorted := []Level{0.001, 0.01, 0.1, 2.0, 10.0, false, true, "adam", "sgd", nil}
	for i := range sorted {
		for j := range sorted {
			got := CompareLevels(sorted[i], sorted[j])
			if (i < j) != (got < 0) || (i == j) != (got == 0) {
				t.Errorf("CompareLevels(%v, %v) = %d", sorted[i], sorted[j], got)
			}
		}
	}
	if got := FormatLevel(1e-5); got != "1e-05" {
		t.Errorf("FormatLevel(1e-5) = %s", got)
	}
}

func writeRun(t *testing.T, dir, cert, cfg string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if cert != "" {
		if err := os.WriteFile(filepath.Join(dir, "certificate.json"), []byte(cert), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if cfg != "" {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadStudyBadRuns(t *testing.T) {
	root := t.TempDir()
	good := `{"verdict":"monotone_on_grid","delta":0,"tolerance":0}`
	writeRun(t, filepath.Join(root, "a"), good, `{"optim":"sgd"}`)
	writeRun(t, filepath.Join(root, "deep", "b"), good, "") // no config.json: allowed
	writeRun(t, filepath.Join(root, "c"), `{"verdict":`, `{}`)
	writeRun(t, filepath.Join(root, "d"), good, `[1,`)
	writeRun(t, filepath.Join(root, "e"), `{"verdict":"monotonic","delta":0}`, `{}`)
	writeRun(t, filepath.Join(root, "f"), `{"verdict":"non_monotone","delta":-1}`, `{}`)
	writeRun(t, filepath.Join(root, "g"), good, `null`)
	writeRun(t, filepath.Join(root, "not-a-run"), "", `{"optim":"sgd"}`)

	_, _, err := LoadStudy(root, false)
	var bad BadRun
	if !errors.As(err, &bad) || bad.Path != filepath.Join(root, "c", "certificate.json") || !strings.Contains(err.Error(), bad.Path) {
		t.Fatalf("first bad run: err = %v (path %q)", err, bad.Path)
	}
	runs, skipped, err := LoadStudy(root, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Dir != filepath.Join(root, "a") || runs[1].Dir != filepath.Join(root, "deep", "b") || runs[1].Config != nil {
		t.Errorf("runs = %+v", runs)
	}
	wantBad := []string{"c/certificate.json", "d/config.json", "e/certificate.json", "f/certificate.json", "g/config.json"}
	if len(skipped) != len(wantBad) {
		t.Fatalf("skipped %v, want %v", skipped, wantBad)
	}
	for i, w := range wantBad {
		if skipped[i].Path != filepath.Join(root, w) || !strings.Contains(skipped[i].Error(), skipped[i].Path) {
			t.Errorf("skipped[%d] = %s: %v, want %s", i, skipped[i].Path, skipped[i].Err, w)
		}
	}
	if _, _, err := LoadStudy(filepath.Join(root, "not-a-run"), true); err == nil {
		t.Error("a directory without runs is accepted")
	}
	if _, _, err := LoadStudy(filepath.Join(root, "missing"), true); err == nil {
		t.Error("a missing directory is accepted")
	}
}

func TestStudyFilter(t *testing.T) {
	runs := []StudyRun{
		{Config: map[string]any{"train_loss": 0.01}},
		{Config: map[string]any{"train_loss": 0.5}},
		{Config: map[string]any{}},
		{},
	}
	m := 0.1
	kept, above, missing := StudyFilter{MaxTrainLoss: &m}.Apply(runs)
	if len(kept) != 1 || above != 1 || missing != 2 {
		t.Errorf("kept %d, above %d, missing %d; want 1, 1, 2", len(kept), above, missing)
	}
	if kept, _, _ := (StudyFilter{}).Apply(runs); len(kept) != 4 {
		t.Errorf("no filter kept %d of 4", len(kept))
	}
}

// TestLoadStudyVariants checks that LoadStudyVariants reads a run's
// variants/NAME/variant.json as runs of their own, with the run's
// config.json, and that LoadStudy leaves them out.
func TestLoadStudyVariants(t *testing.T) {
	root := t.TempDir()
	run := filepath.Join(root, "sgd", "a")
	writeRun(t, run, `{"verdict":"non_monotone","delta":0.5,"tolerance":0,"bn_policy":"interpolate"}`, `{"optim":"sgd","lr":0.1}`)
	rec := filepath.Join(run, "variants", "bn=recompute_loss-only")
	if err := os.MkdirAll(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rec, VariantReport), []byte(`{"verdict":"monotone_on_grid","delta":0,"tolerance":0,"bn_policy":"recompute"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A variant.json outside a variants/ directory is not a report, and a
	// variants/NAME directory without one is not a run.
	os.MkdirAll(filepath.Join(run, "variants", "empty"), 0o755)
	os.WriteFile(filepath.Join(run, VariantReport), []byte(`{"verdict":`), 0o644)
	writeRun(t, filepath.Join(root, "nobn"), `{"verdict":"monotone_on_grid","delta":0,"tolerance":0,"bn_policy":"none"}`, `{"optim":"adam"}`)

	plain, _, err := LoadStudy(root, false)
	if err != nil || len(plain) != 2 {
		t.Fatalf("LoadStudy: %d runs, %v; want the 2 runs' own reports", len(plain), err)
	}
	runs, _, err := LoadStudyVariants(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 {
		t.Fatalf("LoadStudyVariants: %d runs, want 3: %+v", len(runs), runs)
	}
	v := runs[2] // sorted by Dir: nobn, sgd/a, sgd/a/variants/…
	if v.Dir != rec || v.Variant != "bn=recompute_loss-only" || v.Report.Verdict != MonotoneOnGrid {
		t.Fatalf("variant run = %+v", v)
	}
	for _, c := range []struct {
		r    StudyRun
		key  string
		want any
	}{
		{v, "optim", "sgd"}, {v, "lr", 0.1}, {v, "variant", "bn=recompute_loss-only"}, {v, "bn", "recompute"},
		{runs[1], "variant", "run"}, {runs[1], "bn", "interpolate"}, {runs[0], "bn", "none"},
	} {
		if got, ok := c.r.Value(c.key); !ok || got != c.want {
			t.Errorf("%s: Value(%q) = %v, %v; want %v", c.r.Dir, c.key, got, ok, c.want)
		}
	}
	if _, ok := (&StudyRun{Report: &Report{}}).Value("bn"); ok {
		t.Error("a report without bn_policy has a bn value")
	}

	// A malformed variant report is a bad run naming its file.
	os.WriteFile(filepath.Join(rec, VariantReport), []byte(`{"verdict":3}`), 0o644)
	_, skipped, err := LoadStudyVariants(root, true)
	if err != nil || len(skipped) != 1 || skipped[0].Path != filepath.Join(rec, VariantReport) {
		t.Errorf("bad variant: skipped %v, err %v", skipped, err)
	}
}
