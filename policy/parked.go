package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// Parked records (docs/metadata.md#parked): a device the orchestrator unplugged from a running
// domain, kept in the domain's own metadata with its whole definition, so that whoever plugs it
// back (the orchestrator, the replug worker the hook starts on arrival, repair) needs no other
// state.

// Kinds of pair records and of parked records, the kind attribute (docs/metadata.md).
const (
	KindNetPair     = "net"     // a NIC primary and its virtio-net standby, failed over by QEMU (<teaming>)
	KindBondPair    = "bond"    // a NIC primary and a virtio-net standby the guest bonds in software
	KindStoragePair = "storage" // an assigned storage leg and a virtio-scsi path to the same LUN
	KindDetachPair  = "detach"  // an assigned device with no fallback, unplugged for migrations
)

// Reasons a device is parked.
const (
	ParkedForMigration = "migration" // plug it back where the domain arrives
	ParkedForSwitch    = "switch"    // stay on the emulated path until switched back
)

// MetadataKey is the prefix virt-failover's metadata is set with (virDomainSetMetadata's key).
const MetadataKey = "vfo"

// Parked is one <vfo:parked> record: a device unplugged from the domain, its definition as it was.
type Parked struct {
	El     *xmlxform.Element // <vfo:parked>
	Alias  string            // the device's user alias
	Kind   string            // KindNetPair, KindBondPair, KindStoragePair or KindDetachPair
	Reason string            // ParkedForMigration or ParkedForSwitch
	Pool   string            // the pool its host resource comes from on each host; "" for none
	Since  string            // when it was parked, RFC 3339, as written
	Host   string            // the host that claimed its resource and wrote it into Device; "" for none
	// Device is the device's definition: the single child element of the record (<interface>,
	// <hostdev>, <disk>, ...), in no namespace or, as libvirt's metadata API writes it, in
	// virt-failover's namespace with all its descendants. nil when the record has none.
	Device *xmlxform.Element
}

// SinceTime parses Since.
func (p *Parked) SinceTime() (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, p.Since)
	return t, err == nil
}

// ParkedFor returns the parked record of the device with alias, nil when it is not parked.
func (d *Domain) ParkedFor(alias string) *Parked {
	for _, p := range d.Parked {
		if p.Alias == alias && alias != "" {
			return p
		}
	}
	return nil
}

func newParked(e *xmlxform.Element) *Parked {
	p := &Parked{El: e, Alias: AttrOf(e, "alias"), Kind: AttrOf(e, "kind"), Reason: AttrOf(e, "reason"),
		Pool: AttrOf(e, "pool"), Since: AttrOf(e, "since"), Host: AttrOf(e, "host")}
	for _, c := range e.Children {
		if InDevice(c) {
			p.Device = c
			break
		}
	}
	return p
}

// parkedDevices returns the device definitions of the parked records under root's <metadata>:
// a walk of the metadata only, for a caller that needs no Domain.
func parkedDevices(root *xmlxform.Element) []*xmlxform.Element {
	md := root.Child("metadata")
	if md == nil {
		return nil
	}
	var out []*xmlxform.Element
	for _, fo := range md.Children {
		if fo.Name.Space != NamespaceMetadata || fo.Name.Local != "failover" {
			continue
		}
		for _, pk := range fo.Children {
			if pk.Name.Space == NamespaceMetadata && pk.Name.Local == "parked" {
				if dev := newParked(pk).Device; dev != nil {
					out = append(out, dev)
				}
			}
		}
	}
	return out
}

// InDevice reports whether e is an element of a device definition: in no namespace, or in
// virt-failover's (a parked device after libvirt's metadata API put it there).
func InDevice(e *xmlxform.Element) bool {
	return e != nil && (e.Name.Space == "" || e.Name.Space == NamespaceMetadata)
}

// DeviceChild returns the first child element of a device element with that local name, in no
// namespace or in virt-failover's (see InDevice); nil when there is none.
func DeviceChild(e *xmlxform.Element, names ...string) *xmlxform.Element {
	for _, n := range names {
		if e == nil {
			return nil
		}
		var next *xmlxform.Element
		for _, c := range e.Children {
			if c.Name.Local == n && InDevice(c) {
				next = c
				break
			}
		}
		e = next
	}
	return e
}

// DeviceXML renders the parked device's definition as libvirt's attach takes it: the element as
// the record holds it, byte for byte, but in no namespace and with its first line's indentation
// taken off the others.
func (d *Domain) DeviceXML(p *Parked) (string, error) {
	if p.Device == nil {
		return "", fmt.Errorf("the parked record of '%s' holds no device definition", p.Alias)
	}
	var b strings.Builder
	if err := writeUnprefixed(&b, d.Doc, p.Device); err != nil {
		return "", err
	}
	return reindent(b.String(), leadingIndent(d.Doc, p.Device.Start.Start), ""), nil
}

