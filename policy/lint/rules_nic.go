package lint

import (
	"fmt"
	"slices"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

var rulePairMACMismatch = &Rule{
	ID: "VF016", Name: "pair-mac-mismatch", Severity: Error, HookSafe: true,
	Summary: "a primary's MAC differs from its standby's",
	Doc: Doc{
		What: "A primary `<interface>` (a VF, a hostdev-network interface or an emulated primary) has a different " +
			"`<mac>` than the standby it names.",
		Why: "The guest's net_failover pairs the primary with the failover master by permanent MAC; with different " +
			"MACs the VF is never enslaved and traffic does not move to it. libvirt deliberately does not check this " +
			"(docs/failover.md#mac-addresses, docs/failover.md#guest-net-failover, docs/failover.md#known-bugs).",
		Bad:  "<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:03'/>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:02'/>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			s := p.m.standbyOf(p.dom, t)
			if t.nic == nil || s == nil || t.nic.MAC == "" || s.MAC == "" || t.nic.MAC == s.MAC {
				continue
			}
			f := p.atAttr(t.el.Child("mac"), "address", fmt.Sprintf("the primary's MAC %s differs from its standby's %s: the guest's net_failover pairs them by MAC, so it never enslaves this primary", t.nic.MAC, s.MAC))
			p.relatedEl(f, s.El.Child("mac"), fmt.Sprintf("standby '%s' has MAC %s", s.Alias, s.MAC))
			f.Hint = fmt.Sprintf("give both <mac address='%s'/>", s.MAC)
		}
	},
}

var rulePairMACMissing = &Rule{
	ID: "VF017", Name: "pair-mac-missing", Severity: Error, HookSafe: true,
	Summary: "a primary interface or its standby has no <mac>",
	Doc: Doc{
		What: "A primary `<interface>`, or a standby that a primary names, has no `<mac address=…/>`.",
		Why: "libvirt gives every interface without a MAC a random one when it parses the definition, so the two " +
			"cannot match and net_failover, which pairs by MAC, never pairs them (docs/failover.md#mac-addresses, docs/failover.md#guest-net-failover).",
		Bad:  "<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
		Good: "<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:02'/>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			s := p.m.standbyOf(p.dom, t)
			if t.nic != nil && t.nic.MAC == "" {
				f := p.at(t.el, "the primary has no <mac>: libvirt gives it a random one, which cannot equal its standby's, and net_failover pairs by MAC")
				f.Hint = "give it the standby's MAC"
				if s != nil && s.MAC != "" {
					f.Hint = fmt.Sprintf("add <mac address='%s'/> (the standby's)", s.MAC)
					p.relatedEl(f, s.El.Child("mac"), fmt.Sprintf("standby '%s' has MAC %s", s.Alias, s.MAC))
				}
			}
		}
		for _, s := range p.m.standbys {
			if s.MAC != "" || len(p.m.partners(s)) == 0 {
				continue
			}
			f := p.at(s.El, fmt.Sprintf("standby '%s' has no <mac>: libvirt gives it a random one, which its primary cannot match, and net_failover pairs by MAC", s.Alias))
			f.Hint = "give the standby and its primary the same <mac address='…'/>"
			for _, t := range p.m.partners(s) {
				if t.nic != nil && t.nic.MAC != "" {
					f.Hint = fmt.Sprintf("add <mac address='%s'/> (the primary's)", t.nic.MAC)
				}
			}
		}
	},
}

