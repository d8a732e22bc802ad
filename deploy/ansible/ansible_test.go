// Package ansible holds the Ansible role virt_failover (roles/), which installs the package and a
// policy per host, the playbooks that use it (site.yml, rolling-upgrade.yml) and their tests: the
// playbooks' syntax, and the role applied for real to a scratch host when VF_DEB names the package
// ("make deb-test" sets it).
package ansible

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// playbook runs ansible-playbook here with args; it returns the combined output and the error.
// A missing ansible-playbook fails the test: the Makefile installs it.
func playbook(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Fatal("ansible-playbook is not installed: make deps installs Debian's ansible")
	}
	cmd := exec.Command("ansible-playbook", args...)
	cmd.Env = append(os.Environ(), append([]string{"ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0"}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPlaybooksSyntax(t *testing.T) {
	out, err := playbook(t, nil, "--syntax-check", "-i", "inventory.example.yml", "site.yml", "rolling-upgrade.yml")
	if err != nil {
		t.Fatalf("ansible-playbook --syntax-check: %v\n%s", err, out)
	}
}

// The rolling upgrade takes one host at a time, and on each drains, upgrades and uncordons in
// that order.
func TestRollingUpgradeOrder(t *testing.T) {
	b, err := os.ReadFile("rolling-upgrade.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^  serial: 1$`).Match(b) {
		t.Error("rolling-upgrade.yml: no serial: 1")
	}
	out, err := playbook(t, nil, "--list-tasks", "-i", "inventory.example.yml", "rolling-upgrade.yml")
	if err != nil {
		t.Fatalf("ansible-playbook --list-tasks: %v\n%s", err, out)
	}
	last := -1
	for _, task := range []string{"Drain the host", "Upgrade the package and the policy", "Uncordon the host"} {
		i := strings.Index(out, task)
		if i <= last {
			t.Errorf("task %q is missing or out of order:\n%s", task, out)
		}
		last = i
	}
}

var recap = regexp.MustCompile(`(?m)^scratch\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)`)

// scratchHost is a host made of overlays over the machine's /usr, /etc and /var, with an empty
// /run (no daemon to signal): the role runs there through a local connection, as root, inside
// a private mount namespace, and what it writes lands in Dir/<fs>/upper only.
type scratchHost struct {
	t   *testing.T
	dir string
	inv string
}

func newScratchHost(t *testing.T) *scratchHost {
	t.Helper()
	dir := t.TempDir()
	for _, fs := range []string{"usr", "etc", "var", "tmp"} {
		for _, d := range []string{"upper", "work"} {
			if err := os.MkdirAll(filepath.Join(dir, fs, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	inv := filepath.Join(dir, "inventory.yml")
	// The handler counts its runs in a file instead of signalling a libvirtd.
	err := os.WriteFile(inv, []byte(`libvirt_hosts:
  hosts:
    scratch:
      ansible_connection: local
      ansible_python_interpreter: /usr/bin/python3
      virt_failover_libvirt_reload: "sh -c 'echo reload >> `+filepath.Join(dir, "reloads")+`'"
      virt_failover_default_pool: fabric
      virt_failover_pools:
        fabric: {networks: [fabric-a, fabric-b]}
      virt_failover_rewrite_networks: {lan-a: lan-b}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return &scratchHost{t: t, dir: dir, inv: inv}
}

// play runs site.yml on the scratch host with extra -e args; it returns the output, the changed
// count of the recap and whether the play failed.
func (h *scratchHost) play(deb string, extra ...string) (out string, changed string, failed bool) {
	h.t.Helper()
	mounts := ""
	for _, fs := range []string{"usr", "etc", "var"} {
		mounts += "mount -t overlay vf-" + fs + " -o lowerdir=/" + fs + ",upperdir=" + filepath.Join(h.dir, fs, "upper") +
			",workdir=" + filepath.Join(h.dir, fs, "work") + " /" + fs + "\n"
	}
	script := "set -e\n" + mounts + `mount -t tmpfs vf-run /run
mkdir -p /etc/libvirt/hooks/qemu.d
exec ansible-playbook "$@"
`
	args := append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
		"-i", h.inv, "site.yml", "-e", "virt_failover_deb=" + deb}, extra...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(h.dir, "tmp"), "ANSIBLE_REMOTE_TEMP="+filepath.Join(h.dir, "tmp"))
	b, err := cmd.CombinedOutput()
	out = string(b)
	m := recap.FindStringSubmatch(out)
	if m == nil {
		h.t.Fatalf("ansible-playbook: no recap for the scratch host (%v):\n%s", err, out)
	}
	failed = err != nil || m[2] != "0"
	return out, m[1], failed
}

// upper is the path of a file the role wrote in the scratch host's overlay fs (like "etc").
func (h *scratchHost) upper(fs, path string) string { return filepath.Join(h.dir, fs, "upper", path) }

func (h *scratchHost) reloads() int {
	b, err := os.ReadFile(filepath.Join(h.dir, "reloads"))
	if err != nil && !os.IsNotExist(err) {
		h.t.Fatal(err)
	}
	return strings.Count(string(b), "reload\n")
}

// The role applied for real to a scratch host: apt installs the package (its postinst links the
// hook), the policy is templated from the inventory and checked, and the handler tells libvirtd
// once. Run again, nothing changes and the handler stays quiet. A bad inventory value is refused
// by the check and the policy in place stays.
func TestDebRoleOnAScratchHost(t *testing.T) {
	deb := os.Getenv("VF_DEB")
	if deb == "" {
		t.Skip("VF_DEB is not set: make deb-test builds the package and runs this test on it")
	}
	if os.Geteuid() != 0 {
		t.Skip("the role runs as root in a private mount namespace")
	}
	if _, err := os.Lstat("/usr/bin/virt-failover"); err == nil {
		t.Skip("virt-failover is installed on this machine: the scratch host would not start empty")
	}
	h := newScratchHost(t)

	out, changed, failed := h.play(deb)
	if failed {
		t.Fatalf("first run failed:\n%s", out)
	}
	t.Logf("first run: changed=%s\n%s", changed, out)
	for _, want := range []string{
		"hook: /etc/libvirt/hooks/qemu.d/virt-failover -> /usr/bin/virt-failover (hooks/qemu.d exists)",
		"RUNNING HANDLER [virt_failover : Tell libvirtd to read its hooks again]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first run did not say %q", want)
		}
	}
	if n := h.reloads(); n != 1 {
		t.Errorf("the handler ran %d times on the first install, want 1", n)
	}
	if target, err := os.Readlink(h.upper("etc", "libvirt/hooks/qemu.d/virt-failover")); err != nil || target != "/usr/bin/virt-failover" {
		t.Errorf("hook: %q, %v", target, err)
	}
	for _, f := range []string{h.upper("usr", "bin/virt-failover"), h.upper("var", "lib/dpkg/info/virt-failover.list")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the package is not in the scratch host: %v", err)
		}
	}
	policyPath := h.upper("etc", "virt-failover/policy.toml")
	policy, err := os.ReadFile(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"default_pool = \"fabric\"\n", "[pools.\"fabric\"]\nnetworks = [\"fabric-a\", \"fabric-b\"]\n", "\"lan-a\" = \"lan-b\"\n"} {
		if !bytes.Contains(policy, []byte(want)) {
			t.Errorf("the policy lacks %q:\n%s", want, policy)
		}
	}

	out, changed, failed = h.play(deb)
	if failed || changed != "0" {
		t.Errorf("second run: changed=%s failed=%v, want changed=0:\n%s", changed, failed, out)
	}
	if n := h.reloads(); n != 1 {
		t.Errorf("the handler ran again on the second run (%d runs in all)", n)
	}

	out, _, failed = h.play(deb, "-e", "virt_failover_accept_incoming=maybe")
	if !failed || !strings.Contains(out, "failed to validate") || !strings.Contains(out, "accept_incoming") {
		t.Errorf("a policy with accept_incoming = \"maybe\" was not refused by the check:\n%s", out)
	}
	if after, err := os.ReadFile(policyPath); err != nil || !bytes.Equal(after, policy) {
		t.Errorf("the refused policy replaced the one in place (%v):\n%s", err, after)
	}
	if _, err := os.Lstat("/usr/bin/virt-failover"); err == nil {
		t.Error("the role installed into the machine's /usr")
	}
}
