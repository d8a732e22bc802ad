package pair

import (
	"strings"

	"github.com/beevik/etree"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// elem builds an element with attributes given as name, value pairs.
func elem(tag string, attrs ...string) *etree.Element {
	e := etree.NewElement(tag)
	for i := 0; i+1 < len(attrs); i += 2 {
		e.CreateAttr(attrs[i], clean(attrs[i+1]))
	}
	return e
}

// add appends child to e and returns e.
func add(e *etree.Element, children ...*etree.Element) *etree.Element {
	for _, c := range children {
		e.AddChild(c)
	}
	return e
}

// clean turns tabs and line ends in a value into spaces, as XML reads them in a literal attribute
// value anyway, so that an inserted element keeps its lines and a value compares equal to what a
// later run reads back.
func clean(s string) string {
	if !strings.ContainsAny(s, "\t\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// frag writes e as xmlxform inserts fragments: two spaces per level, no leading indentation,
// attributes in the document's quote style.
func (p *planner) frag(e *etree.Element) string {
	d := etree.NewDocument()
	d.SetRoot(e)
	d.WriteSettings.AttrSingleQuote = p.doc.Quote() == '\''
	d.Indent(2)
	s, err := d.WriteToString()
	if err != nil { // writing to a strings.Builder does not fail
		panic(err)
	}
	return strings.TrimSpace(s)
}

// Where libvirt writes a device among the children of <devices>: the names it writes before.
var devicesBefore = map[string][]string{
	"disk":       {"emulator"},
	"controller": {"emulator", "disk"},
	"interface":  {"emulator", "disk", "controller", "lease", "filesystem"},
}

// Children libvirt writes after the one being inserted, by the parent's kind.
var (
	laterThanModel   = []string{"driver", "backend", "tune", "teaming", "link", "mtu", "coalesce", "boot", "alias", "rom", "acpi", "address"}
	laterThanTeaming = []string{"boot", "alias", "rom", "acpi", "address"}
	laterThanAlias   = []string{"rom", "acpi", "address"}
	laterThanROM     = []string{"acpi", "address"}
	rootBeforeMeta   = []string{"name", "uuid", "genid", "title", "description"}
)

// insertBefore inserts frag as a child of parent before its first child (in no namespace) named
// in later; with no such child, after the last one.
func (p *planner) insertBefore(parent *xmlxform.Element, later []string, frag string) error {
	for _, c := range parent.Children {
		if c.Name.Space == "" && contains(later, c.Name.Local) {
			return p.t.InsertBefore(c, frag)
		}
	}
	return p.t.InsertChild(parent, nil, frag)
}

// insertFirst inserts frag as the first child of parent.
func (p *planner) insertFirst(parent *xmlxform.Element, frag string) error {
	if len(parent.Children) > 0 {
		return p.t.InsertBefore(parent.Children[0], frag)
	}
	return p.t.InsertChild(parent, nil, frag)
}

// insertAfter inserts frag as a child of parent after its last child named like it (own), else
// after the last child named in before, else before the first child, else as its only child.
func (p *planner) insertAfter(parent *xmlxform.Element, own string, before []string, frag string) error {
	var anchor *xmlxform.Element
	for _, c := range parent.Children {
		if c.Name.Space == "" && c.Name.Local == own {
			anchor = c
		}
	}
	if anchor == nil {
		for _, c := range parent.Children {
			if c.Name.Space == "" && contains(before, c.Name.Local) {
				anchor = c
			}
		}
	}
	if anchor == nil && len(parent.Children) > 0 {
		return p.t.InsertBefore(parent.Children[0], frag)
	}
	return p.t.InsertChild(parent, anchor, frag)
}

// insertDevice inserts a new device into <devices> where libvirt keeps its kind.
func (p *planner) insertDevice(kind string, frag string) error {
	if kind == "interface" && p.standbyAnchor != nil {
		return p.t.InsertChild(p.dom.Devices, p.standbyAnchor, frag)
	}
	return p.insertAfter(p.dom.Devices, kind, devicesBefore[kind], frag)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
