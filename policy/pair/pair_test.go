package pair

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/internal/golden"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// dom wraps devices in a small domain.
func dom(devices string) []byte {
	return []byte("<domain type='kvm'>\n  <name>t</name>\n  <uuid>00000000-0000-4000-8000-000000000001</uuid>\n  <devices>\n" +
		devices + "  </devices>\n</domain>\n")
}

// withMetadata wraps devices in a small domain with virt-failover metadata records.
func withMetadata(devices, records string) []byte {
	return []byte("<domain type='kvm'>\n  <name>t</name>\n  <uuid>00000000-0000-4000-8000-000000000001</uuid>\n" +
		"  <metadata>\n    <vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0'>\n" + records +
		"    </vfo:failover>\n  </metadata>\n  <devices>\n" + devices + "  </devices>\n</domain>\n")
}

const bondRecord = "      <vfo:pair kind='bond' standby='ua-s' primary='ua-p' mac='52:54:00:00:00:01'/>\n"

const vf = `    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:00:00:01'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x03' slot='0x02' function='0x1'/>
      </source>
    </interface>
`

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		opt  Options
		want string // in the message
		hint string // in the hint
	}{
		{"not-a-domain", []byte("<network><name>x</name></network>"), Options{}, "not a domain definition: the root element is <network>", "virsh dumpxml"},
		{"both-standby-sources", dom(vf), Options{StandbyNetwork: "a", StandbyBridge: "b"}, "not both", "--standby-network"},
		{"nic-not-an-address", dom(vf), Options{NICs: []string{"eth0"}}, `--nic "eth0" is not a PCI address`, "DDDD:BB:SS.F"},
		{"nic-not-in-domain", dom(vf), Options{NICs: []string{"0000:04:00.0"}}, "--nic 0000:04:00.0: the domain has no PCI <hostdev>", "lspci -D"},
		{"storage-relative-lun", dom(vf), Options{Storage: []policy.Storage{{Device: "0000:81:00.0", LUN: "disk/by-id/x"}}}, "absolute host path", "/dev/disk/by-id/"},
		{"storage-not-in-domain", dom(vf), Options{Storage: []policy.Storage{{Device: "0000:81:00.0", LUN: "/dev/sdb"}}}, "--storage 0000:81:00.0: the domain has no PCI <hostdev>", ""},
		{"duplicate-alias", dom(strings.Replace(vf, "</source>", "</source>\n      <alias name='ua-x'/>", 1) +
			"    <disk type='file'><alias name='ua-x'/></disk>\n"), Options{}, "alias 'ua-x' is used by 2 devices", "its own alias"},
		{"macs-differ", dom(strings.Replace(vf, "</source>", "</source>\n      <teaming type='transient' persistent='ua-s'/>", 1) +
			"    <interface type='network'><mac address='52:54:00:00:00:09'/><model type='virtio'/><alias name='ua-s'/></interface>\n"),
			Options{}, "has MAC 52:54:00:00:00:01, its standby 'ua-s' has 52:54:00:00:00:09", "same <mac address>"},
		{"standby-not-virtio", dom(strings.Replace(vf, "</source>", "</source>\n      <teaming type='transient' persistent='ua-s'/>", 1) +
			"    <interface type='network'><model type='e1000'/><alias name='ua-s'/></interface>\n"),
			Options{}, "the standby 'ua-s' has <model type='e1000'/>", "virtio"},
		{"persistent-names-a-disk", dom(strings.Replace(vf, "</source>", "</source>\n      <teaming type='transient' persistent='ua-d'/>", 1) +
			"    <disk type='file'><alias name='ua-d'/></disk>\n"), Options{}, "teams with 'ua-d', which is the alias of <disk>", ""},
		{"two-primaries-one-standby", dom(strings.Repeat(strings.Replace(vf, "</source>", "</source>\n      <teaming type='transient' persistent='ua-s'/>", 1), 2) +
			"    <interface type='network'><model type='virtio'/><alias name='ua-s'/></interface>\n"), Options{}, "both team with the standby 'ua-s'", "one primary"},
		{"primary-teaming-persistent", dom(strings.Replace(vf, "</source>", "</source>\n      <teaming type='persistent'/>", 1)), Options{}, "has <teaming type='persistent'/>", "transient side"},
		{"hostdev-nic-and-storage", dom("    <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x81' slot='0' function='0'/></source></hostdev>\n"),
			Options{NICs: []string{"81:00.0"}, Storage: []policy.Storage{{Device: "0000:81:00.0", LUN: "/dev/sdb"}}}, "marked both as a NIC and as a storage device", ""},
		{"nvme", dom("    <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0xc1' slot='0' function='0'/></source></hostdev>\n"),
			Options{Storage: []policy.Storage{{Device: "0000:c1:00.0", LUN: "/dev/nvme0n1"}}}, "NVMe passthrough cannot be paired", "<disk type='nvme'>"},
		{"emulated-with-assigned", dom(vf + "    <interface type='network'><model type='virtio'/></interface>\n"), Options{EmulatedPrimary: true},
			"--emulated-primary is for a domain without assigned devices, and this one has interface type='hostdev' 0000:03:02.1", "without --emulated-primary"},
		{"emulated-without-virtio", dom("    <interface type='network'><model type='e1000e'/></interface>\n"), Options{EmulatedPrimary: true},
			"no virtio <interface> to make the standby", "<model type='virtio'/>"},
		{"emulated-vhostuser", dom("    <interface type='vhostuser'><source type='unix' path='/tmp/v.sock' mode='server'/><model type='virtio'/></interface>\n"),
			Options{EmulatedPrimary: true}, "<interface type='vhostuser'> cannot be the standby: libvirt takes only a virtio-net model", "network, bridge, user or ethernet"},
		{"emulated-vdpa-without-model", dom("    <interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/></interface>\n"),
			Options{EmulatedPrimary: true}, "<interface type='vdpa'> cannot be the standby", "network, bridge, user or ethernet"},
		{"emulated-macvtap", dom("    <interface type='direct'><source dev='eth0' mode='bridge'/><model type='virtio'/></interface>\n"),
			Options{EmulatedPrimary: true}, "EADDRINUSE", "network, bridge, user or ethernet"},
		{"emulated-socket", dom("    <interface type='server'><source address='127.0.0.1' port='5558'/><model type='virtio'/></interface>\n"),
			Options{EmulatedPrimary: true}, "same address and port", ""},
		{"emulated-beside-a-pair", dom(strings.Replace(vf, "</source>", "</source>\n      <teaming type='transient' persistent='ua-s'/>", 1) +
			"    <interface type='network'><mac address='52:54:00:00:00:01'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-s'/></interface>\n"),
			Options{EmulatedPrimary: true}, "for a domain without a failover pair, and this one has interface type='hostdev' 0000:03:02.1 teaming with 'ua-s'", "one primary per standby"},
		{"xen", []byte("<domain type='xen'><name>x</name><devices>" + vf + "</devices></domain>"), Options{},
			"a <domain type='xen'> cannot fail over: only QEMU/KVM guests can", "<domain type='kvm'>"},
		{"lxc", []byte("<domain type='lxc'><name>x</name></domain>"), Options{}, "a <domain type='lxc'> cannot fail over", "QEMU/KVM"},
		{"no-type", []byte("<domain><name>x</name></domain>"), Options{}, "a <domain> without a type cannot fail over", "QEMU/KVM"},
		{"teamed-hostdev-bad-address", dom("    <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x100' slot='0' function='0'/></source><teaming type='transient' persistent='ua-s'/></hostdev>\n"),
			Options{}, "a teamed PCI <hostdev> has no host PCI address libvirt reads: bus='0x100' slot='0x0' function='0x0' is out of range", "bus='0x03'"},
		{"teamed-interface-usb", dom("    <interface type='hostdev'><source><address type='usb' bus='1' device='2'/></source><teaming type='transient' persistent='ua-s'/></interface>\n"),
			Options{}, "a teamed <interface type='hostdev'> has no host PCI address libvirt reads: <address type='usb'> is not a PCI address", "bus='0x03'"},
		{"bond-without-nic", dom(vf), Options{Bond: true}, "--bond pairs the NICs --nic names", "--nic PCIADDR"},
		{"bond-standby-with-teaming", withMetadata(strings.Replace(vf, "</source>", "</source>\n      <alias name='ua-p'/>", 1)+
			"    <interface type='network'><mac address='52:54:00:00:00:01'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-s'/></interface>\n",
			bondRecord),
			Options{}, "the bond's standby 'ua-s' has <teaming type='persistent'/>", "net_failover master"},
		{"bond-macs-differ", withMetadata(strings.Replace(vf, "</source>", "</source>\n      <alias name='ua-p'/>", 1)+
			"    <interface type='network'><mac address='52:54:00:00:00:09'/><model type='virtio'/><alias name='ua-s'/></interface>\n",
			bondRecord),
			Options{}, "its bond standby 'ua-s' has 52:54:00:00:00:09", "active-backup bond keeps one MAC"},
		{"bond-emulated-with-assigned", dom(vf + "    <interface type='network'><model type='virtio'/></interface>\n"), Options{Bond: true, EmulatedPrimary: true},
			"--emulated-primary is for a domain without assigned devices", ""},
		{"detach-unknown-alias", dom(vf), Options{Detach: []string{"ua-gpu9"}}, "--detach ua-gpu9: no device of the domain has that alias", "<alias name='ua-gpu9'/>"},
		{"detach-a-standby", dom(strings.Replace(vf, "</source>", "</source>\n      <teaming type='transient' persistent='ua-s'/>", 1) +
			"    <interface type='network'><mac address='52:54:00:00:00:01'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-s'/></interface>\n"),
			Options{Detach: []string{"ua-s"}}, "--detach ua-s: it is the standby of", "detach its primary"},
		{"detach-a-teaming-primary", dom(strings.Replace(vf, "</source>", "</source>\n      <teaming type='transient' persistent='ua-s'/>\n      <alias name='ua-p'/>", 1) +
			"    <interface type='network'><mac address='52:54:00:00:00:01'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-s'/></interface>\n"),
			Options{Detach: []string{"ua-p"}}, "--detach ua-p: it has <teaming>: QEMU fails it over", ""},
		{"detach-and-nic", dom("    <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x81' slot='0' function='0'/></source><alias name='ua-h'/></hostdev>\n"),
			Options{Detach: []string{"ua-h"}, NICs: []string{"81:00.0"}}, "marked both for --detach and as a NIC or storage device", ""},
		{"stand-in-not-scsi", dom("    <disk type='file' device='disk'><source file='/x'/><target dev='vdb' bus='virtio'/><wwn>5000c500a1b2c3d4</wwn><alias name='ua-hd0'/></disk>\n"),
			Options{Storage: []policy.Storage{{Device: "ua-hd0", LUN: "/dev/loop7"}}}, "disk ua-hd0 (emulated stand-in) is on bus 'virtio', not SCSI", "bus='scsi'"},
		{"stand-in-not-a-disk", dom(vf), Options{Storage: []policy.Storage{{Device: "ua-nic", LUN: "/dev/loop7"}}}, "--storage ua-nic: the domain has no <disk> with that alias", ""},
		{"stand-in-relative-lun", dom(vf), Options{Storage: []policy.Storage{{Device: "ua-hd0", LUN: "loop7"}}}, "the LUN must be an absolute host path", "/dev/loop7"},
		{"lint-error-in-input", dom(vf + "    <interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br9'/><model type='rtl8139'/></interface>\n" +
			"    <interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br9'/><model type='e1000'/></interface>\n"),
			Options{}, "the definition has an error pairing does not fix, and pair writes nothing virt-failover lint rejects: VF019 mac-duplicate", "then pair again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := plan(t, tc.in, policy.Default(), tc.opt)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v (plan %v), want a *pair.Error", err, r)
			}
			if !strings.Contains(pe.Msg, tc.want) || !strings.Contains(pe.Hint, tc.hint) {
				t.Errorf("got %q (hint %q), want %q (hint with %q)", pe.Msg, pe.Hint, tc.want, tc.hint)
			}
		})
	}
}

