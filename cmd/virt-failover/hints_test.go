package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/internal/shell/shelltest"
)

func checkNothingRan(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("a pasted hint ran the command inside a name")
	}
}

// The hint of claims release for a running domain names the command that forces it, the domain
// quoted for the shell.
func TestClaimsReleaseHintQuotesTheDomain(t *testing.T) {
	root := t.TempDir()
	status := filepath.Join(root, "run/libvirt/qemu")
	if err := os.MkdirAll(status, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range shelltest.HostileNames {
		doc := "<domstatus state='running'><domain type='kvm'><name>" + strings.ReplaceAll(name, "'", "&apos;") +
			"</name><uuid>5f1c2c8e-2b0a-4f4e-9a57-1d0e6f0c9a1" + string(rune('0'+i)) + "</uuid></domain></domstatus>\n"
		if err := os.WriteFile(filepath.Join(status, "d"+string(rune('0'+i))+".xml"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := runCLI(context.Background(), []string{programName, "claims", "release", "--root", root, name}, strings.NewReader(""), &stdout, &stderr)
		m := regexp.MustCompile(`(?m)^hint: .*: (virt-failover claims release .*)$`).FindStringSubmatch(stderr.String())
		if code != exitFailed || m == nil {
			t.Fatalf("%q: exit %d, stderr:\n%s", name, code, stderr.String())
		}
		got := shelltest.Paste(t, root, m[1], programName)
		if want := []string{"claims", "release", "--root", root, "--force", name}; strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%q: the hint's command %s runs with %q, want %q", name, m[1], got, want)
		}
	}
	checkNothingRan(t, root)
}

// pair --check's hint names the file to pair -w, quoted for the shell.
func TestPairCheckHintQuotesTheFile(t *testing.T) {
	src, err := os.ReadFile("../../testdata/pair/interface-hostdev/in.xml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range shelltest.HostileNames {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, src, 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := runCLI(context.Background(), []string{programName, "pair", "--policy", "/dev/null", "--check", f}, strings.NewReader(""), &stdout, &stderr)
		m := regexp.MustCompile(`(?m)^hint: "(virt-failover pair -w .*)" makes the change`).FindStringSubmatch(stderr.String())
		if code != exitFailed || m == nil {
			t.Fatalf("%q: exit %d, stderr:\n%s", name, code, stderr.String())
		}
		if got, want := shelltest.Paste(t, dir, m[1], programName), []string{"pair", "-w", f}; strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%q: the hint's command %s runs with %q, want %q", name, m[1], got, want)
		}
	}
	checkNothingRan(t, dir)
}

// install --root on a tree without libvirt's configuration suggests the mkdir that makes one, the
// tree's path quoted for the shell.
func TestInstallHintQuotesTheTree(t *testing.T) {
	dir := t.TempDir()
	for _, name := range shelltest.HostileNames {
		root := filepath.Join(dir, name)
		var stdout, stderr bytes.Buffer
		code := runCLI(context.Background(), []string{programName, "install", "--root", root}, strings.NewReader(""), &stdout, &stderr)
		m := regexp.MustCompile(`(?m)^hint: .*for a test tree: (mkdir -p .*) \(libvirt >= 6.5 layout\)`).FindStringSubmatch(stderr.String())
		if code != exitFailed || m == nil {
			t.Fatalf("%q: exit %d, stderr:\n%s", name, code, stderr.String())
		}
		if got, want := shelltest.Paste(t, dir, m[1], "mkdir"), []string{"-p", filepath.Join(root, "etc/libvirt/hooks/qemu.d")}; strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%q: the hint's command %s runs with %q, want %q", name, m[1], got, want)
		}
	}
	checkNothingRan(t, dir)
}

// policy check, run as root as the hook is, refuses a policy root does not own and names the
// command that fixes it, the path quoted for the shell.
func TestPolicyCheckRefusesAPolicyRootDoesNotOwn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: chown needs root, and the owner is checked only when running as root")
	}
	dir := t.TempDir()
	for _, name := range shelltest.HostileNames {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("[host]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := runCLI(context.Background(), []string{programName, "policy", "check", p}, strings.NewReader(""), &stdout, &stderr)
		m := regexp.MustCompile(`(?m)^hint: (chown root: .*)$`).FindStringSubmatch(stderr.String())
		if code != exitFailed || m == nil || !strings.Contains(stderr.String(), p+": owned by uid 65534, not root") {
			t.Fatalf("%q: exit %d, stderr:\n%s", name, code, stderr.String())
		}
		if got, want := shelltest.Paste(t, dir, m[1], "chown"), []string{"root:", p}; strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%q: the hint's command %s runs with %q, want %q", name, m[1], got, want)
		}
	}
	checkNothingRan(t, dir)
}