var ruleHostdevPrimaryMAC = &Rule{
	ID: "VF018", Name: "hostdev-primary-mac-unset", Severity: Warning, HookSafe: true,
	Summary: "a plain <hostdev> primary: libvirt cannot set its MAC",
	Doc: Doc{
		What: "The primary is a plain `<hostdev>` with `<teaming type='transient'>` rather than an " +
			"`<interface type='hostdev'>`.",
		Why: "libvirt programs a VF's MAC through its PF for `<interface type='hostdev'>` and hostdev networks, but not " +
			"for a plain `<hostdev>`: the device must already carry the standby's MAC when the guest driver probes it, " +
			"or net_failover does not pair them (docs/failover.md#teaming-xml, docs/failover.md#mac-addresses). It is the right form " +
			"for a non-VF NIC or when libvirt may not touch the PF; the MAC is then a host-side step.",
		Bad:  "<hostdev mode='subsystem' type='pci' managed='yes'>\n  <source>\n    <address domain='0x0000' bus='0x03' slot='0x07' function='0x1'/>\n  </source>\n  <teaming type='transient' persistent='ua-sby0'/>\n</hostdev>",
		Good: "<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:02'/>\n  <source>\n    <address type='pci' domain='0x0000' bus='0x03' slot='0x07' function='0x1'/>\n  </source>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			if t.hd == nil || t.emulated {
				continue
			}
			s := p.m.standbyOf(p.dom, t)
			mac := "the standby's MAC"
			if s != nil && s.MAC != "" {
				mac = s.MAC
			}
			f := p.at(t.el, fmt.Sprintf("libvirt does not set the MAC of a plain <hostdev>: the device must already have %s when the guest's driver probes it, or net_failover does not pair it", mac))
			if s != nil {
				p.relatedEl(f, s.El, fmt.Sprintf("standby '%s' is here", s.Alias))
			}
			f.Hint = fmt.Sprintf("for a VF, on every host before the guest starts: ip link set PF vf N mac %s; or use <interface type='hostdev'>, whose MAC libvirt sets", macOr(mac))
		}
	},
}

func macOr(mac string) string {
	if len(mac) == 17 {
		return mac
	}
	return "MAC"
}

var ruleMACDuplicate = &Rule{
	ID: "VF019", Name: "mac-duplicate", Severity: Error, HookSafe: true,
	Summary: "one MAC on interfaces that are not one failover pair, where it matters",
	Doc: Doc{
		What: "Two `<interface>`s share a MAC without being a standby and its primary (of a teaming pair, or of a bond " +
			"pair virt-failover's metadata records), and either one of them is " +
			"in a failover pair, or both are on the same L2 segment: the same `<source network>`, `<source bridge>` " +
			"or `direct` device, or the same multicast group. MACs are compared as libvirt reads them " +
			"(`52:54:0:1:2:3` is `52:54:00:01:02:03`). NICs that share no segment may repeat a MAC: libvirt's own " +
			"test domains put one MAC on several `type='user'` NICs, each its own private network.",
		Why: "net_failover enslaves any PCI NIC whose permanent MAC equals a failover master's, so a third NIC with " +
			"the standby's MAC is taken for the primary (docs/failover.md#guest-net-failover); and two NICs with one MAC " +
			"on one segment confuse the bridge and every switch on it.",
		Bad:  "<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>\n<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <mac address='52:54:00:6d:90:02'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>\n<interface type='bridge'>\n  <mac address='52:54:00:6d:90:03'/>\n</interface>",
	},
	check: func(p *pass) {
		// A NIC's failover role: the standby alias it is, or the standby alias it names as a
		// primary (resolved to a real standby, else "?": other rules report that pairing).
		role := map[*xmlxform.Element]string{}
		primary := map[*xmlxform.Element]bool{}
		for _, s := range p.m.standbys {
			if s.Alias != "" {
				role[s.El] = s.Alias
			}
		}
		for _, t := range p.m.transients {
			primary[t.el] = true
			if p.m.standbyOf(p.dom, t) != nil {
				role[t.el] = t.persistent
			} else {
				role[t.el] = "?"
			}
		}
		// A bond pair (docs/pair.md#bond): the guest's active-backup bond keeps one MAC on both
		// slaves, so they share it by design, and no net_failover takes either for another's.
		bond := map[*xmlxform.Element]string{}
		for _, mp := range p.m.meta {
			if mp.kind != policy.KindBondPair || mp.standby == "" || mp.primary == "" {
				continue
			}
			s, pr := p.dom.Aliases[mp.standby], p.dom.Aliases[mp.primary]
			if len(s) == 1 && len(pr) == 1 && role[s[0]] == "" && role[pr[0]] == "" {
				bond[s[0]], bond[pr[0]] = mp.standby, mp.standby
			}
		}
		// conflict says why one MAC on a and b is wrong, "" when it is not.
		conflict := func(a, b *policy.NIC) string {
			ra, rb := role[a.El], role[b.El]
			if bond[a.El] != "" && bond[a.El] == bond[b.El] {
				return "" // the two slaves of one bond
			}
			switch {
			case ra == "" && rb == "":
				if seg := segment(a); seg != "" && seg == segment(b) {
					return "both are on " + seg + ": one MAC twice on one segment confuses the bridge and the switches"
				}
				return "" // no pair, no shared segment: libvirt's own test domains do this
			case ra == "" || rb == "":
				return "it is not this one's failover partner: net_failover pairs by MAC and takes it for the primary"
			case ra == "?" || rb == "?" || primary[a.El] && primary[b.El]:
				return "" // a broken or doubled pairing: VF005, VF007, VF008, VF009 say so
			case ra != rb:
				return "it is not this one's failover partner: net_failover pairs by MAC and takes it for the primary"
			}
			return "" // a standby and its primary
		}
		byMAC := map[string][]*policy.NIC{}
		for _, n := range p.dom.NICs {
			if n.MAC == "" {
				continue
			}
			for _, e := range byMAC[n.MAC] {
				if why := conflict(e, n); why != "" {
					f := p.atAttr(n.El.Child("mac"), "address", fmt.Sprintf("MAC %s is also on another <interface>, and %s", n.MAC, why))
					p.relatedEl(f, e.El.Child("mac"), fmt.Sprintf("%s is also used here", n.MAC))
					f.Hint = "give this interface a MAC of its own (or remove <mac> and libvirt picks one)"
					break
				}
			}
			byMAC[n.MAC] = append(byMAC[n.MAC], n)
		}
	},
}

