package pair

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/beevik/etree"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// The emulated primary: an e1000e <interface> paired with the virtio standby through QEMU's
// failover_pair_id, set with <qemu:override> because libvirt's <teaming type='transient'> accepts
// only assigned devices (e2e-recipe.md). It proves a guest image handles failover on any host.
const emulatedModel = "e1000e"

// overrideDevices returns the <qemu:device> elements of every <qemu:override>, in order.
func (p *planner) overrideDevices() []*xmlxform.Element {
	var out []*xmlxform.Element
	for _, ov := range p.doc.Root.Children {
		if ov.Name.Space != policy.NamespaceQEMU || ov.Name.Local != "override" {
			continue
		}
		for _, dev := range ov.Children {
			if dev.Name.Space == policy.NamespaceQEMU && dev.Name.Local == "device" {
				out = append(out, dev)
			}
		}
	}
	return out
}

// checkNoAssigned refuses --emulated-primary on a domain with assigned devices.
func (p *planner) checkNoAssigned(nics []*nicPrimary, stores []*storePrimary) error {
	var first *xmlxform.Element
	what := ""
	switch {
	case len(nics) > 0 && p.persistentOf(nics[0]) != "":
		return p.errorf(nics[0].el, "pair it without --emulated-primary: QEMU takes one primary per standby, and an assigned one is the real thing",
			"--emulated-primary is for a domain without a failover pair, and this one has %s teaming with '%s'", nics[0].label, p.persistentOf(nics[0]))
	case len(nics) > 0:
		first, what = nics[0].el, nics[0].label
	case slices.ContainsFunc(stores, func(s *storePrimary) bool { return s.hd != nil }):
		i := slices.IndexFunc(stores, func(s *storePrimary) bool { return s.hd != nil })
		first, what = stores[i].el, "hostdev "+stores[i].hd.Source
	default:
		for _, h := range p.dom.Hostdevs {
			if h.Type == "pci" {
				first, what = h.El, "hostdev "+h.Source
				break
			}
		}
	}
	if first == nil {
		return nil
	}
	return p.errorf(first, "pair the assigned devices without --emulated-primary",
		"--emulated-primary is for a domain without assigned devices, and this one has %s", what)
}

// pairEmulatedExisting completes the emulated pairs the domain has: a <qemu:override> that sets
// failover_pair_id on one <interface>, naming another.
func (p *planner) pairEmulatedExisting() error {
	for _, dev := range p.overrideDevices() {
		priAlias, _ := dev.Attr("alias")
		prop := p.dom.PairIDs[priAlias]
		if prop == nil || !descends(prop, dev) {
			continue
		}
		sbyAlias, _ := prop.Attr("value")
		pri, sby := p.dom.Aliases[priAlias], p.dom.Aliases[sbyAlias]
		if len(pri) != 1 || len(sby) != 1 || pri[0].Name.Local != "interface" || sby[0].Name.Local != "interface" || pri[0] == sby[0] {
			continue
		}
		if p.claimed[sby[0]] {
			return p.errorf(dev, "a standby has one primary (QEMU refuses a second)",
				"two emulated primaries name the standby '%s'", sbyAlias)
		}
		p.claimed[sby[0]] = true
		if err := p.completeEmulated(pri[0], sby[0], priAlias, sbyAlias); err != nil {
			return err
		}
	}
	return nil
}

