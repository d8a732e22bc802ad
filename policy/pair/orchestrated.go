package pair

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// The pairs QEMU does not fail over: the orchestrator unplugs their primary before a migration and
// plugs it back after (docs/pair.md#bond, docs/pair.md#detach). Bond pairs, whose standby the guest
// bonds with the primary itself, and devices detached without a standby.

// findDetached marks the devices unplugged for migrations without a standby: those --detach names
// and those a kind='detach' record names.
func (p *planner) findDetached() error {
	names := slices.Clone(p.opt.Detach)
	for _, r := range p.dom.Records {
		if r.Kind == KindDetach && policy.IsUserAlias(r.Primary) && !slices.Contains(names, r.Primary) {
			names = append(names, r.Primary)
		}
	}
	standbys := map[string]string{} // standby alias -> the primary naming it
	for _, r := range p.dom.Records {
		if r.Standby != "" {
			standbys[r.Standby] = r.Primary
		}
	}
	for _, n := range p.dom.NICs {
		if n.Persistent != "" {
			standbys[n.Persistent] = n.Alias
		}
	}
	for _, h := range p.dom.Hostdevs {
		if h.Persistent != "" {
			standbys[h.Persistent] = h.Alias
		}
	}
	for _, a := range names {
		fromFlag := slices.Contains(p.opt.Detach, a)
		owners := p.dom.Aliases[a]
		switch {
		case len(owners) == 0 && fromFlag && p.dom.ParkedFor(a) != nil:
			return &Error{Msg: fmt.Sprintf("--detach %s: the device is parked (unplugged by the orchestrator): the domain does not have it now", a),
				Hint: "pair the definition while the device is plugged in (virt-failover repair plugs it back)"}
		case len(owners) == 0 && fromFlag:
			return &Error{Msg: fmt.Sprintf("--detach %s: no device of the domain has that alias", a),
				Hint: "give the device <alias name='" + a + "'/> first, or name another one"}
		case len(owners) == 0:
			continue // a record of a device the domain does not have (now): left as it is
		case len(owners) > 1:
			return p.errorf(owners[1], "give each device its own alias: libvirt refuses the definition otherwise",
				"alias '%s' is used by %d devices", a, len(owners))
		}
		dev := owners[0]
		switch dev.Name.Local {
		case "hostdev", "interface", "disk":
		default:
			return p.errorf(dev, "--detach names an assigned <hostdev> or <interface type='hostdev'> (or, for tests, an emulated <interface> or <disk>)",
				"--detach %s: a <%s> is no device the orchestrator unplugs", a, dev.Name.Local)
		}
		if r := p.dom.RecordFor(a); r != nil && r.Kind != KindDetach {
			return p.errorf(dev, "--detach is for a device without a standby; this one has its pair, which the orchestrator or QEMU handles",
				"--detach %s: it is the primary of a %s pair", a, r.Kind)
		}
		if pri, ok := standbys[a]; ok {
			return p.errorf(dev, "the standby stays through a migration: detach its primary, or nothing",
				"--detach %s: it is the standby of '%s'", a, pri)
		}
		if tm := dev.Child("teaming"); tm != nil {
			return p.errorf(tm, "remove the <teaming>, or leave the device to QEMU's failover",
				"--detach %s: it has <teaming>: QEMU fails it over", a)
		}
		p.detached[dev] = true
	}
	return nil
}