// segment names the L2 segment an interface is on when the definition says it: its libvirt
// network, host bridge, macvtap device or multicast group; "" when it is private (type='user',
// each its own NAT) or not known from the XML (ethernet, hostdev, vhostuser, ...).
func segment(n *policy.NIC) string {
	src := n.El.Child("source")
	if name := networkOf(n.El); name != "" {
		return "network '" + name + "'"
	}
	switch n.Type {
	case "bridge":
		if b := attr(src, "bridge"); b != "" {
			return "bridge '" + b + "'"
		}
	case "direct":
		if d := attr(src, "dev"); d != "" {
			return "host device '" + d + "' (macvtap)"
		}
	case "mcast":
		if a := attr(src, "address"); a != "" {
			return "multicast group " + a + ":" + attr(src, "port")
		}
	}
	return ""
}

var ruleStandbyModel = &Rule{
	ID: "VF020", Name: "standby-model-not-virtio", Severity: Error, HookSafe: true,
	Summary: "a standby that is not virtio-net",
	Doc: Doc{
		What: "A `<teaming type='persistent'/>` interface is not `<model type='virtio'/>` (or virtio-transitional, " +
			"virtio-non-transitional); this includes an `<interface type='hostdev'>` standby, which has no model at all.",
		Why: "Failover is a virtio-net feature (`failover=on`, VIRTIO_NET_F_STANDBY); libvirt refuses anything else: " +
			"\"virtio-net teaming persistent interface must be <model type='virtio'/>, not '…'\" (docs/failover.md#teaming-validation, docs/failover.md#qemu-failover).",
		Bad:  "<interface type='bridge'>\n  <model type='e1000e'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, s := range p.m.standbys {
			if virtioModel(s.Model) || s.Model == "" && s.Type != "hostdev" && defaultModelIsVirtio(p.dom) {
				continue
			}
			if s.Type == "hostdev" {
				f := p.at(s.El, "an assigned <interface type='hostdev'> cannot be the standby: the standby is the emulated virtio-net path that stays during migration")
				f.Hint = "make this the primary (<teaming type='transient' persistent='ua-…'/>) and add a virtio standby (virt-failover pair)"
				continue
			}
			if m := s.El.Child("model"); m != nil {
				f := p.atAttr(m, "type", fmt.Sprintf("virtio-net teaming persistent interface must be <model type='virtio'/>, not '%s' (libvirt refuses it)", s.Model))
				f.Hint = "set <model type='virtio'/>"
				continue
			}
			f := p.at(s.El, "the standby has no <model>: libvirt's default here is not virtio-net (it is only on s390 and the ARM and RISC-V virt machines), and it refuses a non-virtio standby")
			f.Hint = "add <model type='virtio'/>"
		}
	},
}

