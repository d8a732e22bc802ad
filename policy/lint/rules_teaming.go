package lint

import (
	"fmt"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// teamings returns every <teaming> of an <interface> or <hostdev>, in document order.
func teamings(p *pass) []*xmlxform.Element {
	var out []*xmlxform.Element
	if p.dom.Devices == nil {
		return nil
	}
	for _, dev := range p.dom.Devices.Children {
		if dev.Name.Space != "" || dev.Name.Local != "interface" && dev.Name.Local != "hostdev" {
			continue
		}
		if t := dev.Child("teaming"); t != nil {
			out = append(out, t)
		}
	}
	return out
}

var ruleTeamingTypeInvalid = &Rule{
	ID: "VF004", Name: "teaming-type-invalid", Severity: Error, HookSafe: true,
	Summary: "<teaming> has no type, or a type other than persistent or transient",
	Doc: Doc{
		What: "A `<teaming>` element without `type=`, or with a type other than `persistent` (the virtio standby) " +
			"and `transient` (the assigned primary).",
		Why: "libvirt refuses every type but `persistent` and `transient` (\"unknown teaming type\"), `none` included, " +
			"and a `<teaming>` without a type (docs/failover.md#teaming-validation).",
		Bad:  "<teaming type='standby'/>",
		Good: "<teaming type='persistent'/>",
	},
	check: func(p *pass) {
		for _, t := range teamings(p) {
			typ, ok := t.Attr("type")
			switch {
			case !ok:
				f := p.at(t, "<teaming> has no type=")
				f.Hint = "type='persistent' on the virtio standby, type='transient' persistent='ua-…' on the assigned primary"
			case typ != "persistent" && typ != "transient":
				f := p.atAttr(t, "type", fmt.Sprintf("<teaming type='%s'>: the type must be 'persistent' (the virtio standby) or 'transient' (the assigned primary)", typ))
				if typ == "none" {
					f.Hint = "type='none' means no teaming: remove the element"
				} else {
					f.Hint = "type='persistent' on the virtio standby, type='transient' persistent='ua-…' on the assigned primary"
				}
			}
		}
	},
}

var ruleTransientNoPersistent = &Rule{
	ID: "VF005", Name: "teaming-transient-without-persistent", Severity: Error, HookSafe: true,
	Summary: "<teaming type='transient'> without persistent=",
	Doc: Doc{
		What: "A transient (primary) device's `<teaming>` does not name its standby with `persistent=`.",
		Why: "libvirt refuses it: \"teaming persistent attribute must be set if teaming type is 'transient'\" for an " +
			"`<interface>`, \"missing required persistent attribute in hostdev teaming element\" for a `<hostdev>` " +
			"(docs/failover.md#teaming-validation). The alias is what QEMU's `failover_pair_id` points at (docs/failover.md#qemu-failover).",
		Bad:  "<interface type='hostdev' managed='yes'>\n  <teaming type='transient'/>\n</interface>",
		Good: "<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			if t.emulated || t.persistent != "" {
				continue
			}
			msg := "<teaming type='transient'> names no standby: libvirt refuses it (\"teaming persistent attribute must be set if teaming type is 'transient'\")"
			if t.hd != nil {
				msg = "<teaming type='transient'> names no standby: libvirt refuses it (\"missing required persistent attribute in hostdev teaming element\")"
			}
			f := p.at(t.via, msg)
			f.Hint = "set persistent= to the alias of the virtio standby"
			if free := freeStandbys(p); len(free) == 1 && free[0].Alias != "" {
				f.Hint = fmt.Sprintf("set persistent='%s'", free[0].Alias)
				p.relatedEl(f, free[0].El, fmt.Sprintf("the virtio standby here is '%s'", free[0].Alias))
			}
		}
	},
}

// freeStandbys returns the standbys no primary names.
func freeStandbys(p *pass) []*policy.NIC {
	var out []*policy.NIC
	for _, s := range p.m.standbys {
		if len(p.m.partners(s)) == 0 {
			out = append(out, s)
		}
	}
	return out
}