// pairEmulatedNew makes the first virtio <interface> the standby of a new emulated primary,
// unless the domain has an emulated pair of that kind already: a teaming pair through
// failover_pair_id, or (bond) a bond pair without <teaming>, recorded emulated='yes', that the
// orchestrator unplugs like a VF (docs/pair.md#bond).
func (p *planner) pairEmulatedNew(bond bool) error {
	kind, flag := KindNet, "--emulated-primary"
	if bond {
		kind, flag = KindBond, "--bond --emulated-primary"
	}
	for _, pr := range p.plan.Pairs {
		if pr.Emulated && pr.Kind == kind {
			return nil
		}
	}
	// Standbys that something names already (a <teaming persistent=>, a failover_pair_id) have a
	// primary, or one that pair does not see: QEMU refuses a second.
	named := map[string]bool{}
	for _, n := range p.dom.NICs {
		named[n.Persistent] = true
	}
	for _, h := range p.dom.Hostdevs {
		named[h.Persistent] = true
	}
	for v := range p.pairIDValues {
		named[v] = true
	}
	fits := func(n *policy.NIC) bool {
		return (n.TeamType == "" || n.TeamType == "persistent") && !(n.Alias != "" && named[n.Alias])
	}
	none := &Error{Msg: "--emulated-primary: the domain has no virtio <interface> to make the standby",
		Hint: "add an <interface> with <model type='virtio'/>; it becomes the standby of the emulated primary"}
	if bond {
		fits = func(n *policy.NIC) bool { return n.Teaming == nil }
		none = &Error{Msg: "--bond --emulated-primary: the domain has no virtio <interface> without <teaming> to make the bond's standby",
			Hint: "add an <interface> with <model type='virtio'/>; it becomes the standby the guest bonds with the emulated primary"}
	}
	sby, err := p.emulatedStandby(flag, fits, none)
	if err != nil {
		return err
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
		mac, derived = p.newMAC("emulated:"+strconv.Itoa(indexOf(p.dom.NICs, sby))), true
	}
	if err := p.completeStandby(sby.El, sby, mac, derived, sbyAlias, sbyAliasNew, bond, &changes); err != nil {
		return err
	}

	pri := add(elem("interface", "type", sby.Type), elem("mac", "address", mac))
	if src := sby.El.Child("source"); src != nil {
		pri.AddChild(copyElement(src))
	}
	pri.AddChild(elem("model", "type", emulatedModel))
	if bond {
		pri.AddChild(elem("alias", "name", priAlias))
		if err := p.insertDevice("interface", p.frag(pri)); err != nil {
			return err
		}
		changes = append(changes, fmt.Sprintf("new emulated bond primary %s (%s, same MAC and source)", priAlias, emulatedModel))
	} else {
		add(pri, elem("rom", "enabled", "no"), elem("alias", "name", priAlias))
		if err := p.insertDevice("interface", p.frag(pri)); err != nil {
			return err
		}
		changes = append(changes, fmt.Sprintf("new emulated primary %s (%s, same MAC, no option ROM)", priAlias, emulatedModel))
		if err := p.writeOverride(priAlias, sbyAlias); err != nil {
			return err
		}
		changes = append(changes, "failover_pair_id "+sbyAlias+" on "+priAlias+" through <qemu:override>")
	}
	pool := p.primaryPool(p.existingRecords(), priAlias, "")
	p.addPair(sby.El, Pair{Kind: kind, Standby: sbyAlias, Primary: priAlias, Device: emulatedLabel(emulatedModel),
		MAC: mac, Emulated: true, Pool: pool, Changes: changes},
		record{kind: kind, standby: sbyAlias, primary: priAlias, mac: mac, pool: pool, emulated: bond})
	return nil
}

