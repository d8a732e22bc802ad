// Package deb holds the Debian package's files (nfpm.yaml, the maintainer scripts, the watch
// unit, the logrotate file) and the tests of the package "make deb" builds. The package tests run
// when VF_DEB names the built .deb ("make deb-test" sets it); they install it only into
// throwaway roots, never into /.
package deb

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The package's own files, by path in the package, with their modes as dpkg-deb -c prints them.
var wantFiles = map[string]string{
	"usr/bin/virt-failover":                                  "-rwxr-xr-x",
	"etc/virt-failover/policy.toml":                          "-rw-r--r--",
	"etc/logrotate.d/virt-failover":                          "-rw-r--r--",
	"lib/systemd/system/virt-failover-watch.service":         "-rw-r--r--",
	"usr/share/man/man1/virt-failover.1.gz":                  "-rw-r--r--",
	"usr/share/man/man5/virt-failover-policy.5.gz":           "-rw-r--r--",
	"usr/share/bash-completion/completions/virt-failover":    "-rw-r--r--",
	"usr/share/zsh/vendor-completions/_virt-failover":        "-rw-r--r--",
	"usr/share/fish/vendor_completions.d/virt-failover.fish": "-rw-r--r--",
	"usr/share/doc/virt-failover/copyright":                  "-rw-r--r--",
	"usr/share/doc/virt-failover/changelog.Debian.gz":        "-rw-r--r--",
	"usr/share/doc/virt-failover/README.md.gz":               "-rw-r--r--",
	"usr/share/doc/virt-failover/docs/policy.md.gz":          "-rw-r--r--",
	"usr/share/doc/virt-failover/docs/install.md.gz":         "-rw-r--r--",
	"usr/share/lintian/overrides/virt-failover":              "-rw-r--r--",
}

var wantConffiles = []string{"/etc/virt-failover/policy.toml", "/etc/logrotate.d/virt-failover"}

// theDeb is the package under test: VF_DEB, which "make deb-test" sets after building it.
func theDeb(t *testing.T) string {
	t.Helper()
	deb := os.Getenv("VF_DEB")
	if deb == "" {
		t.Skip("VF_DEB is not set: make deb-test builds the package and runs these tests on it")
	}
	if _, err := os.Stat(deb); err != nil {
		t.Fatal(err)
	}
	return deb
}

// run runs a command and returns its standard output; it fails the test when the command fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// extract unpacks the package's files into a new directory.
func extract(t *testing.T, deb string) string {
	t.Helper()
	dir := t.TempDir()
	run(t, nil, "dpkg-deb", "-x", deb, dir)
	return dir
}

type entry struct{ mode, owner string }

// contents is dpkg-deb -c: each path (without "./", directories with a trailing "/") with its
// mode and owner.
func contents(t *testing.T, deb string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	for _, l := range strings.Split(strings.TrimSpace(run(t, nil, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c: unexpected line %q", l)
		}
		out[strings.TrimPrefix(f[5], "./")] = entry{f[0], f[1]}
	}
	return out
}

func TestDebFiles(t *testing.T) {
	deb := theDeb(t)
	files := contents(t, deb)
	for p, mode := range wantFiles {
		e, ok := files[p]
		if !ok {
			t.Errorf("%s is not in the package", p)
		} else if e.mode != mode {
			t.Errorf("%s: mode %s, want %s", p, e.mode, mode)
		}
	}
	for p, e := range files {
		if e.owner != "root/root" && e.owner != "0/0" {
			t.Errorf("%s: owned by %s, want root/root", p, e.owner)
		}
		switch {
		case strings.HasSuffix(p, "/"):
			if e.mode != "drwxr-xr-x" {
				t.Errorf("directory %s: mode %s, want drwxr-xr-x", p, e.mode)
			}
		case p != "usr/bin/virt-failover" && e.mode != "-rw-r--r--":
			t.Errorf("%s: mode %s, want -rw-r--r--", p, e.mode)
		}
		if strings.HasPrefix(p, "usr/share/man/") && !strings.HasSuffix(p, "/") && !strings.HasSuffix(p, ".gz") {
			t.Errorf("%s: a man page not compressed", p)
		}
	}

	dir := extract(t, deb)
	sample, err := os.ReadFile("../policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "etc/virt-failover/policy.toml")); !bytes.Equal(got, sample) {
		t.Error("etc/virt-failover/policy.toml is not install/policy.toml")
	}
	for _, f := range []string{"logrotate", "virt-failover-watch.service", "lintian-overrides"} {
		want, _ := os.ReadFile(f)
		dst := map[string]string{
			"logrotate":                   "etc/logrotate.d/virt-failover",
			"virt-failover-watch.service": "lib/systemd/system/virt-failover-watch.service",
			"lintian-overrides":           "usr/share/lintian/overrides/virt-failover",
		}[f]
		if got, _ := os.ReadFile(filepath.Join(dir, dst)); !bytes.Equal(got, want) {
			t.Errorf("%s is not install/deb/%s", dst, f)
		}
	}

	// The completion scripts are urfave/cli's, for this program.
	for p, want := range map[string]string{
		"usr/share/bash-completion/completions/virt-failover":    "complete -o bashdefault -o default -F __virt-failover_bash_autocomplete virt-failover",
		"usr/share/zsh/vendor-completions/_virt-failover":        "#compdef virt-failover",
		"usr/share/fish/vendor_completions.d/virt-failover.fish": "complete -c virt-failover -f -a '(__virt-failover_perform_completion)'",
	} {
		if b, _ := os.ReadFile(filepath.Join(dir, p)); !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s does not contain %q", p, want)
		}
	}

	// The copyright file names the license of every module linked into the binary.
	cr, _ := os.ReadFile(filepath.Join(dir, "usr/share/doc/virt-failover/copyright"))
	bin := filepath.Join(dir, "usr/bin/virt-failover")
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range bi.Deps {
		if !bytes.Contains(cr, []byte("\nFiles: "+m.Path+"/*\n")) {
			t.Errorf("copyright: no paragraph for %s", m.Path)
		}
	}
}

