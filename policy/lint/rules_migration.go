package lint

import (
	"fmt"
	"path"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

var ruleHostdevBlocksMigration = &Rule{
	ID: "VF027", Name: "hostdev-blocks-migration", Severity: Warning, HookSafe: true,
	Summary: "an assigned device without teaming: libvirt refuses to migrate the domain",
	Doc: Doc{
		What: "A `<hostdev>` that libvirt will not migrate: a PCI device without `<teaming type='transient'>`, a " +
			"SCSI, scsi_host or mdev device, or `mode='capabilities'`. USB devices are fine. A warning; an error with " +
			"`[lint] require_migratable = true` (or `--require-migratable`); only info when virt-failover's pair " +
			"metadata records the device as one the orchestrator unplugs before migrating (the assigned leg of a storage " +
			"pair, a bond's primary, a `kind='detach'` device). Assigned NICs have their own rule (VF028).",
		Why: "libvirt checks before migrating and refuses: \"cannot migrate a domain with <hostdev mode='subsystem' " +
			"type='pci'>\"; only a transient teaming device is exempt, because QEMU unplugs it (docs/failover.md#teaming-migration). An emulated " +
			"`failover_pair_id` set through `<qemu:override>` does not count: libvirt does not read it. " +
			"Nothing unplugs other assigned devices automatically, so whoever starts the migration must (docs/failover.md#teaming-migration, docs/failover.md#storage-multipath).",
		Bad:  "<hostdev mode='subsystem' type='pci' managed='yes'>\n  <source>\n    <address domain='0x0000' bus='0x81' slot='0x00' function='0x0'/>\n  </source>\n</hostdev>",
		Good: "<metadata>\n  <vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0' version='v0.1.0'>\n    <vfo:pair kind='storage' standby='ua-lun0' primary='ua-hd0' device='0000:81:00.0' lun='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n  </vfo:failover>\n</metadata>\n…\n<hostdev mode='subsystem' type='pci' managed='yes'>\n  <source>\n    <address domain='0x0000' bus='0x81' slot='0x00' function='0x0'/>\n  </source>\n  <alias name='ua-hd0'/>\n</hostdev>",
	},
	check: func(p *pass) {
		for _, h := range p.dom.Hostdevs {
			what := ""
			switch {
			case h.Mode == "capabilities":
				what = "<hostdev mode='capabilities'>"
			case h.Type == "usb":
				continue
			case h.Type == "pci":
				if h.TeamType == "transient" {
					continue
				}
				if _, ok := p.m.poolAddrs[h.Source]; ok && h.Source != "" {
					continue // a VF of a pool: an assigned NIC (VF028)
				}
				what = "<hostdev mode='subsystem' type='pci'>"
			case h.Type == "scsi" || h.Type == "scsi_host" || h.Type == "mdev":
				what = fmt.Sprintf("<hostdev mode='subsystem' type='%s'>", h.Type)
			default:
				continue
			}
			if mp := p.m.metaFor(h.Alias); mp != nil && mp.orchestrated() {
				f := p.at(h.El, fmt.Sprintf("the orchestrator unplugs this device before migrating (pair metadata: %s); libvirt alone refuses to migrate with it (\"cannot migrate a domain with %s\")", mp.describe(), what))
				f.Severity = Info
				p.relatedEl(f, mp.el, "the pair is recorded here")
				f.Hint = "migrate with virt-failover, not plain virsh migrate"
				continue
			}
			f := p.at(h.El, fmt.Sprintf("libvirt refuses to migrate a domain with this device (\"cannot migrate a domain with %s\")", what))
			if p.pol.Lint.RequireMigratable {
				f.Severity = Error
				f.Message += "; [lint] require_migratable is set"
			}
			f.Hint = "a NIC: pair it with a virtio standby (virt-failover pair); storage: pair it with a virtio-scsi path so the orchestrator unplugs it; a device that must stay: the domain is not live-migratable"
		}
	},
}

var ruleAssignedNICWithoutStandby = &Rule{
	ID: "VF028", Name: "assigned-nic-without-standby", Severity: Warning, HookSafe: true,
	Summary: "an assigned NIC with no virtio standby at all",
	Doc: Doc{
		What: "An assigned NIC without `<teaming>`: an `<interface type='hostdev'>`, an `<interface type='network'>` on a " +
			"network the policy lists as a VF pool, or a plain PCI `<hostdev>` whose address is a VF of a policy pool. " +
			"A warning; an error with `[lint] require_migratable = true` (or `--require-migratable`); only info when " +
			"virt-failover's metadata has the orchestrator unplug it for migrations (a bond's primary, whose standby " +
			"the guest bonds with it, or a `kind='detach'` device).",
		Why: "libvirt refuses to migrate it (\"cannot migrate a domain with <interface type='hostdev'>\"), and nothing " +
			"carries the guest's traffic while it is gone. Transparent failover fixes both: a virtio standby with the " +
			"same MAC and `<teaming>` on both (docs/failover.md#teaming-xml, docs/failover.md#teaming-migration). `virt-failover pair` adds them.",
		Bad:  "<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:02'/>\n  <source>\n    <address type='pci' domain='0x0000' bus='0x03' slot='0x07' function='0x1'/>\n  </source>\n</interface>",
		Good: "<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <source bridge='br-fabric'/>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:02'/>\n  <source>\n    <address type='pci' domain='0x0000' bus='0x03' slot='0x07' function='0x1'/>\n  </source>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		emulated := map[string]bool{}
		for _, t := range p.m.transients {
			emulated[t.alias] = true
		}
		for _, n := range p.dom.NICs {
			if n.Teaming != nil || emulated[n.Alias] && n.Alias != "" {
				continue
			}
			what := ""
			switch {
			case n.Type == "hostdev":
				what = "<interface type='hostdev'>"
			case n.Type == "network" && p.m.poolNetworks[networkOf(n.El)] != "":
				what = fmt.Sprintf("<interface type='network'> on VF pool network '%s'", networkOf(n.El))
			default:
				continue
			}
			p.nicWithoutStandby(n.El, n.Alias, what)
		}
		for _, h := range p.dom.Hostdevs {
			if pool, ok := p.m.poolAddrs[h.Source]; ok && h.Source != "" && h.Teaming == nil {
				p.nicWithoutStandby(h.El, h.Alias, fmt.Sprintf("<hostdev> of VF %s (pool '%s')", h.Source, pool))
			}
		}
	},
}

// nicWithoutStandby reports an assigned NIC that has no (teaming) standby: a note when the
// orchestrator unplugs it for migrations.
func (p *pass) nicWithoutStandby(el *xmlxform.Element, alias, what string) {
	if mp := p.m.metaFor(alias); mp != nil && mp.orchestrated() {
		f := p.at(el, fmt.Sprintf("the orchestrator unplugs this NIC before migrating (pair metadata: %s); libvirt alone refuses to migrate with it (\"cannot migrate a domain with %s\")", mp.describe(), what))
		f.Severity = Info
		p.relatedEl(f, mp.el, "the pair is recorded here")
		f.Hint = "migrate with virt-failover, not plain virsh migrate"
		return
	}
	f := p.at(el, fmt.Sprintf("assigned NIC without a virtio standby: libvirt refuses to migrate the domain (\"cannot migrate a domain with %s\")", what))
	if p.pol.Lint.RequireMigratable {
		f.Severity = Error
		f.Message += "; [lint] require_migratable is set"
	}
	f.Hint = "virt-failover pair adds a virtio standby with the same MAC and the <teaming> elements"
}

var ruleEmulatedPrimaryROM = &Rule{
	ID: "VF029", Name: "emulated-primary-rom-enabled", Severity: Error, HookSafe: true,
	Summary: "an emulated primary (failover_pair_id via <qemu:override>) with its option ROM enabled",
	Doc: Doc{
		What: "An emulated NIC made a failover primary with `failover_pair_id` through `<qemu:override>` does not have " +
			"`<rom enabled='no'/>`.",
		Why: "Measured on QEMU 7.2.22 (Debian 12): the migration fails with `Unknown ramblock \".../e1000e.rom\", cannot " +
			"accept migration`, because the source registers the ROM's RAM while the destination's primary is still " +
			"hidden (docs/failover.md#rom-bar). QEMU's own failover test also starts its " +
			"primaries without a ROM. `<rom bar='off'/>` alone was not measured to be enough.",
		Bad:  "<interface type='network'>\n  <source network='lan'/>\n  <mac address='52:54:00:5f:00:10'/>\n  <model type='e1000e'/>\n  <alias name='ua-pri0'/>\n</interface>\n…\n<qemu:override>\n  <qemu:device alias='ua-pri0'>\n    <qemu:frontend>\n      <qemu:property name='failover_pair_id' type='string' value='ua-sby0'/>\n    </qemu:frontend>\n  </qemu:device>\n</qemu:override>",
		Good: "<interface type='network'>\n  <source network='lan'/>\n  <mac address='52:54:00:5f:00:10'/>\n  <model type='e1000e'/>\n  <rom enabled='no'/>\n  <alias name='ua-pri0'/>\n</interface>\n…\n<qemu:override>\n  <qemu:device alias='ua-pri0'>\n    <qemu:frontend>\n      <qemu:property name='failover_pair_id' type='string' value='ua-sby0'/>\n    </qemu:frontend>\n  </qemu:device>\n</qemu:override>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			if !t.emulated || t.nic == nil || t.nic.Type == "hostdev" {
				continue
			}
			rom := t.el.Child("rom")
			if attr(rom, "enabled") == "no" {
				continue
			}
			msg := "the emulated primary keeps its option ROM: migration fails with Unknown ramblock \"…rom\", cannot accept migration (measured on QEMU 7.2.22)"
			var f *Finding
			if rom != nil {
				f = p.at(rom, msg)
			} else {
				f = p.at(t.el, msg)
			}
			p.relatedEl(f, t.via, "failover_pair_id makes it a primary here")
			f.Hint = "add <rom enabled='no'/> to the primary"
		}
	},
}

