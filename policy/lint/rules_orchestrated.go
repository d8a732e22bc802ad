package lint

import (
	"fmt"
	"slices"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Rules about what the orchestrator unplugs and plugs back: bond pairs and parked devices
// (docs/metadata.md).

// bondPairs returns the bond records whose standby and primary are NICs of the domain.
func bondPairs(p *pass) (out []struct {
	mp       *metaPair
	sby, pri *policy.NIC
}) {
	for _, mp := range p.m.meta {
		if mp.kind != policy.KindBondPair {
			continue
		}
		sby, pri := p.dom.NICByAlias(mp.standby), p.dom.NICByAlias(mp.primary)
		out = append(out, struct {
			mp       *metaPair
			sby, pri *policy.NIC
		}{mp, sby, pri})
	}
	return out
}

var ruleBondTeaming = &Rule{
	ID: "VF039", Name: "bond-pair-teaming", Severity: Error, HookSafe: true,
	Summary: "a bond pair's standby or primary has <teaming>",
	Doc: Doc{
		What: "The standby or the primary of a `kind='bond'` pair in virt-failover's metadata (a NIC pair the guest " +
			"bonds in software) carries a `<teaming>` element.",
		Why: "With `<teaming type='persistent'/>` the standby offers the guest virtio-net's failover feature, and the " +
			"guest's virtio driver makes it a net_failover master that enslaves any PCI NIC with its MAC: the VF, which " +
			"then cannot be a slave of the guest's bond; with `<teaming type='transient'>` on the primary QEMU hides and " +
			"unplugs it itself (docs/failover.md#guest-net-failover, docs/failover.md#qemu-failover, docs/failover.md#guest-bond). A bond pair has no " +
			"`<teaming>`: the guest bonds the two, and the orchestrator unplugs the primary for migrations.",
		Bad:  "<vfo:pair kind='bond' standby='ua-sby0' primary='ua-pri0' mac='52:54:00:6d:90:02'/>\n…\n<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <model type='virtio'/>\n  <teaming type='persistent'/>\n  <alias name='ua-sby0'/>\n</interface>",
		Good: "<vfo:pair kind='bond' standby='ua-sby0' primary='ua-pri0' mac='52:54:00:6d:90:02'/>\n…\n<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, b := range bondPairs(p) {
			if b.sby != nil && b.sby.Teaming != nil {
				f := p.at(b.sby.Teaming, fmt.Sprintf("the bond's standby '%s' has <teaming>: the guest's virtio driver makes it a net_failover master, which takes the VF away from the guest's bond", b.mp.standby))
				p.relatedEl(f, b.mp.el, "the bond pair is recorded here")
				f.Hint = "remove the <teaming> element (virt-failover pair --bond writes the standby without one)"
			}
			var tm *xmlxform.Element
			if b.pri != nil && b.pri.Teaming != nil {
				tm = b.pri.Teaming
			}
			for _, h := range p.dom.Hostdevs {
				if h.Alias == b.mp.primary && h.Alias != "" && h.Teaming != nil {
					tm = h.Teaming
				}
			}
			if tm != nil {
				f := p.at(tm, fmt.Sprintf("the bond's primary '%s' has <teaming>: QEMU hides and unplugs it itself, and the guest's bond never gets it as a slave", b.mp.primary))
				p.relatedEl(f, b.mp.el, "the bond pair is recorded here")
				f.Hint = "remove the <teaming> element; or, for QEMU's failover instead of a bond, pair the NIC without --bond"
			}
		}
	},
}

var ruleBondMAC = &Rule{
	ID: "VF040", Name: "bond-mac-mismatch", Severity: Warning, HookSafe: true,
	Summary: "a bond pair's two NICs have different MACs",
	Doc: Doc{
		What: "The standby and the primary `<interface>` of a `kind='bond'` pair have different `<mac address>`es, or " +
			"one of them has none (libvirt then gives it a random one).",
		Why: "An active-backup bond with the default `fail_over_mac=none` gives all its slaves the bond's MAC when it " +
			"enslaves them: a VF whose MAC the host set through its PF (as libvirt does for `<interface type='hostdev'>`) " +
			"refuses the change, and the guest's bond does not take the VF. With one MAC on both nothing changes, the " +
			"peers and switches keep one MAC for the guest whichever slave is active, and no gratuitous ARP has to " +
			"reach them at each migration (`fail_over_mac=active` depends on it) (docs/failover.md#guest-bond, " +
			"docs/failover.md#mac-addresses).",
		Bad:  "<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:03'/>\n  <alias name='ua-pri0'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:02'/>\n  <alias name='ua-pri0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, b := range bondPairs(p) {
			if b.sby == nil || b.pri == nil {
				continue
			}
			switch {
			case b.sby.MAC == "" || b.pri.MAC == "":
				missing := b.sby
				if b.sby.MAC != "" {
					missing = b.pri
				}
				f := p.at(missing.El, fmt.Sprintf("'%s' of the bond pair has no <mac>: libvirt gives it a random one, and the two NICs of the bond differ", missing.Alias))
				f.Hint = "give the standby and the primary the same <mac address='…'/>"
			case b.sby.MAC != b.pri.MAC:
				f := p.atAttr(b.pri.El.Child("mac"), "address", fmt.Sprintf("the bond's primary has MAC %s, its standby '%s' %s: an active-backup bond sets one MAC on its slaves, which a VF whose MAC the host set refuses", b.pri.MAC, b.mp.standby, b.sby.MAC))
				p.relatedEl(f, b.sby.El.Child("mac"), fmt.Sprintf("standby '%s' has MAC %s", b.mp.standby, b.sby.MAC))
				f.Hint = fmt.Sprintf("give both <mac address='%s'/>", b.sby.MAC)
			}
		}
	},
}

