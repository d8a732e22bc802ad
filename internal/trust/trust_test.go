package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/policy"
)

const nobody = 65534

// problems renders Check's result one problem a line, "PATH: MSG | hint: HINT", the test's
// directory written as $D.
func problems(t *testing.T, dir, path string, asRoot bool) []string {
	t.Helper()
	err := Check(path, asRoot)
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []string
	for _, e := range errs {
		var pe *policy.Error
		if !errors.As(e, &pe) {
			t.Fatalf("%v is not a *policy.Error", e)
		}
		msg, _, _ := strings.Cut(pe.Error(), "; the hook trusts only")
		out = append(out, strings.ReplaceAll(msg+" | hint: "+pe.Hint, dir, "$D"))
	}
	return out
}

func mkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func write(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte("[host]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestCheckModes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, d string) string // returns the path to check
		want  []string
	}{
		{"private", func(t *testing.T, d string) string {
			write(t, filepath.Join(d, "p.toml"), 0o644)
			return filepath.Join(d, "p.toml")
		}, nil},
		{"world-writable-file", func(t *testing.T, d string) string {
			write(t, filepath.Join(d, "p.toml"), 0o646)
			return filepath.Join(d, "p.toml")
		}, []string{"$D/p.toml: writable by anyone (mode 0646) | hint: chmod o-w $D/p.toml"}},
		{"world-writable-grandparent", func(t *testing.T, d string) string {
			mkdir(t, filepath.Join(d, "a", "b"), 0o755)
			write(t, filepath.Join(d, "a", "b", "p.toml"), 0o644)
			mkdir(t, filepath.Join(d, "a"), 0o777)
			return filepath.Join(d, "a", "b", "p.toml")
		}, []string{"$D/a: writable by anyone (mode 0777), and it holds $D/a/b/p.toml | hint: chmod o-w $D/a"}},
		{"sticky-grandparent-is-fine", func(t *testing.T, d string) string {
			mkdir(t, filepath.Join(d, "a", "b"), 0o755)
			write(t, filepath.Join(d, "a", "b", "p.toml"), 0o644)
			mkdir(t, filepath.Join(d, "a"), 0o777|os.ModeSticky)
			return filepath.Join(d, "a", "b", "p.toml")
		}, nil},
		{"sticky-parent-is-not", func(t *testing.T, d string) string {
			mkdir(t, filepath.Join(d, "a"), 0o777|os.ModeSticky)
			write(t, filepath.Join(d, "a", "p.toml"), 0o644)
			return filepath.Join(d, "a", "p.toml")
		}, []string{"$D/a: writable by anyone (mode 1777), and it holds $D/a/p.toml | hint: chmod o-w $D/a"}},
		{"missing-judged-by-where-it-would-be-made", func(t *testing.T, d string) string {
			mkdir(t, filepath.Join(d, "open"), 0o777)
			return filepath.Join(d, "open", "state", "deeper")
		}, []string{"$D/open: writable by anyone (mode 0777), and it holds $D/open/state/deeper | hint: chmod o-w $D/open"}},
		{"link-in-a-world-writable-directory", func(t *testing.T, d string) string {
			mkdir(t, filepath.Join(d, "safe"), 0o755)
			write(t, filepath.Join(d, "safe", "p.toml"), 0o644)
			mkdir(t, filepath.Join(d, "open"), 0o777)
			if err := os.Symlink(filepath.Join(d, "safe", "p.toml"), filepath.Join(d, "open", "p.toml")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(d, "open", "p.toml")
		}, []string{"$D/open: writable by anyone (mode 0777), and it holds $D/open/p.toml | hint: chmod o-w $D/open"}},
		{"link-to-a-world-writable-directory", func(t *testing.T, d string) string {
			mkdir(t, filepath.Join(d, "open"), 0o777)
			write(t, filepath.Join(d, "open", "p.toml"), 0o644)
			mkdir(t, filepath.Join(d, "safe"), 0o755)
			if err := os.Symlink(filepath.Join(d, "open", "p.toml"), filepath.Join(d, "safe", "p.toml")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(d, "safe", "p.toml")
		}, []string{"$D/open: writable by anyone (mode 0777), and it holds $D/safe/p.toml | hint: chmod o-w $D/open"}},
		{"a-name-the-shell-would-run", func(t *testing.T, d string) string {
			p := filepath.Join(d, "x$(touch ran);id")
			write(t, p, 0o666)
			return p
		}, []string{"$D/x$(touch ran);id: writable by anyone (mode 0666) | hint: chmod o-w '$D/x$(touch ran);id'"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			p := tc.setup(t, d)
			for _, asRoot := range []bool{false, true} {
				if asRoot && os.Geteuid() != 0 {
					continue // the test's files are not root's: see TestCheckOwnership
				}
				got := problems(t, d, p, asRoot)
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Errorf("as root %v:\n got %q\nwant %q", asRoot, got, tc.want)
				}
			}
		})
	}
	if err := Check(os.DevNull, os.Geteuid() == 0); err != nil {
		t.Errorf("/dev/null, the empty policy: %v", err)
	}
}

// When the hook runs as root, what it trusts must be root's, and writable by no group but root's;
// a hook run as another user does not check owners.
func TestCheckOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: chown needs root (the owner is checked only when the hook runs as root)")
	}
	d := t.TempDir()
	p := filepath.Join(d, "p.toml")
	write(t, p, 0o664)
	if got := problems(t, d, p, true); got != nil {
		t.Errorf("root's, writable by group root: %q", got)
	}
	if err := os.Chown(p, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"$D/p.toml: writable by its group, gid 65534 (mode 0664) | hint: chmod g-w $D/p.toml",
		"$D/p.toml: owned by uid 65534, not root | hint: chown root: $D/p.toml",
	}
	if got := problems(t, d, p, true); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("nobody's:\n got %q\nwant %q", got, want)
	}
	if got := problems(t, d, p, false); got != nil {
		t.Errorf("as another user, owners are not checked: %q", got)
	}
	// A sticky directory above the file's own may belong to anyone's group; the file's own may not.
	sub := filepath.Join(d, "sticky", "dir")
	mkdir(t, sub, 0o755)
	write(t, filepath.Join(sub, "p.toml"), 0o644)
	if err := os.Chown(filepath.Join(d, "sticky"), 0, nobody); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(d, "sticky"), 0o777|os.ModeSticky)
	if got := problems(t, d, filepath.Join(sub, "p.toml"), true); got != nil {
		t.Errorf("under a sticky directory: %q", got)
	}
}
