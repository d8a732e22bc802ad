package lint

import (
	"fmt"
	"path"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// storageLeg is an assigned storage device and what should be its virtio path to the same LUN.
type storageLeg struct {
	mp      *metaPair         // nil for a policy [[storage]] device without pair metadata
	hostdev *policy.Hostdev   // nil when the metadata names no such hostdev
	standIn *xmlxform.Element // the emulated <disk> of a stand-in leg (emulated='yes'), else nil
	lun     string            // host path of the LUN, "" when unknown
	disk    *xmlxform.Element
}

// at is the element findings about the leg point at: the pair metadata, else the hostdev.
func (l *storageLeg) at() *xmlxform.Element {
	if l.mp != nil {
		return l.mp.el
	}
	return l.hostdev.El
}

func storageLegs(p *pass) []*storageLeg {
	var legs []*storageLeg
	covered := map[*policy.Hostdev]bool{}
	for _, mp := range p.m.meta {
		if mp.kind != "storage" {
			continue
		}
		l := &storageLeg{mp: mp, lun: mp.lun}
		if devs := p.dom.Aliases[mp.primary]; mp.emulated && len(devs) == 1 && devs[0].Name.Local == "disk" {
			l.standIn = devs[0]
		}
		for _, h := range p.dom.Hostdevs {
			if h.Alias == mp.primary && mp.primary != "" {
				l.hostdev = h
				covered[h] = true
			}
		}
		if l.lun == "" {
			l.lun = p.m.storageLUN[mp.device]
		}
		if l.lun == "" && l.hostdev != nil {
			l.lun = p.m.storageLUN[l.hostdev.Source]
		}
		for _, d := range p.dom.Aliases[mp.standby] {
			if d.Name.Local == "disk" && mp.standby != "" {
				l.disk = d
				break
			}
		}
		legs = append(legs, l)
	}
	for _, h := range p.dom.Hostdevs {
		lun, ok := p.m.storageLUN[h.Source]
		if !ok || h.Source == "" || covered[h] {
			continue
		}
		l := &storageLeg{hostdev: h, lun: lun}
		if p.dom.Devices != nil {
			for _, d := range p.dom.Devices.ChildrenNamed("disk") {
				if diskSource(d) == lun {
					l.disk = d
					break
				}
			}
		}
		legs = append(legs, l)
	}
	return legs
}

// diskSource returns the host path of a disk: source/@dev or source/@file.
func diskSource(d *xmlxform.Element) string {
	s := d.Child("source")
	if v := attr(s, "dev"); v != "" {
		return v
	}
	return attr(s, "file")
}

var ruleStorageNoLUNPath = &Rule{
	ID: "VF032", Name: "storage-no-lun-path", Severity: Error, HookSafe: true,
	Summary: "an assigned storage device without a virtio-scsi device='lun' path to the same LUN",
	Doc: Doc{
		What: "An assigned storage device — the primary of a `kind='storage'` pair in virt-failover's metadata, or a " +
			"hostdev at a `[[storage]]` device address of the policy — has no virtio path to its LUN that guest " +
			"multipath can pair with it: the standby disk is missing, is on a bus other than SCSI, sits on a SCSI " +
			"controller that is not virtio-scsi, is an emulated `device='disk'` without a `<wwn>`, or reads another " +
			"path than the LUN. (A virtio-blk path has its own rule, VF034.)",
		Why: "Nothing fails storage over automatically: the orchestrator unplugs the assigned leg before migrating, and " +
			"the guest keeps its disk only through a second path that dm-multipath sees as the same WWID. With " +
			"`<disk device='lun'>` on virtio-scsi (QEMU's scsi-block) the guest sees the LUN's own INQUIRY/VPD data, so " +
			"the WWIDs match (docs/failover.md#storage-multipath).",
		Bad:  "<vfo:pair kind='storage' standby='ua-lun0' primary='ua-hd0' device='0000:81:00.0' lun='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n…\n<disk type='block' device='disk'>\n  <source dev='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n  <target dev='sda' bus='sata'/>\n  <alias name='ua-lun0'/>\n</disk>",
		Good: "<vfo:pair kind='storage' standby='ua-lun0' primary='ua-hd0' device='0000:81:00.0' lun='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n…\n<controller type='scsi' model='virtio-scsi'/>\n<disk type='block' device='lun'>\n  <source dev='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n  <target dev='sda' bus='scsi'/>\n  <alias name='ua-lun0'/>\n</disk>",
	},
	check: func(p *pass) {
		for _, l := range storageLegs(p) {
			if l.disk == nil {
				if l.mp != nil {
					f := p.atAttr(l.mp.el, "standby", fmt.Sprintf("the storage pair's standby '%s' is no <disk> of the domain: the guest loses the LUN while the orchestrator has the assigned leg unplugged", l.mp.standby))
					f.Hint = "add the LUN as <disk type='block' device='lun'> on a virtio-scsi controller with <alias name='" + orDefault(l.mp.standby, "ua-lun0") + "'/> (virt-failover pair does)"
				} else {
					f := p.at(l.hostdev.El, fmt.Sprintf("assigned storage device %s ([[storage]] in the policy) has no virtio path to its LUN %s: the guest loses the LUN while the device is unplugged for migration", l.hostdev.Source, l.lun))
					f.Hint = "virt-failover pair adds the LUN as <disk device='lun'> on virtio-scsi and records the pair"
				}
				continue
			}
			tgt := l.disk.Child("target")
			bus := attr(tgt, "bus")
			if bus == "virtio" {
				continue // VF034
			}
			if bus != "scsi" {
				f := p.atAttr(orEl(tgt, l.disk), "bus", fmt.Sprintf("the storage standby is on bus '%s', not virtio-scsi: guest multipath needs the LUN's own identity on both paths", bus))
				f.Hint = "use <disk type='block' device='lun'> with <target bus='scsi'/> on a virtio-scsi controller"
				continue
			}
			if c := scsiController(p, l.disk); c != nil {
				// virtio-transitional and virtio-non-transitional are virtio-scsi too.
				if m := attr(c, "model"); m != "" && m != "virtio-scsi" && m != "virtio-transitional" && m != "virtio-non-transitional" {
					f := p.atAttr(orEl(tgt, l.disk), "bus", fmt.Sprintf("the storage standby's SCSI controller is model '%s', not virtio-scsi", m))
					p.relatedEl(f, c, "the controller")
					f.Hint = "set <controller type='scsi' model='virtio-scsi'/>"
					continue
				}
			}
			if attr(l.disk, "device") != "lun" && l.disk.Child("wwn") == nil {
				f := p.atAttr(l.disk, "device", fmt.Sprintf("the storage standby is device='%s' (QEMU's scsi-hd): it reports an identity of its own, not the LUN's, so guest multipath sees two disks", orDefault(attr(l.disk, "device"), "disk")))
				f.Hint = "use device='lun' (the LUN's own INQUIRY data reaches the guest), or set a <wwn> equal to the LUN's"
				continue
			}
			if src := diskSource(l.disk); l.lun != "" && src != "" && src != l.lun {
				f := p.report(l.disk, l.disk.Child("source").Start.Start, fmt.Sprintf("the storage standby reads %s, not the LUN of its assigned leg (%s)", src, l.lun))
				p.relatedEl(f, l.at(), "the LUN is recorded here")
				f.Hint = "point <source dev=…> at the same LUN, best by a stable /dev/disk/by-id/ path"
			}
		}
	},
}

func orEl(a, b *xmlxform.Element) *xmlxform.Element {
	if a != nil {
		return a
	}
	return b
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// scsiController returns the <controller type='scsi'> a SCSI disk is on: its address's
// controller=, or for a disk without an address the one libvirt assigns, target index / 7
// (sda-sdg on controller 0, sdh-sdn on 1, ...; virDomainDiskDefAssignAddress).
func scsiController(p *pass, disk *xmlxform.Element) *xmlxform.Element {
	if p.dom.Devices == nil {
		return nil
	}
	want := 0
	if a := disk.Child("address"); a != nil && attr(a, "type") == "drive" {
		want, _ = parseUint(attr(a, "controller"), 10)
	} else if idx, ok := diskNameIndex(attr(disk.Child("target"), "dev")); ok {
		want = idx / 7
	}
	for _, c := range p.dom.Devices.ChildrenNamed("controller") {
		if attr(c, "type") != "scsi" {
			continue
		}
		i, _ := parseUint(orDefault(attr(c, "index"), "0"), 10)
		if i == want {
			return c
		}
	}
	return nil
}

// diskNameIndex is libvirt's virDiskNameToIndex: the letters after the prefix of "sdh" or
// "sdaa" read as a bijective base-26 number (sda = 0, sdz = 25, sdaa = 26).
func diskNameIndex(name string) (int, bool) {
	i := 0
	for i < len(name) && i < 2 && name[i] >= 'a' && name[i] <= 'z' {
		i++
	}
	if i != 2 || len(name) == 2 {
		return 0, false
	}
	idx := 0
	for _, c := range name[2:] {
		if c < 'a' || c > 'z' || idx > 1<<20 {
			return 0, false
		}
		idx = idx*26 + int(c-'a') + 1
	}
	return idx - 1, true
}

var ruleStorageNVMe = &Rule{
	ID: "VF033", Name: "storage-nvme-leg", Severity: Warning, HookSafe: true,
	Summary: "an assigned NVMe device as a storage pair's leg",
	Doc: Doc{
		What: "A storage pair's LUN is an NVMe namespace (`/dev/nvme…`, `/dev/disk/by-id/nvme-…`).",
		Why: "NVMe identifies a namespace by EUI-64, NGUID or NQN; SCSI and virtio paths report SCSI-style WWIDs. " +
			"The formats differ, so guest dm-multipath cannot pair the assigned NVMe leg with a virtio path without " +
			"custom uid handling, and the kernel's native NVMe multipath only groups NVMe paths (docs/failover.md#storage-multipath). " +
			"`<disk type='nvme'>` drives a host namespace through QEMU " +
			"and migrates without any of this.",
		Bad:  "<vfo:pair kind='storage' standby='ua-lun0' primary='ua-nvme0' device='0000:82:00.0' lun='/dev/disk/by-id/nvme-eui.0025388b71b0c2e1'/>",
		Good: "<disk type='nvme' device='disk'>\n  <driver name='qemu' type='raw'/>\n  <source type='pci' managed='yes' namespace='1'>\n    <address domain='0x0000' bus='0x82' slot='0x00' function='0x0'/>\n  </source>\n  <target dev='vda' bus='virtio'/>\n</disk>",
	},
	check: func(p *pass) {
		for _, l := range storageLegs(p) {
			base := path.Base(l.lun)
			if !strings.HasPrefix(base, "nvme") {
				continue
			}
			msg := fmt.Sprintf("the assigned leg is an NVMe namespace (%s): NVMe IDs (EUI-64, NGUID) never equal the WWID a SCSI path reports, so guest multipath cannot pair it with the virtio path", l.lun)
			var f *Finding
			if l.mp != nil {
				f = p.atAttr(l.mp.el, "lun", msg)
			} else {
				f = p.at(l.hostdev.El, msg)
			}
			f.Hint = "use <disk type='nvme'> (QEMU drives the namespace and the domain migrates) instead of assigning the controller"
		}
	},
}

var ruleStorageVirtioBlk = &Rule{
	ID: "VF034", Name: "storage-leg-virtio-blk", Severity: Warning, HookSafe: true,
	Summary: "a storage pair's virtio path is virtio-blk",
	Doc: Doc{
		What: "The standby disk of a storage pair is on `bus='virtio'` (virtio-blk, `/dev/vdX` in the guest).",
		Why: "dm-multipath blacklists `vd*` devices by default (or allows only sd, dasd and nvme) and needs a WWID " +
			"from `ID_WWN` or `SCSI_IDENT_*`, which virtio-blk lacks: it only has a 20-byte serial. Multipath then does " +
			"not pair it with the assigned leg (docs/failover.md#storage-multipath).",
		Bad:  "<disk type='block' device='disk'>\n  <source dev='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n  <target dev='vdb' bus='virtio'/>\n  <alias name='ua-lun0'/>\n</disk>",
		Good: "<disk type='block' device='lun'>\n  <source dev='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n  <target dev='sdb' bus='scsi'/>\n  <alias name='ua-lun0'/>\n</disk>",
	},
	check: func(p *pass) {
		for _, l := range storageLegs(p) {
			if l.disk == nil {
				continue
			}
			if tgt := l.disk.Child("target"); attr(tgt, "bus") == "virtio" {
				f := p.atAttr(tgt, "bus", "the storage pair's virtio path is virtio-blk: dm-multipath ignores vd* devices by default and virtio-blk has no WWID, so multipath does not pair it with the assigned leg")
				f.Hint = "use <disk device='lun'> with <target bus='scsi'/> on a virtio-scsi controller"
			}
		}
	},
}

var ruleStorageWWNMismatch = &Rule{
	ID: "VF035", Name: "storage-leg-wwn-mismatch", Severity: Error, HookSafe: true,
	Summary: "a storage pair's legs disagree on the WWN",
	Doc: Doc{
		What: "The standby disk of a storage pair sets a `<wwn>` that differs from the WWN of its LUN (read from a " +
			"`/dev/disk/by-id/wwn-0x…` or `scsi-3…` path), or, for an emulated disk standing in for the assigned leg " +
			"(`emulated='yes'`), from the stand-in's `<wwn>`.",
		Why: "Guest multipath groups paths by WWID; legs that report different WWNs become two disks, and the guest " +
			"loses the LUN when the assigned leg is unplugged. `<wwn>` and `<serial>` are part of libvirt's ABI check, so " +
			"this cannot be fixed during a migration (docs/failover.md#storage-multipath, docs/failover.md#abi-check).",
		Bad:  "<vfo:pair kind='storage' standby='ua-lun0' primary='ua-hd0' lun='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n…\n<disk type='block' device='disk'>\n  <target dev='sda' bus='scsi'/>\n  <wwn>5000c500a1b2c3d5</wwn>\n  <alias name='ua-lun0'/>\n</disk>",
		Good: "<vfo:pair kind='storage' standby='ua-lun0' primary='ua-hd0' lun='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n…\n<disk type='block' device='disk'>\n  <target dev='sda' bus='scsi'/>\n  <wwn>5000c500a1b2c3d4</wwn>\n  <alias name='ua-lun0'/>\n</disk>",
	},
	check: func(p *pass) {
		for _, l := range storageLegs(p) {
			if l.disk == nil {
				continue
			}
			w := l.disk.Child("wwn")
			lunWWN, of := wwnOfPath(l.lun), fmt.Sprintf("its LUN's WWN %%s (%s)", l.lun)
			if l.standIn != nil {
				lunWWN, of = "", "the WWN %s of the stand-in it pairs with"
				if sw := l.standIn.Child("wwn"); sw != nil {
					lunWWN = normalWWN(sw.Text(p.dom.Doc))
				}
			}
			if w == nil || lunWWN == "" {
				continue
			}
			got := normalWWN(w.Text(p.dom.Doc))
			if got == lunWWN {
				continue
			}
			f := p.at(w, fmt.Sprintf("the storage standby's <wwn> %s differs from "+of+": guest multipath groups by WWID, so the legs become two disks", got, lunWWN))
			p.relatedEl(f, l.at(), "the LUN is recorded here")
			f.Hint = fmt.Sprintf("set <wwn>%s</wwn>, or use device='lun' so the guest sees the LUN's own identity", lunWWN)
		}
	},
}

// wwnOfPath reads the WWN a /dev/disk/by-id name carries: wwn-0xHEX, or scsi-3HEX (NAA).
func wwnOfPath(p string) string {
	b := path.Base(p)
	switch {
	case strings.HasPrefix(b, "wwn-"):
		return normalWWN(b[4:])
	case strings.HasPrefix(b, "scsi-3") && len(b) > 6:
		return normalWWN(b[6:])
	}
	return ""
}

func normalWWN(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.TrimPrefix(s, "0x")
}

var rulePairMetadata = &Rule{
	ID: "VF036", Name: "pair-metadata-mismatch", Severity: Warning, HookSafe: true,
	Summary: "virt-failover's pair metadata does not match the devices",
	Doc: Doc{
		What: "A `<vfo:pair>` in the `<metadata>` that `virt-failover pair` writes names a device the domain does not " +
			"have (and has not parked), or one of the wrong kind, records a MAC or device address the devices do not " +
			"have, has an unknown kind, or names a pool the policy does not define.",
		Why: "The orchestrator and the hook act on the metadata (which leg to unplug, which pool to claim a VF from); " +
			"when it and the devices disagree, they act on the wrong device or not at all. The metadata goes stale when " +
			"someone edits the devices by hand after pairing (the hook's pool claims and the orchestrator's storage legs " +
			"rest on it, docs/failover.md#storage-multipath, docs/failover.md#teaming-migration). A device the " +
			"orchestrator parked is in the metadata, not in `<devices>`, until it is plugged back.",
		Bad:  "<vfo:pair kind='net' standby='ua-sby0' primary='ua-pri0' mac='52:54:00:6d:90:09' pool='fabric'/>\n…\n<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
		Good: "<vfo:pair kind='net' standby='ua-sby0' primary='ua-pri0' mac='52:54:00:6d:90:02' pool='fabric'/>\n…\n<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
	},
	check: func(p *pass) {
		const hint = "run virt-failover pair again, or fix the metadata by hand"
		// primary finds the record's primary among the devices; ok is false, with a finding, when
		// it is neither there nor parked.
		primary := func(mp *metaPair, what string) (*xmlxform.Element, bool) {
			devs := p.dom.Aliases[mp.primary]
			if len(devs) > 0 && mp.primary != "" {
				return devs[0], true
			}
			if p.dom.ParkedFor(mp.primary) != nil {
				return nil, true // unplugged by the orchestrator: VF041 checks its record
			}
			f := p.atAttr(mp.el, "primary", fmt.Sprintf("the pair metadata's %s '%s' is no device of the domain", what, mp.primary))
			f.Hint = hint
			return nil, false
		}
		pool := func(mp *metaPair) {
			if _, ok := p.pol.Pools[mp.pool]; mp.pool != "" && len(p.pol.Pools) > 0 && !ok {
				f := p.atAttr(mp.el, "pool", fmt.Sprintf("the pair metadata names pool '%s', which the policy does not define", mp.pool))
				f.Hint = "define [pools." + mp.pool + "] in the policy, or name one of its pools"
			}
		}
		mac := func(mp *metaPair, s *policy.NIC) {
			if mp.mac != "" && s.MAC != "" && mp.mac != s.MAC {
				f := p.atAttr(mp.el, "mac", fmt.Sprintf("the pair metadata records MAC %s, but standby '%s' has %s", mp.mac, mp.standby, s.MAC))
				p.relatedEl(f, s.El.Child("mac"), "the standby's MAC")
				f.Hint = hint
			}
		}
		hostAddr := func(mp *metaPair, dev *xmlxform.Element) {
			src := ""
			switch {
			case dev.Name.Local == "hostdev" && attr(dev, "type") == "pci", dev.Name.Local == "interface" && attr(dev, "type") == "hostdev":
				src = policy.PCIAddress(policy.ChildPath(dev, "source", "address"))
			}
			if mp.device != "" && src != "" && mp.device != src {
				f := p.atAttr(mp.el, "device", fmt.Sprintf("the pair metadata records device %s, but '%s' assigns %s", mp.device, mp.primary, src))
				p.relatedEl(f, dev, "the device")
				f.Hint = hint
			}
		}
		for _, mp := range p.m.meta {
			switch mp.kind {
			case policy.KindNetPair:
				s := p.dom.NICByAlias(mp.standby)
				if s == nil || s.TeamType != "persistent" {
					f := p.atAttr(mp.el, "standby", fmt.Sprintf("the pair metadata's standby '%s' is no <teaming type='persistent'> interface of the domain", mp.standby))
					f.Hint = hint
				} else {
					mac(mp, s)
				}
				if mp.primary != "" {
					primary(mp, "primary")
				}
				pool(mp)
			case policy.KindBondPair:
				if s := p.dom.NICByAlias(mp.standby); s == nil {
					f := p.atAttr(mp.el, "standby", fmt.Sprintf("the bond's standby '%s' is no <interface> of the domain", mp.standby))
					f.Hint = hint
				} else {
					mac(mp, s) // <teaming> on a bond is VF039's
				}
				if dev, ok := primary(mp, "primary"); ok && dev != nil {
					switch assigned := assignedNIC(p, dev); {
					case dev.Name.Local != "interface" && dev.Name.Local != "hostdev":
						f := p.atAttr(mp.el, "primary", fmt.Sprintf("the bond's primary '%s' is a <%s>, not a NIC", mp.primary, dev.Name.Local))
						f.Hint = hint
					case !assigned && !mp.emulated:
						f := p.atAttr(mp.el, "primary", fmt.Sprintf("the bond's primary '%s' is an emulated NIC: it migrates as it is, and the record does not say emulated='yes' (a stand-in for tests)", mp.primary))
						f.Hint = "pair an assigned NIC (--bond --nic PCIADDR), or mark a stand-in emulated='yes' (pair --bond --emulated-primary writes one)"
					default:
						hostAddr(mp, dev)
					}
				}
				pool(mp)
			case policy.KindStoragePair:
				dev, ok := primary(mp, "assigned leg")
				switch {
				case !ok || dev == nil:
				case mp.emulated && dev.Name.Local != "disk":
					f := p.atAttr(mp.el, "primary", fmt.Sprintf("the pair metadata's stand-in leg '%s' is a <%s>, not an emulated <disk>", mp.primary, dev.Name.Local))
					f.Hint = hint
				case !mp.emulated && (dev.Name.Local != "hostdev" || attr(dev, "type") != "pci"):
					f := p.atAttr(mp.el, "primary", fmt.Sprintf("the pair metadata's assigned leg '%s' is no PCI <hostdev> of the domain", mp.primary))
					f.Hint = hint
				case !mp.emulated:
					hostAddr(mp, dev)
				}
			case policy.KindDetachPair:
				if dev, ok := primary(mp, "device"); ok && dev != nil {
					hostAddr(mp, dev)
				}
				pool(mp)
			default:
				f := p.atAttr(mp.el, "kind", fmt.Sprintf("the pair metadata has kind '%s'; virt-failover knows 'net', 'bond', 'storage' and 'detach'", mp.kind))
				f.Hint = "virt-failover pair writes this metadata; a newer version may know more kinds"
			}
		}
	},
}

// assignedNIC reports whether a NIC device may be assigned: a PCI <hostdev>, an
// <interface type='hostdev'>, an interface on a network the policy lists as a VF pool, or one on
// a network without a <model> (a hostdev network the policy does not list: the definition cannot
// tell).
func assignedNIC(p *pass, dev *xmlxform.Element) bool {
	switch {
	case dev.Name.Local == "hostdev":
		return attr(dev, "type") == "pci"
	case dev.Name.Local == "interface" && attr(dev, "type") == "hostdev":
		return true
	case dev.Name.Local == "interface" && networkOf(dev) != "":
		return p.m.poolNetworks[networkOf(dev)] != "" || dev.Child("model") == nil
	}
	return false
}