var ruleParkedRecord = &Rule{
	ID: "VF041", Name: "parked-record-invalid", Severity: Warning, HookSafe: true,
	Summary: "a parked device's record that cannot be plugged back as it is",
	Doc: Doc{
		What: "A `<vfo:parked>` record (a device the orchestrator unplugged, kept in the metadata) holds no device " +
			"definition, or one whose alias is not the record's; names no user alias; has an unknown kind or reason; " +
			"is one of two records of a device; or names a device that is plugged in at the same time.",
		Why: "The record is all that plugs the device back, on whichever host the domain is (docs/metadata.md#parked): " +
			"without the definition nothing can; a device plugged in and parked at once is what an interrupted " +
			"orchestration leaves, and plugging it back would fail on the duplicate alias. Only a user alias stays the " +
			"same when libvirt attaches a device (docs/failover.md#user-aliases).",
		Bad:  "<vfo:parked alias='ua-pri0' kind='bond' reason='migration' since='2026-05-01T08:00:00Z'/>",
		Good: "<vfo:parked alias='ua-pri0' kind='bond' reason='migration' since='2026-05-01T08:00:00Z'>\n  <interface type='hostdev' managed='yes'>\n    <mac address='52:54:00:6d:90:02'/>\n    <source>\n      <address type='pci' domain='0x0000' bus='0x03' slot='0x02' function='0x1'/>\n    </source>\n    <alias name='ua-pri0'/>\n  </interface>\n</vfo:parked>",
	},
	check: func(p *pass) {
		seen := map[string]bool{}
		for _, pk := range p.dom.Parked {
			const repair = "virt-failover repair DOMAIN plugs parked devices back and clears stale records"
			switch {
			case !policy.IsUserAlias(pk.Alias):
				f := p.atAttr(pk.El, "alias", fmt.Sprintf("the parked record names '%s', not a user alias: a device plugged back keeps only a user alias (ua-…)", pk.Alias))
				f.Hint = "the orchestrator parks only devices with a user alias: this record was written by hand"
			case seen[pk.Alias]:
				f := p.atAttr(pk.El, "alias", fmt.Sprintf("'%s' has two parked records: the device would be plugged back twice", pk.Alias))
				f.Hint = "remove one of them"
			case len(p.dom.Aliases[pk.Alias]) > 0:
				f := p.atAttr(pk.El, "alias", fmt.Sprintf("'%s' is plugged in and parked at once: the record is stale (an interrupted orchestration), and plugging the device back would fail on the duplicate alias", pk.Alias))
				p.relatedEl(f, p.dom.Aliases[pk.Alias][0], "the device is plugged in here")
				f.Hint = repair
			}
			seen[pk.Alias] = true
			if !slices.Contains([]string{policy.KindNetPair, policy.KindBondPair, policy.KindStoragePair, policy.KindDetachPair}, pk.Kind) {
				f := p.atAttr(pk.El, "kind", fmt.Sprintf("the parked record has kind '%s'; virt-failover knows 'net', 'bond', 'storage' and 'detach'", pk.Kind))
				f.Hint = "a newer version may know more kinds"
			}
			if pk.Reason != policy.ParkedForMigration && pk.Reason != policy.ParkedForSwitch {
				f := p.atAttr(pk.El, "reason", fmt.Sprintf("the parked record has reason '%s', not 'migration' (plugged back on arrival) or 'switch' (until switched back)", pk.Reason))
				f.Hint = repair
			}
			switch {
			case pk.Device == nil:
				f := p.at(pk.El, fmt.Sprintf("the parked record of '%s' holds no device definition: nothing can plug the device back", pk.Alias))
				f.Hint = "add the device's definition (its <interface>, <hostdev> or <disk> as it was) inside the record, or remove the record"
			case policy.AttrOf(policy.DeviceChild(pk.Device, "alias"), "name") != pk.Alias:
				f := p.at(pk.Device, fmt.Sprintf("the parked device's alias is '%s', not the record's '%s'", policy.AttrOf(policy.DeviceChild(pk.Device, "alias"), "name"), pk.Alias))
				f.Hint = "give the device <alias name='" + pk.Alias + "'/>: the orchestrator finds it by that alias once plugged back"
			}
		}
	},
}