// Park says what to record of a device the orchestrator unplugs.
type Park struct {
	Alias  string // the device's user alias
	Kind   string // the kind of the pair it belongs to (KindNetPair, ...)
	Reason string // ParkedForMigration or ParkedForSwitch
	Pool   string // "" for none
	Since  time.Time
}

// ParkMetadata returns the content of virt-failover's metadata with a parked record of the device
// park.Alias added: the element virDomainSetMetadata takes (type VIR_DOMAIN_METADATA_ELEMENT, key
// MetadataKey, uri NamespaceMetadata) to replace the domain's <vfo:failover>, live and in the
// persistent definition alike. The record holds the device's definition from the domain's
// <devices> as it is. Everything else the metadata holds is kept byte for byte (records of every
// <vfo:failover>, in one element), only without virt-failover's prefix: libvirt puts every element
// of the payload that has no namespace into virt-failover's (docs/metadata.md#parked).
func (d *Domain) ParkMetadata(park Park) (string, error) {
	if !IsUserAlias(park.Alias) {
		return "", fmt.Errorf("cannot park '%s': only a device with a user alias (ua-...) keeps its alias when it is plugged back", park.Alias)
	}
	switch park.Reason {
	case ParkedForMigration, ParkedForSwitch:
	default:
		return "", fmt.Errorf("cannot park '%s': the reason is %q, not %q or %q", park.Alias, park.Reason, ParkedForMigration, ParkedForSwitch)
	}
	if d.ParkedFor(park.Alias) != nil {
		return "", fmt.Errorf("'%s' is parked already", park.Alias)
	}
	devs := d.Aliases[park.Alias]
	if len(devs) != 1 {
		return "", fmt.Errorf("cannot park '%s': %d devices of the domain have that alias", park.Alias, len(devs))
	}
	dev := devs[0]
	var rec strings.Builder
	rec.WriteString("<parked")
	for _, a := range [][2]string{{"alias", park.Alias}, {"kind", park.Kind}, {"reason", park.Reason}, {"pool", park.Pool},
		{"since", park.Since.UTC().Format(time.RFC3339)}} {
		if a[1] != "" {
			rec.WriteString(" " + a[0] + "=" + quoteAttr(a[1]))
		}
	}
	rec.WriteString(">\n  ")
	var devXML strings.Builder
	if err := writeUnprefixed(&devXML, d.Doc, dev); err != nil {
		return "", err
	}
	rec.WriteString(reindent(devXML.String(), leadingIndent(d.Doc, dev.Start.Start), "  "))
	rec.WriteString("\n</parked>")
	return d.metadataPayload(nil, rec.String())
}

// UnparkMetadata returns the content of virt-failover's metadata without the parked record of
// alias (see ParkMetadata); the error is for a device that is not parked.
func (d *Domain) UnparkMetadata(alias string) (string, error) {
	p := d.ParkedFor(alias)
	if p == nil {
		return "", fmt.Errorf("'%s' is not parked", alias)
	}
	return d.metadataPayload(p.El, "")
}

// FailoverMetadata returns the content of virt-failover's metadata as it is: the element
// virDomainSetMetadata takes to write it back (see ParkMetadata), after a change made to the
// definition (a parked device's claim on this host).
func (d *Domain) FailoverMetadata() (string, error) { return d.metadataPayload(nil, "") }

