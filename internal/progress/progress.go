// Package progress reports the progress of long work on stderr. On a
// terminal it draws a one-line bar with a rate and an ETA, redrawn in place.
// Anywhere else — a log file under SLURM or nohup, a pipe, CI — it writes a
// plain line about every 10 seconds (LogInterval) with the time since the
// start, the phase, done/total and an ETA, and one when a phase that was
// reported finishes; work shorter than the interval writes nothing.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// LogInterval is how often a Bar that is not on a terminal writes a line.
const LogInterval = 10 * time.Second

// Phase says what the counts given to Update are.
type Phase struct {
	// Name is the phase, e.g. "Gauss length" or "certificate".
	Name string
	// Unit is what is counted ("α", "leaves", "steps"); "" for no unit.
	Unit string
	// Budget marks a total that is an upper bound the work may stop short
	// of (the certificate's leaf budget): the ETA is the time to spend all
	// of it at the present rate, printed as "at most".
	Budget bool
}

// Step is one phase of a plan (SetPlan): its Name as the work's Phase
// calls it, and Brief for a phase known to take seconds at most (drawing
// figures), which an overall estimate names but does not wait for.
type Step struct {
	Name  string
	Brief bool
	// Maybe marks a phase that runs only in some cases (known once the
	// work gets there): an estimate names it as "(if needed)".
	Maybe bool
	// Passes marks a phase that may take further passes (an adaptive grid
	// refined), each counted afresh: its ETA is the current pass's, so an
	// overall estimate from it is "at least".
	Passes bool
}

// Bar reports progress; its methods are safe for concurrent use. The zero
// value and a nil *Bar are silent.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	log   bool   // plain lines, not a redrawn bar
	name  string // the work as a whole ("analyse", "train"): the prefix of log lines
	phase Phase

	start      time.Time // of the bar
	phaseStart time.Time // of the phase's current pass
	pass       int       // passes of the phase: a count that went back starts a new one
	done       int       // the last counts given to Update
	total      int
	budget     int // a Budget phase's largest total: the budget, when the last total is the count it stopped at
	extra      string
	updated    bool      // Update was called in this pass of the phase
	firstDone  int       // the count at the pass's first Update
	firstAt    time.Time // and when it came: the ETA's rate is measured from it
	finishedAt time.Time // when the phase last finished (zero: it has not)

	last        time.Time // last drawing (bar) or line (log)
	interval    time.Duration
	drawn       bool // a bar is on the line
	phaseLogged bool // a line was written for this pass of the phase and it has not finished
	anyLogged   bool // a line was written at all

	plan []Step // the phases of the whole work in order (SetPlan); nil: no overall estimate

	now    func() time.Time
	ticker bool          // a log bar that reports from a ticker goroutine too (NewLog)
	stop   chan struct{} // closes the running ticker (nil: none running)
	closed bool          // Done was called: the ticker writes no more
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// New returns a bar drawing to f when f is a terminal, and otherwise one
// that writes a line to f about every LogInterval (also while no Update
// comes: a long step is still reported) until Done. label names the work
// and is its first phase.
func New(f *os.File, label string) *Bar {
	if IsTerminal(f) {
		return NewWriter(f, label)
	}
	return NewLog(f, label, LogInterval)
}

// NewWriter returns a bar that always draws to w, redrawing in place at
// most every 100 ms.
func NewWriter(w io.Writer, label string) *Bar {
	b := newBar(w, label, 100*time.Millisecond, time.Now)
	b.last = time.Time{} // the first Update draws
	return b
}

// NewLog returns a bar that writes plain lines to w, about every interval,
// from Update and from a ticker goroutine that the first Update or SetPhase
// starts (a bar that is dropped unused starts none); Done stops it.
func NewLog(w io.Writer, label string, interval time.Duration) *Bar {
	b := newBar(w, label, interval, time.Now)
	b.log = true
	b.ticker = true
	return b
}

