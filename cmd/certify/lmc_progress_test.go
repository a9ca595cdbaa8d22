package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLMCInterruptedInGrid cancels lmc's context, as Ctrl-C or SIGTERM
// would, after the third α of a grid phase (of the line, of the unaligned
// line and of the aligned line under --align weights): no further α is
// evaluated, lmc exits 130 with one line naming the phase and how far it
// got, and nothing is written.
func TestLMCInterruptedInGrid(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	for _, tc := range []struct {
		name  string
		args  []string
		nth   int // cancel at the nth time the hook sees 3 α done
		phase string
	}{
		{"line", nil, 1, "loss on the grid (line)"},
		{"unaligned", []string{"--align", "weights"}, 1, "loss on the grid (unaligned line)"},
		{"aligned", []string{"--align", "weights"}, 2, "loss on the grid (aligned line)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			seen, after := 0, 0
			lmcAfterAlpha = func(done int) {
				if ctx.Err() != nil {
					after++ // an α evaluated after the cancellation
				}
				if done == 3 {
					if seen++; seen == tc.nth {
						cancel()
					}
				}
			}
			defer func() { lmcAfterAlpha = nil }()
			code, so, se := runCLIContext(t, ctx, append([]string{"lmc", a, b, "--out", out, "--alphas", "11"}, tc.args...)...)
			if code != 130 {
				t.Errorf("exit %d, want 130; stderr %q", code, se)
			}
			want := "certify: lmc interrupted during " + tc.phase + ", 3/11 α done; nothing written (lmc does not resume: run the same command again)\n"
			if se != want {
				t.Errorf("stderr %q, want %q", se, want)
			}
			if after != 0 {
				t.Errorf("%d α evaluated after the cancellation, want 0", after)
			}
			if so != "" {
				t.Errorf("stdout %q, want nothing", so)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("--out %s: %v, want absent", out, err)
			}
		})
	}
}

// TestLMCProgressLines: with stderr not a terminal, lmc writes progress
// lines naming the phase and done/total α for the grids of both lines of
// --align weights, on one clock: the elapsed time never goes back and at
// the end covers every grid α's (test-added) pause.
func TestLMCProgressLines(t *testing.T) {
	a, b := lmcRun(t, []int{4, 6, 3}, 1), lmcRun(t, []int{4, 6, 3}, 2)
	const pause = 60 * time.Millisecond
	saved := lmcLogInterval
	lmcLogInterval = pause / 3 // each α pauses longer: a line with its count at least
	alphas := 0
	lmcAfterAlpha = func(int) { alphas++; time.Sleep(pause) }
	defer func() { lmcLogInterval, lmcAfterAlpha = saved, nil }()
	out := filepath.Join(t.TempDir(), "out")
	code, _, se := runCLI(t, "lmc", a, b, "--out", out, "--alphas", "5", "--align", "weights")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	if alphas != 10 {
		t.Fatalf("%d grid α, want 10 (5 per line)", alphas)
	}
	line := regexp.MustCompile(`^\[([0-9.hms]+)\] lmc: (.*)$`)
	var prev time.Duration
	counts := map[string]bool{}
	lines := strings.Split(strings.TrimSuffix(se, "\n"), "\n")
	for _, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a progress line: %q", l)
			continue
		}
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if d < prev {
			t.Errorf("elapsed time went back from %v to %v: %q", prev, d, l)
		}
		prev = d
		for _, ph := range []string{"unaligned line", "aligned line"} {
			for k := 2; k <= 5; k++ {
				if strings.HasPrefix(m[2], "loss on the grid ("+ph+") "+string(rune('0'+k))+"/5 α") {
					counts[ph+string(rune('0'+k))] = true
				}
			}
		}
	}
	for _, ph := range []string{"unaligned line", "aligned line"} {
		for k := 2; k <= 5; k++ {
			if !counts[ph+string(rune('0'+k))] {
				t.Errorf("no line \"loss on the grid (%s) %d/5 α\" in\n%s", ph, k, se)
			}
		}
	}
	// The last line ("done") is at least the ten pauses after the start,
	// less the rounding to tenths of a second of its print.
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, "lmc: done") || prev < 10*pause-50*time.Millisecond {
		t.Errorf("last line %q at %v, want \"lmc: done\" at ≥ %v", last, prev, 10*pause-50*time.Millisecond)
	}
}
