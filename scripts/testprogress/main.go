// Command testprogress turns the event stream of `go test -json` (on its
// standard input) into the short report of a plain `go test`, printed as it
// goes: one line per package when it finishes (in the order they finish,
// with its time), the output of failing tests and failed builds in full,
// and, while nothing has been printed for a minute, a heartbeat line naming
// the packages still running and for how long. scripts/test.sh (the README's
// test command, run by CI) pipes the whole suite through it: a plain
// `go test ./...` prints nothing until its first package in import-path
// order finishes, which is the slowest one (certify), so a newcomer saw
// minutes of silence and thought it hung.
//
// It changes nothing about what runs: the exit status of the pipeline is
// go test's (scripts/test.sh sets pipefail), and testprogress exits 1 too
// when any package or build failed. Lines that are not test2json events
// (the go command's own errors) are copied through unchanged.
//
// Usage: go test -json ./... | go run ./scripts/testprogress [-heartbeat 1m]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent, with
// the go command's build events, which carry ImportPath instead of Package).
type event struct {
	Time        time.Time
	Action      string
	Package     string
	Test        string
	Elapsed     float64 // seconds
	Output      string
	ImportPath  string
	FailedBuild string
}

// pkgState is what the report keeps of a package until it finishes.
type pkgState struct {
	started time.Time         // when its test binary started (zero: not yet)
	tests   map[string]string // output of tests that have not finished
	failed  strings.Builder   // output of tests that failed, in order
	own     strings.Builder   // the package's output outside any test
}

// report holds the state of the stream; feed it events and ticks.
type report struct {
	w         io.Writer
	heartbeat time.Duration // print a heartbeat after this long without a line
	begin     time.Time     // when the stream started
	lastLine  time.Time     // when a line was last printed
	pkgs      map[string]*pkgState
	builds    map[string]*strings.Builder // build output by ImportPath
	passed    int
	failed    []string // packages that failed, in order
}

func newReport(w io.Writer, heartbeat time.Duration, now time.Time) *report {
	return &report{w: w, heartbeat: heartbeat, begin: now, lastLine: now, pkgs: map[string]*pkgState{}, builds: map[string]*strings.Builder{}}
}

func (r *report) pkg(name string) *pkgState {
	p := r.pkgs[name]
	if p == nil {
		p = &pkgState{tests: map[string]string{}}
		r.pkgs[name] = p
	}
	return p
}

// printf prints a line of the report and notes when.
func (r *report) printf(now time.Time, format string, args ...any) {
	fmt.Fprintf(r.w, format, args...)
	r.lastLine = now
}

// line handles one line of input at time now.
func (r *report) line(s string, now time.Time) {
	var e event
	if !strings.HasPrefix(s, "{") || json.Unmarshal([]byte(s), &e) != nil || (e.Action == "" && e.ImportPath == "") {
		r.printf(now, "%s\n", s) // not an event: the go command's own message
		return
	}
	r.event(e, now)
}