var ruleVFIOPrimaryROMBar = &Rule{
	ID: "VF030", Name: "vfio-primary-rom-bar", Severity: Info, HookSafe: true,
	Summary: "an assigned primary with its ROM BAR on",
	Doc: Doc{
		What: "An assigned (VFIO) primary has neither `<rom bar='off'/>` nor `<rom enabled='no'/>`.",
		Why: "QEMU releases before the mid-2021 fix (\"failover: unregister ROM on unplug\", probably 6.1) fail the " +
			"migration of a failover primary with an option ROM (`Unknown ramblock \"…rom\"`). QEMU 7.2 (Debian 12) has " +
			"the fix, so this is only a note for hosts that may run older QEMU (docs/failover.md#rom-bar, docs/failover.md#known-bugs).",
		Bad:  "<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
		Good: "<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n  <rom bar='off'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			vfio := t.hd != nil || t.nic != nil && (t.nic.Type == "hostdev" || t.nic.Type == "network" && !t.emulated)
			if !vfio {
				continue
			}
			rom := t.el.Child("rom")
			if attr(rom, "bar") == "off" || attr(rom, "enabled") == "no" {
				continue
			}
			f := p.at(t.el, "the assigned primary's ROM BAR is on: QEMU before the mid-2021 ROM fix fails its migration (Unknown ramblock \"…rom\"); QEMU 7.2 is fine")
			f.Hint = "add <rom bar='off'/> where hosts may run an older QEMU"
		}
	},
}