// startTicker starts the ticker goroutine of a log bar made by NewLog, once,
// unless the bar is done. The caller holds the lock.
func (b *Bar) startTicker() {
	if !b.ticker || b.stop != nil || b.closed {
		return
	}
	b.stop = make(chan struct{})
	go func(stop chan struct{}, every time.Duration) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				b.tick()
			}
		}
	}(b.stop, b.interval/4)
}

// newBar is a bar on clock now (tests give a fake one).
func newBar(w io.Writer, label string, interval time.Duration, now func() time.Time) *Bar {
	t := now()
	return &Bar{w: w, name: label, phase: Phase{Name: label}, start: t, phaseStart: t, pass: 1, last: t, interval: interval, now: now}
}

// SetPlan gives the phases the whole work will go through, in order, so
// that lines and the bar add an overall estimate (overall): while the
// current phase is the last one that is not Brief, the time left overall
// is its ETA; before, later phases' cost is not known until they start,
// so the estimate is a lower bound (the current pass's ETA) naming the
// phases to come, or unknown in a Budget phase (which may stop at any
// leaf). A phase missing from the plan has no overall estimate.
func (b *Bar) SetPlan(steps ...Step) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plan = append([]Step(nil), steps...)
}

// SetLabel starts the phase called label (a Phase without unit), unless it
// is the current one.
func (b *Bar) SetLabel(label string) { b.SetPhase(Phase{Name: label}) }

// SetPhase starts phase p unless it is the current one: its counts, pass
// and ETA start afresh.
func (b *Bar) SetPhase(p Phase) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.startTicker()
	if b.phase == p {
		return
	}
	b.phase = p
	b.phaseStart = b.now()
	b.pass, b.done, b.total, b.budget, b.extra, b.updated, b.phaseLogged = 1, 0, 0, 0, "", false, false
	b.finishedAt = time.Time{}
	if !b.log {
		b.last = time.Time{}
	}
}

// Update reports done of total in the current phase (total ≤ 0: unknown)
// with an extra note. A count below the previous one starts a new pass of
// the phase (an adaptive computation refining its grid). On a terminal it
// redraws the bar at most every 100 ms and always at the end; in a log it
// writes a line when LogInterval has passed since the last one, and one
// when a reported phase finishes (done = total).
func (b *Bar) Update(done, total int, extra string) {
	if b == nil || b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.startTicker()
	now := b.now()
	if b.updated && done < b.done {
		b.pass++
		b.phaseStart = now
		b.phaseLogged = false
		b.updated = false
		b.finishedAt = time.Time{}
	}
	if !b.updated {
		b.firstDone, b.firstAt = done, now
	}
	b.done, b.total, b.extra, b.updated = done, total, extra, true
	b.budget = max(b.budget, total)
	finished := total > 0 && done >= total
	if finished {
		b.finishedAt = now
	}
	if !b.log {
		if !finished && now.Sub(b.last) < b.interval {
			return
		}
		b.last = now
		b.draw(now)
		return
	}
	switch {
	case finished && b.phaseLogged:
		b.writeLine(now, true)
		b.phaseLogged = false
	case !finished && now.Sub(b.last) >= b.interval:
		b.writeLine(now, false)
	}
}

// tick writes the current state when a log bar has been silent for its
// interval (the ticker's work: a step longer than the interval is still
// reported).
func (b *Bar) tick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil || !b.log || b.closed {
		return
	}
	now := b.now()
	if now.Sub(b.last) < b.interval {
		return
	}
	if b.finishedAt.IsZero() {
		b.writeLine(now, false)
		return
	}
	// The phase finished and the next has not reported yet.
	fmt.Fprintf(b.w, "[%s] %s: still working; %s finished at %s\n", dur(now.Sub(b.start)), b.name, b.title(), dur(b.finishedAt.Sub(b.start)))
	b.last = now
	b.anyLogged = true
}

// Done ends the bar: on a terminal it clears the line; in a log it stops
// the ticker and, when any line was written, writes a last one with the
// total time.
func (b *Bar) Done() { b.end(true) }

