package progress

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake clock the tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// logBar is a log-mode bar on a fake clock, without the ticker goroutine
// (tests call tick themselves).
func logBar(label string) (*Bar, *bytes.Buffer, *clock) {
	var buf bytes.Buffer
	c := &clock{t: time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)}
	b := newBar(&buf, label, LogInterval, c.now)
	b.log = true
	return b, &buf, c
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSuffix(buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestBarDrawsOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := NewWriter(&buf, "train")
	b.Update(5, 10, "loss 0.5")
	if s := buf.String(); !strings.HasPrefix(s, "\r\033[Ktrain [") || !strings.Contains(s, "5/10 (50%)") || !strings.Contains(s, "loss 0.5") {
		t.Errorf("bar drew %q", s)
	}
	b.Done()
	if !strings.HasSuffix(buf.String(), "\r\033[K") {
		t.Errorf("Done did not clear the line: %q", buf.String())
	}
	var nilBar *Bar
	nilBar.Update(1, 2, "") // must not panic
	nilBar.SetPhase(Phase{Name: "x"})
	nilBar.Done()
}

// TestLogLinesEveryInterval: updates every second for 100 s of a 100-step
// phase write a line at 10 s, 20 s, …, 90 s (not more often), each with the
// counts and the ETA of the rate so far, then one when the phase finishes and
// one at Done.
func TestLogLinesEveryInterval(t *testing.T) {
	b, buf, c := logBar("train")
	b.SetPhase(Phase{Name: "train", Unit: "steps"})
	for step := 1; step <= 100; step++ {
		c.advance(time.Second)
		b.Update(step, 100, "loss 0.5")
	}
	b.Done()
	got := lines(buf)
	if len(got) != 11 {
		t.Fatalf("%d lines, want 9 + finish + done:\n%s", len(got), buf)
	}
	// At 10 s, 10 of 100 steps: 10 s per 10 steps, 90 to go.
	if want := "[10s] train: 10/100 steps (10%), ETA 1m30s; loss 0.5"; got[0] != want {
		t.Errorf("first line\n%s\nwant\n%s", got[0], want)
	}
	if want := "[1m30s] train: 90/100 steps (90%), ETA 10s; loss 0.5"; got[8] != want {
		t.Errorf("ninth line\n%s\nwant\n%s", got[8], want)
	}
	if want := "[1m40s] train: 100/100 steps (100%) done in 1m40s; loss 0.5"; got[9] != want {
		t.Errorf("finish line\n%s\nwant\n%s", got[9], want)
	}
	if want := "[1m40s] train: done"; got[10] != want {
		t.Errorf("last line %q, want %q", got[10], want)
	}
}

// TestShortWorkIsSilent: phases that finish within the interval write
// nothing, not even at Done.
func TestShortWorkIsSilent(t *testing.T) {
	b, buf, c := logBar("analyse")
	for _, ph := range []string{"loss on the grid", "Gauss length", "figures"} {
		b.SetLabel(ph)
		for i := 1; i <= 3; i++ {
			c.advance(time.Second)
			b.Update(i, 3, "")
		}
	}
	b.Done()
	if buf.Len() != 0 {
		t.Errorf("9 s of work wrote %q", buf)
	}
}