// pairDetached records each device unplugged for migrations without a standby.
func (p *planner) pairDetached(recs *records) error {
	poolOfNet, poolOfVF := map[string]string{}, map[string]string{}
	for _, name := range sortedKeys(p.pol.Pools) {
		for _, n := range p.pol.Pools[name].Networks {
			poolOfNet[n] = name
		}
		for _, a := range p.pol.Pools[name].Addresses {
			poolOfVF[a] = name
		}
	}
	for _, dev := range p.deviceElements() {
		if !p.detached[dev] {
			continue
		}
		_, alias := aliasOf(dev)
		typ := policy.AttrOf(dev, "type")
		var addr, listed string
		assigned := true
		switch {
		case dev.Name.Local == "hostdev" && typ == "pci":
			addr = policy.PCIAddress(policy.ChildPath(dev, "source", "address"))
			listed = poolOfVF[addr]
		case dev.Name.Local == "hostdev":
		case dev.Name.Local == "interface" && typ == "hostdev":
			addr = policy.PCIAddress(policy.ChildPath(dev, "source", "address"))
			listed = poolOfVF[addr]
		case dev.Name.Local == "interface" && poolOfNet[policy.AttrOf(dev.Child("source"), "network")] != "":
			listed = poolOfNet[policy.AttrOf(dev.Child("source"), "network")] // a hostdev network
		default:
			assigned = false
		}
		label := describe(dev)
		if typ != "" {
			label = fmt.Sprintf("<%s type='%s'>", dev.Name.Local, typ)
		}
		if addr != "" {
			label += " " + addr
		}
		if !assigned {
			p.warn(dev, fmt.Sprintf("%s (%s) is emulated: it migrates as it is, and --detach unplugs it for migrations anyway (a stand-in for an assigned device, for tests)", label, alias), "")
		}
		// A detached device draws from a pool only where its record or the pools say so:
		// [host] default_pool is for NIC primaries.
		pool := listed
		if rec := recs.byPrimary[alias]; rec != nil && policy.AttrOf(rec, "kind") == KindDetach && policy.AttrOf(rec, "pool") != "" {
			pool = policy.AttrOf(rec, "pool")
		}
		p.addPair(dev, Pair{Kind: KindDetach, Primary: alias, Device: label, Host: addr, Pool: pool, Emulated: !assigned},
			record{kind: KindDetach, primary: alias, device: addr, pool: pool, emulated: !assigned})
	}
	return nil
}

// pairEmulatedBondExisting completes the emulated bond pairs the records name: a kind='bond'
// record with emulated='yes' whose primary is an emulated <interface> and whose standby is the
// virtio one.
func (p *planner) pairEmulatedBondExisting(recs *records) error {
	for _, r := range p.dom.Records {
		if r.Kind != KindBond || !r.Emulated || recs.byPrimary[r.Primary] != r.El {
			continue
		}
		pri, sby := p.dom.Aliases[r.Primary], p.dom.Aliases[r.Standby]
		if len(pri) != 1 || len(sby) != 1 || pri[0].Name.Local != "interface" || sby[0].Name.Local != "interface" || pri[0] == sby[0] || p.claimed[sby[0]] {
			continue // lint reports a record that does not match the devices
		}
		p.claimed[sby[0]] = true
		priNIC, sbyNIC := p.nicOf(pri[0]), p.nicOf(sby[0])
		if priNIC.Teaming != nil {
			return p.errorf(priNIC.Teaming, "remove the <teaming>: the guest bonds a bond pair itself",
				"the emulated bond primary '%s' has <teaming type='%s'/>", r.Primary, priNIC.TeamType)
		}
		if priNIC.MAC != "" && sbyNIC.MAC != "" && priNIC.MAC != sbyNIC.MAC {
			return p.errorf(pri[0], "give both the same <mac address>: an active-backup bond keeps one MAC on all its slaves (docs/pair.md#bond)",
				"the emulated bond primary '%s' has MAC %s, its standby '%s' has %s", r.Primary, priNIC.MAC, r.Standby, sbyNIC.MAC)
		}
		var changes []string
		mac, derived := priNIC.MAC, false
		if mac == "" {
			mac = sbyNIC.MAC
		}
		if mac == "" {
			mac, derived = p.newMAC("emulated:"+strconv.Itoa(indexOf(p.dom.NICs, sbyNIC))), true
		}
		if err := p.completeStandby(sby[0], sbyNIC, mac, derived, r.Standby, false, true, &changes); err != nil {
			return err
		}
		if priNIC.MAC == "" {
			if err := p.writeMAC(pri[0], mac); err != nil {
				return err
			}
			changes = append(changes, macPhrase(mac, derived)+" on "+r.Primary)
		}
		pool := p.primaryPool(recs, r.Primary, "")
		p.addPair(pri[0], Pair{Kind: KindBond, Standby: r.Standby, Primary: r.Primary, Device: emulatedLabel(priNIC.Model),
			MAC: mac, Pool: pool, Emulated: true, Changes: changes},
			record{kind: KindBond, standby: r.Standby, primary: r.Primary, mac: mac, pool: pool, emulated: true})
	}
	return nil
}

// emulatedLabel names an emulated primary for messages.
func emulatedLabel(model string) string {
	return "interface model '" + model + "' (emulated)"
}

// isEmulatedBondPrimary reports whether e is the emulated primary a bond record names.
func (p *planner) isEmulatedBondPrimary(e *xmlxform.Element) bool {
	_, alias := aliasOf(e)
	r := p.dom.RecordFor(alias)
	return policy.IsUserAlias(alias) && r != nil && r.Kind == KindBond && r.Emulated
}
