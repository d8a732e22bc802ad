// Package shelltest pastes the commands hints suggest into a real shell, for tests.
package shelltest

import (
	"os/exec"
	"strings"
	"testing"
)

// HostileNames are names a hint must pass to the command it suggests as one word: pasted
// unquoted, the first runs touch (creating "ran" in the directory Paste runs in), the second
// breaks the command line.
var HostileNames = []string{"x$(touch ran);id", "it's"}

// Paste runs command in dir with bash, as a person who pastes it would, each of commands standing
// in as a function that prints its arguments, and returns the arguments of the last one called.
func Paste(t testing.TB, dir, command string, commands ...string) []string {
	t.Helper()
	var script strings.Builder
	for _, c := range commands {
		script.WriteString(c + "() { printf '%s\\0' \"$@\"; }\n")
	}
	script.WriteString(command + "\n")
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = dir
	out, err := sh.Output()
	if err != nil {
		t.Fatalf("pasting %q: %v", command, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}
