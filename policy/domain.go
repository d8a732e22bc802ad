package policy

import (
	"strings"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// XML namespaces a domain definition uses for failover.
const (
	// NamespaceQEMU is libvirt's QEMU namespace (<qemu:override>, <qemu:commandline>).
	NamespaceQEMU = "http://libvirt.org/schemas/domain/qemu/1.0"
	// NamespaceMetadata is virt-failover's own namespace under <metadata>.
	NamespaceMetadata = "http://virt-failover.org/xmlns/domain/1.0"
	// NamespaceLibosinfo is libosinfo's namespace under <metadata> (the guest OS).
	NamespaceLibosinfo = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
)

// Domain is a read-only view of a domain definition for failover: its identity, NICs, assigned
// devices, aliases, failover pairs and virt-failover's metadata records, each pointing back at its
// element (and so its position). It is built once per parse and shared by lint rules, pairing, the
// hook and the claims engine: nothing else walks these parts of a domain.
type Domain struct {
	Doc      *xmlxform.Doc
	Root     *xmlxform.Element // <domain>
	Name     string            // /domain/name, trimmed
	UUID     string            // /domain/uuid, trimmed and lowercased ("" when absent)
	Devices  *xmlxform.Element // nil when the domain has no <devices>
	Machine  string            // /domain/os/type/@machine ("pc-q35-7.2", "q35", "pc", ...)
	NICs     []*NIC            // every <interface>, in document order
	Hostdevs []*Hostdev        // every <hostdev>, in document order
	// Aliases maps every alias name to the devices carrying it (more than one is a mistake).
	Aliases map[string][]*xmlxform.Element
	// PairIDs maps a device alias to the failover_pair_id its <qemu:override> sets (the emulated
	// primary form), with the element of the property.
	PairIDs map[string]*xmlxform.Element
	// Metadata is <metadata>, nil when absent; Failover is its first <vfo:failover>, nil when none.
	Metadata, Failover *xmlxform.Element
	// Records are virt-failover's pair records (<vfo:pair> under <metadata><vfo:failover>, every
	// <vfo:failover> read, in document order); docs/metadata.md. A pair made by hand or by libvirt
	// has none.
	Records []*Record
	// Parked are the devices the orchestrator unplugged (<vfo:parked>, read like Records), each
	// with its definition; docs/metadata.md#parked.
	Parked []*Parked
}

// Record is one <vfo:pair>, its attributes as written (MAC and device as libvirt reads them when
// they parse).
type Record struct {
	El                                *xmlxform.Element
	Kind, Standby, Primary, MAC, Pool string
	Device, LUN                       string
	// Emulated marks a test stand-in for the assigned device (emulated='yes'): an emulated NIC as a
	// bond's primary, an emulated disk as a storage pair's assigned leg.
	Emulated bool
}

// RecordFor returns the record of the primary with alias primary: the first one, as every reader
// of the records takes it; nil when there is none.
func (d *Domain) RecordFor(primary string) *Record {
	if primary == "" {
		return nil
	}
	for _, r := range d.Records {
		if r.Primary == primary {
			return r
		}
	}
	return nil
}

// NIC is one <interface>.
type NIC struct {
	El         *xmlxform.Element
	Type       string // interface/@type
	Model      string // model/@type, "" when absent
	MAC        string // mac/@address as libvirt reads it (NormalMAC), else lowercased
	Alias      string // alias/@name
	Teaming    *xmlxform.Element
	TeamType   string // teaming/@type
	Persistent string // teaming/@persistent
}

// Hostdev is one <hostdev>.
type Hostdev struct {
	El         *xmlxform.Element
	Mode, Type string // hostdev/@mode, hostdev/@type
	Alias      string
	Teaming    *xmlxform.Element
	TeamType   string
	Persistent string
	Source     string // the host PCI address "dddd:bb:ss.f" of a PCI hostdev, "" otherwise
}

// NewDomain builds the view of a parsed definition.
func NewDomain(doc *xmlxform.Doc) *Domain { return NewDomainAt(doc, doc.Root) }

// NewDomainAt builds the view of the <domain> element root of doc: the document's root, or the
// <domain> inside a status file's <domstatus>.
func NewDomainAt(doc *xmlxform.Doc, root *xmlxform.Element) *Domain {
	d := &Domain{Doc: doc, Root: root, Aliases: map[string][]*xmlxform.Element{}, PairIDs: map[string]*xmlxform.Element{}}
	if t := ChildPath(root, "os", "type"); t != nil {
		d.Machine, _ = t.Attr("machine")
	}
	if n := root.Child("name"); n != nil {
		d.Name = strings.TrimSpace(n.Text(doc))
	}
	if u := root.Child("uuid"); u != nil {
		d.UUID = strings.ToLower(strings.TrimSpace(u.Text(doc)))
	}
	d.readMetadata()
	d.Devices = root.Child("devices")
	if d.Devices != nil {
		for _, dev := range d.Devices.Children {
			if dev.Name.Space != "" {
				continue
			}
			if a := dev.Child("alias"); a != nil {
				if name, ok := a.Attr("name"); ok {
					d.Aliases[name] = append(d.Aliases[name], dev)
				}
			}
			switch dev.Name.Local {
			case "interface":
				d.NICs = append(d.NICs, newNIC(dev))
			case "hostdev":
				d.Hostdevs = append(d.Hostdevs, newHostdev(dev))
			}
		}
	}
	for _, ov := range root.Children {
		if ov.Name.Space != NamespaceQEMU || ov.Name.Local != "override" {
			continue
		}
		for _, dev := range ov.Children {
			if dev.Name.Space != NamespaceQEMU || dev.Name.Local != "device" {
				continue
			}
			alias, _ := dev.Attr("alias")
			for _, fe := range dev.Children {
				if fe.Name.Space != NamespaceQEMU || fe.Name.Local != "frontend" {
					continue
				}
				for _, prop := range fe.Children {
					if name, _ := prop.Attr("name"); prop.Name.Space == NamespaceQEMU && prop.Name.Local == "property" && name == "failover_pair_id" {
						d.PairIDs[alias] = prop
					}
				}
			}
		}
	}
	return d
}

// readMetadata reads virt-failover's records: every <vfo:pair> of every <vfo:failover> under
// <metadata>, the MAC and device address normalised as libvirt reads them.
func (d *Domain) readMetadata() {
	d.Metadata = d.Root.Child("metadata")
	if d.Metadata == nil {
		return
	}
	for _, fo := range d.Metadata.Children {
		if fo.Name.Space != NamespaceMetadata || fo.Name.Local != "failover" {
			continue
		}
		if d.Failover == nil {
			d.Failover = fo
		}
		for _, p := range fo.Children {
			if p.Name.Space == NamespaceMetadata && p.Name.Local == "parked" {
				d.Parked = append(d.Parked, newParked(p))
			}
			if p.Name.Space != NamespaceMetadata || p.Name.Local != "pair" {
				continue
			}
			r := &Record{El: p, Kind: AttrOf(p, "kind"), Standby: AttrOf(p, "standby"), Primary: AttrOf(p, "primary"),
				MAC: strings.ToLower(AttrOf(p, "mac")), Pool: AttrOf(p, "pool"), Device: strings.ToLower(AttrOf(p, "device")), LUN: AttrOf(p, "lun"),
				Emulated: AttrOf(p, "emulated") == "yes"}
			if mac, ok := NormalMAC(r.MAC); ok {
				r.MAC = mac
			}
			if dev, ok := NormalPCIAddress(r.Device); ok {
				r.Device = dev
			}
			d.Records = append(d.Records, r)
		}
	}
}

func newNIC(e *xmlxform.Element) *NIC {
	n := &NIC{El: e}
	n.Type, _ = e.Attr("type")
	n.Model = AttrOf(e.Child("model"), "type")
	n.MAC = strings.ToLower(AttrOf(e.Child("mac"), "address"))
	if mac, ok := NormalMAC(n.MAC); ok {
		n.MAC = mac
	}
	n.Alias = AttrOf(e.Child("alias"), "name")
	if t := e.Child("teaming"); t != nil {
		n.Teaming = t
		n.TeamType, _ = t.Attr("type")
		n.Persistent, _ = t.Attr("persistent")
	}
	return n
}

func newHostdev(e *xmlxform.Element) *Hostdev {
	h := &Hostdev{El: e}
	h.Mode, _ = e.Attr("mode")
	h.Type, _ = e.Attr("type")
	h.Alias = AttrOf(e.Child("alias"), "name")
	if t := e.Child("teaming"); t != nil {
		h.Teaming = t
		h.TeamType, _ = t.Attr("type")
		h.Persistent, _ = t.Attr("persistent")
	}
	if h.Type == "pci" {
		h.Source = PCIAddress(ChildPath(e, "source", "address"))
	}
	return h
}

// IsQ35 reports whether the machine type is a q35 (PCIe) machine.
func (d *Domain) IsQ35() bool { return strings.Contains(d.Machine, "q35") }

// NICByAlias returns the NIC carrying alias, or nil.
func (d *Domain) NICByAlias(alias string) *NIC {
	for _, n := range d.NICs {
		if n.Alias == alias && alias != "" {
			return n
		}
	}
	return nil
}

// IsUserAlias reports whether name is a valid libvirt user alias: "ua-" followed by characters
// from [a-zA-Z0-9_-] (docs/failover.md#user-aliases).
func IsUserAlias(name string) bool {
	if !strings.HasPrefix(name, "ua-") || len(name) == 3 {
		return false
	}
	for _, r := range name[3:] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// AttrOf returns the attribute name of e, "" when e is nil or has none.
func AttrOf(e *xmlxform.Element, name string) string {
	if e == nil {
		return ""
	}
	v, _ := e.Attr(name)
	return v
}

// ChildPath follows child elements by name, nil when one is missing.
func ChildPath(e *xmlxform.Element, names ...string) *xmlxform.Element {
	for _, n := range names {
		if e == nil {
			return nil
		}
		e = e.Child(n)
	}
	return e
}