var ruleStandbyLinkDown = &Rule{
	ID: "VF021", Name: "standby-link-down", Severity: Warning, HookSafe: true,
	Summary: "a standby with <link state='down'/>",
	Doc: Doc{
		What: "A standby interface has `<link state='down'/>`.",
		Why: "With QEMU-driven failover nothing brings the standby's link up: while the primary is unplugged for " +
			"migration the guest has no network at all. The manual scheme in the kernel's net_failover document " +
			"toggles the link around migration with `virsh domif-setlink`; libvirt's teaming does not " +
			"(docs/failover.md#guest-pitfalls).",
		Bad:  "<interface type='bridge'>\n  <model type='virtio'/>\n  <link state='down'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, s := range p.m.standbys {
			if l := s.El.Child("link"); l != nil && attr(l, "state") == "down" {
				f := p.atAttr(l, "state", "the standby's link is down: nothing brings it up, so while the primary is unplugged for migration the guest has no network")
				f.Hint = "remove <link state='down'/>"
			}
		}
	},
}

var ruleStandbySource = &Rule{
	ID: "VF022", Name: "standby-source-not-shared-l2", Severity: Warning, HookSafe: true,
	Summary: "a standby whose source cannot reach the primary's L2 segment",
	Doc: Doc{
		What: "A standby uses user-mode networking (SLIRP), has no source network or bridge, or (with `[lint] " +
			"standby_networks` in the policy) uses a network or bridge that is not in that list.",
		Why: "Both devices of a pair must reach the same L2 segment: the guest keeps its MAC and addresses on the " +
			"failover master and only the path changes (docs/failover.md#teaming-xml). SLIRP is a private NAT inside QEMU; " +
			"a standby elsewhere loses every connection while the primary is unplugged. libvirt's own test data uses " +
			"`type='user'` standbys, which is fine for a parser test only.",
		Bad:  "<interface type='user'>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <source bridge='br-fabric'/>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
	},
	check: func(p *pass) {
		allowed := p.pol.Lint.StandbyNetworks
		for _, s := range p.m.standbys {
			src := s.El.Child("source")
			name := networkOf(s.El)
			if name == "" {
				switch s.Type {
				case "bridge":
					name = attr(src, "bridge")
				case "direct":
					name = attr(src, "dev")
				}
			}
			switch {
			case s.Type == "user":
				f := p.at(s.El, "the standby uses user-mode networking (SLIRP), a private NAT inside QEMU: it cannot reach the primary's L2 segment, so connections break while the primary is unplugged")
				f.Hint = "connect the standby to the bridge or network of the primary's segment"
			case (s.Type == "network" || s.Type == "bridge") && name == "":
				f := p.at(s.El, "the standby has no source network or bridge")
				f.Hint = "add <source network='…'/> or <source bridge='…'/> on the primary's segment"
			case len(allowed) > 0 && name != "" && !slices.Contains(allowed, name):
				f := p.report(s.El, srcOff(s.El), fmt.Sprintf("the standby's source '%s' is not one of [lint] standby_networks (%s): it may not reach the primary's L2 segment", name, quoteList(allowed)))
				f.Hint = "connect the standby to one of standby_networks, or add this one to the policy"
			}
		}
	},
}

func srcOff(e *xmlxform.Element) int {
	if s := e.Child("source"); s != nil {
		return s.Start.Start
	}
	return e.Start.Start
}

func quoteList(l []string) string {
	s := ""
	for i, x := range l {
		if i > 0 {
			s += ", "
		}
		s += "'" + x + "'"
	}
	return s
}