// metadataPayload writes the children of every <vfo:failover> into one <failover> element,
// leaving out drop and adding add (a fragment whose lines are indented for a first-level child),
// with the indentation of the first <vfo:failover> taken off its lines.
func (d *Domain) metadataPayload(drop *xmlxform.Element, add string) (string, error) {
	var fos []*xmlxform.Element
	if d.Metadata != nil {
		for _, fo := range d.Metadata.Children {
			if fo.Name.Space == NamespaceMetadata && fo.Name.Local == "failover" {
				fos = append(fos, fo)
			}
		}
	}
	var b strings.Builder
	if len(fos) == 0 {
		b.WriteString("<failover>")
		if add != "" {
			b.WriteString("\n  " + strings.ReplaceAll(add, "\n", "\n  ") + "\n")
		}
		b.WriteString("</failover>")
		return b.String(), nil
	}
	src := d.Doc.Src
	first := fos[0]
	if err := writeStartTag(&b, d.Doc, first); err != nil {
		return "", err
	}
	// The children's indentation, and the text before the end tag, as the first element has them.
	ind := leadingIndent(d.Doc, first.Start.Start)
	childInd := ind + "  "
	if len(first.Children) > 0 {
		childInd = leadingIndent(d.Doc, first.Children[0].Start.Start)
	}
	wrote := false
	for _, fo := range fos {
		if fo.SelfClosing {
			continue
		}
		pos := fo.Start.End
		for _, c := range fo.Children {
			gap := string(src[pos:c.Start.Start])
			pos = c.Span().End
			if c == drop {
				continue
			}
			if !wrote {
				gap = trimToLine(gap)
			}
			b.WriteString(gap)
			if err := writeUnprefixed(&b, d.Doc, c); err != nil {
				return "", err
			}
			wrote = true
		}
	}
	if add != "" {
		b.WriteString("\n" + childInd + strings.ReplaceAll(add, "\n", "\n"+childInd))
		wrote = true
	}
	if wrote {
		b.WriteString("\n" + ind)
	}
	b.WriteString("</failover>")
	out := reindent(b.String(), ind, "")
	if _, err := xmlxform.Parse([]byte(out)); err != nil {
		return "", fmt.Errorf("virt-failover's metadata does not stand alone without its namespace declaration (a prefix declared outside it?): %w", err)
	}
	return out, nil
}

// trimToLine keeps what follows the last line end of a gap: the indentation of the next element.
func trimToLine(gap string) string {
	if i := strings.LastIndexByte(gap, '\n'); i >= 0 {
		return gap[i:]
	}
	return "\n" + gap
}

// writeUnprefixed writes e as the document has it, byte for byte, but with the elements of
// virt-failover's namespace written without their prefix and the declarations of that namespace
// left out: the form virDomainSetMetadata and virDomainAttachDeviceFlags take.
func writeUnprefixed(b *strings.Builder, doc *xmlxform.Doc, e *xmlxform.Element) error {
	if err := writeStartTag(b, doc, e); err != nil {
		return err
	}
	if e.SelfClosing {
		return nil
	}
	src := doc.Src
	pos := e.Start.End
	for _, c := range e.Children {
		b.Write(src[pos:c.Start.Start])
		if err := writeUnprefixed(b, doc, c); err != nil {
			return err
		}
		pos = c.Span().End
	}
	b.Write(src[pos:e.End.Start])
	b.WriteString("</" + unprefixedName(e) + ">")
	return nil
}

// writeStartTag writes e's start tag with its name unprefixed when it is in virt-failover's
// namespace and without the declarations of that namespace.
func writeStartTag(b *strings.Builder, doc *xmlxform.Doc, e *xmlxform.Element) error {
	src := doc.Src
	b.WriteString("<" + unprefixedName(e))
	pos := e.Start.Start + 1 + len(e.QName)
	for _, a := range e.Attrs {
		if a.Name.Space == NamespaceMetadata {
			return fmt.Errorf("%s: attribute %s is in virt-failover's namespace; its records use plain attributes", e.Path(), a.QName)
		}
		if a.Name.Space != xmlxform.NamespaceXMLNS || a.Value != NamespaceMetadata {
			continue
		}
		// Leave out the declaration and the blanks before it.
		end := a.Span.Start
		for end > pos && isBlank(src[end-1]) {
			end--
		}
		b.Write(src[pos:end])
		pos = a.Span.End
	}
	b.Write(src[pos:e.Start.End])
	return nil
}

func unprefixedName(e *xmlxform.Element) string {
	if e.Name.Space == NamespaceMetadata {
		return e.Name.Local
	}
	return e.QName
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// reindent replaces the indentation from of every line but the first of s by to; lines that do
// not start with it keep theirs.
func reindent(s, from, to string) string {
	lines := strings.Split(s, "\n")
	for i := 1; i < len(lines); i++ {
		if rest, ok := strings.CutPrefix(lines[i], from); ok {
			lines[i] = to + rest
		}
	}
	return strings.Join(lines, "\n")
}

// quoteAttr writes an attribute value in double quotes, as libvirt does, escaped.
func quoteAttr(v string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", `"`, "&quot;", "\t", "&#9;", "\n", "&#10;", "\r", "&#13;")
	return `"` + r.Replace(v) + `"`
}

// leadingIndent returns the blanks that start the line holding off.
func leadingIndent(doc *xmlxform.Doc, off int) string {
	src := doc.Src
	start := off
	for start > 0 && src[start-1] != '\n' {
		start--
	}
	end := start
	for end < len(src) && (src[end] == ' ' || src[end] == '\t') {
		end++
	}
	return string(src[start:end])
}
