package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportOrderAndFailures feeds a recorded-shape stream: a package that
// finishes first is reported first (a plain go test would wait for the
// slower one listed before it), a passing test's output is dropped, a
// failing one's is printed with the FAIL line, and a failed build prints
// its compiler output.
func TestReportOrderAndFailures(t *testing.T) {
	var out strings.Builder
	t0 := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	r := newReport(&out, time.Minute, t0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	evs := []struct {
		s int
		e event
	}{
		{0, event{Action: "start", Package: "m/slow"}},
		{0, event{Action: "start", Package: "m/fast"}},
		{1, event{Action: "output", Package: "m/fast", Test: "TestQuiet", Output: "=== RUN   TestQuiet\n"}},
		{1, event{Action: "output", Package: "m/fast", Test: "TestQuiet", Output: "    a_test.go:3: chatter of a passing test\n"}},
		{1, event{Action: "pass", Package: "m/fast", Test: "TestQuiet"}},
		{2, event{Action: "output", Package: "m/fast", Test: "TestBad", Output: "    a_test.go:9: want 1, got 2\n"}},
		{2, event{Action: "output", Package: "m/fast", Test: "TestBad", Output: "--- FAIL: TestBad (0.00s)\n"}},
		{2, event{Action: "fail", Package: "m/fast", Test: "TestBad"}},
		{2, event{Action: "output", Package: "m/fast", Output: "FAIL\n"}},
		{2, event{Action: "fail", Package: "m/fast", Elapsed: 2.5}},
		{3, event{Action: "build-output", ImportPath: "m/broken [m/broken.test]", Output: "# m/broken\nbroken.go:2: undefined: x\n"}},
		{3, event{Action: "build-fail", ImportPath: "m/broken [m/broken.test]"}},
		{3, event{Action: "start", Package: "m/broken"}},
		{3, event{Action: "fail", Package: "m/broken", FailedBuild: "m/broken [m/broken.test]"}},
		{9, event{Action: "pass", Package: "m/slow", Elapsed: 9}},
	}
	for _, x := range evs {
		r.event(x.e, at(x.s))
	}
	got := out.String()
	want := "    a_test.go:9: want 1, got 2\n--- FAIL: TestBad (0.00s)\nFAIL\tm/fast\t2.500s\n" +
		"# m/broken\nbroken.go:2: undefined: x\nFAIL\tm/broken\t[build failed]\n" +
		"ok  \tm/slow\t9.000s\n"
	if got != want {
		t.Fatalf("report:\n%s\nwant:\n%s", got, want)
	}
	if len(r.failed) != 2 || r.passed != 1 {
		t.Errorf("failed %v, passed %d; want m/fast and m/broken failed, 1 passed", r.failed, r.passed)
	}
}

// TestHeartbeat: after a minute without a line the report names the
// packages still running, longest first, and says nothing more until
// another minute has passed; a package line resets the wait.
func TestHeartbeat(t *testing.T) {
	var out strings.Builder
	t0 := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r := newReport(&out, time.Minute, t0)
	r.tick(at(30))
	if out.Len() != 0 {
		t.Fatalf("a heartbeat before a minute of silence: %q", out.String())
	}
	r.tick(at(61))
	r.event(event{Action: "start", Package: "m/certify"}, at(62))
	r.event(event{Action: "start", Package: "m/nn"}, at(100))
	r.event(event{Action: "pass", Package: "m/nn", Elapsed: 30}, at(130))
	r.event(event{Action: "start", Package: "m/cmd"}, at(140))
	r.tick(at(170)) // 40 s after the last line: silent
	r.tick(at(191))
	r.tick(at(200)) // 9 s after the heartbeat: silent
	got := out.String()
	want := "... 1m1s: 0 packages passed so far, still building\n" +
		"ok  \tm/nn\t30.000s\n" +
		"... 3m11s: 1 packages passed so far, still running m/certify (2m9s), m/cmd (51s)\n"
	if got != want {
		t.Fatalf("report:\n%s\nwant:\n%s", got, want)
	}
}

// TestRealGoTest runs the real go test -json on a small module with a slow
// package, a failing one and one that does not build: the stream's shape is
// what the report expects (a change in test2json would show here), the
// failing test's message and the compiler's error reach the report, and
// run returns an error.
func TestRealGoTest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":          "module m\n\ngo 1.22\n",
		"a/a_test.go":     "package a\nimport \"testing\"\nfunc TestSlow(t *testing.T) { t.Log(\"slow chatter\") }\n",
		"b/b_test.go":     "package b\nimport \"testing\"\nfunc TestFail(t *testing.T) { t.Errorf(\"boom %d\", 42) }\nfunc TestOK(t *testing.T) { t.Log(\"ok chatter\") }\n",
		"c/c.go":          "package c\nfunc F() int { return \"x\" }\n",
		"c/c_test.go":     "package c\nimport \"testing\"\nfunc TestC(t *testing.T) { F() }\n",
		"d/d.go":          "package d\n",
		"e/e_test.go":     "package e\nimport \"testing\"\nfunc TestPass(t *testing.T) {}\n",
		"e/e_internal.go": "package e\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goCmd, "test", "-count=1", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	runErr := run(stdout, &out, time.Hour, time.Now)
	if err := cmd.Wait(); err == nil {
		t.Errorf("go test succeeded on a module with a failing test")
	}
	got := out.String()
	if runErr == nil || !strings.Contains(runErr.Error(), "m/b") || !strings.Contains(runErr.Error(), "m/c") {
		t.Errorf("run's error %v, want one naming m/b and m/c", runErr)
	}
	for _, w := range []string{"boom 42", "--- FAIL: TestFail", "FAIL\tm/b\t", "cannot use \"x\"", "FAIL\tm/c\t[build failed]", "ok  \tm/a\t", "ok  \tm/e\t"} {
		if !strings.Contains(got, w) {
			t.Errorf("report lacks %q:\n%s", w, got)
		}
	}
	for _, w := range []string{"slow chatter", "ok chatter", "=== RUN"} {
		if strings.Contains(got, w) {
			t.Errorf("report shows %q, the output of a passing test or a frame:\n%s", w, got)
		}
	}
}
