package certify

import (
	"errors"
	"fmt"
	"os"
)

// lineFile appends lines to a file, each in a single write, so that an
// interrupted run leaves at most a torn last line: the writer of certify
// and predict logs and of samples files. what names the file in errors.
type lineFile struct {
	f    *os.File
	what string
}

func (l *lineFile) writeLine(line string) error {
	if l.f == nil {
		return fmt.Errorf("write %s: %w", l.what, errors.New("closed"))
	}
	if _, err := l.f.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("write %s: %w", l.what, err)
	}
	return nil
}

// Close closes the file; closing twice is harmless.
func (l *lineFile) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