// A pair QEMU fails over as it stands is left alone, reported as unrecorded; Adopt records it. A
// pair QEMU cannot fail over yet is completed and recorded either way.
func TestUnrecordedPairs(t *testing.T) {
	teamed := strings.Replace(vf, "</source>", "</source>\n      <teaming type='transient' persistent='ua-s'/>", 1)
	standby := "    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='lan'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-s'/></interface>\n"
	pol, err := policy.Parse("p.toml", []byte("[pools.vf]\naddresses = [\"0000:03:02.1\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		in         []byte
		adopt      bool
		changed    bool
		unrecorded bool
	}{
		{"fails-over", dom(teamed + standby), false, false, true},
		{"fails-over-adopted", dom(teamed + standby), true, true, false},
		{"standby-not-virtio-yet", dom(teamed + strings.Replace(standby, "<model type='virtio'/>", "", 1)), false, true, false},
		{"standby-without-teaming", dom(teamed + strings.Replace(standby, "<teaming type='persistent'/>", "", 1)), false, true, false},
		{"primary-without-mac", dom(strings.Replace(teamed, "      <mac address='52:54:00:00:00:01'/>\n", "", 1) + standby), false, true, false},
		{"primary-not-teamed", dom(vf + standby), false, true, false},
		{"recorded-alias-missing-on-primary", []byte(strings.Replace(string(dom(teamed+standby)), "<devices>",
			"<metadata><vfo:failover xmlns:vfo='"+policy.NamespaceMetadata+"'><vfo:pair kind='net' standby='ua-s' primary='ua-p' mac='52:54:00:00:00:01'/></vfo:failover></metadata>\n  <devices>", 1)),
			false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := plan(t, tc.in, pol, Options{Adopt: tc.adopt})
			if err != nil {
				t.Fatal(err)
			}
			if r.Changed() != tc.changed || len(r.Pairs) != 1 || r.Pairs[0].Unrecorded != tc.unrecorded {
				t.Fatalf("changed %t, pairs %+v; want changed %t, one pair with unrecorded %t", r.Changed(), r.Pairs, tc.changed, tc.unrecorded)
			}
			pr := r.Pairs[0]
			if pr.Standby != "ua-s" || pr.Pool != "vf" || pr.Unrecorded && len(pr.Changes) > 0 {
				t.Errorf("pair %+v: want standby ua-s and pool vf", pr)
			}
			out, _ := r.Transform.Bytes()
			if tc.changed && !strings.Contains(string(out), "<vfo:pair kind='net' standby='ua-s' primary='ua-pri0' mac='52:54:00:00:00:01' pool='vf'/>") {
				t.Errorf("no record in:\n%s", out)
			}
		})
	}
}

