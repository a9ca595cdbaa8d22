package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestGaussMaxIntervalsFlag: --gauss-max-intervals bounds the corner-aware
// Gauss length's first grid (it did not: with --alphas 11 the first grid
// was 260 intervals whatever the flag said). A value below the report
// grid's --alphas − 1 intervals is refused naming the flag; a value below
// the first grid lowers it, and the report says so in its notes.
func TestGaussMaxIntervalsFlag(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	code, _, se := runCLI(t, "--run", dir, "--json", "--no-certificate", "--no-per-layer", "--alphas", "11", "--gauss-max-intervals", "9")
	if code != 2 || !strings.Contains(se, "--gauss-max-intervals 9") || !strings.Contains(se, "--alphas") {
		t.Errorf("--gauss-max-intervals 9 with --alphas 11: exit %d, stderr %q; want 2 and a line naming both flags", code, se)
	}
	code, so, se := runCLI(t, "--run", dir, "--json", "--no-certificate", "--no-per-layer", "--alphas", "11", "--gauss-max-intervals", "35")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	var r struct {
		Intervals *int     `json:"gauss_length_intervals"`
		Notes     []string `json:"notes"`
	}
	if err := json.Unmarshal([]byte(so), &r); err != nil {
		t.Fatal(err)
	}
	if r.Intervals == nil || *r.Intervals != 30 {
		t.Errorf("gauss_length_intervals %v, want 30 (the largest multiple of 10 at most 35)", r.Intervals)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "gauss_max_intervals 35 lowered the corner-aware Gauss length's first grid from 260 to 30") {
		t.Errorf("notes %q: no note that the first grid was lowered", r.Notes)
	}
}