// event handles one test2json or build event at time now.
func (r *report) event(e event, now time.Time) {
	switch e.Action {
	case "build-output":
		b := r.builds[e.ImportPath]
		if b == nil {
			b = &strings.Builder{}
			r.builds[e.ImportPath] = b
		}
		b.WriteString(e.Output)
		return
	case "build-fail":
		return // printed with the package that needed it (FailedBuild)
	}
	if e.Package == "" {
		return
	}
	p := r.pkg(e.Package)
	if e.Test != "" {
		switch e.Action {
		case "output":
			if !isFrame(e.Output) {
				p.tests[e.Test] += e.Output
			}
		case "fail":
			p.failed.WriteString(p.tests[e.Test])
			delete(p.tests, e.Test)
		case "pass", "skip":
			delete(p.tests, e.Test)
		}
		return
	}
	switch e.Action {
	case "start":
		p.started = now
	case "output":
		if !isFrame(e.Output) && !isSummary(e.Output) {
			p.own.WriteString(e.Output)
		}
	case "pass":
		r.passed++
		r.printf(now, "ok  \t%s\t%s\n", e.Package, secs(e.Elapsed))
		delete(r.pkgs, e.Package)
	case "skip":
		r.printf(now, "?   \t%s\t[no test files]\n", e.Package)
		delete(r.pkgs, e.Package)
	case "fail":
		r.failed = append(r.failed, e.Package)
		var out strings.Builder
		if e.FailedBuild != "" {
			if b := r.builds[e.FailedBuild]; b != nil {
				out.WriteString(b.String())
			}
		}
		out.WriteString(p.failed.String())
		// tests still running when the binary died (a panic, a timeout)
		names := make([]string, 0, len(p.tests))
		for t := range p.tests {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			out.WriteString(p.tests[t])
		}
		out.WriteString(p.own.String())
		what := secs(e.Elapsed)
		if e.FailedBuild != "" {
			what = "[build failed]"
		}
		r.printf(now, "%sFAIL\t%s\t%s\n", out.String(), e.Package, what)
		delete(r.pkgs, e.Package)
	}
}

// tick prints a heartbeat when nothing was printed for the heartbeat
// interval: the time since the start and the packages whose tests are
// running, longest first, with how long they have run.
func (r *report) tick(now time.Time) {
	if r.heartbeat <= 0 || now.Sub(r.lastLine) < r.heartbeat {
		return
	}
	type running struct {
		name string
		for_ time.Duration
	}
	var rs []running
	for name, p := range r.pkgs {
		if !p.started.IsZero() {
			rs = append(rs, running{name, now.Sub(p.started)})
		}
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].for_ != rs[j].for_ {
			return rs[i].for_ > rs[j].for_
		}
		return rs[i].name < rs[j].name
	})
	var names []string
	for _, x := range rs {
		names = append(names, fmt.Sprintf("%s (%s)", x.name, x.for_.Round(time.Second)))
	}
	what := "building"
	if len(names) > 0 {
		what = "running " + strings.Join(names, ", ")
	}
	r.printf(now, "... %s: %d packages passed so far, still %s\n", now.Sub(r.begin).Round(time.Second), r.passed, what)
}

// isFrame is test2json's framing of a verbose run ("=== RUN", "--- PASS"
// of a test that passed is dropped with the test anyway): lines a plain
// go test does not print.
func isFrame(s string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// isSummary is the package's own last line(s), which the report replaces
// by its ok/FAIL line.
func isSummary(s string) bool {
	return s == "PASS\n" || s == "FAIL\n" || strings.HasPrefix(s, "ok  \t") || strings.HasPrefix(s, "FAIL\t")
}

// secs prints a package's time as go test does ("12.345s").
func secs(s float64) string { return fmt.Sprintf("%.3fs", s) }

func main() {
	every := flag.Duration("heartbeat", time.Minute, "print which packages are still running after this long without output (0: never)")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *every, time.Now); err != nil {
		fmt.Fprintln(os.Stderr, "testprogress:", err)
		os.Exit(1)
	}
}

// run reads the stream from in and reports on out until in ends; it
// returns an error naming the packages that failed.
func run(in io.Reader, out io.Writer, every time.Duration, now func() time.Time) error {
	r := newReport(out, every, now())
	lines := make(chan string)
	errc := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 64<<20) // a test may print long lines
		for sc.Scan() {
			lines <- sc.Text()
		}
		errc <- sc.Err()
		close(lines)
	}()
	var tc <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every / 6)
		defer t.Stop()
		tc = t.C
	}
	for {
		select {
		case s, ok := <-lines:
			if !ok {
				if err := <-errc; err != nil {
					return err
				}
				if len(r.failed) > 0 {
					return fmt.Errorf("%d packages failed: %s", len(r.failed), strings.Join(r.failed, " "))
				}
				return nil
			}
			r.line(s, now())
		case <-tc:
			r.tick(now())
		}
	}
}
