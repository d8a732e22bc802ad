// Package xmlxform edits XML without reformatting it.
//
// Parse builds a light element tree over the original bytes: every element
// and attribute knows its byte span, so a Transform can describe a change as
// a few byte-range replacements (Edit) and Apply splices them into the
// original document. Bytes outside an edit are copied unchanged: quote
// style, attribute order, comments, processing instructions, CDATA sections,
// namespaced blocks and whitespace survive exactly.
//
// The package knows XML 1.0 and Namespaces in XML 1.0, not libvirt policy.
// Parse checks well-formedness itself, with no per-token allocations. It is
// at least as strict as encoding/xml (a fuzz test
// compares the two), so a document Parse accepts decodes with encoding/xml
// based libraries too; the one exception is names with non-ASCII characters
// that only the fifth edition of XML 1.0 allows.
package xmlxform

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
)

// Namespace names bound by the XML specifications themselves.
const (
	// NamespaceXML is the namespace of the xml: prefix (xml:lang, xml:space).
	NamespaceXML = "http://www.w3.org/XML/1998/namespace"
	// NamespaceXMLNS is the namespace of namespace declarations: the
	// attribute xmlns:qemu='...' has Name{NamespaceXMLNS, "qemu"} and the
	// default declaration xmlns='...' has Name{NamespaceXMLNS, "xmlns"}.
	NamespaceXMLNS = "http://www.w3.org/2000/xmlns/"
)

// Limits of what Parse accepts. No libvirt domain comes near them: a large
// one (hundreds of vCPUs pinned one by one, hundreds of devices) has a few
// thousand elements and attributes, and libvirt's own parser (libxml2)
// refuses nesting deeper than 256 levels. A document past a limit is refused
// with a *SyntaxError that wraps ErrLimit.
//
// The limits bound the memory Parse takes whatever the document: an Element
// takes 152 bytes and an Attr 104, so at most 15 MB and 26 MB. Beside them
// Parse keeps a string copy of the source and the decoded values of
// attributes that need it (both at most the size of the source) and 1/16 of
// the source's size for line numbers. A 64 MiB document, the most a libvirt
// hook is given, then takes at most about 250 MB with its source, which fits
// in a process limited to 1 GiB of address space, of which the Go runtime
// itself reserves about 700 MB.
const (
	// MaxDepth is the deepest element nesting; the root element is at
	// depth 1.
	MaxDepth = 1000
	// MaxElements is the most elements a document may have.
	MaxElements = 100_000
	// MaxAttrs is the most attributes a document may have, namespace
	// declarations included.
	MaxAttrs = 250_000
)

// ErrLimit is what the *SyntaxError of a document past MaxDepth,
// MaxElements or MaxAttrs wraps: errors.Is(err, ErrLimit) tells a document
// refused for its size from a malformed one.
var ErrLimit = errors.New("xmlxform: document past a parse limit")

// Span is a byte range [Start, End) of Doc.Src.
type Span struct{ Start, End int }

// Len returns the number of bytes in s.
func (s Span) Len() int { return s.End - s.Start }

// Pos is a position in a document. Line and Col are 1-based; Col counts bytes
// from the start of the line, as Go tools do.
type Pos struct{ Line, Col int }

// String returns "LINE:COL".
func (p Pos) String() string { return strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col) }

// SyntaxError reports input that is not a well-formed, namespace-well-formed
// XML document in UTF-8, or one past a parse limit (then it wraps ErrLimit).
type SyntaxError struct {
	Line, Col int
	Msg       string

	err error // ErrLimit or nil
}

// Error returns "LINE:COL: MSG".
func (e *SyntaxError) Error() string {
	return strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col) + ": " + e.Msg
}

// Unwrap returns ErrLimit for a document past a parse limit, else nil.
func (e *SyntaxError) Unwrap() error { return e.err }

// Doc is a parsed document. It is not changed after Parse, so any number of
// goroutines may read it; a Transform of it is for one goroutine.
type Doc struct {
	// Src is the document as passed to Parse. It is not copied: callers must
	// not modify it while the Doc is in use.
	Src []byte
	// Root is the root element.
	Root *Element

	str    string      // a copy of Src that names, values and texts slice into
	marks  []lineMark  // marks[k] is the line at offset k*lineBlock
	elems  [][]Element // all elements in document order, in chunks
	n      int         // the number of elements
	sq, dq int         // attributes quoted with ' and with "
}

