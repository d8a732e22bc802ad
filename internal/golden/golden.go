// Package golden holds what the golden-file tests share: reading expected files that may be
// absent, and showing where two documents first differ.
package golden

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Read returns the file's bytes or fails the test.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ReadOptional returns the file's bytes and true, or nil and false when it does not exist (an
// absent out.xml means "the output equals the input").
func ReadOptional(t testing.TB, name string) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// LineDiff shows the first line where got differs from want, with line ends visible, then got
// in full.
func LineDiff(want, got []byte) string {
	wl := strings.SplitAfter(string(want), "\n")
	gl := strings.SplitAfter(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant %q\ngot  %q\n--- got in full:\n%s", i+1, w, g, got)
		}
	}
	return "(no line differs)"
}