// TestLogLinePhases: the phase, its unit, a budget, an unknown total and a
// new pass (a count that went back) each show in the line, and the ETA is
// the rate since the pass's first count applied to what is left.
func TestLogLinePhases(t *testing.T) {
	b, buf, c := logBar("analyse")
	c.advance(2 * time.Second)
	b.SetPhase(Phase{Name: "Gauss length", Unit: "α"})
	b.Update(1, 25, "")
	c.advance(10 * time.Second)
	b.Update(5, 25, "") // 4 more in 10 s: 20 left take 50 s
	c.advance(10 * time.Second)
	b.Update(25, 25, "") // finished after a line: a finish line
	c.advance(1 * time.Second)
	b.Update(2, 49, "") // the count went back: a finer grid, pass 2
	c.advance(10 * time.Second)
	b.Update(12, 49, "") // 10 more in 10 s: 37 left take 37 s
	b.SetPhase(Phase{Name: "continuous Δ", Unit: "passes"})
	c.advance(10 * time.Second)
	b.Update(7, 0, "")
	b.SetPhase(Phase{Name: "certificate", Unit: "leaves", Budget: true})
	b.Update(32, 4096, "")
	c.advance(10 * time.Second)
	b.Update(64, 4096, "") // 32 leaves in 10 s: the other 4032 of the budget take 1260 s
	c.advance(5 * time.Second)
	b.Update(100, 100, "") // the certificate ended early: a finish line
	want := []string{
		"[12s] analyse: Gauss length 5/25 α (20%), 10s in this phase, ETA 50s",
		"[22s] analyse: Gauss length 25/25 α (100%) done in 20s",
		"[33s] analyse: Gauss length (pass 2) 12/49 α (24%), 10s in this phase, ETA 37s",
		"[43s] analyse: continuous Δ 7 passes, 10s in this phase",
		"[53s] analyse: certificate 64/4096 leaves (2% of the budget), 10s in this phase, ETA at most 21m0s",
		"[58s] analyse: certificate 100 leaves (2% of the budget of 4096) done in 15s",
	}
	got := lines(buf)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTickReportsLongSteps: without any Update for 25 s (one long step),
// the ticker's check writes the last state at 10 s and 20 s, not between
// and without an ETA (no rate yet); after the phase finished it says the
// work goes on; after Done it writes nothing.
func TestTickReportsLongSteps(t *testing.T) {
	b, buf, c := logBar("analyse")
	b.SetPhase(Phase{Name: "certificate", Unit: "leaves", Budget: true})
	b.Update(32, 4096, "")
	for range 25 {
		c.advance(time.Second)
		b.tick()
	}
	b.Update(40, 40, "")
	for range 15 {
		c.advance(time.Second)
		b.tick()
	}
	want := []string{
		"[10s] analyse: certificate 32/4096 leaves (1% of the budget), 10s in this phase",
		"[20s] analyse: certificate 32/4096 leaves (1% of the budget), 20s in this phase",
		"[25s] analyse: certificate 40 leaves (1% of the budget of 4096) done in 25s",
		"[35s] analyse: still working; certificate finished at 25s",
	}
	if got := lines(buf); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	b.Done()
	n := buf.Len()
	c.advance(time.Minute)
	b.tick()
	if !strings.HasSuffix(buf.String(), "[40s] analyse: done\n") {
		t.Errorf("no last line: %q", buf.String())
	}
	if buf.Len() != n {
		t.Errorf("the ticker wrote after Done: %q", buf.String()[n:])
	}
}

// syncBuffer is a buffer safe for the ticker goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNewLogTicks: the real ticker goroutine writes the state of a phase
// that gets no Update, and stops at Done (no timing is asserted: the test
// waits for the first line however long it takes, up to a generous limit).
func TestNewLogTicks(t *testing.T) {
	var buf syncBuffer
	b := NewLog(&buf, "train", 5*time.Millisecond)
	b.Update(3, 10, "")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(buf.String(), "train: 3/10 (30%)") {
		if time.Now().After(deadline) {
			t.Fatalf("no line from the ticker: %q", buf.String())
		}
		time.Sleep(time.Millisecond)
	}
	b.Done()
	s := buf.String()
	if !strings.HasSuffix(s, "train: done\n") {
		t.Errorf("Done wrote no last line: %q", s)
	}
	time.Sleep(20 * time.Millisecond)
	if buf.String() != s {
		t.Errorf("the ticker wrote after Done: %q", buf.String()[len(s):])
	}
}

// TestNewChoosesLogOffTerminal: on a regular file New gives a log bar, and
// work shorter than the interval leaves the file empty.
func TestNewChoosesLogOffTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	q := New(f, "x")
	if !q.log {
		t.Error("a bar on a regular file is not in log mode")
	}
	q.Update(1, 2, "")
	q.Done()
	st, _ := f.Stat()
	if st.Size() != 0 {
		t.Errorf("short work on a regular file wrote %d bytes", st.Size())
	}
}

