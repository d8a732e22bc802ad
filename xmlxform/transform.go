package xmlxform

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Transform gathers edits to one document. Its methods compute the edits
// against the original bytes (elements and spans always refer to the
// document as parsed); Bytes splices them in. Setting an attribute (or an
// element's text) twice keeps the last value, and setting what is already
// there is no edit at all, so setting the same values over the output
// changes nothing. Edits inside an element that is removed are dropped.
// Edits that still collide (say SetText of an element and InsertChild into
// it) make Bytes fail.
type Transform struct {
	doc    *Doc
	edits  []tedit
	keyed  map[editKey]int // attribute and text edits by element
	groups map[int]int     // grouped insertions by offset
	gone   map[*Element]bool
	errs   []error
	indent string
	nl     string
}

type editKey struct {
	e     *Element
	local string // "" for the element's text
}

type tedit struct {
	Edit
	dead bool
	// A grouped insertion: Text is prefix + pieces joined by sep + suffix.
	prefix, sep, suffix string
	pieces              []string
}

// NewTransform returns an empty Transform of d.
func NewTransform(d *Doc) *Transform {
	return &Transform{doc: d}
}

func (t *Transform) fail(format string, args ...any) {
	t.errs = append(t.errs, fmt.Errorf("xmlxform: "+format, args...))
}

func (t *Transform) add(ed Edit) int {
	t.edits = append(t.edits, tedit{Edit: ed})
	return len(t.edits) - 1
}

// keyedEdit sets the edit for key, replacing an earlier one; live false
// cancels it.
func (t *Transform) keyedEdit(key editKey, ed Edit, live bool) {
	if t.removed(key.e) != nil {
		return
	}
	if i, ok := t.keyed[key]; ok {
		t.edits[i].Edit = ed
		t.edits[i].dead = !live
		return
	}
	if !live {
		return
	}
	if t.keyed == nil {
		t.keyed = make(map[editKey]int)
	}
	t.keyed[key] = t.add(ed)
}

// tagEnd returns the offset just past e's last attribute (or its name).
func tagEnd(e *Element) int {
	if n := len(e.Attrs); n > 0 {
		return e.Attrs[n-1].Span.End
	}
	return e.Start.Start + 1 + len(e.QName)
}

// SetAttr sets the attribute local (in no namespace) of e to value. An
// existing attribute keeps its place and quotes: only the bytes between the
// quotes change. A new attribute is written after the last one, with the
// document's prevailing quote character. The value is escaped as
// EscapeAttr does.
func (t *Transform) SetAttr(e *Element, local, value string) {
	if !isNCName(local) || local == "xmlns" {
		t.fail("cannot set attribute %q of %s: not an attribute name without prefix", local, e.Path())
		return
	}
	key := editKey{e, local}
	if a := e.AttrNode(local); a != nil {
		t.keyedEdit(key, Edit{Span: a.ValueSpan, Text: []byte(EscapeAttr(value, a.Quote))}, a.Value != value)
		return
	}
	q := t.doc.Quote()
	off := tagEnd(e)
	text := " " + local + "=" + string(q) + EscapeAttr(value, q) + string(q)
	t.keyedEdit(key, Edit{Span: Span{off, off}, Text: []byte(text)}, true)
}

// RemoveAttr removes the attribute local (in no namespace) of e, and the
// whitespace before it.
func (t *Transform) RemoveAttr(e *Element, local string) {
	key := editKey{e, local}
	a := e.AttrNode(local)
	if a == nil {
		t.keyedEdit(key, Edit{}, false) // cancels an earlier SetAttr
		return
	}
	from := e.Start.Start + 1 + len(e.QName)
	for i := range e.Attrs {
		if &e.Attrs[i] == a {
			break
		}
		from = e.Attrs[i].Span.End
	}
	t.keyedEdit(key, Edit{Span: Span{from, a.Span.End}}, true)
}

