package hostpaths

import (
	"slices"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/policy"
)

func TestUnder(t *testing.T) {
	for _, tc := range []struct{ root, path, want string }{
		{"", "/var/lib/virt-failover", "/var/lib/virt-failover"},
		{"/", "/var/lib/virt-failover", "/var/lib/virt-failover"},
		{"/t", "/var/lib/virt-failover", "/t/var/lib/virt-failover"},
		{"/t", "/t/state", "/t/state"},
		{"/t", "/tt/state", "/t/tt/state"},
		{"/t", "/t/../etc", "/t/etc"},
		{"/t", "rel/path", "rel/path"},
		{"/t", "", ""},
	} {
		if got := (Paths{Root: tc.root}).Under(tc.path); got != tc.want {
			t.Errorf("Paths{%q}.Under(%q) = %q, want %q", tc.root, tc.path, got, tc.want)
		}
	}
}

func TestMapPolicy(t *testing.T) {
	pol := policy.Default()
	Paths{Root: "/t"}.MapPolicy(pol)
	if pol.Log.File != "/t/var/log/libvirt/virt-failover.log" || pol.State.Dir != "/t/var/lib/virt-failover" || pol.Host.SysfsRoot != "/t/sys" {
		t.Errorf("mapped: log %s, state %s, sysfs %s", pol.Log.File, pol.State.Dir, pol.Host.SysfsRoot)
	}
	pol = policy.Default()
	Paths{}.MapPolicy(pol)
	if def := policy.Default(); pol.Log.File != def.Log.File || pol.State.Dir != def.State.Dir || pol.Host.SysfsRoot != def.Host.SysfsRoot {
		t.Errorf("the system's paths changed: %+v", pol)
	}
}

// Every path a command takes on the host is the tree's under a root, the system's without one.
func TestPathsOfTheHost(t *testing.T) {
	for _, root := range []string{"", "/t"} {
		p := Paths{Root: root}
		got := []string{p.PolicyFile(), p.StatusDir(), p.HooksDir(), p.LibvirtEtc()}
		for _, f := range p.DaemonPIDFiles() {
			got = append(got, f.Daemon+"="+f.Path)
		}
		want := []string{"/etc/virt-failover/policy.toml", "/run/libvirt/qemu", "/etc/libvirt/hooks", "/etc/libvirt",
			"libvirtd=/run/libvirtd.pid", "libvirtd=/run/libvirt/libvirtd.pid",
			"virtqemud=/run/virtqemud.pid", "virtqemud=/run/libvirt/virtqemud.pid"}
		for i := range want {
			if root != "" {
				d, f, _ := strings.Cut(want[i], "=/")
				if f == "" {
					want[i] = root + want[i]
				} else {
					want[i] = d + "=" + root + "/" + f
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("Paths{%q}:\n got %q\nwant %q", root, got, want)
		}
	}
}