// TestUnusedLogBarStartsNoTicker: a log bar dropped before any Update (a
// command's --quiet) writes nothing, ever, and starts no goroutine.
func TestUnusedLogBarStartsNoTicker(t *testing.T) {
	var buf syncBuffer
	b := NewLog(&buf, "train", time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	b.mu.Lock()
	running := b.stop != nil
	b.mu.Unlock()
	if running || buf.String() != "" {
		t.Errorf("an unused bar started its ticker (%v) or wrote %q", running, buf.String())
	}
}

// TestStopWritesNoDone: work that stops unfinished (an error, Ctrl-C) ends
// its log without the "done" line Done writes, and the ticker writes no
// more after it.
func TestStopWritesNoDone(t *testing.T) {
	b, buf, c := logBar("lmc")
	b.SetPhase(Phase{Name: "loss on the grid", Unit: "α"})
	for k := 1; k <= 3; k++ {
		c.advance(6 * time.Second)
		b.Update(k, 11, "")
	}
	before := len(lines(buf))
	if before == 0 {
		t.Fatalf("no progress line after 18 s:\n%s", buf)
	}
	b.Stop()
	c.advance(time.Minute)
	b.tick()
	b.Done() // a caller's deferred Done after Stop (certify --run on an interrupt) writes nothing either
	if got := lines(buf); len(got) != before {
		t.Errorf("Stop then a tick and Done wrote %q", got[before:])
	}
	if strings.Contains(buf.String(), "done") {
		t.Errorf("a stopped bar says done:\n%s", buf)
	}
}

// TestOverallETA: with a plan, log lines and the bar add the whole work's
// time left where it can be known: in the last phase that is not brief its
// ETA (at most, for a budget) plus the brief phases named; before it, at
// least the pass's ETA, naming the phases to come; unknown in a budget
// phase with phases after it, and in a phase outside the plan. Without a
// plan nothing is added.
func TestOverallETA(t *testing.T) {
	b, buf, c := logBar("analyse")
	b.SetPlan(Step{Name: "grid"}, Step{Name: "per-layer", Maybe: true}, Step{Name: "certificate"}, Step{Name: "accuracy"}, Step{Name: "figures", Brief: true})
	// grid: 10 α, one per second
	b.SetPhase(Phase{Name: "grid", Unit: "α"})
	for d := 0; d <= 4; d++ {
		b.Update(d, 10, "")
		c.advance(time.Second)
	}
	c.advance(5 * time.Second) // 10 s after the start, 4 of 10 done: 2.5 s per α
	b.tick()
	// certificate: a budget phase with a phase after it
	b.SetPhase(Phase{Name: "certificate", Unit: "leaves", Budget: true})
	b.Update(0, 100, "")
	c.advance(10 * time.Second)
	b.Update(10, 100, "")
	// accuracy: the last phase that is not brief, a budget
	b.SetPhase(Phase{Name: "accuracy", Unit: "leaves", Budget: true})
	b.Update(0, 50, "")
	c.advance(10 * time.Second)
	b.Update(25, 50, "")
	// a phase the plan does not know
	b.SetPhase(Phase{Name: "per-layer L′", Unit: "passes"})
	b.Update(0, 4, "")
	c.advance(10 * time.Second)
	b.Update(1, 4, "")
	got := lines(buf)
	want := []string{
		"[10s] analyse: grid 4/10 α (40%), 10s in this phase, ETA 15s; overall ETA at least 15s (per-layer (if needed), certificate, accuracy to come, timed when they start)",
		"[20s] analyse: certificate 10/100 leaves (10% of the budget), 10s in this phase, ETA at most 1m30s; overall ETA unknown (accuracy to come, timed when they start)",
		"[30s] analyse: accuracy 25/50 leaves (50% of the budget), 10s in this phase, ETA at most 10s; overall ETA at most 10s plus figures",
		"[40s] analyse: per-layer L′ 1/4 passes (25%), 10s in this phase, ETA 30s; overall ETA unknown (per-layer L′ is not in the plan)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// the bar: the short form after the phase's ETA
	var tb bytes.Buffer
	c2 := &clock{t: time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)}
	bar := newBar(&tb, "analyse", 0, c2.now)
	bar.SetPlan(Step{Name: "Gauss length"}, Step{Name: "certificate"})
	bar.SetPhase(Phase{Name: "Gauss length", Unit: "α"})
	bar.Update(0, 100, "")
	c2.advance(20 * time.Second)
	bar.Update(50, 100, "")
	if s := tb.String(); !strings.HasSuffix(s, "50/100 α (50%) ETA 20s, overall ≥20s (+1 phases) ") {
		t.Errorf("bar %q lacks the overall estimate", s)
	}
	// the last phase, which may take further passes: at least its pass's ETA
	bar.SetPlan(Step{Name: "Gauss length", Passes: true}, Step{Name: "figures", Brief: true})
	c2.advance(10 * time.Second)
	bar.Update(75, 100, "")
	if s := tb.String(); !strings.HasSuffix(s, "75/100 α (75%) ETA 10s, overall ≥10s ") {
		t.Errorf("bar %q: want at least the pass's ETA", s)
	}
	// without a plan, nothing is added
	nb, nbuf, nc := logBar("train")
	nb.SetPhase(Phase{Name: "train", Unit: "steps"})
	nb.Update(0, 10, "")
	nc.advance(10 * time.Second)
	nb.Update(5, 10, "")
	if s := nbuf.String(); strings.Contains(s, "overall") {
		t.Errorf("a bar without a plan wrote %q", s)
	}
}

// TestNoticeOnOwnLine: a notice while the bar is drawn on a terminal clears
// the bar's line, writes the notice with its newline, and draws the bar
// again, so the two never share a line; on a log bar, a bar not yet drawn
// and a nil bar it is the line alone.
func TestNoticeOnOwnLine(t *testing.T) {
	var buf bytes.Buffer
	b := NewWriter(&buf, "analyse")
	b.Notice(&buf, "before any bar")
	if got := buf.String(); got != "before any bar\n" {
		t.Errorf("notice before the bar: %q", got)
	}
	buf.Reset()
	b.Update(3, 10, "")
	buf.Reset()
	b.Notice(&buf, "certificate: resuming")
	got := buf.String()
	if want := "\r\033[Kcertificate: resuming\n"; !strings.HasPrefix(got, want) {
		t.Fatalf("notice over a drawn bar: %q, want it to start %q", got, want)
	}
	if rest := strings.TrimPrefix(got, "\r\033[Kcertificate: resuming\n"); !strings.HasPrefix(rest, "\r\033[Kanalyse [") || !strings.Contains(rest, "3/10 (30%)") {
		t.Errorf("the bar is not drawn again after the notice: %q", rest)
	}
	lb, lbuf, _ := logBar("analyse")
	lb.Update(1, 2, "")
	lbuf.Reset()
	lb.Notice(lbuf, "a notice")
	if got := lbuf.String(); got != "a notice\n" {
		t.Errorf("log bar notice: %q", got)
	}
	var nilBar *Bar
	buf.Reset()
	nilBar.Notice(&buf, "quiet")
	if got := buf.String(); got != "quiet\n" {
		t.Errorf("nil bar notice: %q", got)
	}
}