var ruleStandbyOnPool = &Rule{
	ID: "VF023", Name: "standby-on-vf-pool", Severity: Error, HookSafe: true,
	Summary: "a standby on a network the policy lists as a VF pool",
	Doc: Doc{
		What: "A standby's `<source network=…>` is a network that a `[pools.NAME]` table of the policy lists in " +
			"`networks`: a hostdev network that hands out VFs.",
		Why: "The standby must be the emulated virtio-net path that stays while the primary is unplugged; on a " +
			"hostdev network libvirt gives it a VF instead, which cannot be a virtio standby and which blocks " +
			"migration (docs/failover.md#teaming-xml, docs/failover.md#teaming-migration).",
		Bad:  "<interface type='network'>\n  <source network='fabric'/>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
		Good: "<interface type='network'>\n  <source network='lan'/>\n  <model type='virtio'/>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, s := range p.m.standbys {
			name := networkOf(s.El)
			if pool, ok := p.m.poolNetworks[name]; ok && name != "" {
				f := p.report(s.El, srcOff(s.El), fmt.Sprintf("the standby uses network '%s', a VF pool ([pools.%s] in the policy): it would get a VF instead of staying the virtio path", name, pool))
				f.Hint = "connect the standby to a bridge or ordinary network on the same segment ([standby] in the policy names the one virt-failover pair uses)"
			}
		}
	},
}

var rulePrimaryNotHotpluggable = &Rule{
	ID: "VF024", Name: "primary-not-hotpluggable", Severity: Error, HookSafe: true,
	Summary: "a primary on a PCI port that cannot hot-unplug",
	Doc: Doc{
		What: "A primary's guest `<address type='pci'>` puts it directly on `pcie.0` of a q35 machine, or behind a " +
			"controller with `<target hotplug='off'/>`. Primaries are those of `<teaming>` pairs and of emulated " +
			"pairs, and the devices virt-failover's metadata has the orchestrator unplug (bond primaries, storage " +
			"legs, `kind='detach'` devices).",
		Why: "QEMU unplugs the primary through the bus's hot-plug handler when migration starts and plugs it back " +
			"after; a primary on a bus without hot-plug is refused (\"Bus 'pcie.0' does not support hotplugging\") or " +
			"cannot be unplugged (docs/failover.md#hotplug, docs/failover.md#qemu-migration). The orchestrator's " +
			"detach goes through the same hot-plug controller (docs/failover.md#teaming-migration).",
		Bad:  "<controller type='pci' index='3' model='pcie-root-port'>\n  <target chassis='3' port='0xa' hotplug='off'/>\n</controller>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n  <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>\n</interface>",
		Good: "<controller type='pci' index='3' model='pcie-root-port'>\n  <target chassis='3' port='0xa'/>\n</controller>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n  <address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/>\n</interface>",
	},
	check: func(p *pass) {
		els := make([]*xmlxform.Element, 0, len(p.m.transients))
		for _, t := range p.m.transients {
			els = append(els, t.el)
		}
		for _, mp := range p.m.meta {
			if devs := p.dom.Aliases[mp.primary]; mp.orchestrated() && len(devs) == 1 && mp.primary != "" && !slices.Contains(els, devs[0]) {
				els = append(els, devs[0])
			}
		}
		for _, el := range els {
			bus, _, ok := guestPCI(el)
			if !ok {
				continue
			}
			ctrl := p.m.controllers[bus]
			addr := el.Child("address")
			switch {
			case p.dom.IsQ35() && (bus == 0 || attr(ctrl, "model") == "pcie-root"):
				f := p.atAttr(addr, "bus", "the primary sits directly on pcie.0, which has no hot-plug: QEMU refuses a failover primary there (\"Bus 'pcie.0' does not support hotplugging\")")
				f.Hint = "put it behind a pcie-root-port (remove its <address> and libvirt picks one)"
			case ctrl != nil && attr(ctrl.Child("target"), "hotplug") == "off":
				f := p.atAttr(addr, "bus", fmt.Sprintf("the primary's port (controller index %d) has hotplug='off': QEMU cannot unplug the primary when migration starts", bus))
				p.relatedEl(f, ctrl.Child("target"), "hot-plug is switched off here")
				f.Hint = "remove hotplug='off' from that port, or move the primary to a hot-pluggable pcie-root-port"
			}
		}
	},
}