// SetText replaces the content of e with text, escaped as EscapeText does.
// It is meant for leaf elements: child elements, comments and CDATA
// sections inside e are replaced too. A self-closing element gets an end
// tag.
func (t *Transform) SetText(e *Element, text string) {
	key := editKey{e, ""}
	esc := EscapeText(text)
	if e.SelfClosing {
		ed := Edit{Span: Span{e.Start.End - 2, e.Start.End}, Text: []byte(">" + esc + "</" + e.QName + ">")}
		t.keyedEdit(key, ed, text != "")
		return
	}
	same := len(e.Children) == 0 && e.Text(t.doc) == text
	t.keyedEdit(key, Edit{Span: e.Inner(), Text: []byte(esc)}, !same)
}

// Replace replaces the bytes of span s with text, as written.
func (t *Transform) Replace(s Span, text string) {
	t.add(Edit{Span: s, Text: []byte(text)})
}

// removed returns e or the ancestor of e that Remove was called on, or nil.
func (t *Transform) removed(e *Element) *Element {
	for x := e; x != nil && len(t.gone) > 0; x = x.Parent {
		if t.gone[x] {
			return x
		}
	}
	return nil
}

// Remove removes e. If e is alone on its line (or lines), the whole lines go,
// indentation and line end included; otherwise only the element's bytes.
// Edits made earlier inside e are dropped. The root element cannot be
// removed (Bytes reports it).
func (t *Transform) Remove(e *Element) {
	if e.Parent == nil {
		t.fail("cannot remove the root element <%s>", e.QName)
		return
	}
	if t.removed(e) != nil {
		return
	}
	d := t.doc
	span := e.Span()
	if _, ok := d.lineIndent(e.Start.Start); ok {
		if next, blank := d.restOfLine(e.End.End); blank {
			span = Span{d.lineStart(e.Start.Start), next}
		}
	}
	for i := range t.edits {
		x := &t.edits[i]
		if x.Span.Start >= span.Start && x.Span.End <= span.End &&
			!(x.Span.Len() == 0 && (x.Span.Start == span.Start || x.Span.Start == span.End)) {
			x.dead = true
		}
	}
	if t.gone == nil {
		t.gone = make(map[*Element]bool)
	}
	t.gone[e] = true
	t.add(Edit{Span: span})
}

// InsertChild inserts the element written in frag as a child of parent,
// after the child element after, or after the last child element when after
// is nil (an empty parent gets frag as its only child).
//
// frag is one element, which may have children, written with two spaces of
// indentation per level and no leading indentation, lines separated by "\n".
// Each line is indented to its place: the indentation of the neighbouring
// siblings (or the parent's plus Doc.Indent), and frag's own two-space units
// become Doc.Indent. Lines end with Doc.Newline. A self-closing parent is
// expanded into a start and end tag. When the parent sits on one line and
// frag is one line, frag is inserted inline.
//
// frag is checked to be a single well-formed element, whose namespace
// prefixes may be any in scope at parent.
func (t *Transform) InsertChild(parent, after *Element, frag string) error {
	if parent == nil {
		return errors.New("xmlxform: InsertChild: no parent")
	}
	if after != nil && after.Parent != parent {
		return fmt.Errorf("xmlxform: InsertChild: %s is not a child of %s", after.Path(), parent.Path())
	}
	frag, err := t.checkFrag(parent, frag)
	if err != nil || t.removed(parent) != nil {
		return err
	}
	d := t.doc
	pind := d.leadingIndent(parent.Start.Start)
	compact := t.compact(parent, frag)
	if after == nil && len(parent.Children) > 0 {
		after = parent.Children[len(parent.Children)-1]
	}
	switch {
	case parent.SelfClosing:
		slash := Span{parent.Start.End - 2, parent.Start.End}
		if compact {
			t.group(slash, ">", "", "</"+parent.QName+">", frag)
		} else {
			ind := pind + t.unit()
			t.group(slash, ">"+t.newline(), t.newline(), t.newline()+pind+"</"+parent.QName+">", t.reindent(frag, ind))
		}
	case after == nil: // no child elements
		ind := pind + t.unit()
		switch _, atLineStart := d.lineIndent(parent.End.Start); {
		case compact:
			t.add(Edit{Span: Span{parent.End.Start, parent.End.Start}, Text: []byte(frag)})
		case atLineStart:
			t.insertLines(d.lineStart(parent.End.Start), t.reindent(frag, ind))
		default:
			t.group(Span{parent.End.Start, parent.End.Start}, t.newline(), t.newline(), t.newline()+pind, t.reindent(frag, ind))
		}
	default:
		ind := t.siblingIndent(parent, after, pind)
		off := after.End.End
		next, blank := d.restOfLine(t.skipComments(off, parent.End.Start))
		switch {
		case compact:
			t.add(Edit{Span: Span{off, off}, Text: []byte(frag)})
		case blank:
			t.insertLines(next, t.reindent(frag, ind))
		default:
			t.group(Span{off, off}, t.newline(), t.newline(), t.newline()+t.followIndent(parent, off, ind, pind), t.reindent(frag, ind))
		}
	}
	return nil
}

