package policy

import (
	"fmt"
	"slices"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// RewritePlan is what the [rewrite] tables change in one incoming definition.
type RewritePlan struct {
	Transform *xmlxform.Transform // the edits; Bytes() gives the rewritten document
	Changes   []string            // one line per changed attribute, for the decision log
}

// PlanRewrite maps host-side names of an incoming definition to this host's: every
// <interface type='network'> whose <source network='K'/> is a key of [rewrite.networks], and every
// <interface type='bridge'> whose <source bridge='K'/> is a key of [rewrite.bridges], those of
// <devices> and those parked in the metadata (docs/metadata.md#parked), which come back on this
// host. Only the source attribute changes; libvirt's ABI check does not compare interface sources
// (docs/failover.md#abi-check), nor the metadata. Interfaces in skip are left alone: a pool remaps
// its primaries.
func PlanRewrite(doc *xmlxform.Doc, p *Policy, skip ...*xmlxform.Element) RewritePlan {
	plan := RewritePlan{Transform: xmlxform.NewTransform(doc)}
	if len(p.Rewrite.Networks) == 0 && len(p.Rewrite.Bridges) == 0 {
		return plan
	}
	var ifaces []*xmlxform.Element
	if devices := doc.Root.Child("devices"); devices != nil {
		ifaces = devices.ChildrenNamed("interface")
	}
	for _, dev := range parkedDevices(doc.Root) {
		if dev.Name.Local == "interface" {
			ifaces = append(ifaces, dev)
		}
	}
	for _, iface := range ifaces {
		if slices.Contains(skip, iface) {
			continue
		}
		src := DeviceChild(iface, "source")
		if src == nil {
			continue
		}
		typ, _ := iface.Attr("type")
		var attr string
		var table map[string]string
		switch typ {
		case "network":
			attr, table = "network", p.Rewrite.Networks
		case "bridge":
			attr, table = "bridge", p.Rewrite.Bridges
		default:
			continue
		}
		from, ok := src.Attr(attr)
		if !ok {
			continue
		}
		to, ok := table[from]
		if !ok || to == from {
			continue
		}
		plan.Transform.SetAttr(src, attr, to)
		label := DeviceLabel(iface)
		if iface.Name.Space == NamespaceMetadata || iface.Parent != nil && iface.Parent.Name.Local == "parked" {
			label = "parked " + label
		}
		plan.Changes = append(plan.Changes, fmt.Sprintf("%s: source %s '%s' -> '%s'", label, attr, from, to))
	}
	return plan
}

// DeviceLabel names a device for messages: its alias, else its MAC, else its path.
func DeviceLabel(e *xmlxform.Element) string {
	label := e.Name.Local
	if a := DeviceChild(e, "alias"); a != nil {
		if name, ok := a.Attr("name"); ok {
			return label + " " + name
		}
	}
	if m := DeviceChild(e, "mac"); m != nil {
		if addr, ok := m.Attr("address"); ok {
			return label + " " + addr
		}
	}
	return e.Path()
}