// lineBlock is the distance between two line marks: finding the line of an
// offset reads at most this many bytes, and the marks take 16 bytes per
// lineBlock bytes of the document, however many lines it has.
const lineBlock = 256

// A lineMark is the line an offset is on (0-based) and where that line
// starts.
type lineMark struct{ line, start int }

// line returns the 0-based line that off is on, and where that line starts.
func (d *Doc) line(off int) (line, start int) {
	k := off / lineBlock
	m := d.marks[k]
	seg := d.Src[k*lineBlock : off]
	if i := bytes.LastIndexByte(seg, '\n'); i >= 0 {
		return m.line + bytes.Count(seg, []byte{'\n'}), k*lineBlock + i + 1
	}
	return m.line, m.start
}

// Pos returns the line and column of a byte offset into Src. Offsets out of
// range are clamped. Lines are counted by "\n" (so "\r\n" is one line end).
func (d *Doc) Pos(offset int) Pos {
	offset = max(0, min(offset, len(d.Src)))
	line, start := d.line(offset)
	return Pos{Line: line + 1, Col: offset - start + 1}
}

// Quote returns the attribute quote character the document mostly uses:
// a double quote when more attributes use double quotes than single quotes,
// else a single quote (which libvirt writes, and which an empty document gets).
func (d *Doc) Quote() byte {
	if d.dq > d.sq {
		return '"'
	}
	return '\''
}

// Newline returns the document's line ending: "\r\n" if its first line ends
// that way, else "\n".
func (d *Doc) Newline() string {
	for i, c := range d.Src {
		if c == '\n' {
			if i > 0 && d.Src[i-1] == '\r' {
				return "\r\n"
			}
			return "\n"
		}
	}
	return "\n"
}

// Indent returns the document's indentation unit ("  ", "    ", "\t", ...):
// the most common difference between the indentation of an element and that
// of its parent, counting elements that begin their lines. It returns "  "
// when there is none.
func (d *Doc) Indent() string {
	var units []string
	var counts []int
	best := -1
	// The indentation of e's ancestors, found once each: elements come in
	// document order, so e's parent is on the stack.
	type open struct {
		e      *Element
		indent string
		ok     bool
	}
	stack := make([]open, 0, 32)
	for e := range d.Elements() {
		for len(stack) > 0 && stack[len(stack)-1].e != e.Parent {
			stack = stack[:len(stack)-1]
		}
		ci, ok := d.lineIndent(e.Start.Start)
		stack = append(stack, open{e, ci, ok})
		if !ok || len(stack) < 2 {
			continue
		}
		p := stack[len(stack)-2]
		pi := p.indent
		if !p.ok || len(ci) <= len(pi) || !strings.HasPrefix(ci, pi) {
			continue
		}
		u := ci[len(pi):]
		k := 0
		for k < len(units) && units[k] != u {
			k++
		}
		if k == len(units) {
			if len(units) == 8 { // enough variety; ignore oddities
				continue
			}
			units = append(units, u)
			counts = append(counts, 0)
		}
		counts[k]++
		if best < 0 || counts[k] > counts[best] {
			best = k
		}
	}
	if best < 0 {
		return "  "
	}
	return units[best]
}

// Elements returns all elements of the document in document order (the
// order of their start tags), root first.
func (d *Doc) Elements() iter.Seq[*Element] {
	return func(yield func(*Element) bool) {
		for _, chunk := range d.elems {
			for i := range chunk {
				if !yield(&chunk[i]) {
					return
				}
			}
		}
	}
}

// Len returns the number of elements in the document.
func (d *Doc) Len() int { return d.n }

