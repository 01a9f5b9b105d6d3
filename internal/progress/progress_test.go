package progress

import (
	"os"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestTerminalReportsRateAndTimeLeft(t *testing.T) {
	var out strings.Builder
	clock := &fakeClock{t: time.Unix(0, 0)}
	r := NewTerminal(&out, "example", clock.now)
	r.Start(100, 500) // resumed: 100 done before, not counted in the rate
	clock.t = clock.t.Add(30 * time.Second)
	r.Update(110) // 10 examples in 30 s: 3 s each, 390 left
	clock.t = clock.t.Add(100 * time.Millisecond)
	r.Update(111) // too soon to redraw; Finish draws 30.1 s / 11 = 2.74 s each, 389 left
	r.Finish()
	lines := strings.Split(out.String(), "\r")
	want := []string{
		"",
		"100/500 examples\x1b[K",
		"110/500 examples, 3 s/example, 19m30s left\x1b[K",
		"111/500 examples, 2.74 s/example, 17m44s left\x1b[K\n",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %q", out.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("draw %d: %q, want %q", i, lines[i], want[i])
		}
	}
}

func TestForFileIsQuietOffTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if r := forFile(f, "example"); r != (Nop{}) {
		t.Errorf("forFile(regular file) = %T, want Nop", r)
	}
}
