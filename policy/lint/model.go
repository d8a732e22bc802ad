package lint

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// model is what several rules need to know about one domain, worked out once: the failover pairs
// (from <teaming> and from <qemu:override> failover_pair_id), virt-failover's pair metadata, the
// PCI controllers and the policy's pools.
type model struct {
	standbys   []*policy.NIC           // interfaces with <teaming type='persistent'/>
	transients []*transient            // every primary, in document order
	byStandby  map[string][]*transient // primaries by the standby alias they name
	meta       []*metaPair
	// PCI controllers by index.
	controllers map[int]*xmlxform.Element
	// The policy's pool resources: network name -> pool, VF address -> pool.
	poolNetworks, poolAddrs map[string]string
	// Storage LUN paths of the policy's [[storage]] entries by device address.
	storageLUN map[string]string
}

// transient is a failover primary: a device that names its standby by alias.
type transient struct {
	el  *xmlxform.Element // the <interface> or <hostdev>
	nic *policy.NIC       // set for an <interface>
	hd  *policy.Hostdev   // set for a <hostdev>
	// via is where the pairing is written: the <teaming> element, or the <qemu:property
	// name='failover_pair_id'> of an emulated primary.
	via        *xmlxform.Element
	emulated   bool   // paired through <qemu:override> (QEMU's failover_pair_id)
	persistent string // the standby alias it names
	alias      string
}

// pairAttr is the attribute that names the standby: teaming/@persistent or property/@value.
func (t *transient) pairAttr() string {
	if t.emulated {
		return "value"
	}
	return "persistent"
}

// metaPair is one <vfo:pair> of virt-failover's metadata.
type metaPair struct {
	el                                        *xmlxform.Element
	kind, standby, primary, mac, pool, device string
	lun                                       string
	emulated                                  bool // emulated='yes': a stand-in for the assigned device
}

// orchestrated reports whether the orchestrator unplugs the pair's primary for migrations: a bond
// primary, a storage leg, a detached device (docs/metadata.md). A net pair's is QEMU's to unplug.
func (mp *metaPair) orchestrated() bool {
	return mp.kind == policy.KindBondPair || mp.kind == policy.KindStoragePair || mp.kind == policy.KindDetachPair
}

// describe says what the record makes of its primary, for messages: "bond pair with standby
// 'ua-sby0'", "a device unplugged for migrations".
func (mp *metaPair) describe() string {
	if mp.kind == policy.KindDetachPair || mp.standby == "" {
		return "a device the orchestrator unplugs for migrations"
	}
	return fmt.Sprintf("%s pair with standby '%s'", mp.kind, mp.standby)
}

func buildModel(d *policy.Domain, pol *policy.Policy) *model {
	m := &model{byStandby: map[string][]*transient{}, controllers: map[int]*xmlxform.Element{}}
	paired := map[*xmlxform.Element]bool{}
	for _, n := range d.NICs {
		switch n.TeamType {
		case "persistent":
			m.standbys = append(m.standbys, n)
		case "transient":
			m.addTransient(&transient{el: n.El, nic: n, via: n.Teaming, persistent: n.Persistent, alias: n.Alias})
			paired[n.El] = true
		}
	}
	for _, h := range d.Hostdevs {
		if h.TeamType == "transient" {
			m.addTransient(&transient{el: h.El, hd: h, via: h.Teaming, persistent: h.Persistent, alias: h.Alias})
			paired[h.El] = true
		}
	}
	for alias, prop := range d.PairIDs {
		devs := d.Aliases[alias]
		if len(devs) == 0 || paired[devs[0]] {
			continue
		}
		t := &transient{el: devs[0], via: prop, emulated: true, persistent: attr(prop, "value"), alias: alias}
		for _, n := range d.NICs {
			if n.El == devs[0] {
				t.nic = n
			}
		}
		for _, h := range d.Hostdevs {
			if h.El == devs[0] {
				t.hd = h
			}
		}
		m.addTransient(t)
	}
	// PairIDs is a map: put the primaries back in document order.
	sortByOffset(m.transients)
	for k, ts := range m.byStandby {
		sortByOffset(ts)
		m.byStandby[k] = ts
	}
	if d.Devices != nil {
		for _, c := range d.Devices.ChildrenNamed("controller") {
			if attr(c, "type") != "pci" {
				continue
			}
			if i, ok := parseUint(attr(c, "index"), 10); ok {
				m.controllers[i] = c
			}
		}
	}
	for _, r := range d.Records {
		m.meta = append(m.meta, &metaPair{el: r.El, kind: r.Kind, standby: r.Standby, primary: r.Primary,
			mac: r.MAC, pool: r.Pool, device: r.Device, lun: r.LUN, emulated: r.Emulated})
	}
	if pol != nil {
		m.poolNetworks, m.poolAddrs, m.storageLUN = map[string]string{}, map[string]string{}, map[string]string{}
		for name, p := range pol.Pools {
			for _, n := range p.Networks {
				m.poolNetworks[n] = name
			}
			for _, a := range p.Addresses {
				m.poolAddrs[a] = name
			}
		}
		for _, s := range pol.Storage {
			m.storageLUN[s.Device] = s.LUN
		}
	}
	return m
}

