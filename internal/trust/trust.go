// Package trust decides whether the hook may trust a file or directory it reads: libvirtd runs the
// hook as root, so whoever can change its policy or its claims ledger steers what root does (the
// policy names the log file root appends to, the ledger which guest gets which VF).
//
// A path is trusted when no one but its owner can change it, or the directories above it:
//
//   - nothing on the way is writable by anyone (mode o+w), except a directory above the path's own
//     with the sticky bit (like /tmp): there no one can rename or remove what another user owns;
//   - when the hook runs as root, every one of them is owned by root, and none is writable by a
//     group other than root's (gid 0), the sticky exception aside.
//
// A hook run as another user (a test, a tree of its own) checks the modes only. A path that does
// not exist yet (a state directory the first claim creates) is judged by the directories it would
// be made in. Links are followed: both the directories that hold a link and the ones its target is
// in count.
package trust

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/virt-failover/virt-failover/internal/shell"
	"github.com/virt-failover/virt-failover/policy"
)

// Check returns why path is not to be trusted by a hook running as root (asRoot) or as another
// user: nil, or one *policy.Error per problem (errors.Join), each naming the file or directory at
// fault and, as its hint, the command that fixes it. /dev/null (the empty policy) is trusted.
func Check(path string, asRoot bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	c := checker{target: abs, asRoot: asRoot, seen: map[[2]uint64]bool{}}
	// The path as given: each directory on the way holds the next name. A link on the way is not
	// judged by its own mode (always 0777) but by where it leads: the directories its target is
	// in are walked too.
	if c.walk(abs) {
		if real, err := resolve(abs); err == nil {
			c.walk(real)
		}
	}
	if c.null {
		return nil
	}
	return errors.Join(c.problems...)
}

type checker struct {
	target   string
	asRoot   bool
	seen     map[[2]uint64]bool // device and inode of what was checked
	problems []error
	null     bool // the target is /dev/null
}

// walk checks p (when it exists) and every directory above it, up to the root, and reports
// whether it met a link.
func (c *checker) walk(p string) (links bool) {
	own := true // p itself, or the directory it is in: no sticky exception for these
	for dir := p; ; dir = filepath.Dir(dir) {
		fi, err := os.Lstat(dir)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			links = true
		case dir == p && fi.Mode()&os.ModeCharDevice != 0:
			null, err := os.Stat(os.DevNull)
			c.null = err == nil && os.SameFile(fi, null)
		default:
			c.check(dir, fi, own)
		}
		if err == nil && dir != p {
			own = false
		}
		if dir == filepath.Dir(dir) {
			return links
		}
	}
}

func (c *checker) check(p string, fi os.FileInfo, own bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	key := [2]uint64{uint64(st.Dev), st.Ino}
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	mode := st.Mode & 0o7777
	sticky := fi.IsDir() && fi.Mode()&os.ModeSticky != 0 && !own
	holds := ""
	if p != c.target {
		holds = ", and it holds " + c.target
	}
	add := func(msg, fix string) {
		c.problems = append(c.problems, &policy.Error{File: p,
			Msg:  msg + holds + "; the hook trusts only what no one but root can change",
			Hint: fix + " " + shell.Quote(p)})
	}
	if mode&0o002 != 0 && !sticky {
		add(fmt.Sprintf("writable by anyone (mode %04o)", mode), "chmod o-w")
	}
	if !c.asRoot {
		return
	}
	if mode&0o020 != 0 && st.Gid != 0 && !sticky {
		add(fmt.Sprintf("writable by its group, gid %d (mode %04o)", st.Gid, mode), "chmod g-w")
	}
	if st.Uid != 0 {
		add(fmt.Sprintf("owned by uid %d, not root", st.Uid), "chown root:")
	}
}

// resolve follows the links of p, or of the part of it that exists.
func resolve(p string) (string, error) {
	var rest []string
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, os.ErrNotExist) || p == filepath.Dir(p) {
			return "", err
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = filepath.Dir(p)
	}
}