// --pool without --adopt does not record a pair that works as it stands, and says so.
func TestPoolWithoutAdoptWarns(t *testing.T) {
	in := golden.Read(t, filepath.Join(goldenDir, "libvirt-teaming", "in.xml"))
	r, err := plan(t, in, policy.Default(), Options{Pool: "fabric"})
	if err != nil || r.Changed() || len(r.Warnings) != 2 || !strings.Contains(r.Warnings[1].Msg, "--pool fabric is not recorded") ||
		!strings.Contains(r.Warnings[1].Hint, "--adopt") {
		t.Fatalf("err %v, changed %t, warnings %+v", err, r != nil && r.Changed(), r.Warnings)
	}
	r, err = plan(t, in, policy.Default(), Options{Pool: "fabric", Adopt: true})
	if err != nil || !r.Changed() || len(r.Pairs) != 2 || r.Pairs[0].Pool != "fabric" || r.Pairs[1].Pool != "fabric" {
		t.Fatalf("err %v, pairs %+v", err, r.Pairs)
	}
}

// An emulated pair that works as it stands is left alone too, unless Adopt; one whose primary
// still has its option ROM (migration fails) is completed and recorded.
func TestUnrecordedEmulatedPair(t *testing.T) {
	src := golden.Read(t, filepath.Join(goldenDir, "emulated-hand-paired", "in.xml"))
	works := []byte(strings.Replace(string(src), "<model type='e1000e'/>", "<model type='e1000e'/>\n      <rom enabled='no'/>", 1))
	for _, tc := range []struct {
		name          string
		in            []byte
		opt           Options
		changed, unre bool
	}{
		{"works", works, Options{}, false, true},
		{"works-with-emulated-primary", works, Options{EmulatedPrimary: true}, false, true},
		{"works-adopted", works, Options{Adopt: true}, true, false},
		{"rom-on", src, Options{}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := plan(t, tc.in, policy.Default(), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if r.Changed() != tc.changed || len(r.Pairs) != 1 || r.Pairs[0].Unrecorded != tc.unre || !r.Pairs[0].Emulated ||
				r.Pairs[0].Primary != "ua-pri0" || r.Pairs[0].Standby != "ua-sby0" {
				t.Fatalf("changed %t, pairs %+v", r.Changed(), r.Pairs)
			}
		})
	}
}