var rulePersistentNotAllowed = &Rule{
	ID: "VF006", Name: "teaming-persistent-not-allowed", Severity: Error, HookSafe: true,
	Summary: "persistent= on a <teaming> that is not transient",
	Doc: Doc{
		What: "An `<interface>`'s `<teaming type='persistent'>` also carries `persistent=`.",
		Why: "libvirt refuses it: \"teaming persistent attribute not allowed if teaming type is 'persistent'\" " +
			"(docs/failover.md#teaming-validation). Usually the two devices' `<teaming>` elements were swapped or copied.",
		Bad:  "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent' persistent='ua-sby0'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, n := range p.dom.NICs {
			// libvirt reads persistent='' as no attribute (virXPathString gives NULL for "").
			if n.Teaming == nil || n.TeamType != "persistent" || n.Persistent == "" {
				continue
			}
			f := p.atAttr(n.Teaming, "persistent", "persistent= is only for type='transient': libvirt refuses it (\"teaming persistent attribute not allowed if teaming type is 'persistent'\")")
			f.Hint = "remove persistent= from the standby; the primary names the standby, not the other way round"
		}
	},
}

var rulePersistentUnknownAlias = &Rule{
	ID: "VF007", Name: "teaming-persistent-unknown-alias", Severity: Error, HookSafe: true,
	Summary: "a primary names a standby alias no device has",
	Doc: Doc{
		What: "`<teaming type='transient' persistent='ua-…'>` (or an emulated primary's `failover_pair_id` set through " +
			"`<qemu:override>`) names an alias that no device in the domain carries.",
		Why: "libvirt does not check that `persistent=` resolves (docs/failover.md#teaming-validation); QEMU then has no virtio-net " +
			"with that id, the primary is never hidden or unplugged, and migration fails at run time.",
		Bad:  "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-net0'/>\n  <teaming type='persistent'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-net1'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-net0'/>\n  <teaming type='persistent'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-net0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			if t.persistent == "" || len(p.dom.Aliases[t.persistent]) > 0 {
				continue
			}
			var f *Finding
			if t.emulated {
				f = p.at(t.via, fmt.Sprintf("failover_pair_id '%s' names an alias no <interface> defines", t.persistent))
			} else {
				f = p.at(t.via, fmt.Sprintf("<teaming persistent='%s'> names an alias no <interface> defines", t.persistent))
			}
			free := freeStandbys(p)
			for _, s := range free {
				if s.Alias != "" {
					p.relatedEl(f, s.El, fmt.Sprintf("the virtio standby interface here is '%s'", s.Alias))
				} else {
					p.relatedEl(f, s.El, "the virtio standby interface here has no alias")
				}
			}
			switch {
			case len(free) == 1 && free[0].Alias != "":
				if t.emulated {
					f.Hint = fmt.Sprintf("set the property's value='%s', or give the standby <alias name='%s'/>", free[0].Alias, t.persistent)
				} else {
					f.Hint = fmt.Sprintf("set persistent='%s', or give the standby <alias name='%s'/>", free[0].Alias, t.persistent)
				}
			case len(free) == 1:
				f.Hint = fmt.Sprintf("give the standby <alias name='%s'/>", t.persistent)
			default:
				f.Hint = fmt.Sprintf("give the virtio standby <alias name='%s'/> and <teaming type='persistent'/>", t.persistent)
			}
		}
	},
}