// Find returns the element at path, written as Element.Path writes it
// ("/domain/devices/interface[2]/teaming"; a missing index means [1]), or
// nil if there is none. Steps match raw qualified names ("qemu:arg").
func (d *Doc) Find(path string) *Element {
	if d.Root == nil || !strings.HasPrefix(path, "/") {
		return nil
	}
	var cur *Element
	for _, step := range strings.Split(path[1:], "/") {
		name, n := step, 1
		if i := strings.IndexByte(step, '['); i >= 0 && strings.HasSuffix(step, "]") {
			v, err := strconv.Atoi(step[i+1 : len(step)-1])
			if err != nil || v < 1 {
				return nil
			}
			name, n = step[:i], v
		}
		if cur == nil {
			if d.Root.QName != name || n != 1 {
				return nil
			}
			cur = d.Root
			continue
		}
		var next *Element
		for _, c := range cur.Children {
			if c.QName == name {
				if n--; n == 0 {
					next = c
					break
				}
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// lineStart returns the offset of the start of the line holding off.
func (d *Doc) lineStart(off int) int {
	_, start := d.line(off)
	return start
}

// lineIndent returns the whitespace that precedes off on its line, and
// whether only whitespace precedes it. It reads back from off, so that
// elements after the first on a line do not each read its indentation.
func (d *Doc) lineIndent(off int) (string, bool) {
	ls := d.lineStart(off)
	i := off
	for i > ls && (d.Src[i-1] == ' ' || d.Src[i-1] == '\t') {
		i--
	}
	if i > ls {
		return "", false
	}
	return d.str[ls:off], true
}

// leadingIndent returns the leading spaces and tabs of the line holding off.
func (d *Doc) leadingIndent(off int) string {
	ls := d.lineStart(off)
	i := ls
	for i < len(d.Src) && (d.Src[i] == ' ' || d.Src[i] == '\t') {
		i++
	}
	return d.str[ls:i]
}

// restOfLine reports whether only whitespace follows off up to the next "\n",
// and returns the offset just past that "\n" (or len(Src) at the end).
func (d *Doc) restOfLine(off int) (next int, blank bool) {
	for i := off; i < len(d.Src); i++ {
		switch d.Src[i] {
		case ' ', '\t', '\r':
		case '\n':
			return i + 1, true
		default:
			return i, false
		}
	}
	return len(d.Src), true
}

// Attr is an attribute of an element.
type Attr struct {
	// Name is the attribute's expanded name: Space is the namespace URI for
	// a prefixed name and "" for an unprefixed one.
	Name xml.Name
	// QName is the name as written: "persistent", "xmlns:qemu".
	QName string
	// Value is the attribute value with references resolved and
	// whitespace normalized as XML requires (a literal tab or newline in the
	// value reads as a space).
	Value string
	// Span covers the whole attribute, name='value'.
	Span Span
	// ValueSpan covers the raw bytes between the quotes.
	ValueSpan Span
	// Quote is the quote character, '\'' or '"'.
	Quote byte
}

// Element is an element of a document.
type Element struct {
	// Name is the expanded name; Space is the namespace URI, e.g.
	// "http://libvirt.org/schemas/domain/qemu/1.0" for qemu:commandline.
	Name xml.Name
	// QName is the name as written: "qemu:commandline", "interface".
	QName string
	// Attrs are the attributes in document order, namespace declarations
	// included.
	Attrs []Attr
	// Children are the child elements in document order.
	Children []*Element
	// Parent is nil for the root element.
	Parent *Element
	// Start is the start tag, '<' through '>'; for a self-closing element
	// the whole "<a/>".
	Start Span
	// End is the end tag "</a>"; it equals Start when SelfClosing.
	End         Span
	SelfClosing bool
}

// Span returns the element's span, start tag through end tag.
func (e *Element) Span() Span { return Span{e.Start.Start, e.End.End} }

// Inner returns the span between the start and end tags; for a
// self-closing element it is the empty span at Start.End.
func (e *Element) Inner() Span {
	if e.SelfClosing {
		return Span{e.Start.End, e.Start.End}
	}
	return Span{e.Start.End, e.End.Start}
}

// Attr returns the value of the attribute with that local name in no
// namespace.
func (e *Element) Attr(local string) (string, bool) {
	if a := e.AttrNode(local); a != nil {
		return a.Value, true
	}
	return "", false
}

// AttrNode returns the attribute with that local name in no namespace, or
// nil.
func (e *Element) AttrNode(local string) *Attr {
	for i := range e.Attrs {
		a := &e.Attrs[i]
		if a.Name.Local == local && a.Name.Space == "" && a.QName == local {
			return a
		}
	}
	return nil
}

// AttrNS returns the attribute with that expanded name, or nil.
func (e *Element) AttrNS(space, local string) *Attr {
	for i := range e.Attrs {
		a := &e.Attrs[i]
		if a.Name.Local == local && a.Name.Space == space {
			return a
		}
	}
	return nil
}

// Child returns the first child element in no namespace with that local
// name, or nil.
func (e *Element) Child(local string) *Element { return e.ChildNS("", local) }

// ChildNS returns the first child element with that expanded name, or nil.
func (e *Element) ChildNS(space, local string) *Element {
	for _, c := range e.Children {
		if c.Name.Local == local && c.Name.Space == space {
			return c
		}
	}
	return nil
}

// ChildrenNamed returns the child elements in no namespace with that local
// name.
func (e *Element) ChildrenNamed(local string) []*Element {
	var out []*Element
	for _, c := range e.Children {
		if c.Name.Local == local && c.Name.Space == "" {
			out = append(out, c)
		}
	}
	return out
}

// LookupNamespace returns the namespace URI that prefix is bound to in the
// scope of e ("" is the default namespace).
func (e *Element) LookupNamespace(prefix string) (string, bool) {
	switch prefix {
	case "xml":
		return NamespaceXML, true
	case "xmlns":
		return NamespaceXMLNS, true
	}
	for x := e; x != nil; x = x.Parent {
		for i := range x.Attrs {
			a := &x.Attrs[i]
			if a.Name.Space == NamespaceXMLNS && (a.Name.Local == prefix && a.QName != "xmlns" || prefix == "" && a.QName == "xmlns") {
				if a.Value == "" && prefix == "" {
					return "", false
				}
				return a.Value, true
			}
		}
	}
	return "", false
}

// LookupPrefix returns a prefix bound to the namespace URI space in the scope
// of e (the nearest declaration that is not shadowed), for example to write a
// new <qemu:commandline> with the prefix the document already uses.
func (e *Element) LookupPrefix(space string) (string, bool) {
	if space == NamespaceXML {
		return "xml", true
	}
	for x := e; x != nil; x = x.Parent {
		for i := range x.Attrs {
			a := &x.Attrs[i]
			if a.Name.Space != NamespaceXMLNS || a.QName == "xmlns" || a.Value != space {
				continue
			}
			if uri, ok := e.LookupNamespace(a.Name.Local); ok && uri == space {
				return a.Name.Local, true
			}
		}
	}
	return "", false
}

// Text returns the character data directly inside e (not that of its
// descendants), CDATA sections included, with references resolved and line
// ends normalized to "\n".
func (e *Element) Text(d *Doc) string {
	if e.SelfClosing {
		return ""
	}
	if len(e.Children) == 0 {
		if s, ok := plainText(d.str[e.Start.End:e.End.Start]); ok {
			return s
		}
	}
	var b []byte
	pos := e.Start.End
	for _, c := range e.Children {
		b = appendContentText(b, d.str[pos:c.Start.Start])
		pos = c.End.End
	}
	b = appendContentText(b, d.str[pos:e.End.Start])
	return string(b)
}

// Path returns a path to e for messages: "/domain/devices/interface[2]/teaming".
// A step has a 1-based index when its parent has more than one child of that
// name.
func (e *Element) Path() string {
	var steps []string
	for x := e; x != nil; x = x.Parent {
		step := x.QName
		if p := x.Parent; p != nil {
			n, k := 0, 0
			for _, c := range p.Children {
				if c.QName == x.QName {
					n++
					if c == x {
						k = n
					}
				}
			}
			if n > 1 {
				step += "[" + strconv.Itoa(k) + "]"
			}
		}
		steps = append(steps, step)
	}
	var b strings.Builder
	for i := len(steps) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(steps[i])
	}
	return b.String()
}

// String returns a short description for debugging: "<interface> at bytes 10-20".
func (e *Element) String() string {
	return fmt.Sprintf("<%s> at bytes %d-%d", e.QName, e.Start.Start, e.End.End)
}
