package pair

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Storage pairing (docs/failover.md#storage-multipath): QEMU has no failover for storage, but the guest's
// dm-multipath groups paths by WWID. A virtio-scsi <disk device='lun'> passes the LUN's own
// INQUIRY and VPD data through (scsi-block), so it reports the same WWID as the assigned HBA's
// path to that LUN: the guest sees two paths to one disk. The orchestrator unplugs the assigned
// leg before a migration and plugs one back after; the virtio path carries the I/O meanwhile.

// scsiUnitsPerController is how many addressless SCSI disks libvirt puts on one controller: it
// maps target sdX (index i) to controller i/7, unit i%7 (the narrow SCSI bus).
const scsiUnitsPerController = 7

// virtioSCSIModels are the <controller type='scsi' model> values of a virtio-scsi controller.
var virtioSCSIModels = []string{"virtio-scsi", "virtio-transitional", "virtio-non-transitional"}

// scsiState is where new LUN disks go: the virtio-scsi controller and the free units on it.
type scsiState struct {
	index  int             // the controller's index
	create bool            // the controller is to be added
	units  map[int]bool    // units in use on it
	names  map[string]bool // target devs in use
}

// standIns adds to stores the emulated SCSI disks that stand in for assigned storage devices
// (tests): those --storage names by alias, and those a storage record with emulated='yes' names.
// Each keeps the LUN the option or its record gives. The result is in device order.
func (p *planner) standIns(stores []*storePrimary) ([]*storePrimary, error) {
	luns := map[string]string{}
	var order []string
	for _, r := range p.dom.Records {
		if r.Kind == KindStorage && r.Emulated && policy.IsUserAlias(r.Primary) && luns[r.Primary] == "" && r.LUN != "" {
			luns[r.Primary] = r.LUN
			order = append(order, r.Primary)
		}
	}
	for _, s := range p.opt.Storage {
		if !policy.IsUserAlias(s.Device) {
			continue
		}
		if _, ok := luns[s.Device]; !ok {
			order = append(order, s.Device)
		}
		luns[s.Device] = s.LUN
	}
	for _, alias := range order {
		owners := p.dom.Aliases[alias]
		fromFlag := slices.ContainsFunc(p.opt.Storage, func(s policy.Storage) bool { return s.Device == alias })
		switch {
		case len(owners) == 0 && !fromFlag:
			continue // a record of a disk the domain does not have (now): left as it is
		case len(owners) != 1 || owners[0].Name.Local != "disk":
			return nil, &Error{Msg: fmt.Sprintf("--storage %s: the domain has no <disk> with that alias to stand in for an assigned storage device", alias),
				Hint: "give DEVICE=LUNPATH with the PCI address of an assigned device, or the user alias of an emulated SCSI <disk> (for tests)"}
		}
		disk := owners[0]
		label := "disk " + alias + " (emulated stand-in)"
		if bus := policy.AttrOf(disk.Child("target"), "bus"); bus != "scsi" {
			return nil, p.errorf(disk, "give the stand-in <target bus='scsi'/>: dm-multipath pairs paths by their SCSI identity",
				"%s is on bus '%s', not SCSI", label, bus)
		}
		if disk.Child("wwn") == nil {
			return nil, p.errorf(disk, "give the stand-in a <wwn> (and a <serial>): pair copies them onto its virtio-scsi path, so both report one WWID to the guest's dm-multipath",
				"%s has no <wwn>", label)
		}
		p.claimed[disk] = true // never its own path
		stores = append(stores, &storePrimary{el: disk, lun: luns[alias], standIn: alias})
	}
	slices.SortStableFunc(stores, func(a, b *storePrimary) int { return a.el.Start.Start - b.el.Start.Start })
	return stores, nil
}

// pairStorage gives every assigned storage device a virtio-scsi path to its LUN.
func (p *planner) pairStorage(stores []*storePrimary, recs *records) error {
	var scsi *scsiState
	// A stand-in's own controller is its "HBA": its path goes on another one.
	own := map[int]bool{}
	for _, s := range stores {
		if s.standIn != "" {
			own[p.controllerOf(s.el)] = true
		}
	}
	for _, s := range stores {
		if s.standIn != "" {
			if err := p.pairStandIn(s, recs, &scsi, own); err != nil {
				return err
			}
			continue
		}
		label := "hostdev " + s.hd.Source
		if isNVMe(s.lun) {
			return p.errorf(s.el, "keep the NVMe device off the migration path: use <disk type='nvme'> (QEMU's own NVMe driver, migratable) instead of assigning it, or detach it before migrating",
				"%s: NVMe passthrough cannot be paired with a virtio-scsi path: an NVMe namespace's IDs (EUI-64, NGUID) never match the WWID of a SCSI path, so the guest's dm-multipath would see two disks, not two paths to one (LUN %s)",
				label, s.lun)
		}
		var changes []string
		priAlias, priNew, err := p.aliasFor(s.el, "ua-hd")
		if err != nil {
			return err
		}
		if priNew {
			if err := p.writeAlias(s.el, priAlias, laterThanAlias); err != nil {
				return err
			}
			changes = append(changes, "alias "+priAlias)
		}
		disk := p.findLUNDisk(priAlias, s.lun, "", recs)
		var sbyAlias string
		if disk != nil {
			p.claimed[disk] = true
			var sbyNew bool
			if sbyAlias, sbyNew, err = p.aliasFor(disk, "ua-lun"); err != nil {
				return err
			}
			if sbyNew {
				if err := p.writeAlias(disk, sbyAlias, []string{"address"}); err != nil {
					return err
				}
				changes = append(changes, "alias "+sbyAlias+" on the LUN disk")
			}
		} else {
			if scsi == nil {
				scsi = p.scsiState(own)
			}
			dev, ok := scsi.next()
			if !ok {
				return p.errorf(s.el, "free a unit on that controller, or give the domain another virtio-scsi controller",
					"%s: virtio-scsi controller %d has no free unit for a new disk", label, scsi.index)
			}
			sbyAlias = p.newAlias("ua-lun")
			disk := add(elem("disk", "type", "block", "device", "lun"),
				elem("driver", "name", "qemu", "type", "raw", "cache", "none", "io", "native"),
				elem("source", "dev", s.lun),
				elem("target", "dev", dev, "bus", "scsi"),
				elem("alias", "name", sbyAlias))
			if err := p.insertDevice("disk", p.frag(disk)); err != nil {
				return err
			}
			changes = append(changes, fmt.Sprintf("new virtio-scsi LUN disk %s (%s) on %s", sbyAlias, dev, s.lun))
		}
		p.addPair(s.el, Pair{Kind: KindStorage, Standby: sbyAlias, Primary: priAlias, Device: label, Host: s.hd.Source,
			LUN: s.lun, Changes: changes},
			record{kind: KindStorage, standby: sbyAlias, primary: priAlias, device: s.hd.Source, lun: s.lun})
	}
	if scsi != nil && scsi.create {
		ctl := elem("controller", "type", "scsi", "index", strconv.Itoa(scsi.index), "model", "virtio-scsi")
		if err := p.insertDevice("controller", p.frag(ctl)); err != nil {
			return err
		}
		for i := range p.plan.Pairs {
			if pr := &p.plan.Pairs[i]; pr.Kind == KindStorage && len(pr.Changes) > 0 {
				pr.Changes = append(pr.Changes, fmt.Sprintf("new virtio-scsi controller %d", scsi.index))
				break
			}
		}
	}
	return nil
}

// findLUNDisk returns the disk that is already the virtio path of a storage primary: the one its
// record names, else a <disk device='lun'> on the same LUN, else (wwn, for a stand-in: its <wwn>)
// a <disk device='disk'> on the same LUN with that WWN, the path pairStandIn makes.
func (p *planner) findLUNDisk(priAlias, lun, wwn string, recs *records) *xmlxform.Element {
	if rec := recs.byPrimary[priAlias]; rec != nil && policy.AttrOf(rec, "kind") == KindStorage {
		if owners := p.dom.Aliases[policy.AttrOf(rec, "standby")]; len(owners) == 1 && owners[0].Name.Local == "disk" && !p.claimed[owners[0]] {
			return owners[0]
		}
	}
	for _, d := range p.devicesNamed("disk") {
		if policy.AttrOf(d.Child("source"), "dev") != lun || p.claimed[d] {
			continue
		}
		switch dev, _ := d.Attr("device"); {
		case dev == "lun":
			return d
		case dev == "disk" && wwn != "" && d.Child("wwn") != nil && strings.TrimSpace(d.Child("wwn").Text(p.doc)) == wwn:
			return d
		}
	}
	return nil
}

// pairStandIn gives an emulated SCSI disk standing in for an assigned storage device a virtio-scsi
// path to the same LUN with its identity: a device='disk' (scsi-hd) with the stand-in's <wwn> and
// <serial>, on a controller other than the stand-in's. device='lun' passes the LUN's own identity
// through only from a SCSI device (SG_IO), which a loop device or an image is not.
func (p *planner) pairStandIn(s *storePrimary, recs *records, scsi **scsiState, own map[int]bool) error {
	label := "disk " + s.standIn + " (emulated stand-in)"
	var changes []string
	disk := p.findLUNDisk(s.standIn, s.lun, strings.TrimSpace(s.el.Child("wwn").Text(p.doc)), recs)
	var sbyAlias string
	if disk != nil {
		p.claimed[disk] = true
		var sbyNew bool
		var err error
		if sbyAlias, sbyNew, err = p.aliasFor(disk, "ua-lun"); err != nil {
			return err
		}
		if sbyNew {
			if err := p.writeAlias(disk, sbyAlias, []string{"address"}); err != nil {
				return err
			}
			changes = append(changes, "alias "+sbyAlias+" on the path disk")
		}
	} else {
		if *scsi == nil {
			*scsi = p.scsiState(own)
		}
		dev, ok := (*scsi).next()
		if !ok {
			return p.errorf(s.el, "free a unit on that controller, or give the domain another virtio-scsi controller",
				"%s: virtio-scsi controller %d has no free unit for a new disk", label, (*scsi).index)
		}
		sbyAlias = p.newAlias("ua-lun")
		d := add(elem("disk", "type", "block", "device", "disk"),
			elem("driver", "name", "qemu", "type", "raw", "cache", "none", "io", "native"),
			elem("source", "dev", s.lun),
			elem("target", "dev", dev, "bus", "scsi"))
		for _, id := range []string{"serial", "wwn"} {
			if e := s.el.Child(id); e != nil {
				c := elem(id)
				c.SetText(e.Text(p.doc))
				d.AddChild(c)
			}
		}
		d.AddChild(elem("alias", "name", sbyAlias))
		if err := p.insertDevice("disk", p.frag(d)); err != nil {
			return err
		}
		changes = append(changes, fmt.Sprintf("new virtio-scsi path disk %s (%s) on %s with the stand-in's WWN", sbyAlias, dev, s.lun))
	}
	p.addPair(s.el, Pair{Kind: KindStorage, Standby: sbyAlias, Primary: s.standIn, Device: "emulated SCSI disk (a stand-in)", LUN: s.lun, Emulated: true, Changes: changes},
		record{kind: KindStorage, standby: sbyAlias, primary: s.standIn, lun: s.lun, emulated: true})
	return nil
}

// controllerOf returns the index of the SCSI controller a disk is on: its drive address's, else
// the one libvirt assigns from its target name (sdX index / 7).
func (p *planner) controllerOf(disk *xmlxform.Element) int {
	if a := disk.Child("address"); a != nil && policy.AttrOf(a, "type") == "drive" {
		if c, err := strconv.Atoi(orZero(policy.AttrOf(a, "controller"))); err == nil {
			return c
		}
	}
	if i, ok := diskIndex(policy.AttrOf(disk.Child("target"), "dev")); ok {
		return i / scsiUnitsPerController
	}
	return 0
}

// scsiState finds the virtio-scsi controller (or the index of a new one) and the units and
// target names in use. Controllers in avoid are not taken (a stand-in's own).
func (p *planner) scsiState(avoid map[int]bool) *scsiState {
	s := &scsiState{index: -1, units: map[int]bool{}, names: map[string]bool{}}
	used := map[int]bool{}
	var missing []*xmlxform.Element // controllers without an index: libvirt numbers them
	var virtios []*xmlxform.Element
	index := map[*xmlxform.Element]int{}
	for _, c := range p.devicesNamed("controller") {
		if t, _ := c.Attr("type"); t != "scsi" {
			continue
		}
		if v, ok := c.Attr("index"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				used[n] = true
				index[c] = n
			}
		} else {
			missing = append(missing, c)
		}
		if m, _ := c.Attr("model"); contains(virtioSCSIModels, m) {
			virtios = append(virtios, c)
		}
	}
	// Disks: target names, and the controller and unit of each SCSI disk.
	type slot struct{ ctl, unit int }
	var slots []slot
	for _, d := range p.devicesNamed("disk") {
		t := d.Child("target")
		dev := policy.AttrOf(t, "dev")
		if dev != "" {
			s.names[dev] = true
		}
		if policy.AttrOf(t, "bus") != "scsi" {
			continue
		}
		if a := d.Child("address"); a != nil && policy.AttrOf(a, "type") == "drive" {
			c, err1 := strconv.Atoi(orZero(policy.AttrOf(a, "controller")))
			u, err2 := strconv.Atoi(orZero(policy.AttrOf(a, "unit")))
			if err1 == nil && err2 == nil && orZero(policy.AttrOf(a, "bus")) == "0" && orZero(policy.AttrOf(a, "target")) == "0" {
				slots = append(slots, slot{c, u})
			}
		} else if i, ok := diskIndex(dev); ok {
			slots = append(slots, slot{i / scsiUnitsPerController, i % scsiUnitsPerController})
		}
	}
	for _, h := range p.devicesNamed("hostdev") {
		if a := h.Child("address"); a != nil && policy.AttrOf(a, "type") == "drive" {
			c, err1 := strconv.Atoi(orZero(policy.AttrOf(a, "controller")))
			u, err2 := strconv.Atoi(orZero(policy.AttrOf(a, "unit")))
			if err1 == nil && err2 == nil {
				slots = append(slots, slot{c, u})
			}
		}
	}
	for _, sl := range slots {
		used[sl.ctl] = true
	}
	free := func() int {
		for i := 0; ; i++ {
			if !used[i] {
				used[i] = true
				return i
			}
		}
	}
	for _, c := range missing {
		index[c] = free()
	}
	var virtio *xmlxform.Element
	for _, c := range virtios {
		if !avoid[index[c]] {
			virtio = c
			break
		}
	}
	if virtio != nil {
		s.index = index[virtio]
	} else {
		s.index, s.create = free(), true
	}
	for _, sl := range slots {
		if sl.ctl == s.index {
			s.units[sl.unit] = true
		}
	}
	return s
}