var rulePersistentNotStandby = &Rule{
	ID: "VF008", Name: "teaming-persistent-not-standby", Severity: Error, HookSafe: true,
	Summary: "a primary names a device that is not a <teaming type='persistent'> interface",
	Doc: Doc{
		What: "The alias a primary names belongs to a device that is not an `<interface>` with " +
			"`<teaming type='persistent'/>`: a disk, a hostdev, another primary, or an interface without `<teaming>`.",
		Why: "Only a persistent-teaming interface becomes a virtio-net failover standby (`failover=on`) in QEMU; " +
			"a primary whose `failover_pair_id` names anything else is never hidden, negotiated or unplugged " +
			"(docs/failover.md#qemu-failover).",
		Bad:  "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			devs := p.dom.Aliases[t.persistent]
			if t.persistent == "" || len(devs) == 0 {
				continue
			}
			target := devs[0]
			if n := p.dom.NICByAlias(t.persistent); n != nil && n.TeamType == "persistent" {
				continue
			}
			var f *Finding
			switch {
			case target == t.el:
				f = p.atAttr(t.via, t.pairAttr(), fmt.Sprintf("the primary names its own alias '%s' as its standby", t.persistent))
				f.Hint = "name the virtio standby's alias"
			case target.Name.Local == "interface" && target.Child("teaming") == nil:
				f = p.atAttr(t.via, t.pairAttr(), fmt.Sprintf("'%s' is an <interface> without <teaming type='persistent'/>: QEMU does not make it a failover standby, so nothing hides or unplugs this primary", t.persistent))
				f.Hint = "add <teaming type='persistent'/> to that interface"
			default:
				f = p.atAttr(t.via, t.pairAttr(), fmt.Sprintf("'%s' names %s, not a virtio standby <interface> with <teaming type='persistent'/>", t.persistent, describeDevice(target)))
				f.Hint = "name the alias of the virtio standby interface"
			}
			p.relatedEl(f, target, fmt.Sprintf("'%s' is here", t.persistent))
		}
	},
}

var ruleDuplicateTransient = &Rule{
	ID: "VF009", Name: "teaming-duplicate-transient", Severity: Error, HookSafe: true,
	Summary: "two primaries name one standby",
	Doc: Doc{
		What: "More than one primary (`<teaming type='transient'>` or `failover_pair_id`) names the same standby.",
		Why: "A virtio-net failover standby has exactly one primary: QEMU refuses the second (\"Cannot attach more " +
			"than one primary device to '…'\"), and the guest's net_failover takes one primary per master " +
			"(docs/failover.md#qemu-failover, docs/failover.md#guest-net-failover).",
		Bad:  "<hostdev mode='subsystem' type='pci' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</hostdev>\n<hostdev mode='subsystem' type='pci' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</hostdev>",
		Good: "<hostdev mode='subsystem' type='pci' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</hostdev>\n<hostdev mode='subsystem' type='pci' managed='yes'>\n  <teaming type='transient' persistent='ua-sby1'/>\n</hostdev>",
	},
	check: func(p *pass) {
		for _, s := range p.m.standbys {
			ts := p.m.partners(s)
			for _, t := range ts[min(1, len(ts)):] {
				f := p.atAttr(t.via, t.pairAttr(), fmt.Sprintf("a second primary for standby '%s': QEMU refuses it (\"Cannot attach more than one primary device to '%s'\")", s.Alias, s.Alias))
				p.relatedEl(f, ts[0].el, fmt.Sprintf("the first primary of '%s' is here", s.Alias))
				f.Hint = "give each primary its own virtio standby with its own alias and MAC (virt-failover pair adds one)"
			}
		}
	},
}

var ruleStandbyWithoutPrimary = &Rule{
	ID: "VF010", Name: "standby-without-primary", Severity: Warning, HookSafe: true,
	Summary: "a <teaming type='persistent'> standby that no primary names",
	Doc: Doc{
		What: "An interface has `<teaming type='persistent'/>` and an alias, but no `<teaming type='transient'>` and no " +
			"`failover_pair_id` names it.",
		Why: "QEMU starts the virtio-net with `failover=on` and waits for a primary that never comes (\"Primary device " +
			"not found\"); the guest only has the virtio path. A Windows guest's NetKVM without VIOPROT shows no link " +
			"at all until a VF with its MAC appears (docs/failover.md#qemu-failover, docs/failover.md#windows-netkvm). Fine while a primary is to be " +
			"hot-plugged later; otherwise pair it or drop `<teaming>`.",
		Bad:  "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			if t.persistent != "" && len(p.dom.Aliases[t.persistent]) == 0 {
				return // VF007 reports the primary whose alias resolves nowhere, with the free standbys
			}
		}
		for _, s := range p.m.standbys {
			if s.Alias == "" || len(p.m.partners(s)) > 0 {
				continue
			}
			f := p.at(s.Teaming, fmt.Sprintf("standby '%s' has no primary: no <teaming type='transient'> or failover_pair_id names it, so the guest gets the virtio path only", s.Alias))
			f.Hint = fmt.Sprintf("give the assigned device <teaming type='transient' persistent='%s'/>, or remove <teaming> if this NIC is not part of a pair", s.Alias)
		}
	},
}