// InsertBefore inserts the element written in frag just before sibling,
// laid out as InsertChild does.
func (t *Transform) InsertBefore(sibling *Element, frag string) error {
	parent := sibling.Parent
	if parent == nil {
		return fmt.Errorf("xmlxform: InsertBefore: cannot insert beside the root element <%s>", sibling.QName)
	}
	frag, err := t.checkFrag(parent, frag)
	if err != nil || t.removed(parent) != nil {
		return err
	}
	d := t.doc
	pind := d.leadingIndent(parent.Start.Start)
	ind := t.siblingIndent(parent, sibling, pind)
	off := sibling.Start.Start
	switch _, atLineStart := d.lineIndent(off); {
	case t.compact(parent, frag):
		t.add(Edit{Span: Span{off, off}, Text: []byte(frag)})
	case atLineStart:
		t.insertLines(d.lineStart(off), t.reindent(frag, ind))
	default:
		t.group(Span{off, off}, t.newline(), t.newline(), t.newline()+ind, t.reindent(frag, ind))
	}
	return nil
}

// checkFrag trims frag and checks that it is one well-formed element in the
// namespace scope of parent.
func (t *Transform) checkFrag(parent *Element, frag string) (string, error) {
	frag = strings.TrimSpace(frag)
	var chain []*Element
	for x := parent; x != nil; x = x.Parent {
		chain = append(chain, x)
	}
	var scope []binding
	for i := len(chain) - 1; i >= 0; i-- {
		for _, a := range chain[i].Attrs {
			if a.Name.Space == NamespaceXMLNS {
				prefix := a.Name.Local
				if a.QName == "xmlns" {
					prefix = ""
				}
				scope = append(scope, binding{prefix: prefix, uri: a.Value})
			}
		}
	}
	fd, err := parse([]byte(frag), scope)
	if err != nil {
		return "", fmt.Errorf("xmlxform: invalid fragment: %w", err)
	}
	if r := fd.Root; r.Start.Start != 0 || r.End.End != len(frag) {
		return "", errors.New("xmlxform: invalid fragment: it must be exactly one element")
	}
	return frag, nil
}

// compact reports whether frag goes inline: it is one line, and so is the
// parent (a self-closing parent only when the whole root is one line).
func (t *Transform) compact(parent *Element, frag string) bool {
	if strings.Contains(frag, "\n") {
		return false
	}
	inline := func(e *Element) bool {
		return bytes.IndexByte(t.doc.Src[e.Start.Start:e.End.End], '\n') < 0
	}
	if parent.SelfClosing {
		return inline(t.doc.Root)
	}
	return inline(parent)
}

// siblingIndent returns the indentation for a new child of parent next to
// sibling.
func (t *Transform) siblingIndent(parent, sibling *Element, pind string) string {
	if ind, ok := t.doc.lineIndent(sibling.Start.Start); ok {
		return ind
	}
	for _, c := range parent.Children {
		if ind, ok := t.doc.lineIndent(c.Start.Start); ok {
			return ind
		}
	}
	return pind + t.unit()
}