var ruleNoFreeHotplugPort = &Rule{
	ID: "VF025", Name: "no-free-hotplug-port", Severity: Info,
	Summary: "a q35 domain with failover pairs and no free hot-pluggable root port",
	Doc: Doc{
		What: "A q35 domain with a failover primary whose PCI addresses are all assigned has no `pcie-root-port` " +
			"left without a device on it (and without `hotplug='off'`).",
		Why: "On q35 every hot-plugged endpoint needs a free root port (docs/failover.md#hotplug). QEMU " +
			"re-plugs a teaming primary at its own address, so failover migration does not " +
			"need one; a device attached anew does: a primary re-added after `virsh detach-device`, a storage leg " +
			"the orchestrator plugs elsewhere. Not hook-safe: it is about later attachments, not this start.",
		Bad:  "<controller type='pci' index='1' model='pcie-root-port'/>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n  <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n</interface>",
		Good: "<controller type='pci' index='1' model='pcie-root-port'/>\n<controller type='pci' index='2' model='pcie-root-port'/>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n  <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n</interface>",
	},
	check: func(p *pass) {
		if !p.dom.IsQ35() || len(p.m.transients) == 0 || p.dom.Devices == nil {
			return
		}
		var ports []*xmlxform.Element
		used := map[int]bool{}
		for _, dev := range p.dom.Devices.Children {
			if dev.Name.Space != "" {
				continue
			}
			if dev.Name.Local == "controller" && attr(dev, "model") == "pcie-root-port" {
				ports = append(ports, dev)
			}
			if (dev.Name.Local == "interface" || dev.Name.Local == "hostdev") && dev.Child("address") == nil {
				return // libvirt has not placed every device yet; it adds ports as it does
			}
			if bus, _, ok := guestPCI(dev); ok {
				used[bus] = true
			}
		}
		if len(ports) == 0 {
			return
		}
		for _, c := range ports {
			i, ok := parseUint(attr(c, "index"), 10)
			if ok && !used[i] && attr(c.Child("target"), "hotplug") != "off" {
				return
			}
		}
		f := p.at(ports[len(ports)-1], "no free hot-pluggable pcie-root-port: a device attached anew (a primary re-added after detach-device, a storage leg plugged back elsewhere) has nowhere to go")
		f.Hint = "add a spare <controller type='pci' model='pcie-root-port'/>; QEMU re-plugs a teaming primary at its own address, so migration itself does not need it"
	},
}

var rulePairSharesSlot = &Rule{
	ID: "VF026", Name: "pair-shares-slot", Severity: Warning, HookSafe: true,
	Summary: "a primary and its standby in one PCI slot",
	Doc: Doc{
		What: "A primary and the standby it names have guest PCI addresses on the same bus and slot (two functions " +
			"of one multifunction slot).",
		Why: "QEMU's failover documentation says primary and standby must not share a PCIe slot: hot-unplug works per " +
			"slot, so unplugging the primary would take the standby with it (docs/failover.md#qemu-primary-devices).",
		Bad:  "<interface type='bridge'>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n  <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0' multifunction='on'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n  <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>\n</interface>",
		Good: "<interface type='bridge'>\n  <alias name='ua-sby0'/>\n  <teaming type='persistent'/>\n  <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n</interface>\n<interface type='hostdev' managed='yes'>\n  <teaming type='transient' persistent='ua-sby0'/>\n  <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range p.m.transients {
			s := p.m.standbyOf(p.dom, t)
			if s == nil {
				continue
			}
			b1, s1, ok1 := guestPCI(t.el)
			b2, s2, ok2 := guestPCI(s.El)
			if !ok1 || !ok2 || b1 != b2 || s1 != s2 {
				continue
			}
			f := p.at(t.el.Child("address"), fmt.Sprintf("the primary shares PCI slot %02x:%02x with its standby '%s': unplugging the primary's slot takes the standby too", b1, s1, s.Alias))
			p.relatedEl(f, s.El.Child("address"), "the standby's address")
			f.Hint = "give the primary a slot of its own (remove its <address> and libvirt picks one)"
		}
	},
}
