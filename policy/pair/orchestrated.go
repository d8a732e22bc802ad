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
			mac, derived = p.newMAC("emulated-bond:"+strconv.Itoa(indexOf(p.dom.NICs, sbyNIC))), true
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

// pairEmulatedBondNew gives the first virtio <interface> without <teaming> a new emulated e1000e
// bond primary with its MAC and source (--bond --emulated-primary), unless the domain has an
// emulated bond pair already: the stand-in for a VF the guest bonds, for tests.
func (p *planner) pairEmulatedBondNew(recs *records) error {
	for _, pr := range p.plan.Pairs {
		if pr.Emulated && pr.Kind == KindBond {
			return nil
		}
	}
	var cands []*policy.NIC
	var unfit *policy.NIC
	for _, n := range p.dom.NICs {
		virtio := contains(virtioModels, n.Model) || n.Model == "" && (n.Type == "vhostuser" || n.Type == "vdpa")
		if !virtio || n.Teaming != nil || p.claimed[n.El] || p.detached[n.El] {
			continue
		}
		if emulatedBackend(n.Type) != "" {
			if unfit == nil {
				unfit = n
			}
			continue
		}
		cands = append(cands, n)
	}
	if len(cands) == 0 && unfit != nil {
		return p.errorf(unfit.El, "give the domain a virtio <interface> of type network, bridge, user or ethernet: the emulated primary shares its backend",
			"--bond --emulated-primary: the virtio <interface type='%s'> cannot be the standby: %s", unfit.Type, emulatedBackend(unfit.Type))
	}
	if len(cands) == 0 {
		return &Error{Msg: "--bond --emulated-primary: the domain has no virtio <interface> without <teaming> to make the bond's standby",
			Hint: "add an <interface> with <model type='virtio'/>; it becomes the standby the guest bonds with the emulated primary"}
	}
	sby := cands[0]
	if len(cands) > 1 {
		p.warn(sby.El, fmt.Sprintf("--bond --emulated-primary pairs the first virtio <interface> only; %d more are left as they are", len(cands)-1), "")
	}
	p.claimed[sby.El] = true
	sbyAlias, sbyAliasNew, err := p.aliasFor(sby.El, "ua-sby")
	if err != nil {
		return err
	}
	priAlias := p.newAlias("ua-pri")
	var changes []string
	mac, derived := sby.MAC, false
	if mac == "" {
		mac, derived = p.newMAC("emulated-bond:"+strconv.Itoa(indexOf(p.dom.NICs, sby))), true
	}
	if err := p.completeStandby(sby.El, sby, mac, derived, sbyAlias, sbyAliasNew, true, &changes); err != nil {
		return err
	}
	pri := add(elem("interface", "type", sby.Type), elem("mac", "address", mac))
	if src := sby.El.Child("source"); src != nil {
		pri.AddChild(copyElement(src))
	}
	add(pri, elem("model", "type", emulatedModel), elem("alias", "name", priAlias))
	if err := p.insertDevice("interface", p.frag(pri)); err != nil {
		return err
	}
	changes = append(changes, fmt.Sprintf("new emulated bond primary %s (%s, same MAC and source)", priAlias, emulatedModel))
	pool := p.primaryPool(recs, priAlias, "")
	p.addPair(sby.El, Pair{Kind: KindBond, Standby: sbyAlias, Primary: priAlias, Device: emulatedLabel(emulatedModel),
		MAC: mac, Pool: pool, Emulated: true, Changes: changes},
		record{kind: KindBond, standby: sbyAlias, primary: priAlias, mac: mac, pool: pool, emulated: true})
	return nil
}

func emulatedLabel(model string) string {
	return "interface model '" + model + "' (emulated)"
}

// isEmulatedBondPrimary reports whether e is the emulated primary a bond record names.
func (p *planner) isEmulatedBondPrimary(e *xmlxform.Element) bool {
	_, alias := aliasOf(e)
	r := p.dom.RecordFor(alias)
	return policy.IsUserAlias(alias) && r != nil && r.Kind == KindBond && r.Emulated
}