// next gives out the target dev of a new disk on the controller.
func (s *scsiState) next() (string, bool) {
	for u := 0; u < scsiUnitsPerController; u++ {
		name := diskName(s.index*scsiUnitsPerController + u)
		if !s.units[u] && !s.names[name] {
			s.units[u] = true
			s.names[name] = true
			return name, true
		}
	}
	return "", false
}

// diskIndex parses a SCSI target name: sda is 0, sdz 25, sdaa 26.
func diskIndex(dev string) (int, bool) {
	rest, ok := strings.CutPrefix(dev, "sd")
	if !ok || rest == "" || len(rest) > 4 {
		return 0, false
	}
	n := 0
	for _, c := range rest {
		if c < 'a' || c > 'z' {
			return 0, false
		}
		n = n*26 + int(c-'a') + 1
	}
	return n - 1, true
}

// diskName is the SCSI target name of index i.
func diskName(i int) string {
	var b []byte
	for n := i + 1; n > 0; n = (n - 1) / 26 {
		b = append([]byte{byte('a' + (n-1)%26)}, b...)
	}
	return "sd" + string(b)
}

// orZero reads a drive address attribute (decimal): absent is 0.
func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// isNVMe reports whether a LUN path names an NVMe namespace (/dev/nvme0n1,
// /dev/disk/by-id/nvme-eui.*, .../by-path/pci-...-nvme-1).
func isNVMe(lun string) bool {
	return strings.Contains(path.Base(lun), "nvme")
}