// The binary is the static, trimmed, version-stamped one "make build" makes.
func TestDebBinary(t *testing.T) {
	dir := extract(t, theDeb(t))
	bin := filepath.Join(dir, "usr/bin/virt-failover")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a program interpreter: it is not static")
		}
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	// (-trimpath leaves -ldflags out of the build information: --version shows the stamp.)
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings: CGO_ENABLED=%q -trimpath=%q; want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	out := run(t, nil, bin, "--version")
	ver := strings.TrimSpace(strings.TrimPrefix(out, "virt-failover version "))
	if ver == "" || ver == "devel" {
		t.Errorf("--version: %q: no version stamped", out)
	}
	// The package's version names the same commit (install/deb/version): its hash, or its tag.
	pkgVersion := strings.TrimSpace(run(t, nil, "dpkg-deb", "-f", os.Getenv("VF_DEB"), "Version"))
	core := strings.TrimSuffix(ver, "-dirty")
	want := strings.TrimPrefix(core, "v")
	if m := regexp.MustCompile(`(?:^|-g)([0-9a-f]{7,})$`).FindStringSubmatch(core); m != nil {
		want = m[1]
	}
	if !strings.Contains(pkgVersion, want) {
		t.Errorf("package version %s does not name the binary's %s", pkgVersion, ver)
	}
}

