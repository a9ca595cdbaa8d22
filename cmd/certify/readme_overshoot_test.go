package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEOvershootExample: the README's run directory of THEORY.md §6's
// overshoot model (L(α) = (1 − 1.5α)², Δ = 0.25) is made and analysed by
// exactly the block's commands — its python3 and echo lines through sh,
// its certify lines in process — and every output line the block shows
// is printed now (the certificate's seconds not compared; "  ..." marks
// lines left out). Skipped without a python3 (on PATH or /usr/bin) with
// numpy.
func TestREADMEOvershootExample(t *testing.T) {
	python := ""
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import numpy").Run() == nil {
			python = py
			break
		}
	}
	if python == "" {
		t.Skip("no python3 with numpy")
	}
	readme, i := readmeLine(t, "$ certify --run overshoot --delta-tol 1e-7 --no-figures\n")
	start := strings.LastIndex(readme[:i], "```\n") + len("```\n")
	end := i + strings.Index(readme[i:], "```")
	lines := strings.Split(strings.TrimSuffix(readme[start:end], "\n"), "\n")
	t.Chdir(t.TempDir())
	secs := regexp.MustCompile(`, [0-9.]+s$`)
	for k := 0; k < len(lines); k++ {
		cmd, ok := strings.CutPrefix(lines[k], "$ ")
		if !ok {
			t.Fatalf("README.md block line %q: not a command", lines[k])
		}
		var out string
		if args, isCertify := strings.CutPrefix(cmd, "certify "); isCertify {
			code, so, se := runCLI(t, strings.Fields(args)...)
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", cmd, code, se)
			}
			out = so + se
		} else if b, err := exec.Command("sh", "-c", strings.Replace(cmd, "python3 ", python+" ", 1)).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, b)
		}
		for ; k+1 < len(lines) && !strings.HasPrefix(lines[k+1], "$ "); k++ {
			want := lines[k+1]
			if want == "  ..." {
				continue
			}
			found := false
			for _, got := range strings.Split(out, "\n") {
				if got == want || strings.HasPrefix(want, "  certificate") && secs.ReplaceAllString(got, "") == secs.ReplaceAllString(want, "") {
					found = true
				}
			}
			if !found {
				t.Errorf("README.md shows %q after %q; certify prints:\n%s", want, cmd, out)
			}
		}
	}
}