var ruleHostdevTeamingNotTrans = &Rule{
	ID: "VF011", Name: "hostdev-teaming-not-transient", Severity: Error, HookSafe: true,
	Summary: "a <hostdev>'s <teaming> is not type='transient'",
	Doc: Doc{
		What: "A `<hostdev>` has `<teaming type='persistent'/>`.",
		Why: "An assigned device can only be the primary; libvirt refuses it: \"teaming hostdev devices must have " +
			"type='transient'\" (docs/failover.md#teaming-validation). The standby is always a virtio `<interface>`.",
		Bad:  "<hostdev mode='subsystem' type='pci' managed='yes'>\n  <teaming type='persistent'/>\n</hostdev>",
		Good: "<hostdev mode='subsystem' type='pci' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</hostdev>",
	},
	check: func(p *pass) {
		for _, h := range p.dom.Hostdevs {
			if h.TeamType == "persistent" {
				f := p.atAttr(h.Teaming, "type", "a <hostdev> can only be the transient side: libvirt refuses it (\"teaming hostdev devices must have type='transient'\")")
				f.Hint = "write <teaming type='transient' persistent='ua-…'/> naming the virtio standby interface"
			}
		}
	},
}

var ruleHostdevTeamingNotPCI = &Rule{
	ID: "VF012", Name: "hostdev-teaming-not-pci", Severity: Error, HookSafe: true,
	Summary: "<teaming> on a <hostdev> that is not a PCI subsystem device",
	Doc: Doc{
		What: "A `<hostdev>` with `<teaming>` is not `mode='subsystem' type='pci'` (a USB, SCSI or mdev device).",
		Why: "libvirt refuses it: \"teaming is only supported for pci hostdev devices\" (docs/failover.md#teaming-validation); QEMU's " +
			"`failover_pair_id` is a PCI device property (docs/failover.md#qemu-failover).",
		Bad:  "<hostdev mode='subsystem' type='usb'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</hostdev>",
		Good: "<hostdev mode='subsystem' type='pci' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</hostdev>",
	},
	check: func(p *pass) {
		for _, h := range p.dom.Hostdevs {
			if h.Teaming == nil || (h.Mode == "subsystem" || h.Mode == "") && h.Type == "pci" {
				continue
			}
			f := p.at(h.Teaming, fmt.Sprintf("<teaming> on <hostdev mode='%s' type='%s'>: libvirt refuses it (\"teaming is only supported for pci hostdev devices\")", h.Mode, h.Type))
			f.Hint = "remove <teaming>: only a PCI device can be a failover primary"
		}
	},
}