// Every visible command the packaged binary has (it lists them for shell completion) has its
// man page, and every page is of a command.
func TestDebManPages(t *testing.T) {
	deb := theDeb(t)
	dir := extract(t, deb)
	bin := filepath.Join(dir, "usr/bin/virt-failover")
	want := []string{"virt-failover.1.gz"}
	var walk func(path []string)
	walk = func(path []string) {
		out := run(t, nil, bin, append(path, "--generate-shell-completion")...)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			name, _, _ := strings.Cut(l, ":")
			if name == "" || name == "help" || strings.HasPrefix(name, "-") {
				continue
			}
			sub := append(path[:len(path):len(path)], name)
			want = append(want, "virt-failover-"+strings.Join(sub, "-")+".1.gz")
			walk(sub)
		}
	}
	walk(nil)
	ents, err := os.ReadDir(filepath.Join(dir, "usr/share/man/man1"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
		b, _ := os.ReadFile(filepath.Join(dir, "usr/share/man/man1", e.Name()))
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		roff, _ := io.ReadAll(zr)
		if !bytes.HasPrefix(roff, []byte(".TH ")) || !bytes.Contains(roff, []byte("\n.SH \"OPTIONS\"\n")) {
			t.Errorf("%s: not a man page with options:\n%s", e.Name(), roff)
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("man1 pages:\n got %v\nwant %v", got, want)
	}
}

func TestDebControl(t *testing.T) {
	deb := theDeb(t)
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Maintainer", "Section", "Recommends", "Description"} {
		fields[f] = strings.TrimSpace(run(t, nil, "dpkg-deb", "-f", deb, f))
	}
	if fields["Package"] != "virt-failover" || fields["Architecture"] != "amd64" || fields["Section"] != "admin" {
		t.Errorf("control fields: %v", fields)
	}
	if want := "virt-failover_" + fields["Version"] + "_amd64.deb"; filepath.Base(deb) != want {
		t.Errorf("file name %s, want %s", filepath.Base(deb), want)
	}
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*-1$`).MatchString(fields["Version"]) {
		t.Errorf("Version %q is not a Debian version with revision 1", fields["Version"])
	}
	if !strings.Contains(fields["Maintainer"], "<") || fields["Recommends"] != "libvirt-daemon-system" {
		t.Errorf("Maintainer %q, Recommends %q", fields["Maintainer"], fields["Recommends"])
	}

	ctl := t.TempDir()
	run(t, nil, "dpkg-deb", "-e", deb, ctl)
	conf, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
	got := strings.Fields(string(conf))
	sort.Strings(got)
	want := slices.Clone(wantConffiles)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("conffiles %v, want %v", got, want)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(ctl, s)
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("no %s: %v", s, err)
			continue
		}
		if st.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want 0755", s, st.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		want, _ := os.ReadFile(s)
		if !bytes.Equal(b, want) {
			t.Errorf("%s is not install/deb/%s", s, s)
		}
		if !bytes.HasPrefix(b, []byte("#!/bin/sh\n")) || !bytes.Contains(b, []byte("\nset -e\n")) {
			t.Errorf("%s: not a /bin/sh script with set -e", s)
		}
		run(t, nil, "sh", "-n", p)
	}
	if _, err := os.Stat(filepath.Join(ctl, "preinst")); err == nil {
		t.Error("a preinst: the package has none")
	}
}

// lintian, Debian's package checker, reports no error; its warnings are logged.
func TestDebLintian(t *testing.T) {
	deb := theDeb(t)
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Fatal("lintian is not installed: make deb-test installs it")
	}
	cmd := exec.Command("lintian", "--info", "--display-info", "--pedantic", deb)
	out, err := cmd.CombinedOutput()
	var errs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "E: "):
			errs = append(errs, l)
		case strings.HasPrefix(l, "W: "), strings.HasPrefix(l, "I: "), strings.HasPrefix(l, "P: "):
			t.Log(l)
		}
	}
	if len(errs) > 0 || err != nil {
		t.Errorf("lintian: %v\n%s", err, out)
	}
}

// systemd accepts the watch unit (its ExecStart must exist and be executable).
func TestDebUnitVerifies(t *testing.T) {
	dir := extract(t, theDeb(t))
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is not installed: make deb-test installs systemd")
	}
	// --man=no: the man page it names is in the tree, where man does not look; the tree has no
	// other units, so errors of the units it pulls in are not this one's.
	run(t, nil, "systemd-analyze", "verify", "--root="+dir, "--man=no", "--recursive-errors=no", "/lib/systemd/system/virt-failover-watch.service")
}

// dpkgRoot is an empty tree dpkg can install into (dpkg --root): its database, and libvirt's
// directories when withLibvirt (a libvirt >= 6.5 layout: hooks/qemu.d).
func dpkgRoot(t *testing.T, withLibvirt bool) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if withLibvirt {
		for _, d := range []string{"etc/libvirt/hooks/qemu.d", "run/libvirt/qemu"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// dpkg runs dpkg on root with the maintainer scripts run outside a chroot: they get the tree
// in DPKG_ROOT and must act only inside it.
func dpkg(t *testing.T, root string, env []string, args ...string) string {
	t.Helper()
	return run(t, env, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
}

// listing is every path under dir with its type, for comparing trees.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			out = append(out, p+" "+info.Mode().String())
		}
		return nil
	})
	return out
}

// The package installed by dpkg into a throwaway root: postinst links the hook into qemu.d and
// says so, and again changes nothing; prerm removes the hook; purge removes the conffiles and
// the log and keeps the claims ledger unless VIRT_FAILOVER_PURGE_STATE=yes.
func TestDebLifecycleInARoot(t *testing.T) {
	deb := theDeb(t)
	hostHooks := listing(t, "/etc/libvirt")

	for _, purgeState := range []bool{false, true} {
		root := dpkgRoot(t, true)
		out := dpkg(t, root, nil, "--install", deb)
		hook := filepath.Join(root, "etc/libvirt/hooks/qemu.d/virt-failover")
		bin := filepath.Join(root, "usr/bin/virt-failover")
		for _, want := range []string{
			"hook: " + hook + " -> " + bin + " (hooks/qemu.d exists)",
			"policy: " + filepath.Join(root, "etc/virt-failover/policy.toml") + " (kept; it validates)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("postinst did not say %q:\n%s", want, out)
			}
		}
		if target, err := os.Readlink(hook); err != nil || target != bin {
			t.Fatalf("hook link: %q, %v; want -> %s", target, err, bin)
		}
		// Configured again (as after an upgrade): nothing changes, and it says so.
		before := listing(t, root)
		again := run(t, []string{"DPKG_ROOT=" + root}, filepath.Join(root, "var/lib/dpkg/info/virt-failover.postinst"), "configure", "0")
		if !strings.Contains(again, "(already installed)") {
			t.Errorf("postinst run again did not say the hook is already installed:\n%s", again)
		}
		if after := listing(t, root); !slices.Equal(before, after) {
			t.Errorf("postinst run again changed the tree:\nbefore %v\nafter  %v", before, after)
		}

		// What the hook leaves behind in service: its log and the claims ledger.
		for _, f := range []string{"var/log/libvirt/virt-failover.log", "var/log/libvirt/virt-failover.log.1", "var/lib/virt-failover/claims.json"} {
			p := filepath.Join(root, f)
			os.MkdirAll(filepath.Dir(p), 0o750)
			if err := os.WriteFile(p, []byte("{}\n"), 0o640); err != nil {
				t.Fatal(err)
			}
		}

		out = dpkg(t, root, nil, "--remove", "virt-failover")
		if !strings.Contains(out, "removed the hook "+hook) {
			t.Errorf("prerm did not say it removed the hook:\n%s", out)
		}
		if _, err := os.Lstat(hook); err == nil {
			t.Error("the hook is still there after remove")
		}
		for _, f := range []string{"etc/virt-failover/policy.toml", "var/log/libvirt/virt-failover.log", "var/lib/virt-failover/claims.json"} {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("remove took %s: %v", f, err)
			}
		}
		if _, err := os.Stat(bin); err == nil {
			t.Error("the binary is still there after remove")
		}

		var env []string
		if purgeState {
			env = []string{"VIRT_FAILOVER_PURGE_STATE=yes"}
		}
		out = dpkg(t, root, env, "--purge", "virt-failover")
		for _, f := range []string{"etc/virt-failover/policy.toml", "etc/logrotate.d/virt-failover", "var/log/libvirt/virt-failover.log", "var/log/libvirt/virt-failover.log.1"} {
			if _, err := os.Stat(filepath.Join(root, f)); err == nil {
				t.Errorf("purge left %s", f)
			}
		}
		_, err := os.Stat(filepath.Join(root, "var/lib/virt-failover/claims.json"))
		switch {
		case purgeState && err == nil:
			t.Errorf("purge with VIRT_FAILOVER_PURGE_STATE=yes kept the claims ledger:\n%s", out)
		case !purgeState && err != nil:
			t.Errorf("purge removed the claims ledger: %v", err)
		case !purgeState && !strings.Contains(out, "VIRT_FAILOVER_PURGE_STATE=yes"):
			t.Errorf("purge did not say how to remove the kept state:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/libvirt/hooks/qemu.d")); err != nil {
			t.Errorf("purge took libvirt's hooks/qemu.d: %v", err)
		}
	}
	if after := listing(t, "/etc/libvirt"); !slices.Equal(hostHooks, after) {
		t.Errorf("the host's /etc/libvirt changed:\nbefore %v\nafter  %v", hostHooks, after)
	}
}

// Without libvirt, postinst installs no hook, says how to later, and the package is installed.
func TestDebWithoutLibvirt(t *testing.T) {
	deb := theDeb(t)
	root := dpkgRoot(t, false)
	out := dpkg(t, root, nil, "--install", deb)
	if !strings.Contains(out, "libvirt is not installed") || !strings.Contains(out, "virt-failover install --bin /usr/bin/virt-failover") {
		t.Errorf("postinst without libvirt:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/libvirt")); err == nil {
		t.Error("postinst made etc/libvirt")
	}
	status := run(t, nil, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Status}", "virt-failover")
	if status != "install ok installed" {
		t.Errorf("package status %q", status)
	}
	dpkg(t, root, nil, "--purge", "virt-failover")
}

// A hook of another program where ours would go is never replaced: postinst says the hook is
// not installed, and the package still is.
func TestDebKeepsAForeignHook(t *testing.T) {
	deb := theDeb(t)
	root := dpkgRoot(t, true)
	foreign := filepath.Join(root, "etc/libvirt/hooks/qemu.d/virt-failover")
	script := []byte("#!/bin/sh\nexit 0\n")
	if err := os.WriteFile(foreign, script, 0o755); err != nil {
		t.Fatal(err)
	}
	out := dpkg(t, root, nil, "--install", deb)
	if !strings.Contains(out, "the hook is NOT installed") {
		t.Errorf("postinst did not say the hook is not installed:\n%s", out)
	}
	if b, _ := os.ReadFile(foreign); !bytes.Equal(b, script) {
		t.Error("the foreign hook was changed")
	}
	out = dpkg(t, root, nil, "--purge", "virt-failover")
	if b, _ := os.ReadFile(foreign); !bytes.Equal(b, script) {
		t.Errorf("remove took the foreign hook:\n%s", out)
	}
}

// The packaged logrotate file rotates the hook's log without losing a line: the hook creates the
// next file itself, with its mode 0640.
func TestDebLogrotate(t *testing.T) {
	deb := theDeb(t)
	if _, err := exec.LookPath("logrotate"); err != nil {
		t.Fatal("logrotate is not installed: make deb-test installs it")
	}
	dir := extract(t, deb)
	root := t.TempDir()
	os.Chmod(root, 0o755)
	if err := os.MkdirAll(filepath.Join(root, "etc/virt-failover"), 0o755); err != nil {
		t.Fatal(err)
	}
	pol, _ := os.ReadFile(filepath.Join(dir, "etc/virt-failover/policy.toml"))
	os.WriteFile(filepath.Join(root, "etc/virt-failover/policy.toml"), pol, 0o644)
	log := filepath.Join(root, "var/log/libvirt/virt-failover.log")
	conf, _ := os.ReadFile(filepath.Join(dir, "etc/logrotate.d/virt-failover"))
	conf = bytes.ReplaceAll(conf, []byte("/var/log/libvirt/virt-failover.log"), []byte(log))
	confFile := filepath.Join(root, "logrotate.conf")
	os.WriteFile(confFile, conf, 0o644)

	hook := func(domain string) {
		cmd := exec.Command(filepath.Join(dir, "usr/bin/virt-failover"), "hook", "--root", root, "qemu", domain, "stopped", "end", "-")
		cmd.Stdin = strings.NewReader("<domain type='kvm'><name>" + domain + "</name></domain>")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hook: %v\n%s", err, out)
		}
	}
	rotate := func() {
		run(t, nil, "logrotate", "--force", "--state", filepath.Join(root, "logrotate.state"), confFile)
	}
	lines := func(p string) int {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte("\n"))
	}

	hook("one")
	hook("two")
	rotate()
	if _, err := os.Stat(log); err == nil {
		t.Fatal("logrotate made a new log: the hook creates it (nocreate)")
	}
	if n := lines(log + ".1"); n != 2 {
		t.Errorf("%s.1 has %d lines, want 2", log, n)
	}
	hook("three")
	st, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 || lines(log) != 1 {
		t.Errorf("the log after rotation: mode %v, %d lines; want 0640 and 1", st.Mode().Perm(), lines(log))
	}
	rotate()
	if _, err := os.Stat(log + ".2.gz"); err != nil {
		t.Errorf("the second rotation did not compress the first: %v", err)
	}
	if n := lines(log + ".1"); n != 1 {
		t.Errorf("%s.1 has %d lines, want 1 (delaycompress)", log, n)
	}
}

// install/deb/version turns git describe into a Debian version that sorts as the commits do.
func TestVersionScript(t *testing.T) {
	const epoch = "1796366340" // 2026-12-04 06:39:00 UTC
	for describe, want := range map[string]string{
		"v1.2.3":                "1.2.3",
		"v1.2.3-4-gabc1234":     "1.2.3+git4.abc1234",
		"v1.2.3-rc1":            "1.2.3~rc1",
		"v1.2.3-rc1-2-gdeadbee": "1.2.3~rc1+git2.deadbee",
		"v1.2.3-dirty":          "1.2.3+dirty",
		"abc1234":               "0~git20261204063900.abc1234",
		"abc1234-dirty":         "0~git20261204063900.abc1234+dirty",
	} {
		if got := strings.TrimSpace(run(t, nil, "sh", "version", describe, epoch)); got != want {
			t.Errorf("version %s: %q, want %q", describe, got, want)
		}
	}
	// Versions sort as the builds they name.
	order := []string{"0~git20261204063900.abc1234", "0~git20261205000000.0123abc", "1.2.3~rc1", "1.2.3~rc1+git2.deadbee", "1.2.3", "1.2.3+git4.abc1234", "1.2.4"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg: %s is not before %s", order[i-1], order[i])
		}
	}
}
