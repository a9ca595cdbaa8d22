// Package progress draws a one-line progress bar with a rate and an ETA on a
// terminal, and stays silent when its output is not a terminal (a log file,
// a pipe, CI).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar is a progress bar; its methods are safe for concurrent use. The zero
// value and a nil *Bar are silent.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	start    time.Time
	last     time.Time
	drawn    bool
	interval time.Duration
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// New returns a bar writing to f when f is a terminal, else a silent bar.
func New(f *os.File, label string) *Bar {
	if !IsTerminal(f) {
		return &Bar{}
	}
	return NewWriter(f, label)
}

// NewWriter returns a bar that always draws to w (for tests).
func NewWriter(w io.Writer, label string) *Bar {
	now := time.Now()
	return &Bar{w: w, label: label, start: now, interval: 100 * time.Millisecond}
}

// SetLabel changes the text before the bar (the stage of the work).
func (b *Bar) SetLabel(label string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	if b.label != label {
		b.label = label
		b.start = time.Now()
		b.last = time.Time{}
	}
	b.mu.Unlock()
}

// Update draws done of total, at most every 100 ms (and always at the end).
func (b *Bar) Update(done, total int, extra string) {
	if b == nil || b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(b.last) < b.interval {
		return
	}
	b.last = now
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	fill := int(frac * width)
	eta := ""
	if el := now.Sub(b.start); done > 0 && done < total {
		rem := time.Duration(float64(el) / float64(done) * float64(total-done))
		eta = " ETA " + rem.Round(time.Second).String()
	}
	fmt.Fprintf(b.w, "\r\033[K%s [%s%s] %3.0f%% %d/%d%s %s", b.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*frac, done, total, eta, extra)
	b.drawn = true
}

// Done ends the bar's line.
func (b *Bar) Done() {
	if b == nil || b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}