// The --nic hint pair prints names the hostdev as Options.NICs takes it, whatever spelling of the
// address the definition uses (libvirt reads decimal, 0x-hex and octal).
func TestNICHintIsAccepted(t *testing.T) {
	for _, addr := range []string{
		"domain='0x0021' bus='222' slot='31' function='1'",
		"domain='33' bus='0xDE' slot='037' function='0x1'",
		"domain='0x00021' bus='0xde' slot='0x1f' function='1'",
	} {
		in := dom("    <hostdev mode='subsystem' type='pci'><source><address " + addr + "/></source></hostdev>\n")
		r, err := plan(t, in, policy.Default(), Options{})
		if err != nil || len(r.Warnings) != 1 {
			t.Fatalf("%s: err %v, warnings %+v", addr, err, r.Warnings)
		}
		nic, ok := strings.CutPrefix(r.Warnings[0].Hint, "give --nic ")
		nic, _, _ = strings.Cut(nic, " ")
		if !ok || nic != "0021:de:1f.1" || !strings.HasPrefix(r.Warnings[0].Msg, "hostdev 0021:de:1f.1 ") {
			t.Fatalf("%s: warning %+v, want hostdev 0021:de:1f.1 and its --nic", addr, r.Warnings[0])
		}
		r, err = plan(t, in, policy.Default(), Options{NICs: []string{nic}})
		if err != nil || !r.Changed() || len(r.Pairs) != 1 || r.Pairs[0].Device != "hostdev 0021:de:1f.1" {
			t.Fatalf("%s: --nic %s: err %v, pairs %+v", addr, nic, err, r)
		}
	}
}

