package pair

import (
	"fmt"
	"slices"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// nicPrimary is an assigned NIC that is, or is to be, the transient side of a pair.
type nicPrimary struct {
	el    *xmlxform.Element
	nic   *policy.NIC     // an <interface>
	hd    *policy.Hostdev // a plain PCI <hostdev>
	host  string          // host address the stable MAC derives from
	pool  string          // the pool listing its network or VF; "" for none
	label string          // for messages

	standby  *xmlxform.Element // the existing standby, when there is one
	newAlias string            // the alias a new standby takes (from teaming persistent=)
	// bond: the guest bonds primary and standby in software (--bond, or a kind='bond' record):
	// neither carries <teaming>.
	bond bool
}

// storePrimary is an assigned storage device, or an emulated SCSI <disk> standing in for one.
type storePrimary struct {
	el      *xmlxform.Element
	hd      *policy.Hostdev // nil for a stand-in
	lun     string
	standIn string // the stand-in <disk>'s user alias; "" for an assigned device
}

// virtioModels are the <model type> values of a virtio-net device.
var virtioModels = []string{"virtio", "virtio-transitional", "virtio-non-transitional"}

// classify finds the NIC primaries and the storage devices of the domain, in device order.
func (p *planner) classify() ([]*nicPrimary, []*storePrimary, error) {
	poolOfNet := map[string]string{}
	poolOfVF := map[string]string{}
	for _, name := range sortedKeys(p.pol.Pools) {
		for _, n := range p.pol.Pools[name].Networks {
			poolOfNet[n] = name
		}
		for _, a := range p.pol.Pools[name].Addresses {
			poolOfVF[a] = name
		}
	}
	storage := map[string]string{}
	for _, s := range p.pol.Storage {
		storage[s.Device] = s.LUN
	}
	for _, s := range p.opt.Storage {
		storage[s.Device] = s.LUN
	}
	nicFlag := map[string]bool{}
	for _, a := range p.opt.NICs {
		nicFlag[a] = true
	}
	// bondRecord: the primary alias has a kind='bond' record, so it is bonded whatever the flags say.
	bondRecord := func(alias string) bool {
		r := p.dom.RecordFor(alias)
		return policy.IsUserAlias(alias) && r != nil && r.Kind == KindBond
	}
	seen := map[string]bool{}
	nics := map[*xmlxform.Element]*policy.NIC{}
	for _, n := range p.dom.NICs {
		nics[n.El] = n
	}
	hds := map[*xmlxform.Element]*policy.Hostdev{}
	for _, h := range p.dom.Hostdevs {
		hds[h.El] = h
	}

	var prims []*nicPrimary
	var stores []*storePrimary
	netCount := map[string]int{}
	for _, dev := range p.deviceElements() {
		switch dev.Name.Local {
		case "interface":
			n := nics[dev]
			if _, emulated := p.dom.PairIDs[n.Alias]; emulated && n.Alias != "" {
				continue // the emulated primary of a pair (--emulated-primary)
			}
			if p.detached[n.El] {
				continue // unplugged for migrations, without a standby (--detach)
			}
			if p.isEmulatedBondPrimary(dev) {
				continue // the emulated stand-in of a bond pair (--bond --emulated-primary)
			}
			var pr *nicPrimary
			switch n.Type {
			case "hostdev":
				src := policy.ChildPath(dev, "source", "address")
				if _, err := policy.ReadPCIAddress(src); src != nil && err != nil {
					if err := p.unreadableAddress(dev, "<interface type='hostdev'>", n.Teaming != nil, err); err != nil {
						return nil, nil, err
					}
					continue
				}
				addr := policy.PCIAddress(src)
				seen[addr] = true
				pr = &nicPrimary{el: dev, nic: n, host: "pci:" + addr, pool: poolOfVF[addr],
					label: "interface type='hostdev' " + addr, bond: p.opt.Bond && nicFlag[addr] || bondRecord(n.Alias)}
				if addr == "" {
					pr.host = fmt.Sprintf("interface:%d", len(prims))
					pr.label = "interface type='hostdev'"
				}
			case "network":
				// A primary on a pool network, or one teamed already (a hostdev network the
				// policy does not list).
				net := policy.AttrOf(dev.Child("source"), "network")
				pool, ok := poolOfNet[net]
				if !ok && n.TeamType != "transient" || n.TeamType == "persistent" {
					continue
				}
				pr = &nicPrimary{el: dev, nic: n, host: fmt.Sprintf("network:%s#%d", net, netCount[net]), pool: pool,
					label: fmt.Sprintf("interface type='network' network '%s'", net), bond: bondRecord(n.Alias)}
				netCount[net]++
			default:
				continue
			}
			switch {
			case pr.bond && n.Teaming != nil:
				return nil, nil, p.errorf(n.Teaming, "remove the <teaming>: the guest bonds a bond pair itself, and <teaming> would make its virtio NIC a net_failover master that takes the VF away from the bond",
					"%s is a bond primary (--bond, or its record) and has <teaming type='%s'/>", pr.label, n.TeamType)
			case pr.bond:
				prims = append(prims, pr)
				continue
			}
			switch n.TeamType {
			case "", "transient":
				prims = append(prims, pr)
			case "none":
				p.warn(dev, fmt.Sprintf("%s has <teaming type='none'/>: left unpaired", pr.label),
					"remove the <teaming> element to have it paired")
			default:
				return nil, nil, p.errorf(n.Teaming, "an assigned NIC is the transient side: <teaming type='transient' persistent='ALIAS'/>, ALIAS the virtio standby's",
					"%s has <teaming type='%s'/>", pr.label, n.TeamType)
			}
		case "hostdev":
			h := hds[dev]
			if h.Mode != "" && h.Mode != "subsystem" || h.Type != "pci" {
				continue
			}
			if h.Source == "" {
				_, err := policy.ReadPCIAddress(policy.ChildPath(dev, "source", "address"))
				if err := p.unreadableAddress(dev, "PCI <hostdev>", h.Teaming != nil, err); err != nil {
					return nil, nil, err
				}
				continue
			}
			seen[h.Source] = true
			lun, isStore := storage[h.Source]
			bond := p.opt.Bond && nicFlag[h.Source] || bondRecord(h.Alias)
			isNIC := nicFlag[h.Source] || h.Teaming != nil || bond
			label := "hostdev " + h.Source
			switch {
			case p.detached[dev] && (isStore || isNIC):
				return nil, nil, p.errorf(dev, "a device is unplugged for migrations without a standby (--detach), or paired: not both",
					"%s is marked both for --detach and as a NIC or storage device", label)
			case p.detached[dev]:
				continue
			case isStore && isNIC:
				return nil, nil, p.errorf(dev, "a device is a NIC (--nic, <teaming>) or storage ([[storage]], --storage), not both",
					"%s is marked both as a NIC and as a storage device", label)
			case isStore:
				stores = append(stores, &storePrimary{el: dev, hd: h, lun: lun})
			case bond && h.Teaming != nil:
				return nil, nil, p.errorf(h.Teaming, "remove the <teaming>: the guest bonds a bond pair itself, and <teaming> would make its virtio NIC a net_failover master that takes the VF away from the bond",
					"%s is a bond primary (--bond, or its record) and has <teaming type='%s'/>", label, h.TeamType)
			case bond:
				prims = append(prims, &nicPrimary{el: dev, hd: h, host: "pci:" + h.Source, pool: poolOfVF[h.Source], label: label, bond: true})
			case isNIC:
				if h.TeamType != "" && h.TeamType != "transient" {
					return nil, nil, p.errorf(h.Teaming, "a <hostdev> can only be the transient side: <teaming type='transient' persistent='ALIAS'/>",
						"%s has <teaming type='%s'/>", label, h.TeamType)
				}
				prims = append(prims, &nicPrimary{el: dev, hd: h, host: "pci:" + h.Source, pool: poolOfVF[h.Source], label: label})
			default:
				p.warn(dev, label+" is neither a NIC nor a storage device this run knows of: left alone (libvirt refuses to migrate a domain with it)",
					"give --nic "+h.Source+" if it is a NIC, or list it in [[storage]] (or --storage) if it is a storage device; --detach ALIAS has the orchestrator unplug it for migrations")
			}
		}
	}
	for _, a := range p.opt.NICs {
		if !seen[a] {
			return nil, nil, &Error{Msg: fmt.Sprintf("--nic %s: the domain has no PCI <hostdev> or <interface type='hostdev'> with that host address", a),
				Hint: "give the host address of the device's <source><address>, as lspci -D shows it"}
		}
	}
	for _, s := range p.opt.Storage {
		if policy.IsUserAlias(s.Device) {
			continue // a stand-in, by alias (standIns)
		}
		if !seen[s.Device] {
			return nil, nil, &Error{Msg: fmt.Sprintf("--storage %s: the domain has no PCI <hostdev> with that host address", s.Device),
				Hint: "give the host address of the storage device's <hostdev><source><address>"}
		}
	}
	return prims, stores, nil
}

// unreadableAddress deals with an assigned device (what: "PCI <hostdev>") whose host <address>
// libvirt would not read (why): a teamed one is refused, another is left alone with a warning.
func (p *planner) unreadableAddress(dev *xmlxform.Element, what string, teamed bool, why error) error {
	hint := "failover takes a PCI device (a VF): give its <source> the host address lspci -D shows, like <address type='pci' domain='0x0000' bus='0x03' slot='0x02' function='0x1'/>"
	if teamed {
		return p.errorf(dev, hint, "a teamed %s has no host PCI address libvirt reads: %v", what, why)
	}
	p.warn(dev, fmt.Sprintf("a %s without a host PCI address libvirt reads (%v): left alone", what, why), hint)
	return nil
}

// deviceElements returns the children of <devices> in no namespace.
func (p *planner) deviceElements() []*xmlxform.Element {
	if p.dom.Devices == nil {
		return nil
	}
	var out []*xmlxform.Element
	for _, c := range p.dom.Devices.Children {
		if c.Name.Space == "" {
			out = append(out, c)
		}
	}
	return out
}

// pairNICs finds or adds the standby of every NIC primary and completes both devices.
func (p *planner) pairNICs(prims []*nicPrimary, recs *records) error {
	isPrimary := map[*xmlxform.Element]bool{}
	for _, pr := range prims {
		isPrimary[pr.el] = true
	}
	newNames := map[string]*nicPrimary{}
	claim := func(pr *nicPrimary, sby *xmlxform.Element) error {
		if p.claimed[sby] {
			_, name := aliasOf(sby)
			return p.errorf(pr.el, "a standby has one primary: give each primary its own standby (QEMU refuses a second primary)",
				"%s and another device both team with the standby '%s'", pr.label, name)
		}
		p.claimed[sby] = true
		pr.standby = sby
		return nil
	}
	// The standby the primary's teaming names.
	for _, pr := range prims {
		if pr.bond {
			continue
		}
		x := p.persistentOf(pr)
		if x == "" {
			continue
		}
		switch owners := p.dom.Aliases[x]; {
		case len(owners) > 1:
			return p.errorf(pr.el, "give each device its own alias: libvirt refuses the definition otherwise",
				"%s teams with '%s', an alias %d devices have", pr.label, x, len(owners))
		case len(owners) == 1:
			o := owners[0]
			if o.Name.Local != "interface" || isPrimary[o] {
				return p.errorf(pr.el, "persistent= names the alias of the virtio standby <interface>",
					"%s teams with '%s', which is the alias of %s", pr.label, x, describe(o))
			}
			if err := claim(pr, o); err != nil {
				return err
			}
		case policy.IsUserAlias(x) && !p.pairIDValues[x]:
			if other := newNames[x]; other != nil {
				return p.errorf(pr.el, "a standby has one primary: give each primary its own standby",
					"%s and %s both team with '%s'", other.label, pr.label, x)
			}
			newNames[x] = pr
			pr.newAlias = x
			p.taken[x] = true
		}
	}
	// The standby a metadata record names.
	for _, pr := range prims {
		if pr.standby != nil || pr.newAlias != "" || p.persistentOf(pr) != "" {
			continue
		}
		_, alias := aliasOf(pr.el)
		rec := recs.byPrimary[alias]
		if !policy.IsUserAlias(alias) || rec == nil {
			continue
		}
		sbyAlias, _ := rec.Attr("standby")
		owners := p.dom.Aliases[sbyAlias]
		// A bond's recorded standby is taken whatever it has become: completeBond says what is wrong.
		if len(owners) == 1 && (p.canBeStandby(owners[0], isPrimary, pr.bond) ||
			pr.bond && owners[0].Name.Local == "interface" && owners[0].Name.Space == "" && !isPrimary[owners[0]] && !p.claimed[owners[0]]) {
			if err := claim(pr, owners[0]); err != nil {
				return err
			}
		}
	}
	// A standby without a primary that has the primary's MAC: one with <teaming type='persistent'/>
	// for a teaming primary, a virtio one without <teaming> for a bond primary.
	for _, pr := range prims {
		if pr.standby != nil || pr.newAlias != "" || p.persistentOf(pr) != "" || pr.nic == nil || pr.nic.MAC == "" {
			continue
		}
		var match []*policy.NIC
		for _, n := range p.dom.NICs {
			fits := n.TeamType == "persistent"
			if pr.bond {
				fits = n.Teaming == nil && contains(virtioModels, n.Model) && !p.detached[n.El]
			}
			if fits && n.MAC == pr.nic.MAC && !p.claimed[n.El] && p.canBeStandby(n.El, isPrimary, pr.bond) {
				match = append(match, n)
			}
		}
		if len(match) == 1 {
			if err := claim(pr, match[0].El); err != nil {
				return err
			}
		}
	}
	for _, pr := range prims {
		if err := p.completeNIC(pr, recs); err != nil {
			return err
		}
	}
	return nil
}

// persistentOf returns the alias the primary's <teaming> names, if any.
func (p *planner) persistentOf(pr *nicPrimary) string {
	if pr.nic != nil {
		return pr.nic.Persistent
	}
	return pr.hd.Persistent
}

// canBeStandby reports whether an element may serve as a standby: an <interface> that is not a
// primary, not claimed, with a virtio model (or none yet) and persistent teaming (or none yet); a
// bond's standby has no teaming at all.
func (p *planner) canBeStandby(e *xmlxform.Element, isPrimary map[*xmlxform.Element]bool, bond bool) bool {
	if e.Name.Local != "interface" || e.Name.Space != "" || isPrimary[e] || p.claimed[e] || p.detached[e] {
		return false
	}
	if m := e.Child("model"); m != nil {
		if t, _ := m.Attr("type"); !contains(virtioModels, t) {
			return false
		}
	}
	if tm := e.Child("teaming"); tm != nil {
		if t, _ := tm.Attr("type"); t != "persistent" || bond {
			return false
		}
	}
	return true
}

// completeNIC makes one NIC pair whole: standby, teaming on both sides, aliases, MACs, record.
// A bond pair (docs/pair.md#bond) gets no <teaming>: the guest bonds the two itself, and the
// orchestrator unplugs the primary for migrations; one MAC on both, so that the guest's
// active-backup bond never changes a MAC, which a VF whose MAC the host set refuses.
func (p *planner) completeNIC(pr *nicPrimary, recs *records) error {
	var changes []string
	var sbyNIC *policy.NIC
	if pr.standby != nil {
		sbyNIC = p.nicOf(pr.standby)
	}
	if !pr.bond && p.failsOver(pr, sbyNIC) {
		priAlias, _, err := p.uniqueUserAlias(pr.el)
		if err != nil {
			return err
		}
		if !policy.IsUserAlias(priAlias) || recs.byPrimary[priAlias] == nil {
			if !p.opt.Adopt {
				p.plan.Pairs = append(p.plan.Pairs, Pair{Kind: KindNet, Standby: sbyNIC.Alias, Primary: aliasOrNone(priAlias),
					Device: pr.label, MAC: sbyNIC.MAC, Pool: p.primaryPool(recs, "", pr.pool), Unrecorded: true, Pos: p.pos(pr.el)})
				return nil
			}
		}
	}

	// Aliases first: the primary's teaming names the standby's.
	var sbyAlias string
	var sbyAliasNew bool
	var err error
	if pr.standby != nil {
		if sbyAlias, sbyAliasNew, err = p.aliasFor(pr.standby, "ua-sby"); err != nil {
			return err
		}
	} else {
		sbyAlias = pr.newAlias
		if sbyAlias == "" {
			sbyAlias = p.newAlias("ua-sby")
		}
	}
	priAlias, priAliasNew, err := p.aliasFor(pr.el, "ua-pri")
	if err != nil {
		return err
	}

	// One MAC for both.
	priMAC := ""
	if pr.nic != nil {
		priMAC = pr.nic.MAC
	}
	sbyMAC := ""
	if sbyNIC != nil {
		sbyMAC = sbyNIC.MAC
	}
	if priMAC != "" && sbyMAC != "" && priMAC != sbyMAC && pr.bond {
		return p.errorf(pr.el, "give both the same <mac address>: an active-backup bond keeps one MAC on all its slaves, and a VF whose MAC the host set refuses another (docs/pair.md#bond)",
			"%s has MAC %s, its bond standby '%s' has %s", pr.label, priMAC, sbyAlias, sbyMAC)
	}
	if priMAC != "" && sbyMAC != "" && priMAC != sbyMAC {
		return p.errorf(pr.el, "give both the same <mac address>: the guest pairs the devices by MAC",
			"%s has MAC %s, its standby '%s' has %s", pr.label, priMAC, sbyAlias, sbyMAC)
	}
	mac, derived := priMAC, false
	if mac == "" {
		mac = sbyMAC
	}
	if mac == "" {
		mac, derived = p.newMAC(pr.host), true
	}

	// The primary, in libvirt's order of children: mac, teaming, alias.
	if pr.nic != nil && priMAC == "" {
		if err := p.writeMAC(pr.el, mac); err != nil {
			return err
		}
		changes = append(changes, macPhrase(mac, derived))
	}
	if !pr.bond {
		if err := p.writeTeaming(pr.el, "transient", sbyAlias, &changes); err != nil {
			return err
		}
	}
	if priAliasNew {
		if err := p.writeAlias(pr.el, priAlias, laterThanAlias); err != nil {
			return err
		}
		changes = append(changes, "alias "+priAlias)
	}

	// The standby.
	var src string
	kind, standby, needs := KindNet, "standby", "the guest pairs it with the standby only if that is "+mac
	if pr.bond {
		kind, standby, needs = KindBond, "bond standby", "the guest's bond needs it to be "+mac+", its standby's"
	}
	if pr.standby != nil {
		if err := p.completeStandby(pr.standby, sbyNIC, mac, derived, sbyAlias, sbyAliasNew, pr.bond, &changes); err != nil {
			return err
		}
	} else {
		var frag string
		frag, src = p.newStandby(mac, sbyAlias, pr.bond)
		if err := p.insertDevice("interface", frag); err != nil {
			return err
		}
		changes = append(changes, fmt.Sprintf("new %s %s on %s", standby, sbyAlias, src))
		if pr.hd != nil {
			changes[len(changes)-1] += " with " + macPhrase(mac, derived)
		}
	}
	if pr.hd != nil && len(changes) > 0 {
		p.warn(pr.el, fmt.Sprintf("%s (%s): a plain <hostdev> keeps the MAC the device has; %s", pr.label, priAlias, needs),
			fmt.Sprintf("set the VF's MAC on the host before the guest starts: ip link set PF vf N mac %s (or use <interface type='hostdev'>, whose MAC libvirt sets)", mac))
	}

	pool := p.primaryPool(recs, priAlias, pr.pool)
	p.addPair(pr.el, Pair{Kind: kind, Standby: sbyAlias, Primary: priAlias, Device: pr.label, MAC: mac, Pool: pool,
		Changes: changes}, record{kind: kind, standby: sbyAlias, primary: priAlias, mac: mac, pool: pool})
	return nil
}

// failsOver reports whether QEMU fails the pair over as the definition stands: the primary's
// <teaming type='transient'> names the user alias of its standby, the standby is virtio-net with
// <teaming type='persistent'/>, and both carry one MAC (a plain <hostdev> carries none: the
// standby's is the one the VF must have).
func (p *planner) failsOver(pr *nicPrimary, sby *policy.NIC) bool {
	if sby == nil {
		return false
	}
	var typ, persistent string
	if pr.nic != nil {
		typ, persistent = pr.nic.TeamType, pr.nic.Persistent
	} else {
		typ, persistent = pr.hd.TeamType, pr.hd.Persistent
	}
	if typ != "transient" || persistent != sby.Alias || !policy.IsUserAlias(sby.Alias) {
		return false
	}
	if sby.TeamType != "persistent" || !contains(virtioModels, sby.Model) {
		return false
	}
	if _, has := sby.Teaming.Attr("persistent"); has {
		return false
	}
	if pr.nic != nil {
		return pr.nic.MAC != "" && pr.nic.MAC == sby.MAC
	}
	return sby.MAC != ""
}

// aliasOrNone is a device's alias for reports: "" when it has no user alias.
func aliasOrNone(name string) string {
	if policy.IsUserAlias(name) {
		return name
	}
	return ""
}

// completeStandby makes an existing <interface> a virtio standby with the pair's MAC and alias,
// writing its children in libvirt's order: mac, model, teaming, alias.
//
// A bond's standby (bond true) gets no teaming, and must have none.
func (p *planner) completeStandby(sby *xmlxform.Element, n *policy.NIC, mac string, derived bool, alias string, aliasNew bool, bond bool, changes *[]string) error {
	if n.MAC == "" {
		if err := p.writeMAC(sby, mac); err != nil {
			return err
		}
		*changes = append(*changes, macPhrase(mac, derived)+" on standby "+alias)
	}
	switch m := sby.Child("model"); {
	case m == nil:
		if err := p.insertBefore(sby, laterThanModel, p.frag(elem("model", "type", "virtio"))); err != nil {
			return err
		}
		*changes = append(*changes, "model virtio on standby "+alias)
	case n.Model == "":
		p.setAttr(m, "type", "virtio")
		*changes = append(*changes, "model virtio on standby "+alias)
	case !contains(virtioModels, n.Model):
		return p.errorf(m, "a teaming standby is virtio-net: <model type='virtio'/>",
			"the standby '%s' has <model type='%s'/>", alias, n.Model)
	}
	switch {
	case bond && n.Teaming != nil:
		return p.errorf(n.Teaming, "remove the <teaming>: with it the guest's virtio driver makes the standby a net_failover master, which takes the VF away from the guest's bond",
			"the bond's standby '%s' has <teaming type='%s'/>", alias, n.TeamType)
	case bond:
	case n.Teaming == nil || n.TeamType == "" || n.TeamType == "persistent":
		before := len(*changes)
		if err := p.writeTeaming(sby, "persistent", "", changes); err != nil {
			return err
		}
		if len(*changes) > before {
			(*changes)[len(*changes)-1] += " on standby " + alias
		}
	default:
		return p.errorf(n.Teaming, "the standby carries <teaming type='persistent'/>",
			"the standby '%s' has <teaming type='%s'/>", alias, n.TeamType)
	}
	if aliasNew {
		if err := p.writeAlias(sby, alias, laterThanAlias); err != nil {
			return err
		}
		*changes = append(*changes, "alias "+alias+" on the standby")
	}
	return nil
}

// newStandby writes a new virtio standby <interface> and says where it connects; a bond's standby
// (bond true) has no <teaming>.
func (p *planner) newStandby(mac, alias string, bond bool) (frag, src string) {
	typ, attr, name := "network", "network", p.pol.Standby.Network
	switch {
	case p.opt.StandbyBridge != "":
		typ, attr, name = "bridge", "bridge", p.opt.StandbyBridge
	case p.opt.StandbyNetwork != "":
		name = p.opt.StandbyNetwork
	case p.pol.Standby.Bridge != "":
		typ, attr, name = "bridge", "bridge", p.pol.Standby.Bridge
	}
	if name == "" {
		name = "default"
	}
	if l := p.pol.Lint.StandbyNetworks; len(l) > 0 && !contains(l, name) {
		p.warn(nil, fmt.Sprintf("the standby %s connects to %s '%s', which [lint] standby_networks does not list", alias, typ, name),
			"pick a listed one with --standby-network or --standby-bridge, or add it to standby_networks")
	}
	e := add(elem("interface", "type", typ),
		elem("mac", "address", mac),
		elem("source", attr, name),
		elem("model", "type", "virtio"))
	if !bond {
		e.AddChild(elem("teaming", "type", "persistent"))
	}
	e.AddChild(elem("alias", "name", alias))
	return p.frag(e), fmt.Sprintf("%s '%s'", typ, name)
}

// aliasFor returns the user alias dev has, or a new one it is to get (new = true).
func (p *planner) aliasFor(dev *xmlxform.Element, prefix string) (string, bool, error) {
	name, ok, err := p.uniqueUserAlias(dev)
	if err != nil || ok {
		return name, false, err
	}
	return p.newAlias(prefix), true, nil
}

// writeAlias gives dev the alias name, on its <alias> element or a new one.
func (p *planner) writeAlias(dev *xmlxform.Element, name string, later []string) error {
	if a, _ := aliasOf(dev); a != nil {
		p.setAttr(a, "name", name)
		return nil
	}
	return p.insertBefore(dev, later, p.frag(elem("alias", "name", name)))
}

// writeMAC gives dev the MAC, on its <mac> element or a new first child.
func (p *planner) writeMAC(dev *xmlxform.Element, mac string) error {
	if m := dev.Child("mac"); m != nil {
		p.setAttr(m, "address", mac)
		return nil
	}
	return p.insertFirst(dev, p.frag(elem("mac", "address", mac)))
}

// writeTeaming makes dev's <teaming> say type (and persistent, for a transient one).
func (p *planner) writeTeaming(dev *xmlxform.Element, typ, persistent string, changes *[]string) error {
	tm := dev.Child("teaming")
	if tm == nil {
		attrs := []string{"type", typ}
		if persistent != "" {
			attrs = append(attrs, "persistent", persistent)
		}
		if err := p.insertBefore(dev, laterThanTeaming, p.frag(elem("teaming", attrs...))); err != nil {
			return err
		}
		*changes = append(*changes, teamingPhrase(typ, persistent))
		return nil
	}
	t, _ := tm.Attr("type")
	cur, hasPersistent := tm.Attr("persistent")
	if t == typ && cur == persistent && (persistent != "" || !hasPersistent) {
		return nil
	}
	p.setAttr(tm, "type", typ)
	if persistent != "" {
		p.setAttr(tm, "persistent", persistent)
	} else if hasPersistent {
		p.t.RemoveAttr(tm, "persistent")
	}
	*changes = append(*changes, teamingPhrase(typ, persistent))
	return nil
}

func teamingPhrase(typ, persistent string) string {
	if persistent != "" {
		return fmt.Sprintf("teaming %s with %s", typ, persistent)
	}
	return "teaming " + typ
}

func macPhrase(mac string, derived bool) string {
	if derived {
		return "MAC " + mac + " (derived)"
	}
	return "MAC " + mac
}

// nicOf returns the view of an <interface>.
func (p *planner) nicOf(e *xmlxform.Element) *policy.NIC {
	for _, n := range p.dom.NICs {
		if n.El == e {
			return n
		}
	}
	return &policy.NIC{El: e}
}

// describe names an element for messages: "<disk>".
func describe(e *xmlxform.Element) string {
	return "<" + e.QName + ">"
}

// primaryPool is the pool recorded for a NIC primary: --pool, else the one its record already
// names, else the pool listing its network or VF (listed), else [host] default_pool.
func (p *planner) primaryPool(recs *records, priAlias, listed string) string {
	if p.opt.Pool != "" {
		return p.opt.Pool
	}
	if rec := recs.byPrimary[priAlias]; rec != nil && slices.Contains([]string{KindNet, KindBond, KindDetach}, policy.AttrOf(rec, "kind")) && policy.AttrOf(rec, "pool") != "" {
		return policy.AttrOf(rec, "pool")
	}
	if listed != "" {
		return listed
	}
	return p.pol.Host.DefaultPool
}
