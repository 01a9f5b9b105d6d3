// Package progress reports how far a long loop (certifying examples,
// training batches) has come: items done, seconds per item and the time
// left. Reports go to a terminal only; elsewhere they are dropped, so logs
// and pipes stay clean.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// Reporter follows one loop over items.
type Reporter interface {
	// Start begins the loop: total items (0 if unknown), of which done are
	// finished already, by an earlier run that this one resumes; the rate
	// counts only items finished after Start.
	Start(done, total int)
	// Update says that done items (in all) are finished.
	Update(done int)
	// Finish ends the report.
	Finish()
}

// Nop is a Reporter that reports nothing.
type Nop struct{}

func (Nop) Start(int, int) {}
func (Nop) Update(int)     {}
func (Nop) Finish()        {}

// ForStderr returns a Terminal on stderr if stderr is a terminal, and Nop
// otherwise. unit names the items, e.g. "example".
func ForStderr(unit string) Reporter {
	return forFile(os.Stderr, unit)
}

func forFile(f *os.File, unit string) Reporter {
	if !term.IsTerminal(int(f.Fd())) {
		return Nop{}
	}
	return NewTerminal(f, unit, time.Now)
}

// redrawEvery limits how often the status line is redrawn.
const redrawEvery = 250 * time.Millisecond

// Terminal redraws one status line, such as
// "120/500 examples, 3.21 s/example, 20m20s left".
type Terminal struct {
	w    io.Writer
	unit string
	now  func() time.Time

	start, drawn         time.Time
	startDone, done, all int
}

// NewTerminal returns a Terminal writing to w; now is time.Now outside
// tests.
func NewTerminal(w io.Writer, unit string, now func() time.Time) *Terminal {
	return &Terminal{w: w, unit: unit, now: now}
}

func (t *Terminal) Start(done, total int) {
	t.start, t.startDone, t.done, t.all = t.now(), done, done, total
	t.draw()
}

func (t *Terminal) Update(done int) {
	t.done = done
	if t.now().Sub(t.drawn) >= redrawEvery {
		t.draw()
	}
}

func (t *Terminal) Finish() {
	t.draw()
	fmt.Fprintln(t.w)
}

// draw rewrites the line: carriage return, the status, then erase to the
// end of the line (ANSI EL) in case the previous status was longer.
func (t *Terminal) draw() {
	now := t.now()
	t.drawn = now
	s := fmt.Sprintf("%d", t.done)
	if t.all > 0 {
		s += fmt.Sprintf("/%d", t.all)
	}
	s += " " + t.unit + "s"
	if n := t.done - t.startDone; n > 0 {
		per := now.Sub(t.start).Seconds() / float64(n)
		s += fmt.Sprintf(", %.3g s/%s", per, t.unit)
		if left := t.all - t.done; t.all > 0 && left > 0 {
			eta := time.Duration(per * float64(left) * float64(time.Second))
			s += fmt.Sprintf(", %s left", eta.Round(time.Second))
		}
	}
	fmt.Fprintf(t.w, "\r%s\x1b[K", s)
}