var ruleWindowsVIOPROT = &Rule{
	ID: "VF031", Name: "windows-guest-vioprot", Severity: Info, HookSafe: true,
	Summary: "a Windows guest with a failover pair: NetKVM needs VIOPROT",
	Doc: Doc{
		What: "The libosinfo metadata says the guest is Windows, and the domain has a failover pair.",
		Why: "Windows' NetKVM supports failover only with the VIOPROT protocol driver installed; without it a " +
			"`failover=on` adapter indicates no link until it sees a VF with its MAC, so the guest may have no network " +
			"at all, and VIOPROT binds only to the VF models on its list (docs/failover.md#windows-netkvm; virtio-win 0.1.189 or " +
			"later).",
		Bad:  "<metadata>\n  <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>\n    <libosinfo:os id='http://microsoft.com/win/2k22'/>\n  </libosinfo:libosinfo>\n</metadata>\n…\n<teaming type='transient' persistent='ua-sby0'/>",
		Good: "<metadata>\n  <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>\n    <libosinfo:os id='http://debian.org/debian/12'/>\n  </libosinfo:libosinfo>\n</metadata>\n…\n<teaming type='transient' persistent='ua-sby0'/>",
	},
	check: func(p *pass) {
		if len(p.m.transients) == 0 {
			return
		}
		md := p.dom.Root.Child("metadata")
		if md == nil {
			return
		}
		for _, l := range md.Children {
			if l.Name.Space != policy.NamespaceLibosinfo {
				continue
			}
			for _, os := range l.Children {
				id := attr(os, "id")
				if os.Name.Space != policy.NamespaceLibosinfo || os.Name.Local != "os" || !strings.Contains(id, "microsoft.com/win") {
					continue
				}
				f := p.atAttr(os, "id", fmt.Sprintf("a Windows guest (%s) with a failover pair: NetKVM fails over only with the VIOPROT protocol driver; without it the adapter may show no link at all", path.Base(id)))
				f.Hint = "in the guest (virtio-win 0.1.189 or later): netcfg -v -l vioprot.inf -c p -i VIOPROT"
			}
		}
	},
}
