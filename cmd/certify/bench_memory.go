package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// memoryBudget is issue 7's bound on the peak resident memory of
// `certify --run --loss-only` on all 60,000 MNIST training examples: 2 GiB.
const memoryBudget = 2 << 30

// fullMemoryBudget is issue 12's bound on the peak resident memory of the
// full default analysis on all 60,000 MNIST training examples: 4 GiB.
const fullMemoryBudget = 4 << 30

// memorySide is the benchmark's memory measurement: `certify --run` as a
// child process under /usr/bin/time -v (bench --memory N).
type memorySide struct {
	Command      []string `json:"command"`        // the child's argv after /usr/bin/time -v
	Examples     int      `json:"examples"`       // examples the report says it evaluated
	Alphas       int      `json:"alphas"`         // grid points
	Full         bool     `json:"full"`           // the full default analysis, not --loss-only
	Precision    string   `json:"precision"`      // the report's precision
	PeakRSSBytes int64    `json:"peak_rss_bytes"` // "Maximum resident set size" × 1024
	Elapsed      string   `json:"elapsed"`        // "Elapsed (wall clock) time", as printed
	Seconds      float64  `json:"seconds"`        // the report's own analysis time
	BudgetBytes  int64    `json:"budget_bytes"`   // memoryBudget, or fullMemoryBudget when Full
	Within       bool     `json:"within_budget"`  // PeakRSSBytes < BudgetBytes
}

// timeReport is what measureMemory reads from /usr/bin/time -v's report.
type timeReport struct {
	maxRSSKB int64
	elapsed  string
}

// parseTimeV reads GNU time's -v report (lines "\tName: value") and returns
// the maximum resident set size and the elapsed wall time; an error names the
// missing field.
func parseTimeV(r io.Reader) (timeReport, error) {
	var t timeReport
	t.maxRSSKB = -1
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch {
		case name == "Maximum resident set size (kbytes)":
			kb, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			if err != nil {
				return t, fmt.Errorf("/usr/bin/time -v: %q: %w", line, err)
			}
			t.maxRSSKB = kb
		case strings.HasPrefix(name, "Elapsed (wall clock) time"):
			t.elapsed = strings.TrimSpace(value)
		}
	}
	if t.maxRSSKB < 0 {
		return t, fmt.Errorf("/usr/bin/time -v: no \"Maximum resident set size (kbytes)\" line in its report")
	}
	return t, nil
}

// measureMemory runs `exe --run DIR --examples n --alphas alphas --loss-only
// --no-figures --json --chunk chunk --workers workers --precision precision`
// (without --loss-only and with --tolerance tolerance when full: the full
// default analysis at that tolerance) under timeBin -v
// (GNU time) with env added to the environment, and returns its peak resident
// memory. The report goes to a scratch copy of the run directory (symbolic
// links to the run's files in a new directory under scratch), so the run's
// own certificate.json is left alone.
func measureMemory(ctx context.Context, timeBin, exe, run, scratch string, n, alphas, chunk, workers int, precision string, full bool, tolerance float64, env []string) (*memorySide, error) {
	dir, err := linkRun(run, scratch)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	args := []string{"--run", dir, "--examples", strconv.Itoa(n), "--alphas", strconv.Itoa(alphas)}
	budget := int64(fullMemoryBudget)
	if !full {
		args, budget = append(args, "--loss-only"), memoryBudget
	} else {
		args = append(args, "--tolerance", strconv.FormatFloat(tolerance, 'g', -1, 64))
	}
	args = append(args, "--no-figures", "--json", "--chunk", strconv.Itoa(chunk), "--workers", strconv.Itoa(workers), "--precision", precision)
	cmd := exec.CommandContext(ctx, timeBin, append([]string{"-v", exe}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		// The child's own error lines, not GNU time's report after them.
		var msgs []string
		for _, line := range strings.Split(errOut.String(), "\n") {
			if strings.HasPrefix(line, "certify:") {
				msgs = append(msgs, strings.TrimPrefix(line, "certify: "))
			}
		}
		msg := strings.Join(msgs, "; ")
		if msg == "" {
			msg = err.Error()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 { // the child's bad input is ours
			return nil, badInputf("bench --memory %d: certify --run %s: %s", n, run, msg)
		}
		return nil, fmt.Errorf("bench --memory %d: certify --run %s (under %s -v): %s", n, run, timeBin, msg)
	}
	tr, err := parseTimeV(&errOut)
	if err != nil {
		return nil, fmt.Errorf("bench --memory: %w", err)
	}
	var rep struct {
		Examples  int     `json:"examples"`
		Alphas    []any   `json:"alphas"`
		Seconds   float64 `json:"seconds"`
		Precision string  `json:"precision"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("bench --memory: the report on stdout: %w", err)
	}
	m := &memorySide{Command: append([]string{exe}, args...), Examples: rep.Examples, Alphas: len(rep.Alphas), Precision: rep.Precision, Full: full,
		PeakRSSBytes: 1024 * tr.maxRSSKB, Elapsed: tr.elapsed, Seconds: rep.Seconds, BudgetBytes: budget}
	m.Within = m.PeakRSSBytes < m.BudgetBytes
	return m, nil
}

// linkRun makes a new directory under scratch holding a symbolic link to
// every file of the run directory run but the analysis's outputs, and
// returns it.
func linkRun(run, scratch string) (string, error) {
	abs, err := filepath.Abs(run)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return "", fmt.Errorf("bench --memory: %w", err)
	}
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(scratch, "memory-")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		name := e.Name()
		if name == "certificate.json" || name == "summary.tex" || name == "variants" || filepath.Ext(name) == ".png" {
			continue
		}
		if err := os.Symlink(filepath.Join(abs, name), filepath.Join(dir, name)); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}