// A hostdev whose address libvirt would not read is left alone, with a warning that says why and no
// --nic hint it could not take.
func TestHostdevUnreadableAddress(t *testing.T) {
	in := dom("    <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='3b' slot='2' function='1'/></source></hostdev>\n")
	r, err := plan(t, in, policy.Default(), Options{})
	if err != nil || r.Changed() || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0].Msg, "bus='3b' is not a number libvirt reads") ||
		strings.Contains(r.Warnings[0].Hint, "--nic") {
		t.Fatalf("err %v, warnings %+v", err, r.Warnings)
	}
}

// The lint refusal is placed in the input: a byte the edits kept maps to itself, one they wrote to
// the place of the edit.
func TestInputOffset(t *testing.T) {
	edits := []xmlxform.Edit{{Span: xmlxform.Span{Start: 10, End: 10}, Text: []byte("abcde")}, {Span: xmlxform.Span{Start: 20, End: 24}, Text: []byte("xy")}}
	for out, want := range map[int]int{0: 0, 9: 9, 10: 10, 14: 10, 15: 10, 24: 19, 25: 20, 26: 20, 27: 24, 40: 37} {
		if got := inputOffset(edits, out); got != want {
			t.Errorf("inputOffset(%d) = %d, want %d", out, got, want)
		}
	}
	src := []byte("ab\ncde\n\nf")
	for lc, want := range map[[2]int]int{{1, 1}: 0, {1, 3}: 2, {2, 1}: 3, {2, 2}: 4, {4, 1}: 8, {9, 1}: 9} {
		if got := lineColOffset(src, lc[0], lc[1]); got != want {
			t.Errorf("lineColOffset(%v) = %d, want %d", lc, got, want)
		}
	}
}

