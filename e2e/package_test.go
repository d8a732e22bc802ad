package e2e

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
)

// The hook the package links on B, and the binary it runs, inside B's namespaces.
const (
	packagedHook = "/etc/libvirt/hooks/qemu.d/virt-failover"
	packagedBin  = "/usr/bin/virt-failover"
)

// What Debian policy keeps of the package: its conffiles after a remove, and after a purge the
// state directory postrm deliberately keeps (the claims ledger of the running guests).
var (
	debConffiles = []string{"/etc/logrotate.d/virt-failover", "/etc/virt-failover/policy.toml"}
	debKeptState = "/var/lib/virt-failover"
)

// checkPackagedHook: dpkg installed the package on B, and its postinst linked the hook into
// hooks/qemu.d: B's hook is the package's, and no copied one.
func (s *suite) checkPackagedHook(t *testing.T) {
	t.Helper()
	b := s.pair.B
	target, err := b.NS(s.ctx, "readlink", packagedHook)
	if err != nil || strings.TrimSpace(target) != packagedBin {
		t.Fatalf("b: %s -> %q (%v), want -> %s", packagedHook, strings.TrimSpace(target), err, packagedBin)
	}
	if got, err := b.Existing(s.ctx, []string{"/etc/libvirt/hooks/qemu"}); err != nil || len(got) != 0 {
		t.Fatalf("b: a hook besides the package's: %v (%v)", got, err)
	}
	status, err := b.NS(s.ctx, "dpkg-query", "-W", "-f=${Status} ${Version}", "virt-failover")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("b: virt-failover %s in B's dpkg database; hook %s -> %s", status, packagedHook, packagedBin)
}

// debPaths lists the files and links of the package (not its directories), as paths inside a host.
func debPaths(t *testing.T, deb string) []string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -c %s: %v", deb, err)
	}
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || strings.HasSuffix(f[5], "/") {
			continue
		}
		paths = append(paths, strings.TrimPrefix(f[5], "."))
	}
	return paths
}

// testPackageRemoval removes, then purges, the package on B while the guest runs there, after the
// migrations went through its hook. After each step libvirtd answers and the guest keeps running
// with its primary; remove leaves only the conffiles, purge only the kept state directory.
func (s *suite) testPackageRemoval(t *testing.T) {
	if s.deb == "" {
		t.Skip("B runs the copied stand-in hook, not a package")
	}
	b := s.pair.B
	// The guest runs on B (one more migration through the packaged hook when it is on A).
	s.scenario(t, func(ctx context.Context, c *check) error {
		if s.on == b {
			return nil
		}
		return s.migrate(ctx, c, expect{decision: "pass", network: "lan"})
	})
	if t.Failed() {
		return
	}
	entries, err := b.HookLog()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e harness.HookEntry) bool { return e.Call() == "migrate begin" && e.Decision == "pass" }) {
		t.Errorf("b: the packaged hook logged no passed migrate begin")
	}
	// libvirtd ran the package's hook, by the path postinst linked.
	daemonLog, err := os.ReadFile(b.DaemonLogPath())
	if err != nil {
		t.Fatal(err)
	}
	calling := "Calling hook " + packagedHook + " id=" + s.guest.Name + " op=migrate subop=begin"
	if n := strings.Count(string(daemonLog), calling); n == 0 {
		t.Errorf("b: libvirtd's log never says %q", calling)
	} else {
		t.Logf("b: libvirtd ran %s at migrate begin %d times", packagedHook, n)
	}
	ours := append(debPaths(t, s.deb), packagedHook, "/var/log/libvirt/virt-failover.log")
	running := func(step string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		defer cancel()
		if out, err := b.Virsh(ctx, "list", "--name"); err != nil || !slices.Contains(strings.Fields(out), s.guest.Name) {
			t.Errorf("b after %s: virsh list: %q, %v; want %s running", step, out, err, s.guest.Name)
		}
		if hb, err := s.serial.WaitHeartbeat(ctx, s.serial.Len(), "heartbeat after "+step, harness.Heartbeat.PrimaryEnslaved); err != nil {
			t.Errorf("b after %s: %v", step, err)
		} else {
			t.Logf("b after %s: libvirtd answers, guest %s: %s", step, s.guest.Name, hb.Summary())
		}
	}
	left := func(step string, want []string) {
		t.Helper()
		got, err := b.Existing(s.ctx, ours)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("b after %s: of the package's files these are left: %v; want %v", step, got, want)
		}
	}

	out, err := b.Dpkg(s.ctx, "--remove", "virt-failover")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("b: dpkg --remove:\n%s", out)
	if !strings.Contains(out, "removed the hook "+packagedHook) {
		t.Errorf("b: prerm did not say it removed the hook:\n%s", out)
	}
	running("remove")
	left("remove", append(debConffiles, "/var/log/libvirt/virt-failover.log"))

	s.purgedLog, _ = b.HookLog()
	state, err := b.NS(s.ctx, "ls", "-A", debKeptState)
	if err != nil {
		t.Fatal(err)
	}
	out, err = b.Dpkg(s.ctx, "--purge", "virt-failover")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("b: dpkg --purge:\n%s", out)
	if !strings.Contains(out, "kept "+debKeptState) {
		t.Errorf("b: postrm did not say it kept %s:\n%s", debKeptState, out)
	}
	running("purge")
	left("purge", nil)
	if got, err := b.NS(s.ctx, "ls", "-A", debKeptState); err != nil || got != state {
		t.Errorf("b after purge: %s holds %q (%v); before it held %q", debKeptState, got, err, state)
	}
	if got, err := b.Existing(s.ctx, []string{"/var/lib/dpkg/info/virt-failover.list"}); err != nil || len(got) != 0 {
		t.Errorf("b after purge: dpkg still records the package: %v (%v)", got, err)
	}
}
