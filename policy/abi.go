package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// CheckABI reports how after changes what libvirt's guest-ABI check compares between a migration's
// incoming definition and a replacement (docs/failover.md#abi-check): the virt type, OS type, arch,
// machine and memory; the device count of every kind; and per device the guest-visible fields
// (MACs, models, MTU, guest addresses, disk serials and WWNs, controller indexes). <teaming> is
// compared too: libvirt's checker skips it, but it decides virtio-net's failover feature bit, which
// the guest has already acked. A nil error means libvirt will accept the replacement on ABI
// grounds.
func CheckABI(before, after *xmlxform.Doc) error {
	var errs []error
	b, a := before.Root, after.Root
	t := abiTables()
	for _, f := range t.domain {
		if x, y := f.get(before, b), f.get(after, a); x != y {
			errs = append(errs, fmt.Errorf("domain %s %s becomes %s", f.name, quoteOrNone(x), quoteOrNone(y)))
		}
	}
	bd, ad := devicesByKind(b), devicesByKind(a)
	for _, kind := range unionKinds(bd, ad) {
		xs, ys := bd[kind], ad[kind]
		if len(xs) != len(ys) {
			errs = append(errs, fmt.Errorf("%s count %d becomes %d", kind, len(xs), len(ys)))
			continue
		}
		fields := slices.Concat(t.device[kind], t.common)
		for i := range xs {
			for _, f := range fields {
				if x, y := f.get(before, xs[i]), f.get(after, ys[i]); x != y {
					errs = append(errs, fmt.Errorf("%s: %s %s becomes %s", DeviceLabel(xs[i]), f.name, quoteOrNone(x), quoteOrNone(y)))
				}
			}
		}
	}
	return errors.Join(errs...)
}

type abiField struct {
	name string
	get  func(*xmlxform.Doc, *xmlxform.Element) string
}

// field reads an attribute of the element at path (child names separated by "/", "" for the
// element itself), or its text when attr is "".
func field(name, path, attr string) abiField {
	steps := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	return abiField{name: name, get: func(d *xmlxform.Doc, e *xmlxform.Element) string {
		for _, step := range steps {
			if e = e.Child(step); e == nil {
				return ""
			}
		}
		if attr == "" {
			return strings.TrimSpace(e.Text(d))
		}
		v, _ := e.Attr(attr)
		return v
	}}
}

// allAttrs renders every attribute of the child element at path, for guest addresses.
func allAttrs(name, path string) abiField {
	return abiField{name: name, get: func(d *xmlxform.Doc, e *xmlxform.Element) string {
		if e = e.Child(path); e == nil {
			return ""
		}
		var sb strings.Builder
		for _, a := range e.Attrs {
			sb.WriteString(a.QName + "=" + a.Value + " ")
		}
		return strings.TrimSpace(sb.String())
	}}
}

func present(name, path string) abiField {
	return abiField{name: name, get: func(d *xmlxform.Doc, e *xmlxform.Element) string {
		if e.Child(path) != nil {
			return "yes"
		}
		return ""
	}}
}

// abiFieldTables are the fields CheckABI compares: of the domain, of each kind of device, and of
// every device.
type abiFieldTables struct {
	domain, common []abiField
	device         map[string][]abiField
}

// abiTables builds the tables on first use: only a rewrite needs them, and every hook call would
// otherwise build them at its start.
var abiTables = sync.OnceValue(func() abiFieldTables {
	return abiFieldTables{domain: domainFields(), common: commonDeviceFields(), device: deviceFields()}
})

func domainFields() []abiField {
	return []abiField{
		{name: "type", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("type"); return v }},
		field("OS type", "os/type", ""),
		field("arch", "os/type", "arch"),
		field("machine", "os/type", "machine"),
		field("memory", "memory", ""),
		field("maximum memory", "maxMemory", ""),
		field("vcpu count", "vcpu", ""),
	}
}

func commonDeviceFields() []abiField {
	return []abiField{
		allAttrs("guest address", "address"),
		field("ACPI index", "acpi", "index"),
	}
}

func deviceFields() map[string][]abiField {
	return map[string][]abiField{
		"interface": {
			field("MAC", "mac", "address"),
			field("model", "model", "type"),
			field("MTU", "mtu", "size"),
			field("driver iommu", "driver", "iommu"),
			field("driver ats", "driver", "ats"),
			field("driver packed", "driver", "packed"),
			field("driver page_per_vq", "driver", "page_per_vq"),
			field("teaming type", "teaming", "type"),
			field("teaming persistent", "teaming", "persistent"),
		},
		"hostdev": {
			{name: "mode", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("mode"); return v }},
			{name: "type", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("type"); return v }},
			field("teaming type", "teaming", "type"),
			field("teaming persistent", "teaming", "persistent"),
		},
		"disk": {
			{name: "device", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("device"); return v }},
			field("bus", "target", "bus"),
			field("target", "target", "dev"),
			field("serial", "serial", ""),
			field("wwn", "wwn", ""),
			present("read-only", "readonly"),
			{name: "model", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("model"); return v }},
			field("queues", "driver", "queues"),
			field("logical block size", "blockio", "logical_block_size"),
			field("physical block size", "blockio", "physical_block_size"),
		},
		"controller": {
			{name: "type", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("type"); return v }},
			{name: "index", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("index"); return v }},
			{name: "model", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("model"); return v }},
			{name: "ports", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("ports"); return v }},
			{name: "vectors", get: func(d *xmlxform.Doc, e *xmlxform.Element) string { v, _ := e.Attr("vectors"); return v }},
		},
	}
}

// devicesByKind groups /domain/devices children by element name, in document order (libvirt
// compares each kind pairwise in order). <emulator> and <graphics> are not guest devices in the
// ABI sense and are skipped.
func devicesByKind(root *xmlxform.Element) map[string][]*xmlxform.Element {
	m := map[string][]*xmlxform.Element{}
	devs := root.Child("devices")
	if devs == nil {
		return m
	}
	for _, d := range devs.Children {
		if d.Name.Space != "" {
			continue
		}
		switch d.Name.Local {
		case "emulator", "graphics", "audio":
			continue
		}
		m[d.Name.Local] = append(m[d.Name.Local], d)
	}
	return m
}

func unionKinds(a, b map[string][]*xmlxform.Element) []string {
	seen := map[string]bool{}
	var kinds []string
	for _, m := range []map[string][]*xmlxform.Element{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				kinds = append(kinds, k)
			}
		}
	}
	slices.Sort(kinds)
	return kinds
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return "'" + s + "'"
}
