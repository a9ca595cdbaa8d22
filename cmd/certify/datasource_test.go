package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportRecordsDataSource: certify export records in data.safetensors
// where its examples came from, so the exported run's report (and figure
// titles, presentation.dataLabel) name the data set and split, not only
// the file data.safetensors.
func TestExportRecordsDataSource(t *testing.T) {
	tmp := t.TempDir()
	dir, exp := filepath.Join(tmp, "run"), filepath.Join(tmp, "run-export")
	if code, _, se := runCLI(t, "train", "--data", "mnist-small", "--limit", "64", "--arch", "784-8-10", "--epochs", "1", "--batch", "32", "--out", dir, "--quiet"); code != 0 {
		t.Fatalf("train: exit %d: %s", code, se)
	}
	if code, _, se := runCLI(t, "export", "--run", dir, "--examples", "20", "--out", exp); code != 0 {
		t.Fatalf("export: exit %d: %s", code, se)
	}
	code, out, se := runCLI(t, "--run", exp, "--examples", "10", "--loss-only", "--no-figures", "--json")
	if code != 0 && code != 3 {
		t.Fatalf("analyse: exit %d: %s", code, se)
	}
	var rep struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(exp, "data.safetensors") + " (mnist-small train split, first 20 examples; first 10 examples)"
	if rep.Data != want {
		t.Errorf("data %q, want %q", rep.Data, want)
	}
	if !strings.Contains(rep.Data, "train split") {
		t.Errorf("data %q does not name the split", rep.Data)
	}
}