// skipComments skips spaces, tabs and comments from off on (not past
// limit), so that a new element goes after a comment that trails its
// sibling on the same line.
func (t *Transform) skipComments(off, limit int) int {
	s := t.doc.str
	for off < limit {
		switch {
		case s[off] == ' ' || s[off] == '\t':
			off++
		case strings.HasPrefix(s[off:limit], "<!--"):
			j := strings.Index(s[off+4:limit], "-->")
			if j < 0 || strings.Contains(s[off:off+4+j], "\n") {
				return off
			}
			off += 4 + j + 3
		default:
			return off
		}
	}
	return off
}

// followIndent returns the indentation for what follows offset off on its
// line: the parent's for its end tag, else ind.
func (t *Transform) followIndent(parent *Element, off int, ind, pind string) string {
	for off < parent.End.Start && (t.doc.Src[off] == ' ' || t.doc.Src[off] == '\t') {
		off++
	}
	if off == parent.End.Start {
		return pind
	}
	return ind
}

// insertLines inserts lines at a line start.
func (t *Transform) insertLines(off int, lines string) {
	t.add(Edit{Span: Span{off, off}, Text: []byte(lines + t.newline())})
}

// group adds piece to the grouped insertion at span (an insertion, or the
// replacement of a self-closing tag's "/>"), creating it with prefix, sep and
// suffix.
func (t *Transform) group(span Span, prefix, sep, suffix, piece string) {
	i, ok := t.groups[span.Start]
	if !ok {
		if t.groups == nil {
			t.groups = make(map[int]int)
		}
		i = t.add(Edit{Span: span})
		t.groups[span.Start] = i
		x := &t.edits[i]
		x.prefix, x.sep, x.suffix = prefix, sep, suffix
	}
	x := &t.edits[i]
	x.pieces = append(x.pieces, piece)
	x.Text = []byte(x.prefix + strings.Join(x.pieces, x.sep) + x.suffix)
}

func (t *Transform) unit() string {
	if t.indent == "" {
		t.indent = t.doc.Indent()
	}
	return t.indent
}

func (t *Transform) newline() string {
	if t.nl == "" {
		t.nl = t.doc.Newline()
	}
	return t.nl
}

// reindent lays frag out at indentation ind.
func (t *Transform) reindent(frag, ind string) string {
	unit := t.unit()
	lines := strings.Split(frag, "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" {
			lines[i] = ""
			continue
		}
		k := 0
		for strings.HasPrefix(l[2*k:], "  ") {
			k++
		}
		lines[i] = ind + strings.Repeat(unit, k) + l[2*k:]
	}
	return strings.Join(lines, t.newline())
}

// Edits returns the edits that change something, in the order they were
// made. The caller must not modify them. Edits inside an element that was
// removed are dropped, and so are edits that change nothing.
func (t *Transform) Edits() []Edit {
	var out []Edit
	for i := range t.edits {
		if x := &t.edits[i]; t.live(x) {
			out = append(out, x.Edit)
		}
	}
	return out
}

func (t *Transform) live(x *tedit) bool {
	if x.dead {
		return false
	}
	s := x.Span
	if s.Start < 0 || s.End < s.Start || s.End > len(t.doc.Src) {
		return true // Apply reports it
	}
	return !bytes.Equal(t.doc.Src[s.Start:s.End], x.Text)
}

// Changed reports whether any edit changes the document.
func (t *Transform) Changed() bool {
	for i := range t.edits {
		if t.live(&t.edits[i]) {
			return true
		}
	}
	return false
}

// Bytes returns the edited document, or the errors of the edits that could
// not be made.
func (t *Transform) Bytes() ([]byte, error) {
	if len(t.errs) > 0 {
		return nil, errors.Join(t.errs...)
	}
	return Apply(t.doc.Src, t.Edits())
}