func TestErrorPosition(t *testing.T) {
	in := dom(strings.Replace(vf, "</source>", "</source>\n      <teaming type='persistent'/>", 1))
	_, err := plan(t, in, policy.Default(), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "10:7: ") {
		t.Fatalf("error %v, want it at the <teaming> on 10:7", err)
	}
}

func TestNothingToPair(t *testing.T) {
	in := dom("    <interface type='network'><source network='default'/><model type='virtio'/></interface>\n")
	r, err := plan(t, in, policy.Default(), Options{})
	if err != nil || r.Changed() || len(r.Pairs) != 0 || len(r.Warnings) != 0 {
		t.Fatalf("err %v, changed %t, pairs %v, warnings %v", err, r.Changed(), r.Pairs, r.Warnings)
	}
}

func TestTeamingNoneIsLeftAlone(t *testing.T) {
	in := dom(strings.Replace(vf, "</source>", "</source>\n      <teaming type='none'/>", 1))
	r, err := plan(t, in, policy.Default(), Options{})
	if err != nil || r.Changed() || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0].Msg, "left unpaired") {
		t.Fatalf("err %v, changed %t, warnings %v", err, r.Changed(), r.Warnings)
	}
}

func TestUnknownHostdevWarns(t *testing.T) {
	in := dom("    <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x81' slot='0' function='0'/></source></hostdev>\n")
	r, err := plan(t, in, policy.Default(), Options{})
	if err != nil || r.Changed() || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0].Hint, "--nic 0000:81:00.0") {
		t.Fatalf("err %v, changed %t, warnings %+v", err, r.Changed(), r.Warnings)
	}
}

func TestOptionsNotModified(t *testing.T) {
	opt := Options{NICs: []string{"03:02.1"}}
	if _, err := plan(t, dom(vf), policy.Default(), opt); err != nil {
		t.Fatal(err)
	}
	if opt.NICs[0] != "03:02.1" {
		t.Errorf("Plan changed the caller's options: %q", opt.NICs)
	}
}

