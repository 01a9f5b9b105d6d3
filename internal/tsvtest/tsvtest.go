// Package tsvtest reads the tab-separated test vectors (testdata/*.tsv and
// shared/reference/stats) that the tests of certify's packages compare with.
package tsvtest

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// Read returns the header and the rows of the tab-separated file at path,
// skipping lines that start with '#'. The first other line is the header;
// every row must have as many fields as it, and there must be at least one
// row. Any problem fails the test.
func Read(t testing.TB, path string) (header []string, rows [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if header == nil {
			header = fields
			continue
		}
		if len(fields) != len(header) {
			t.Fatalf("%s: want %d fields, got %q", path, len(header), line)
		}
		rows = append(rows, fields)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no rows", path)
	}
	return header, rows
}
