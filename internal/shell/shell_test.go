package shell

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"web-01":                         "web-01",
		"/etc/virt-failover/policy.toml": "/etc/virt-failover/policy.toml",
		"x$(touch y);id":                 `'x$(touch y);id'`,
		"it's":                           `'it'\''s'`,
		"":                               "''",
		"=ls":                            "'=ls'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %q, want %q", in, got, want)
		}
	}
}

// A quoted word reaches the command as itself, and nothing in it runs.
func TestQuoteSurvivesTheShell(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	for _, in := range []string{
		"x$(touch " + mark + ");id", "x`touch " + mark + "`", "a'b", "'", "''", `a"b`, "a b\tc\nd", "$HOME", "~", "*", "a;touch " + mark,
		"é-漢字", `back\slash`, "!x", "web-01",
	} {
		out, err := exec.Command("sh", "-c", "printf '%s' "+Quote(in)).Output()
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if string(out) != in {
			t.Errorf("Quote(%q) = %s reads back as %q", in, Quote(in), out)
		}
	}
	if _, err := os.Stat(mark); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a quoted word ran a command: %v", err)
	}
}