var ruleTransientInterfaceType = &Rule{
	ID: "VF013", Name: "teaming-transient-interface-type", Severity: Error, HookSafe: true,
	Summary: "<teaming type='transient'> on an interface type libvirt refuses",
	Doc: Doc{
		What: "An `<interface>` with `<teaming type='transient'>` is not `type='hostdev'` (a VF) or `type='network'` " +
			"(a hostdev network, a pool of VFs).",
		Why: "libvirt refuses it: \"virtio-net teaming transient interface must be type='hostdev', not '…'\" " +
			"(docs/failover.md#teaming-validation). An emulated NIC can still be a primary for tests, paired with " +
			"`failover_pair_id` through `<qemu:override>` (docs/failover.md#qemu-primary-devices).",
		Bad:  "<interface type='bridge'>\n  <source bridge='br0'/>\n  <model type='e1000e'/>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
		Good: "<interface type='hostdev' managed='yes'>\n  <source>\n    <address type='pci' domain='0x0000' bus='0x03' slot='0x07' function='0x1'/>\n  </source>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, n := range p.dom.NICs {
			if n.TeamType != "transient" || n.Type == "hostdev" || n.Type == "network" {
				continue
			}
			f := p.at(n.El, fmt.Sprintf("virtio-net teaming transient interface must be type='hostdev', not '%s' (libvirt refuses it)", n.Type))
			f.Hint = "an assigned VF is <interface type='hostdev'> or an <interface type='network'> of a hostdev network; an emulated primary pairs through <qemu:override> failover_pair_id instead"
		}
	},
}

var ruleStandbyAliasInvalid = &Rule{
	ID: "VF014", Name: "standby-alias-invalid", Severity: Error, HookSafe: true,
	Summary: "a standby without a valid user alias (ua-…)",
	Doc: Doc{
		What: "A `<teaming type='persistent'/>` interface has no `<alias>`, or an alias that is not a user alias: " +
			"`ua-` followed by letters, digits, `_` and `-`.",
		Why: "The primary names its standby by alias, and libvirt keeps only user aliases: any other name is replaced " +
			"by one it generates (`net0`), so nothing can name the standby (docs/failover.md#user-aliases).",
		Bad:  "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='backup0'/>\n  <teaming type='persistent'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-backup0'/>\n  <teaming type='persistent'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, s := range p.m.standbys {
			if policy.IsUserAlias(s.Alias) {
				continue
			}
			if s.Alias == "" {
				f := p.at(s.El, "the standby has no <alias>: libvirt names it itself (net0, …), so no primary can name it")
				f.Hint = "add <alias name='ua-sby0'/> (any ua- name) and name it in the primary's persistent="
				continue
			}
			a := s.El.Child("alias")
			f := p.atAttr(a, "name", fmt.Sprintf("alias '%s' is not a user alias: libvirt replaces it with a name of its own, so no primary can name it", s.Alias))
			f.Hint = "a user alias starts with 'ua-' and has only letters, digits, '_' and '-': <alias name='ua-" + sanitizeAlias(s.Alias) + "'/>"
		}
	},
}

func sanitizeAlias(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "sby0"
	}
	return string(b)
}

var ruleAliasDuplicate = &Rule{
	ID: "VF015", Name: "alias-duplicate", Severity: Error, HookSafe: true,
	Summary: "two devices carry one user alias",
	Doc: Doc{
		What: "The same user alias (`ua-…`) is on more than one device.",
		Why: "libvirt refuses it: \"non unique alias detected: …\" (docs/failover.md#teaming-validation, docs/failover.md#user-aliases); the alias is the QEMU " +
			"device id a primary's `failover_pair_id` points at.",
		Bad:  "<interface type='bridge'>\n  <alias name='ua-sby0'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <alias name='ua-sby0'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <alias name='ua-sby0'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <alias name='ua-pri0'/>\n</interface>",
	},
	check: func(p *pass) {
		if p.dom.Devices == nil {
			return
		}
		first := map[string]*xmlxform.Element{}
		for _, dev := range p.dom.Devices.Children {
			if dev.Name.Space != "" {
				continue
			}
			a := dev.Child("alias")
			name := attr(a, "name")
			if !policy.IsUserAlias(name) {
				continue
			}
			if f0, ok := first[name]; ok {
				f := p.atAttr(a, "name", fmt.Sprintf("non unique alias detected: %s (libvirt refuses the definition)", name))
				p.relatedEl(f, f0, fmt.Sprintf("'%s' is first used here", name))
				f.Hint = "give every device its own alias"
				continue
			}
			first[name] = dev
		}
	},
}
