package policy_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/virt-failover/virt-failover/internal/sysfs"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

var hostA = sysfs.FS{Root: "../testdata/sysfs/host-a"}

func mustParse(t *testing.T, body string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("policy.toml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolvePools(t *testing.T) {
	p := mustParse(t, `
[pools.fabric]
pf = ["enp3s0f0", "enp9s0"]
addresses = ["0000:04:00.2", "0000:03:10.2", "0000:04:00.7"]
[pools.lan]
networks = ["fabric-b1", "br-fabric"]
[pools.mlx]
pf = ["enp4s0f0np0"]
`)
	ps := policy.ResolvePools(p, hostA)
	var got []string
	for _, name := range ps.Names {
		for _, r := range ps.ByName[name].Resources {
			got = append(got, strings.TrimSpace(name+" "+string(r.Kind)+" "+r.Name+" "+r.PF+" "+ps.DriverOf(r)))
		}
	}
	want := []string{
		"fabric vf 0000:03:10.0 enp3s0f0 vfio-pci",
		"fabric vf 0000:03:10.2 enp3s0f0 ixgbevf",
		"fabric vf 0000:03:10.4 enp3s0f0 ixgbevf",
		"fabric vf 0000:03:10.6 enp3s0f0 ixgbevf",
		"fabric vf 0000:04:00.2",
		"lan network fabric-b1",
		"lan network br-fabric",
		"mlx vf 0000:04:00.3 enp4s0f0np0",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("resources (-want +got):\n%s", d)
	}
	var problems []string
	for _, pr := range ps.Problems {
		problems = append(problems, pr.String())
	}
	wantProblems := []string{
		"[pools.fabric] pf: enp9s0: no network interface enp9s0 (../testdata/sysfs/host-a/class/net/enp9s0 does not exist)",
		"[pools.fabric] addresses: 0000:04:00.7: no such PCI device on this host (no bus/pci/devices/0000:04:00.7 in sysfs)",
		"[pools.fabric] addresses: 0000:03:10.2: already in pool 'fabric' (VF 1 of enp3s0f0); a resource belongs to one pool",
		"[pools.mlx] pf: 0000:04:00.2: already in pool 'fabric' (an address entry); a resource belongs to one pool",
	}
	if d := cmp.Diff(wantProblems, problems); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if r, ok := ps.Lookup(policy.KindVF, "0000:03:10.4"); !ok || r.Pool != "fabric" || r.Index != 2 {
		t.Errorf("Lookup: %+v %t", r, ok)
	}
	if n := ps.ByName["lan"].Noun(); n != "network" {
		t.Errorf("noun %q", n)
	}
}

func TestPoolDevices(t *testing.T) {
	p := mustParse(t, `
[host]
default_pool = "fabric"
[pools.fabric]
pf = ["enp3s0f0"]
[pools.other]
networks = ["other-net"]
`)
	doc, err := xmlxform.Parse([]byte(`<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web-01</name>
  <metadata>
    <vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0'>
      <vfo:pair kind='net' standby='ua-sby1' primary='ua-emu' pool='other'/>
    </vfo:failover>
  </metadata>
  <devices>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='lan'/><model type='virtio'/><alias name='ua-sby0'/><teaming type='persistent'/></interface>
    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x81' slot='0x10' function='0x1'/></source><alias name='ua-pri0'/><teaming type='transient' persistent='ua-sby0'/></hostdev>
    <interface type='network'><mac address='52:54:00:00:00:02'/><source network='lan'/><model type='virtio'/><alias name='ua-sby1'/><teaming type='persistent'/></interface>
    <interface type='network'><mac address='52:54:00:00:00:02'/><source network='a-net'/><model type='e1000e'/><alias name='ua-emu'/></interface>
    <interface type='network'><mac address='52:54:00:00:00:03'/><source network='hostdev-net'/><alias name='ua-pri2'/><teaming type='transient' persistent='ua-sby0'/></interface>
    <hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x03' slot='0x10' function='0x4'/></source></hostdev>
    <hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x06' slot='0x00' function='0x0'/></source></hostdev>
  </devices>
  <qemu:override><qemu:device alias='ua-emu'><qemu:frontend><qemu:property name='failover_pair_id' type='string' value='ua-sby1'/></qemu:frontend></qemu:device></qemu:override>
</domain>`))
	if err != nil {
		t.Fatal(err)
	}
	d := policy.NewDomain(doc)
	if !policy.WantsPools(d, p) {
		t.Fatal("WantsPools false")
	}
	devs, notes := policy.PoolDevices(d, p, policy.ResolvePools(p, hostA))
	var got []string
	for _, dev := range devs {
		got = append(got, strings.Join([]string{dev.Label, string(dev.Kind), dev.Current, dev.Pool,
			map[bool]string{true: "primary", false: "holder"}[dev.Primary], map[bool]string{true: "plain " + dev.MAC, false: ""}[dev.Plain]}, "|"))
	}
	want := []string{
		"hostdev ua-pri0|vf|0000:81:10.1|fabric|primary|plain 52:54:00:00:00:01",
		"interface ua-emu|network|a-net|other|primary|",
		"/domain/devices/hostdev[2]|vf|0000:03:10.4|fabric|holder|",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("devices (-want +got):\n%s", d)
	}
	if len(notes) != 1 || notes[0] != "interface ua-pri2: on a hostdev network; libvirt picks its VF" {
		t.Errorf("notes %q", notes)
	}
	// Remap keeps the guest side: only the host address attributes change.
	tr := xmlxform.NewTransform(doc)
	line, err := devs[0].Remap(tr, "0000:03:10.2")
	if err != nil || line != "hostdev ua-pri0: source address 0000:81:10.1 -> 0000:03:10.2 (pool fabric)" {
		t.Fatalf("%q %v", line, err)
	}
	out, _ := tr.Bytes()
	if !strings.Contains(string(out), "<address domain='0x0000' bus='0x03' slot='0x10' function='0x2'/>") {
		t.Errorf("remapped: %s", out)
	}
}

func TestCounts(t *testing.T) {
	for c, want := range map[policy.Counts]string{
		{Total: 8, Claimed: 8}:                       "8 of 8 taken: 8 claimed",
		{Total: 4, Claimed: 1, Pending: 1, InUse: 2}: "4 of 4 taken: 1 claimed, 1 pending, 2 in use",
		{}: "the pool has no resources on this host",
	} {
		if got := c.String(); got != want {
			t.Errorf("%+v: %q, want %q", c, got, want)
		}
	}
}

// A pair without virt-failover's record and without aliases on its primaries (libvirt's own test
// domain): the primaries draw from default_pool, and claims call each by its standby, which is
// the same in the inactive, live and migratable forms (libvirt names the primary hostdev0 only
// while it runs).
func TestPoolDevicesOfAnUnrecordedPair(t *testing.T) {
	p := mustParse(t, "[host]\ndefault_pool = \"fabric\"\n[pools.fabric]\npf = [\"enp3s0f0\"]\n")
	src, err := os.ReadFile("../testdata/lint/libvirt/9.0.0/qemuxml2argvdata/net-virtio-teaming-hostdev.xml")
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"inactive", "live"} {
		if form == "live" {
			src = bytes.Replace(src, []byte("<teaming type='transient' persistent='ua-backup0'/>"),
				[]byte("<alias name='hostdev0'/><teaming type='transient' persistent='ua-backup0'/>"), 1)
		}
		doc, err := xmlxform.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		d := policy.NewDomain(doc)
		if !policy.WantsPools(d, p) {
			t.Fatalf("%s: WantsPools false", form)
		}
		devs, _ := policy.PoolDevices(d, p, policy.ResolvePools(p, hostA))
		var got []string
		for _, dev := range devs {
			got = append(got, strings.Join([]string{dev.Alias, dev.Label, dev.Pool, dev.MAC}, "|"))
		}
		first := "primary of ua-backup0|hostdev (primary of ua-backup0)|fabric|00:11:22:33:44:55"
		if form == "live" {
			first = "primary of ua-backup0|hostdev hostdev0|fabric|00:11:22:33:44:55"
		}
		want := []string{first, "primary of ua-backup1|hostdev (primary of ua-backup1)|fabric|66:44:33:22:11:00"}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", form, d)
		}
	}
}
