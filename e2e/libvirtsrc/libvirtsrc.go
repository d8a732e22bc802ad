// Package libvirtsrc fetches the test suite of the libvirt this machine runs: libvirt's own
// domain definitions (tests/qemuxml2argvdata, tests/qemuxml2xmloutdata, ...), which the
// end-to-end corpus test defines in a real libvirt and lints.
//
// The files come from Debian's source package, the way a fresh Debian 12 machine gets them: apt
// with a private sources list and private lists and caches under the cache directory (the
// machine's own apt configuration and state are not touched), "apt-get source --download-only
// libvirt", then the tests/ directory of the upstream tarball (libvirt_VERSION.orig.tar.xz,
// checked by apt against the signed Sources index). The result is cached; a second Fetch reads
// nothing from the network.
package libvirtsrc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultCacheDir is where Fetch keeps its files: <module root>/.cache/libvirt-src.
func DefaultCacheDir(moduleRoot string) string {
	return filepath.Join(moduleRoot, ".cache", "libvirt-src")
}

// Mirror is the Debian archive the source package comes from.
const Mirror = "http://deb.debian.org/debian"

// InstalledVersion returns the upstream version of the installed libvirt ("9.0.0" for Debian's
// 9.0.0-4+deb12u2), from dpkg's record of libvirt-daemon.
func InstalledVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f", "${Version}", "libvirt-daemon").Output()
	if err != nil || len(out) == 0 {
		return "", fmt.Errorf("libvirt-daemon is not installed (dpkg-query: %v); make deps installs it", err)
	}
	return upstreamVersion(string(out)), nil
}

// upstreamVersion strips a Debian version's epoch and revision: "1:9.0.0-4+deb12u2" -> "9.0.0".
func upstreamVersion(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	return v
}

// Fetch returns the tests/ directory of libvirt's source for the installed libvirt:
// cacheDir/libvirt-VERSION/tests, downloaded and unpacked when it is not there yet. Any
// directory that has libvirt-VERSION/tests/qemuxml2argvdata in it serves as cacheDir.
func Fetch(ctx context.Context, cacheDir string, logf func(format string, args ...any)) (string, error) {
	version, err := InstalledVersion(ctx)
	if err != nil {
		return "", err
	}
	top := filepath.Join(cacheDir, "libvirt-"+version)
	tests := filepath.Join(top, "tests")
	if st, err := os.Stat(filepath.Join(tests, "qemuxml2argvdata")); err == nil && st.IsDir() {
		return tests, nil
	}
	codename, err := osCodename()
	if err != nil {
		return "", err
	}
	apt := filepath.Join(cacheDir, "apt")
	for _, d := range []string{"sources.list.d", "lists/partial", "cache/archives/partial", "pkg"} {
		if err := os.MkdirAll(filepath.Join(apt, d), 0o755); err != nil {
			return "", err
		}
	}
	sources := fmt.Sprintf("Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n", Mirror, codename)
	if err := os.WriteFile(filepath.Join(apt, "sources.list.d", "debian-src.sources"), []byte(sources), 0o644); err != nil {
		return "", err
	}
	// Private sources, lists and caches: the machine's apt state stays as it is.
	opts := []string{"-q", "-o", "Dir::Etc::SourceList=/dev/null", "-o", "Dir::Etc::SourceParts=" + filepath.Join(apt, "sources.list.d"),
		"-o", "Dir::State::Lists=" + filepath.Join(apt, "lists"), "-o", "Dir::Cache=" + filepath.Join(apt, "cache"),
		"-o", "APT::Sandbox::User=root"}
	logf("libvirtsrc: apt-get update (deb-src %s %s main, private lists in %s)", Mirror, codename, apt)
	if err := run(ctx, apt, "apt-get", append(opts, "update")...); err != nil {
		return "", err
	}
	pkg := filepath.Join(apt, "pkg")
	orig := filepath.Join(pkg, "libvirt_"+version+".orig.tar.xz")
	if _, err := os.Stat(orig); err != nil {
		logf("libvirtsrc: apt-get source --download-only libvirt")
		if err := run(ctx, pkg, "apt-get", append(opts, "source", "--download-only", "libvirt")...); err != nil {
			return "", err
		}
		if _, err := os.Stat(orig); err != nil {
			got, _ := filepath.Glob(filepath.Join(pkg, "libvirt_*.orig.tar.*"))
			return "", fmt.Errorf("the Debian source package of libvirt has no upstream tarball for the installed libvirt %s (got %s)", version, strings.Join(got, ", "))
		}
	}
	// Unpack tests/ beside the final place, then rename: a directory that exists is complete.
	tmp, err := os.MkdirTemp(cacheDir, ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	logf("libvirtsrc: unpacking libvirt-%s/tests from %s", version, filepath.Base(orig))
	if err := run(ctx, tmp, "tar", "-xJf", orig, "libvirt-"+version+"/tests"); err != nil {
		return "", err
	}
	if err := os.RemoveAll(top); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, "libvirt-"+version), top); err != nil {
		return "", err
	}
	return tests, nil
}

// osCodename reads VERSION_CODENAME from /etc/os-release ("bookworm").
func osCodename() (string, error) {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VERSION_CODENAME="); ok && v != "" {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", errors.New("/etc/os-release has no VERSION_CODENAME: not a Debian release apt can fetch libvirt's source for")
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("%s %s: %v: %s", name, args[len(args)-1], err, strings.Join(lines[max(0, len(lines)-5):], "\n"))
	}
	return nil
}