// The aliases the domain already names, on devices or only in references, are not given out.
// (The reference is a broken teaming; the policy lets its lint errors pass.)
func TestAliasesSkipTakenNames(t *testing.T) {
	in := dom(vf +
		"    <disk type='file'><alias name='ua-sby0'/></disk>\n" +
		"    <interface type='bridge'><teaming type='transient' persistent='ua-sby1'/></interface>\n" +
		"    <serial type='pty'><alias name='ua-pri0'/></serial>\n")
	pol, err := policy.Parse("p.toml", []byte("[lint]\ndisable = [\"VF007\", \"VF013\", \"VF017\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := plan(t, in, pol, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Pairs) != 1 || r.Pairs[0].Standby != "ua-sby2" || r.Pairs[0].Primary != "ua-pri1" {
		t.Fatalf("pairs %+v, want ua-sby2 and ua-pri1", r.Pairs)
	}
}

func TestPoolChoice(t *testing.T) {
	pol, err := policy.Parse("p.toml", []byte("[host]\ndefault_pool = \"d\"\n[pools.d]\npf = [\"eth9\"]\n[pools.vf]\naddresses = [\"0000:03:02.1\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	withRecord := func(pool string) []byte {
		return []byte(strings.Replace(string(dom(strings.Replace(vf, "</source>", "</source>\n      <alias name='ua-p'/>", 1))), "<devices>",
			"<metadata><vfo:failover xmlns:vfo='"+policy.NamespaceMetadata+"'><vfo:pair kind='net' standby='ua-s' primary='ua-p' mac='52:54:00:00:00:01' pool='"+pool+"'/></vfo:failover></metadata>\n  <devices>", 1))
	}
	for _, tc := range []struct {
		name string
		in   []byte
		pol  *policy.Policy
		opt  Options
		want string
	}{
		{"none", dom(vf), policy.Default(), Options{}, ""},
		{"the VF's pool", dom(vf), pol, Options{}, "vf"},
		{"the default pool", dom(strings.Replace(vf, "0x02", "0x04", 1)), pol, Options{}, "d"},
		{"the record's pool", withRecord("kept"), pol, Options{}, "kept"},
		{"--pool over the record", withRecord("kept"), pol, Options{Pool: "vf"}, "vf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := plan(t, tc.in, tc.pol, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Pairs) != 1 || r.Pairs[0].Pool != tc.want {
				t.Fatalf("pairs %+v, want pool %q", r.Pairs, tc.want)
			}
		})
	}
}

func TestUnknownPoolWarns(t *testing.T) {
	r, err := plan(t, dom(vf), policy.Default(), Options{Pool: "nowhere"})
	if err != nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0].Msg, "has no [pools.nowhere]") {
		t.Fatalf("err %v, warnings %+v", err, r.Warnings)
	}
}

func TestStableMAC(t *testing.T) {
	seen := map[string]bool{}
	for i := range 2000 {
		m := StableMAC("uuid:00000000-0000-4000-8000-000000000001", "pci:0000:03:02."+strconv.Itoa(i), 0)
		if m != StableMAC("uuid:00000000-0000-4000-8000-000000000001", "pci:0000:03:02."+strconv.Itoa(i), 0) {
			t.Fatal("not stable")
		}
		b, err := strconv.ParseUint(m[:2], 16, 8)
		if err != nil || len(m) != 17 || strings.ToLower(m) != m {
			t.Fatalf("%q is not a MAC as libvirt writes them", m)
		}
		if b&0x02 == 0 || b&0x01 != 0 {
			t.Fatalf("%s is not a locally administered unicast address", m)
		}
		if seen[m] {
			t.Fatalf("%s twice", m)
		}
		seen[m] = true
	}
	a := StableMAC("uuid:a", "pci:0000:03:02.1", 0)
	for _, other := range []string{StableMAC("uuid:b", "pci:0000:03:02.1", 0), StableMAC("uuid:a", "pci:0000:03:02.2", 0), StableMAC("uuid:a", "pci:0000:03:02.1", 1)} {
		if other == a {
			t.Errorf("%s: different inputs, the same MAC", a)
		}
	}
}

