package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	m, err := measureMemory(context.Background(), "/usr/bin/time", bin, run, scratch, 4, 3, 2, 1, "float32", false, 0, []string{blasEnv + "=go"})
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

	// The full default analysis (bench --full --memory): no --loss-only,
	// issue 12's 4 GiB budget.
	m, err = measureMemory(context.Background(), "/usr/bin/time", bin, run, scratch, 6, 3, 2, 1, "float64", true, 1e-3, []string{blasEnv + "=go"})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Full || m.BudgetBytes != fullMemoryBudget || !m.Within || m.Examples != 6 || strings.Contains(strings.Join(m.Command, " "), "--loss-only") {
		t.Errorf("full: %+v", m)
	}

	// More examples than the run's data holds: the child's bad input is the
	// benchmark's (exit status 2), in one line without GNU time's report.
	_, err = measureMemory(context.Background(), "/usr/bin/time", bin, run, scratch, 100, 3, 2, 1, "float64", false, 0, []string{blasEnv + "=go"})
	var ie inputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "6 examples") || strings.Contains(err.Error(), "Maximum resident") {
		t.Errorf("100 examples of 6: error %v, want a bad-input error naming the 6 examples, without the time report", err)
	}
}

// TestBenchFlagErrors checks that every meaningless bench flag value is bad
// input (exit 2) whose message names the flag, found before any timing.
func TestBenchFlagErrors(t *testing.T) {
	run := makeRun(t, "cross_entropy")
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--examples", "0"}, "--examples"},
		{[]string{"--alphas", "1"}, "--alphas"},
		{[]string{"--chunk", "-7"}, "--chunk"},
		{[]string{"--chunk", "0"}, "--chunk"},
		{[]string{"--workers", "-1"}, "--workers"},
		{[]string{"--threads", "-3"}, "--threads"},
		{[]string{"--memory", "-1"}, "--memory"},
		{[]string{"--memory", "100", "--memory-alphas", "1"}, "--memory-alphas"},
		{[]string{"--memory", "100", "--time", "/nonexistent/time"}, "--time"},
		{[]string{"--backend", "bogus"}, "--backend"},
		{[]string{"--precision", "float16"}, "--precision"},
		{[]string{"--torch", "--python", "/nonexistent/python3"}, "--python"},
	} {
		code, out, errs := runCLI(t, append([]string{"bench", "--run", run, "--gemm=false"}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.flag) || strings.Contains(errs+out, "certify   ") {
			t.Errorf("%v: exit %d, stderr %q; want 2, naming %s, before any timing", c.args, code, errs, c.flag)
		}
	}
}

// TestBenchExportPerRun checks that the export cache tells runs apart: two
// different runs in directories of the same name get different exports,
// whose data differ, and the same run reuses its export.
func TestBenchExportPerRun(t *testing.T) {
	cache := t.TempDir()
	var exports, dirs []string
	for i, seed := range []string{"1", "2"} {
		dir := filepath.Join(t.TempDir(), "run")
		if code, _, e := runCLI(t, "train", "--data", "mnist-small", "--arch", "784-4-10", "--epochs", "1", "--limit", "100",
			"--batch", "50", "--seed", seed, "--out", dir, "--quiet"); code != 0 {
			t.Fatalf("train %d: %s", i, e)
		}
		dirs = append(dirs, dir)
	}
	for _, dir := range append(dirs, dirs[0]) {
		out, err := benchData(context.Background(), dir, cache, 20, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		exports = append(exports, out)
	}
	if exports[0] == exports[1] {
		t.Errorf("two different runs named run share the export %s", exports[0])
	}
	if exports[0] != exports[2] {
		t.Errorf("the same run exported twice: %s and %s", exports[0], exports[2])
	}
	a, errA := os.ReadFile(filepath.Join(exports[0], "final.safetensors"))
	b, errB := os.ReadFile(filepath.Join(exports[1], "final.safetensors"))
	if errA != nil || errB != nil || bytes.Equal(a, b) {
		t.Errorf("exports of different runs hold the same final weights (%v, %v)", errA, errB)
	}
	if _, err := runFingerprint(t.TempDir()); err == nil {
		t.Error("fingerprint of an empty directory: no error")
	}
}

// TestBenchInterruptedChild: Ctrl-C while a child runs (here a stand-in for
// GNU time that only sleeps) is an interruption — exit 130 and one line —
// not the child's "signal: killed" as an internal fault. The interruption
// comes once the child has started (it leaves a mark), not after a fixed
// delay, which under load could fall in an earlier phase.
func TestBenchInterruptedChild(t *testing.T) {
	tmp := t.TempDir()
	slow, mark := filepath.Join(tmp, "time"), filepath.Join(tmp, "started")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\n: > '"+mark+"'\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(mark); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	code, _, errs := runCLIContext(t, ctx, "bench", "--run", makeRun(t, "cross_entropy"), "--gemm=false", "--backend", "go",
		"--examples", "6", "--alphas", "3", "--memory", "6", "--time", slow, "--cache", t.TempDir())
	// bench's own progress lines come first on stderr; the last is the verdict.
	lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	last := lines[len(lines)-1]
	if want := "certify: bench interrupted during the --memory run; nothing written"; code != 130 || last != want || strings.Count(errs, "certify:") != 1 {
		t.Errorf("exit %d, stderr %q; want 130 and one last line %q", code, errs, want)
	}
}
