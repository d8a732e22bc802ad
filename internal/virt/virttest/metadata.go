package virttest

import (
	"sort"
	"strings"

	"github.com/beevik/etree"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// Metadata in the fake is kept as libvirt keeps it: one element per namespace URI, live and
// persistent apart, and shown inside <metadata> of the definitions the daemon gives out, each
// element in its namespace under the key (prefix) it was set with, every element of the payload
// that had no namespace put into it (virDomainSetMetadata's documentation).

// metadataOf reads the namespaced children of a definition's <metadata>, as Add starts a domain.
func metadataOf(def []byte) map[string]metaEntry {
	out := map[string]metaEntry{}
	doc, err := xmlxform.Parse(def)
	if err != nil {
		return out
	}
	md := doc.Find("/domain/metadata")
	if md == nil {
		return out
	}
	for _, c := range md.Children {
		if c.Name.Space == "" {
			continue
		}
		prefix, _ := c.LookupPrefix(c.Name.Space)
		src := string(doc.Src[c.Start.Start:c.End.End])
		if prefix != "" && !strings.Contains(string(doc.Src[c.Start.Start:c.Start.End]), "xmlns:"+prefix+"=") {
			// The prefix is declared on <metadata> or above: declare it on the element.
			src = strings.Replace(src, "<"+prefix+":"+c.Name.Local, "<"+prefix+":"+c.Name.Local+" xmlns:"+prefix+"='"+c.Name.Space+"'", 1)
		}
		out[c.Name.Space] = metaEntry{key: prefix, element: src}
	}
	return out
}

// render returns the element as libvirt shows it in a definition: in its namespace under key.
func (m metaEntry) render(uri string) string {
	doc := etree.NewDocument()
	if err := doc.ReadFromString(m.element); err != nil || doc.Root() == nil {
		return m.element
	}
	root := doc.Root()
	if root.Space == "" && m.key != "" {
		var walk func(e *etree.Element)
		walk = func(e *etree.Element) {
			if e.Space == "" {
				e.Space = m.key
			}
			for _, c := range e.ChildElements() {
				walk(c)
			}
		}
		walk(root)
		root.Attr = append([]etree.Attr{{Space: "xmlns", Key: m.key, Value: uri}}, root.Attr...)
	}
	s, err := doc.WriteToString()
	if err != nil {
		return m.element
	}
	return s
}

// withMetadata returns a definition with its <metadata> made from the entries: replaced where the
// definition has one, added after <uuid> (or <name>) where not, left out when there are none.
func withMetadata(def []byte, entries map[string]metaEntry) []byte {
	doc, err := xmlxform.Parse(def)
	if err != nil {
		return def
	}
	var b strings.Builder
	uris := make([]string, 0, len(entries))
	for uri := range entries {
		uris = append(uris, uri)
	}
	sort.Strings(uris)
	if len(uris) > 0 {
		b.WriteString("<metadata>\n")
		for _, uri := range uris {
			b.WriteString(entries[uri].render(uri))
			b.WriteString("\n")
		}
		b.WriteString("</metadata>")
	}
	if md := doc.Find("/domain/metadata"); md != nil {
		return []byte(string(def[:md.Start.Start]) + b.String() + string(def[md.End.End:]))
	}
	if b.Len() == 0 {
		return def
	}
	after := doc.Find("/domain/uuid")
	if after == nil {
		after = doc.Find("/domain/name")
	}
	if after == nil {
		return def
	}
	return []byte(string(def[:after.End.End]) + "\n" + b.String() + string(def[after.End.End:]))
}