// emulatedStandby picks the standby of a new emulated primary (flag names the option for
// messages): the first virtio <interface> that fits and is free, on a backend an emulated NIC can
// share; none is the error when there is no virtio <interface> at all.
func (p *planner) emulatedStandby(flag string, fits func(*policy.NIC) bool, none *Error) (*policy.NIC, error) {
	var cands []*policy.NIC
	var unfit *policy.NIC
	for _, n := range p.dom.NICs {
		// vhost-user and vDPA are virtio-net whatever the model says.
		virtio := contains(virtioModels, n.Model) || n.Model == "" && (n.Type == "vhostuser" || n.Type == "vdpa")
		if !virtio || !fits(n) || p.claimed[n.El] || p.detached[n.El] {
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
		return nil, p.errorf(unfit.El, "give the domain a virtio <interface> of type network, bridge, user or ethernet: the emulated primary shares its backend",
			"%s: the virtio <interface type='%s'> cannot be the standby: %s", flag, unfit.Type, emulatedBackend(unfit.Type))
	}
	if len(cands) == 0 {
		return nil, none
	}
	sby := cands[0]
	if len(cands) > 1 {
		p.warn(sby.El, fmt.Sprintf("%s pairs the first virtio <interface> only; %d more are left as they are", flag, len(cands)-1), "")
	}
	if unfit != nil && unfit.El.Start.Start < sby.El.Start.Start {
		p.warn(unfit.El, fmt.Sprintf("%s passes over the virtio <interface type='%s'>: %s", flag, unfit.Type, emulatedBackend(unfit.Type)), "")
	}
	return sby, nil
}

// emulatedBackend says why an emulated e1000e primary cannot copy the type and source of a
// standby of interface type typ, "" when it can (network, bridge, user, ethernet).
func emulatedBackend(typ string) string {
	switch typ {
	case "network", "bridge", "user", "ethernet":
		return ""
	case "vhostuser", "vdpa":
		return "libvirt takes only a virtio-net model on a " + typ + " backend, so an e1000e primary cannot share it"
	case "direct":
		return "a second macvtap with the same MAC on the same host device fails to open (EADDRINUSE)"
	case "server", "client", "mcast", "udp":
		return "a second socket backend on the same address and port does not start"
	case "":
		return "it has no type"
	}
	return "an emulated primary on that backend is not supported"
}

// completeEmulated makes an existing emulated pair whole: the standby's teaming, one MAC, the
// primary's disabled option ROM, the record.
func (p *planner) completeEmulated(pri, sby *xmlxform.Element, priAlias, sbyAlias string) error {
	var changes []string
	priNIC, sbyNIC := p.nicOf(pri), p.nicOf(sby)
	recs := p.existingRecords()
	if !p.opt.Adopt && recs.byPrimary[priAlias] == nil && emulatedFailsOver(priNIC, sbyNIC) {
		p.plan.Pairs = append(p.plan.Pairs, Pair{Kind: KindNet, Standby: sbyAlias, Primary: priAlias,
			Device: emulatedLabel(priNIC.Model), MAC: sbyNIC.MAC, Emulated: true,
			Pool: p.primaryPool(recs, priAlias, ""), Unrecorded: true, Pos: p.pos(sby)})
		return nil
	}
	if priNIC.MAC != "" && sbyNIC.MAC != "" && priNIC.MAC != sbyNIC.MAC {
		return p.errorf(pri, "give both the same <mac address>: the guest pairs the devices by MAC",
			"the emulated primary '%s' has MAC %s, its standby '%s' has %s", priAlias, priNIC.MAC, sbyAlias, sbyNIC.MAC)
	}
	mac, derived := priNIC.MAC, false
	if mac == "" {
		mac = sbyNIC.MAC
	}
	if mac == "" {
		mac, derived = p.newMAC("emulated:"+strconv.Itoa(indexOf(p.dom.NICs, sbyNIC))), true
	}
	if err := p.completeStandby(sby, sbyNIC, mac, derived, sbyAlias, false, false, &changes); err != nil {
		return err
	}
	if priNIC.MAC == "" {
		if err := p.writeMAC(pri, mac); err != nil {
			return err
		}
		changes = append(changes, macPhrase(mac, derived)+" on "+priAlias)
	}
	switch rom := pri.Child("rom"); {
	case rom == nil:
		if err := p.insertBefore(pri, laterThanROM, p.frag(elem("rom", "enabled", "no"))); err != nil {
			return err
		}
		changes = append(changes, "no option ROM on "+priAlias)
	default:
		if v, ok := rom.Attr("enabled"); !ok {
			p.setAttr(rom, "enabled", "no")
			changes = append(changes, "no option ROM on "+priAlias)
		} else if v != "no" {
			p.warn(rom, fmt.Sprintf("the emulated primary '%s' has an option ROM: migration fails with \"Unknown ramblock\"", priAlias),
				"write <rom enabled='no'/>")
		}
	}
	pool := p.primaryPool(recs, priAlias, "")
	p.addPair(sby, Pair{Kind: KindNet, Standby: sbyAlias, Primary: priAlias,
		Device: emulatedLabel(priNIC.Model), MAC: mac, Emulated: true, Pool: pool, Changes: changes},
		record{kind: KindNet, standby: sbyAlias, primary: priAlias, mac: mac, pool: pool})
	return nil
}

// emulatedFailsOver reports whether an emulated pair works as it stands: a virtio standby with
// <teaming type='persistent'/>, one MAC on both, and the primary's option ROM off (migration fails
// without that).
func emulatedFailsOver(pri, sby *policy.NIC) bool {
	if sby.TeamType != "persistent" || !contains(virtioModels, sby.Model) || sby.MAC == "" || pri.MAC != sby.MAC {
		return false
	}
	if _, has := sby.Teaming.Attr("persistent"); has {
		return false
	}
	return policy.AttrOf(pri.El.Child("rom"), "enabled") == "no"
}

// writeOverride sets failover_pair_id=standby on the device priAlias through <qemu:override>,
// in the one the domain has or a new one at the end.
func (p *planner) writeOverride(priAlias, sbyAlias string) error {
	build := func(prefix string, declare bool, top string) *etree.Element {
		q := func(local string) string { return prefix + ":" + local }
		var decl []string
		if declare {
			decl = []string{"xmlns:" + prefix, policy.NamespaceQEMU}
		}
		devAttrs := []string{"alias", priAlias}
		if top == "device" {
			devAttrs = append(decl, devAttrs...)
		}
		dev := add(elem(q("device"), devAttrs...),
			add(elem(q("frontend")), elem(q("property"), "name", "failover_pair_id", "type", "string", "value", sbyAlias)))
		if top == "device" {
			return dev
		}
		return add(elem(q("override"), decl...), dev)
	}
	for _, ov := range p.doc.Root.Children {
		if ov.Name.Space == policy.NamespaceQEMU && ov.Name.Local == "override" {
			prefix, ok := ov.LookupPrefix(policy.NamespaceQEMU)
			if !ok {
				prefix = "qemu"
			}
			return p.t.InsertChild(ov, nil, p.frag(build(prefix, !ok, "device")))
		}
	}
	prefix, ok := p.doc.Root.LookupPrefix(policy.NamespaceQEMU)
	if !ok {
		prefix = "qemu"
	}
	return p.t.InsertChild(p.doc.Root, nil, p.frag(build(prefix, !ok, "override")))
}

// copyElement copies an element with its attributes and child elements (not its text).
func copyElement(e *xmlxform.Element) *etree.Element {
	c := etree.NewElement(e.QName)
	for _, a := range e.Attrs {
		c.CreateAttr(a.QName, clean(a.Value))
	}
	for _, ch := range e.Children {
		c.AddChild(copyElement(ch))
	}
	return c
}

// descends reports whether e is inside anc.
func descends(e, anc *xmlxform.Element) bool {
	for x := e; x != nil; x = x.Parent {
		if x == anc {
			return true
		}
	}
	return false
}

func indexOf(nics []*policy.NIC, n *policy.NIC) int {
	for i, x := range nics {
		if x == n {
			return i
		}
	}
	return -1
}