// A derived MAC another device already has is not given out again.
func TestDerivedMACAvoidsTaken(t *testing.T) {
	in := dom(strings.Replace(vf, "      <mac address='52:54:00:00:00:01'/>\n", "", 1))
	r, err := plan(t, in, policy.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := r.Pairs[0].MAC
	taken := dom(strings.Replace(vf, "      <mac address='52:54:00:00:00:01'/>\n", "", 1) +
		fmt.Sprintf("    <interface type='user'><mac address='%s'/></interface>\n", first))
	r, err = plan(t, taken, policy.Default(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Pairs[0].MAC == first || r.Pairs[0].MAC != StableMAC("uuid:00000000-0000-4000-8000-000000000001", "pci:0000:03:02.1", 1) {
		t.Errorf("MAC %s, want the second choice after the taken %s", r.Pairs[0].MAC, first)
	}
	// A parked NIC comes back with its MAC: that is taken too.
	parked := withMetadata(strings.Replace(vf, "      <mac address='52:54:00:00:00:01'/>\n", "", 1),
		fmt.Sprintf("      <vfo:parked alias='ua-nic9' kind='detach' reason='switch'><vfo:interface type='network'><vfo:mac address='%s'/><vfo:alias name='ua-nic9'/></vfo:interface></vfo:parked>\n", first))
	if r, err = plan(t, parked, policy.Default(), Options{}); err != nil {
		t.Fatal(err)
	}
	if r.Pairs[0].MAC == first {
		t.Errorf("MAC %s is a parked NIC's", first)
	}
}

func TestSeed(t *testing.T) {
	for src, want := range map[string]string{
		"<domain><name>n</name><uuid> 5F1C2C8E-2B0A-4F4E-9A57-1D0E6F0C9A11 </uuid></domain>": "uuid:5f1c2c8e-2b0a-4f4e-9a57-1d0e6f0c9a11",
		"<domain><name>web</name></domain>":                                                  "name:web",
		"<domain/>":                                                                          "name:",
	} {
		doc, err := xmlxform.Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := seedOf(policy.NewDomain(doc)); got != want {
			t.Errorf("%s: %q, want %q", src, got, want)
		}
	}
}

func TestDiskNames(t *testing.T) {
	for i, name := range map[int]string{0: "sda", 6: "sdg", 7: "sdh", 25: "sdz", 26: "sdaa", 701: "sdzz", 702: "sdaaa"} {
		if got := diskName(i); got != name {
			t.Errorf("diskName(%d) = %s, want %s", i, got, name)
		}
		if got, ok := diskIndex(name); !ok || got != i {
			t.Errorf("diskIndex(%s) = %d, %t", name, got, ok)
		}
	}
	for _, bad := range []string{"vda", "sd", "sd1", "hda"} {
		if _, ok := diskIndex(bad); ok {
			t.Errorf("diskIndex(%s) ok", bad)
		}
	}
}

// A new LUN disk avoids the units and names existing disks hold on the virtio-scsi controller,
// the ones libvirt gives addressless disks included.
func TestSCSIUnits(t *testing.T) {
	in := dom(`    <disk type='file'><target dev='sda' bus='scsi'/></disk>
    <disk type='file'><target dev='sdc' bus='scsi'/><address type='drive' controller='0' bus='0' target='0' unit='1'/></disk>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='0x81' slot='0' function='0'/></source></hostdev>
`)
	pol := &policy.Policy{}
	*pol = *policy.Default()
	pol.Storage = []policy.Storage{{Device: "0000:81:00.0", LUN: "/dev/disk/by-id/wwn-0x1"}}
	r, err := plan(t, in, pol, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := r.Transform.Bytes()
	// sda holds unit 0, sdc's address unit 1, sdc's name is taken: sdd (unit 3) is the first free.
	if !strings.Contains(string(out), "<target dev='sdd' bus='scsi'/>") || strings.Contains(string(out), "<controller type='scsi' index='1'") {
		t.Fatalf("got:\n%s", out)
	}
}

func TestNormalPCIAddress(t *testing.T) {
	for in, want := range map[string]string{"0000:03:02.1": "0000:03:02.1", "03:1F.7": "0000:03:1f.7", "0001:ab:00.0": "0001:ab:00.0"} {
		if got, ok := normalPCIAddress(in); !ok || got != want {
			t.Errorf("%s: %s %t", in, got, ok)
		}
	}
	for _, bad := range []string{"", "03:20.0", "03:00.8", "0000:03:00", "eth0", "0000-03:00.0"} {
		if _, ok := normalPCIAddress(bad); ok {
			t.Errorf("%s accepted", bad)
		}
	}
}