// Stop ends the bar of work that did not finish (an error, an
// interruption): as Done, but a log gets no "done" line, so the caller's
// own message is the last word.
func (b *Bar) Stop() { b.end(false) }

// end is Done (finished true) or Stop.
func (b *Bar) end(finished bool) {
	if b == nil || b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed { // Done after Stop: the bar has ended already
		return
	}
	b.closed = true
	if b.stop != nil {
		close(b.stop)
		b.stop = nil
	}
	if b.log {
		if b.anyLogged && finished {
			fmt.Fprintf(b.w, "[%s] %s: done\n", dur(b.now().Sub(b.start)), b.name)
			b.anyLogged = false
		}
		return
	}
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// Notice writes msg as a line of its own to w (the caller's stderr), so
// that a notice in the middle of the work (a checkpoint resumed, a verdict
// decided) does not share a terminal line with the bar: a bar drawn on the
// terminal is cleared first and drawn again after. A log bar, a bar not
// drawn, an ended one and a nil *Bar just write the line.
func (b *Bar) Notice(w io.Writer, msg string) {
	if b == nil || b.w == nil {
		fmt.Fprintln(w, msg)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log || !b.drawn || b.closed {
		fmt.Fprintln(w, msg)
		return
	}
	fmt.Fprint(b.w, "\r\033[K")
	fmt.Fprintln(w, msg)
	b.draw(b.now())
}

// counts is "done/total unit (p%)" or, with an unknown total, "done unit".
func (b *Bar) counts() string {
	unit := ""
	if b.phase.Unit != "" {
		unit = " " + b.phase.Unit
	}
	if b.total <= 0 {
		return fmt.Sprintf("%d%s", b.done, unit)
	}
	of := ""
	if b.phase.Budget {
		if b.budget > b.total && b.done >= b.total {
			// the work stopped short of its budget, which then reports the
			// count it stopped at as the total: say so, against the budget
			return fmt.Sprintf("%d%s (%.0f%% of the budget of %d)", b.done, unit, 100*float64(b.done)/float64(b.budget), b.budget)
		}
		of = " of the budget"
	}
	return fmt.Sprintf("%d/%d%s (%.0f%%%s)", b.done, b.total, unit, 100*float64(b.done)/float64(b.total), of)
}

// eta is the time left at the pass's rate since its first Update ("" when
// unknown: no total, or no progress since the first Update), with "at
// most" for a budget.
func (b *Bar) eta(now time.Time) string {
	rem, ok := b.left(now)
	if !ok {
		return ""
	}
	if b.phase.Budget {
		return "ETA at most " + dur(rem)
	}
	return "ETA " + dur(rem)
}

// left is the pass's time left at its rate since its first Update; ok is
// false when unknown (no total, or no progress since the first Update).
func (b *Bar) left(now time.Time) (time.Duration, bool) {
	if b.total <= 0 || b.done <= b.firstDone || b.done >= b.total {
		return 0, false
	}
	el := now.Sub(b.firstAt)
	return time.Duration(float64(el) / float64(b.done-b.firstDone) * float64(b.total-b.done)), true
}

// overall is the estimate of the whole work's time left (SetPlan), long
// for log lines and short for the bar; both "" without a plan, or in the
// last phase while its own ETA is unknown (nothing to add to the line).
//   - the last phase that is not Brief: its ETA ("at most" for a Budget
//     phase, "at least" for one that may take more Passes), then the
//     Brief phases after it, named;
//   - an earlier phase: "at least" its pass's ETA, naming the phases to
//     come, whose cost is known only when they start; unknown in a Budget
//     phase or while the pass's ETA is (a budget is an upper bound);
//   - a phase not in the plan: unknown.
func (b *Bar) overall(now time.Time) (long, short string) {
	if b.plan == nil {
		return "", ""
	}
	k := -1
	for i, st := range b.plan {
		if st.Name == b.phase.Name {
			k = i
		}
	}
	if k < 0 {
		return "overall ETA unknown (" + b.phase.Name + " is not in the plan)", "overall ?"
	}
	var later, brief []string
	for _, st := range b.plan[k+1:] {
		name := st.Name
		if st.Maybe {
			name += " (if needed)"
		}
		if st.Brief {
			brief = append(brief, name)
		} else {
			later = append(later, name)
		}
	}
	rem, ok := b.left(now)
	if len(later) == 0 {
		if !ok {
			return "", ""
		}
		long, short = "overall ETA "+dur(rem), "overall "+dur(rem)
		switch {
		case b.plan[k].Passes:
			long, short = "overall ETA at least "+dur(rem)+" (further passes may follow)", "overall ≥"+dur(rem)
		case b.phase.Budget:
			long, short = "overall ETA at most "+dur(rem), "overall ≤"+dur(rem)
		}
		if len(brief) > 0 {
			long += " plus " + strings.Join(brief, ", ")
		}
		return long, short
	}
	toCome := strings.Join(later, ", ") + " to come, timed when they start"
	if !ok || b.phase.Budget {
		return "overall ETA unknown (" + toCome + ")", fmt.Sprintf("overall ? (+%d phases)", len(later))
	}
	return "overall ETA at least " + dur(rem) + " (" + toCome + ")", fmt.Sprintf("overall ≥%s (+%d phases)", dur(rem), len(later))
}

// title is the phase's name with its pass after the first.
func (b *Bar) title() string {
	if b.pass > 1 {
		return fmt.Sprintf("%s (pass %d)", b.phase.Name, b.pass)
	}
	return b.phase.Name
}

// writeLine writes one log line: "[elapsed] name: phase counts, time in
// phase, ETA; extra", or, when the phase finished, "… done in time" (the
// phase and its time are left out while the work has one phase).
// The caller holds the lock.
func (b *Bar) writeLine(now time.Time, finished bool) {
	var s strings.Builder
	fmt.Fprintf(&s, "[%s] %s:", dur(now.Sub(b.start)), b.name)
	if b.phase.Name != b.name {
		fmt.Fprintf(&s, " %s", b.title())
	} else if b.pass > 1 {
		fmt.Fprintf(&s, " pass %d", b.pass)
	}
	if b.updated {
		fmt.Fprintf(&s, " %s", b.counts())
	}
	switch {
	case finished:
		fmt.Fprintf(&s, " done in %s", dur(now.Sub(b.phaseStart)))
	case b.phase.Name != b.name || b.pass > 1: // else the time since the start says it
		fmt.Fprintf(&s, ", %s in this phase", dur(now.Sub(b.phaseStart)))
	}
	if !finished {
		if e := b.eta(now); e != "" {
			fmt.Fprintf(&s, ", %s", e)
		}
		if o, _ := b.overall(now); o != "" {
			fmt.Fprintf(&s, "; %s", o)
		}
	}
	if b.extra != "" {
		fmt.Fprintf(&s, "; %s", b.extra)
	}
	s.WriteByte('\n')
	io.WriteString(b.w, s.String())
	b.last = now
	b.phaseLogged = !finished
	b.anyLogged = true
}

// draw redraws the terminal bar. The caller holds the lock.
func (b *Bar) draw(now time.Time) {
	const width = 30
	frac := 0.0
	if b.total > 0 {
		frac = min(1, float64(b.done)/float64(b.total))
	}
	fill := int(frac * width)
	eta := b.eta(now)
	if eta != "" {
		eta = " " + eta
	}
	if _, o := b.overall(now); o != "" {
		eta += ", " + o
	}
	fmt.Fprintf(b.w, "\r\033[K%s [%s%s] %s%s %s", b.title(), strings.Repeat("=", fill), strings.Repeat(" ", width-fill), b.counts(), eta, b.extra)
	b.drawn = true
}

// dur rounds d to seconds (tenths below 10 s) for printing: "7.5s", "42s",
// "3m5s", "1h2m3s".
func dur(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
