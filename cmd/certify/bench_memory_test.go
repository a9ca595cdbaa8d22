package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseTimeV reads GNU time's -v report format (Debian's time 1.9) and
// rejects reports without the maximum resident set size.
func TestParseTimeV(t *testing.T) {
	report := "\tCommand being timed: \"certify --run r\"\n" +
		"\tUser time (seconds): 70.12\n" +
		"\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:23.45\n" +
		"\tMaximum resident set size (kbytes): 1879636\n" +
		"\tExit status: 0\n"
	got, err := parseTimeV(strings.NewReader(report))
	if err != nil {
		t.Fatal(err)
	}
	if got.maxRSSKB != 1879636 || got.elapsed != "1:23.45" {
		t.Errorf("got %+v", got)
	}
	for _, bad := range []string{"\tExit status: 0\n", "\tMaximum resident set size (kbytes): lots\n"} {
		if _, err := parseTimeV(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "/usr/bin/time") {
			t.Errorf("%q: error %v, want one naming /usr/bin/time", bad, err)
		}
	}
}

// TestMeasureMemory runs the real binary under the real GNU time on a small
// run: the report's example and grid counts come back, the peak is a
// plausible resident size (more than the 1 MiB of a trivial process, less
// than the budget), and the run's own directory gets no report.
func TestMeasureMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Skip("no GNU time (Debian package time): ", err)
	}
	bin := filepath.Join(t.TempDir(), "certify")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := makeRun(t, "cross_entropy")
	scratch := t.TempDir()
	m, err := measureMemory(context.Background(), "/usr/bin/time", bin, run, scratch, 4, 3, 2, 1, "float32", []string{blasEnv + "=go"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Examples != 4 || m.Alphas != 3 || m.Precision != "float32" || m.Elapsed == "" {
		t.Errorf("examples %d, alphas %d, precision %q, elapsed %q; want 4, 3, float32 and a time", m.Examples, m.Alphas, m.Precision, m.Elapsed)
	}
	if m.PeakRSSBytes < 1<<20 || !m.Within || m.PeakRSSBytes >= memoryBudget {
		t.Errorf("peak RSS %d bytes (within %v)", m.PeakRSSBytes, m.Within)
	}
	if _, err := os.Stat(filepath.Join(run, "certificate.json")); !os.IsNotExist(err) {
		t.Errorf("the run's directory got a report: %v", err)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("scratch copy left behind: %v", left)
	}
}
