// Package samepath tells whether two paths name the same file, so that a
// command can refuse to write its output over one of its inputs.
package samepath

import (
	"os"
	"path/filepath"
)

// Same reports whether a and b name the same file: by os.SameFile when both
// exist (which sees through links and different spellings), else by their
// cleaned absolute paths.
func Same(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}