func (m *model) addTransient(t *transient) {
	m.transients = append(m.transients, t)
	if t.persistent != "" {
		m.byStandby[t.persistent] = append(m.byStandby[t.persistent], t)
	}
}

// partners returns the primaries of the standby n (by its alias).
func (m *model) partners(n *policy.NIC) []*transient {
	if n.Alias == "" {
		return nil
	}
	return m.byStandby[n.Alias]
}

// standbyOf returns the standby interface a primary names, if it is one.
func (m *model) standbyOf(d *policy.Domain, t *transient) *policy.NIC {
	n := d.NICByAlias(t.persistent)
	if n == nil || n.TeamType != "persistent" {
		return nil
	}
	return n
}

// metaFor returns the metadata pair whose primary is alias, if any.
func (m *model) metaFor(alias string) *metaPair {
	if alias == "" {
		return nil
	}
	for _, p := range m.meta {
		if p.primary == alias {
			return p
		}
	}
	return nil
}

// networkOf returns the libvirt network an <interface> uses: source/@network (also in the live
// form, where libvirt writes the actual type, like type='bridge', with network= kept).
func networkOf(e *xmlxform.Element) string { return attr(e.Child("source"), "network") }

func sortByOffset(ts []*transient) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].el.Start.Start < ts[j-1].el.Start.Start; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// attr returns an attribute of e, "" when e is nil or has none.
func attr(e *xmlxform.Element, name string) string {
	if e == nil {
		return ""
	}
	v, _ := e.Attr(name)
	return v
}

// guestPCI returns the guest PCI bus and slot of a device (its <address type='pci'>), read as
// libvirt reads them (virPCIDeviceAddressParseXML: base 0, so bus='0x10', bus='16' and
// bus='020' are one bus). An absent bus or slot is 0.
func guestPCI(e *xmlxform.Element) (bus, slot int, ok bool) {
	a := e.Child("address")
	if a == nil || attr(a, "type") != "pci" {
		return 0, 0, false
	}
	num := func(name string) (int, bool) {
		v, ok := a.Attr(name)
		if !ok {
			return 0, true
		}
		return parseUint(v, 0)
	}
	bus, ok1 := num("bus")
	slot, ok2 := num("slot")
	return bus, slot, ok1 && ok2
}

// parseUint reads an unsigned number attribute as libvirt does (virStrToLong_uip, C's strtoul
// over the whole value): optional leading blanks and '+', then digits of base; base 16 may
// start with "0x", and base 0 reads "0x…" as hex, "0…" as octal and anything else as decimal.
// libvirt reads PCI addresses in base 0 and indexes (controller index=, drive controller=) in
// base 10, so "010" is 8 in one place and 10 in the other.
func parseUint(s string, base int) (int, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	s = strings.TrimPrefix(s, "+")
	hexPrefix := len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')
	switch {
	case (base == 0 || base == 16) && hexPrefix:
		s, base = s[2:], 16
	case base == 0 && len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	case base == 0:
		base = 10
	}
	if s == "" || s[0] == '+' || s[0] == '-' || strings.ContainsRune(s, '_') {
		return 0, false
	}
	v, err := strconv.ParseUint(s, base, 31)
	return int(v), err == nil
}

// describeDevice renders a device's start for messages: "<interface type='hostdev'>".
func describeDevice(e *xmlxform.Element) string {
	if t, ok := e.Attr("type"); ok {
		return "<" + e.QName + " type='" + t + "'>"
	}
	return "<" + e.QName + ">"
}

// virtioModel reports whether an interface model is virtio-net. libvirt compares model names
// without regard to case (virDomainNetSetModelString), so 'VirtIO' is virtio too.
func virtioModel(m string) bool {
	return strings.EqualFold(m, "virtio") || strings.EqualFold(m, "virtio-transitional") ||
		strings.EqualFold(m, "virtio-non-transitional")
}

// defaultModelIsVirtio reports whether libvirt's QEMU driver makes an <interface> without
// <model> a virtio-net (qemuDomainDefaultNetModel): on s390, and on the ARM and RISC-V 'virt'
// machines. Elsewhere the default is rtl8139 or e1000, whatever QEMU offers first.
func defaultModelIsVirtio(d *policy.Domain) bool {
	arch := attr(policy.ChildPath(d.Root, "os", "type"), "arch")
	virt := d.Machine == "virt" || strings.HasPrefix(d.Machine, "virt-")
	switch arch {
	case "s390", "s390x":
		return true
	case "armv6l", "armv7l", "aarch64", "riscv32", "riscv64":
		return virt
	}
	return false
}
