package xmlxform

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parse parses a UTF-8 XML document (a leading byte order mark is allowed and
// kept). It checks well-formedness and namespace well-formedness; any error
// is a *SyntaxError. Only the five predefined entities and character
// references are known: entities declared in a DOCTYPE are not expanded, and
// referring to one is an error. A document past MaxDepth, MaxElements or
// MaxAttrs is refused with a *SyntaxError that wraps ErrLimit.
//
// Parse takes time and memory in proportion to the document (the memory
// within the bounds the limits set), whatever its shape.
func Parse(src []byte) (*Doc, error) {
	d, err := parse(src, nil)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// parse parses src with the namespace bindings scope already in force.
func parse(src []byte, scope []binding) (*Doc, error) {
	d := &Doc{Src: src}
	var off int
	var msg string
	if d.marks, off, msg = checkChars(src); msg != "" {
		return nil, d.errorAt(off, msg)
	}
	d.str = string(src)
	p := &parser{
		src:    src,
		s:      d.str,
		doc:    d,
		ns:     make([]binding, 0, len(scope)+8),
		stack:  make([]frame, 0, 32),
		seenAt: -1,
		tagAt:  -1,
	}
	// Every element starts at a '<' that does not start "</", and every
	// attribute has its own '=': the counts bound what the chunks need.
	elems := min(bytes.Count(src, []byte{'<'})-bytes.Count(src, []byte("</")), MaxElements)
	attrs := min(bytes.Count(src, []byte{'='}), MaxAttrs)
	p.elemSizes = sizer{next: max(minChunk, len(src)/8), left: elems}
	p.attrSizes = sizer{next: max(minChunk, len(src)/16), left: attrs}
	p.kidSizes = sizer{next: max(minChunk, len(src)/8), left: elems}
	// The children of the open elements: at most all the elements.
	p.pending = make([]*Element, 0, min(elems, max(minChunk, len(src)/8)))
	for _, b := range scope {
		p.pushNS(b)
	}
	if err := p.run(); err != nil {
		return nil, err
	}
	d.elems = append(p.elemChunks, p.elems)
	d.n = p.nelems
	return d, nil
}

// Elements, attributes and Children slices are taken from chunks that are
// allocated as the parse goes. Elements never move (the tree points to
// them); an element's attributes, and an element's children, are contiguous
// in a chunk.
//
// A sizer sizes the chunks of one kind. Together they stay within what the
// document can need, an upper bound counted from its bytes (and the
// limits), so that a document gets one chunk of what it needs, allocated
// before the parse fills it (the garbage collector then has no partly built
// tree to trace, again and again). The first chunk is also bounded by the
// document's size, an element per 8 bytes and an attribute per 16: up front
// a document takes at most some 25 bytes per byte (a libvirt domain takes 9
// all told), however many of its '<' and '=' are not elements and
// attributes. The chunks after it double.
type sizer struct {
	next int // the size of the next chunk
	left int // the upper bound, less the chunks so far
}

// take returns the size of a new chunk for have items moved from the last
// one and need more at least.
func (z *sizer) take(have, need int) int {
	n := min(max(z.next, 2*have), have+z.left)
	n = max(n, have+need)
	z.left -= n - have
	z.next *= 2
	return n
}

// minChunk is the smallest first chunk.
const minChunk = 64

func (d *Doc) errorAt(off int, msg string) *SyntaxError {
	pos := d.Pos(off)
	return &SyntaxError{Line: pos.Line, Col: pos.Col, Msg: msg}
}

// checkChars verifies that src is UTF-8 made of XML characters only, and
// returns the line marks of src (see Doc.marks). When it finds a bad byte, it
// returns its offset and a message, and marks up to that offset.
func checkChars(src []byte) (marks []lineMark, bad int, msg string) {
	n := len(src)
	marks = make([]lineMark, 0, n/lineBlock+1)
	var line, start int // the line at i, and its start
	next := 0           // the next offset to mark
	for i := 0; i < n; {
		// Mark the offsets up to i: no newline lies between them and i,
		// as i moves past newlines one byte at a time.
		for ; next <= i; next += lineBlock {
			marks = append(marks, lineMark{line, start})
		}
		if i = checkBlock(src, i, min(next, n), &line, &start); i < 0 {
			return marks, -1 - i, badChar(src, -1-i)
		}
	}
	for ; next <= n; next += lineBlock {
		marks = append(marks, lineMark{line, start})
	}
	return marks, 0, ""
}

// badChar describes the character at src[i] that checkBlock refused.
func badChar(src []byte, i int) string {
	c := src[i]
	if c < utf8.RuneSelf {
		return fmt.Sprintf("illegal character U+%04X (XML allows no control characters but tab, CR and LF)", c)
	}
	if r, size := utf8.DecodeRune(src[i:]); r != utf8.RuneError || size != 1 {
		return fmt.Sprintf("illegal character U+%04X", r)
	}
	return fmt.Sprintf("invalid UTF-8: byte 0x%02X (the document must be UTF-8)", c)
}

// checkBlock checks src from i until end or a little past it, counting lines
// into line and start. It returns where it stopped, or -1-k for a bad
// character at k.
func checkBlock(src []byte, i, end int, line, start *int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	n := len(src)
	for i < end {
		if i+8 <= n {
			// Skip eight printable ASCII bytes at a time: no byte >= 0x80,
			// and no byte < 0x20 (which would borrow into its high bit).
			if x := binary.LittleEndian.Uint64(src[i:]); (x|(x-0x20*ones))&highs == 0 {
				i += 8
				continue
			}
		}
		c := src[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 || c == '\t' || c == '\r':
			case c == '\n':
				*line, *start = *line+1, i+1
			default:
				return -1 - i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && size == 1 || !isChar(r) {
			return -1 - i
		}
		i += size
	}
	return i
}

// A binding binds a namespace prefix ("" for the default namespace).
type binding struct {
	prefix, uri string
	prev        int // the binding of prefix that this one shadows, -1 if none; kept once parser.nsTop is in use
}

// manyLinear is how many namespace bindings in scope, or attributes of an
// element, a linear search looks through; past it, maps take over.
const manyLinear = 16

type frame struct {
	e    *Element
	pend int // start of e's children in parser.pending
	ns   int // namespace bindings before e's own
}

type parser struct {
	src []byte
	s   string // the same bytes as src, as a string to slice names from
	doc *Doc

	elems                          []Element   // the chunk elements are taken from
	elemChunks                     [][]Element // the full chunks before it
	attrs                          []Attr      // the chunk attributes are taken from
	kids                           []*Element  // the chunk Children slices are taken from
	elemSizes, attrSizes, kidSizes sizer
	nelems, nattrs                 int // counts so far, for the limits

	pending []*Element // children of open elements, in document order
	stack   []frame

	ns    []binding      // bindings in scope, outermost first
	nsTop map[string]int // the innermost binding of each prefix, once len(ns) passed manyLinear
	// Attributes of the element being parsed, once it has many.
	seen   map[string]struct{} // qualified names, of the unprefixed attributes and declarations
	seenAt int                 // the start of the element seen is of, -1 at first
	names  map[xml.Name]int    // expanded names of prefixed attributes
	// The most attributes the element at tagAt can have.
	tagAt, tagMost int
}

// limitf returns the error for a document past a limit.
func (p *parser) limitf(off int, format string, args ...any) error {
	e := p.doc.errorAt(off, fmt.Sprintf(format, args...))
	e.err = ErrLimit
	return e
}

func (p *parser) errorf(off int, format string, args ...any) error {
	return p.doc.errorAt(off, fmt.Sprintf(format, args...))
}

func (p *parser) run() error {
	s := p.s
	i := 0
	if strings.HasPrefix(s, "\uFEFF") {
		i = 3
	}
	if strings.HasPrefix(s[i:], "<?xml") && len(s) > i+5 && (isSpace(s[i+5]) || s[i+5] == '?') {
		var err error
		if i, err = p.xmlDeclaration(i); err != nil {
			return err
		}
	}
	var doctype bool
	for {
		j := strings.IndexByte(s[i:], '<')
		end := len(s)
		if j >= 0 {
			end = i + j
		}
		if end > i {
			if err := p.text(i, end); err != nil {
				return err
			}
		}
		if j < 0 {
			break
		}
		i = end
		if i+1 >= len(s) {
			return p.errorf(i, "unexpected end of input after '<'")
		}
		var err error
		switch s[i+1] {
		case '/':
			i, err = p.endTag(i)
		case '?':
			i, err = p.procInst(i)
		case '!':
			switch {
			case strings.HasPrefix(s[i:], "<!--"):
				i, err = p.comment(i)
			case strings.HasPrefix(s[i:], "<![CDATA["):
				if len(p.stack) == 0 {
					return p.errorf(i, "CDATA section outside the root element")
				}
				i, err = p.cdata(i)
			case strings.HasPrefix(s[i:], "<!DOCTYPE"):
				if doctype || p.doc.Root != nil {
					return p.errorf(i, "DOCTYPE must come once, before the root element")
				}
				doctype = true
				i, err = p.doctype(i)
			default:
				return p.errorf(i, "unknown markup: expected <!-- or <![CDATA[ or <!DOCTYPE")
			}
		default:
			if len(p.stack) == 0 && p.doc.Root != nil {
				return p.errorf(i, "more than one root element: a document has exactly one")
			}
			i, err = p.startTag(i)
		}
		if err != nil {
			return err
		}
	}
	if n := len(p.stack); n > 0 {
		e := p.stack[n-1].e
		return p.errorf(len(s), "unexpected end of input: <%s> opened at %s is not closed", e.QName, p.doc.Pos(e.Start.Start))
	}
	if p.doc.Root == nil {
		return p.errorf(len(s), "no root element")
	}
	return nil
}

// text checks character data s[i:end].
func (p *parser) text(i, end int) error {
	s := p.s
	if len(p.stack) == 0 {
		for k := i; k < end; k++ {
			if !isSpace(s[k]) {
				if p.doc.Root == nil {
					return p.errorf(k, "text before the root element")
				}
				return p.errorf(k, "text after the root element")
			}
		}
		return nil
	}
	for k := i; k < end; k++ {
		c := s[k]
		if class[c]&cText == 0 {
			continue
		}
		switch c {
		case '&':
			_, n, msg := parseRef(s[k:end])
			if msg != "" {
				return p.errorf(k, "%s", msg)
			}
			k += n - 1
		case ']':
			if strings.HasPrefix(s[k:end], "]]>") {
				return p.errorf(k, "']]>' is not allowed in text (write ]]&gt;)")
			}
		}
	}
	return nil
}

// name scans a name at k and returns its end and the offset of its colon
// (-1 if none). Names must be namespace-well-formed: NCName or
// NCName:NCName.
func (p *parser) name(k int, what string) (end, colon int, err error) {
	src := p.src
	n := len(src)
	start := k
	colon = -1
	bad := func(off int, why string) (int, int, error) {
		return 0, 0, p.errorf(off, "%s: %s", what, why)
	}
	if k >= n {
		return bad(k, "unexpected end of input")
	}
	wantStart := true
	for k < n {
		c := src[k]
		size := 1
		var ok bool
		if c < utf8.RuneSelf {
			if c == ':' {
				if wantStart {
					if k == start {
						return bad(k, "a name cannot start with ':'")
					}
					return bad(k, "a name cannot have '::'")
				}
				if colon >= 0 {
					return bad(k, "a name can have only one ':' (prefix:local)")
				}
				colon = k
				k++
				wantStart = true
				continue
			}
			if wantStart {
				ok = class[c]&cNameStart != 0
			} else {
				ok = class[c]&cName != 0
			}
		} else {
			var r rune
			r, size = utf8.DecodeRune(src[k:])
			if wantStart {
				ok = isNameStartRune(r)
			} else {
				ok = isNameRune(r)
			}
		}
		if !ok {
			if wantStart {
				if k == start {
					return bad(k, fmt.Sprintf("expected a name, found %s", quoteByte(src, k)))
				}
				return bad(k, fmt.Sprintf("%s cannot follow ':' in a name", quoteByte(src, k)))
			}
			break
		}
		wantStart = false
		k += size
	}
	if wantStart {
		return bad(k, "a name cannot end with ':'")
	}
	return k, colon, nil
}

// quoteByte describes the character at src[k] for messages.
func quoteByte(src []byte, k int) string {
	if k >= len(src) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(src[k:])
	switch r {
	case '\n':
		return "newline"
	case '\r':
		return "carriage return"
	case '\t':
		return "tab"
	case ' ':
		return "space"
	}
	return strconv.QuoteRune(r)
}

func (p *parser) skipSpace(k int) int {
	for k < len(p.src) && isSpace(p.src[k]) {
		k++
	}
	return k
}

func (p *parser) startTag(start int) (int, error) {
	src, s := p.src, p.s
	n := len(src)
	if len(p.stack) >= MaxDepth {
		return 0, p.limitf(start, "elements nest deeper than %d levels", MaxDepth)
	}
	if p.nelems >= MaxElements {
		return 0, p.limitf(start, "more than %d elements", MaxElements)
	}
	k := start + 1
	nameEnd, _, err := p.name(k, "element name")
	if err != nil {
		return 0, err
	}
	if len(p.elems) == cap(p.elems) {
		if cap(p.elems) > 0 {
			p.elemChunks = append(p.elemChunks, p.elems)
		}
		p.elems = make([]Element, 0, p.elemSizes.take(0, 1))
	}
	p.elems = p.elems[:len(p.elems)+1]
	p.nelems++
	e := &p.elems[len(p.elems)-1]
	e.QName = s[k:nameEnd]
	e.Start.Start = start
	if len(p.stack) > 0 {
		e.Parent = p.stack[len(p.stack)-1].e
	} else {
		p.doc.Root = e
	}
	first := len(p.attrs)
	k = nameEnd
	var prefixed, decls bool
	for {
		ws := k
		k = p.skipSpace(k)
		if k >= n {
			return 0, p.errorf(start, "start tag <%s> is not closed", e.QName)
		}
		c := src[k]
		if c == '>' {
			k++
			break
		}
		if c == '/' {
			if k+1 < n && src[k+1] == '>' {
				k += 2
				e.SelfClosing = true
				break
			}
			return 0, p.errorf(k, "expected '>' after '/' in start tag <%s>", e.QName)
		}
		if k == ws {
			return 0, p.errorf(k, "expected whitespace, '>' or '/>' in start tag <%s>, found %s", e.QName, quoteByte(src, k))
		}
		aStart := k
		aEnd, colon, err := p.name(k, "attribute name")
		if err != nil {
			return 0, err
		}
		qn := s[aStart:aEnd]
		k = p.skipSpace(aEnd)
		if k >= n || src[k] != '=' {
			return 0, p.errorf(k, "attribute %s has no value: expected '='", qn)
		}
		k = p.skipSpace(k + 1)
		if k >= n || src[k] != '\'' && src[k] != '"' {
			return 0, p.errorf(k, "the value of attribute %s must be quoted", qn)
		}
		q := src[k]
		vs := k + 1
		var flags uint8
		for k = vs; k < n && src[k] != q; k++ {
			flags |= class[src[k]]
		}
		if k >= n {
			return 0, p.errorf(vs-1, "the value of attribute %s is not closed", qn)
		}
		ve := k
		k++
		raw := s[vs:ve]
		val := raw
		if flags&cValue != 0 {
			for x := 0; x < len(raw); x++ {
				switch raw[x] {
				case '<':
					return 0, p.errorf(vs+x, "'<' is not allowed in an attribute value (write &lt;)")
				case '&':
					_, m, msg := parseRef(raw[x:])
					if msg != "" {
						return 0, p.errorf(vs+x, "%s", msg)
					}
					x += m - 1
				}
			}
			val = decodeAttr(raw)
		}
		if len(p.attrs)-first < manyLinear {
			for x := first; x < len(p.attrs); x++ {
				if p.attrs[x].QName == qn {
					return 0, p.errorf(aStart, "duplicate attribute %s", qn)
				}
			}
		} else if (colon < 0 || qn[:colon-aStart] == "xmlns") && p.duplicate(start, first, qn, k) {
			// resolveAttrs finds the other duplicates among many: those of
			// prefixed attributes, by their expanded names.
			return 0, p.errorf(aStart, "duplicate attribute %s", qn)
		}
		if p.nattrs >= MaxAttrs {
			return 0, p.limitf(aStart, "more than %d attributes", MaxAttrs)
		}
		p.nattrs++
		if q == '\'' {
			p.doc.sq++
		} else {
			p.doc.dq++
		}
		if len(p.attrs) == cap(p.attrs) {
			first = p.growAttrs(start, first, k)
		}
		a := Attr{QName: qn, Value: val, Span: Span{aStart, k}, ValueSpan: Span{vs, ve}, Quote: q}
		switch {
		case qn == "xmlns":
			decls = true
		case colon >= 0:
			if qn[:colon-aStart] == "xmlns" {
				decls = true
			} else {
				prefixed = true
			}
		default:
			a.Name.Local = qn
		}
		p.attrs = append(p.attrs, a)
	}
	e.Start.End = k
	e.Attrs = p.attrs[first:len(p.attrs):len(p.attrs)]
	nsMark := len(p.ns)
	if decls {
		if err := p.declare(e); err != nil {
			return 0, err
		}
	}
	if e.Name, err = p.resolve(e.QName, true, start+1); err != nil {
		return 0, err
	}
	if prefixed {
		if err := p.resolveAttrs(e); err != nil {
			return 0, err
		}
	}
	if e.SelfClosing {
		e.End = e.Start
		p.popNS(nsMark)
		p.pending = append(p.pending, e)
		return k, nil
	}
	p.stack = append(p.stack, frame{e: e, pend: len(p.pending), ns: nsMark})
	return k, nil
}

// duplicate reports whether an attribute named qn is among those from
// p.attrs[first:], the ones of the element at start being parsed, when there
// are manyLinear of them or more; its start tag goes on at k.
func (p *parser) duplicate(start, first int, qn string, k int) bool {
	if have := p.attrs[first:]; p.seenAt != start {
		p.seenAt = start
		p.seen = reset(p.seen, p.tagAttrs(start, len(have), k))
		for x := range have {
			p.seen[have[x].QName] = struct{}{}
		}
	}
	if _, ok := p.seen[qn]; ok {
		return true
	}
	p.seen[qn] = struct{}{}
	return false
}

// reset returns m empty, for another element with up to n entries. A map
// grown large is dropped rather than cleared: clearing costs its size, each
// time.
func reset[K comparable, V any](m map[K]V, n int) map[K]V {
	if m == nil || len(m) > 4*manyLinear || n > 4*manyLinear {
		return make(map[K]V, max(n, 2*manyLinear))
	}
	clear(m)
	return m
}

// tagAttrs returns the most attributes the element at start can have, when
// n come before the one that ends at k. It counts once per element.
func (p *parser) tagAttrs(start, n, k int) int {
	if p.tagAt != start {
		p.tagAt, p.tagMost = start, n+1+p.attrsAhead(k)
	}
	return p.tagMost
}

// attrsAhead returns the number of '=' outside quotes from k to the end of
// the start tag: the most attributes that can follow (and MaxAttrs allows).
func (p *parser) attrsAhead(k int) int {
	s := p.s
	n, most := 0, MaxAttrs-p.nattrs
	for ; k < len(s) && n < most; k++ {
		switch s[k] {
		case '>':
			return n
		case '=':
			n++
		case '\'', '"':
			j := strings.IndexByte(s[k+1:], s[k])
			if j < 0 {
				return n
			}
			k += j + 1
		}
	}
	return n
}

// growAttrs moves the attributes p.attrs[first:] of the element at start
// being parsed to a new chunk, with room for all the attributes that can
// follow in its start tag (at k), and returns their new first index.
func (p *parser) growAttrs(start, first, k int) int {
	have := p.attrs[first:]
	c := make([]Attr, len(have), p.attrSizes.take(len(have), max(1, p.tagAttrs(start, len(have), k)-len(have))))
	copy(c, have)
	p.attrs = c
	return 0
}

// pushNS brings b into scope.
func (p *parser) pushNS(b binding) {
	if p.nsTop == nil && len(p.ns) >= manyLinear {
		p.nsTop = make(map[string]int, 2*len(p.ns))
		for i := range p.ns {
			p.ns[i].prev = p.top(p.ns[i].prefix)
			p.nsTop[p.ns[i].prefix] = i
		}
	}
	if p.nsTop != nil {
		b.prev = p.top(b.prefix)
		p.nsTop[b.prefix] = len(p.ns)
	}
	p.ns = append(p.ns, b)
}

// top returns the index of the innermost binding of prefix in p.ns, or -1.
func (p *parser) top(prefix string) int {
	if i, ok := p.nsTop[prefix]; ok {
		return i
	}
	return -1
}

// popNS takes the bindings from p.ns[mark:] out of scope.
func (p *parser) popNS(mark int) {
	if p.nsTop != nil {
		for i := len(p.ns) - 1; i >= mark; i-- {
			if b := &p.ns[i]; b.prev < 0 {
				delete(p.nsTop, b.prefix)
			} else {
				p.nsTop[b.prefix] = b.prev
			}
		}
	}
	p.ns = p.ns[:mark]
}

// declare pushes the namespace declarations among e's attributes.
func (p *parser) declare(e *Element) error {
	for i := range e.Attrs {
		a := &e.Attrs[i]
		var prefix string
		switch {
		case a.QName == "xmlns":
			a.Name = xml.Name{Space: NamespaceXMLNS, Local: "xmlns"}
		case strings.HasPrefix(a.QName, "xmlns:"):
			prefix = a.QName[len("xmlns:"):]
			a.Name = xml.Name{Space: NamespaceXMLNS, Local: prefix}
		default:
			continue
		}
		switch {
		case prefix == "xmlns":
			return p.errorf(a.Span.Start, "the prefix xmlns cannot be declared")
		case prefix == "xml" && a.Value != NamespaceXML:
			return p.errorf(a.Span.Start, "the prefix xml can only be bound to %s", NamespaceXML)
		case prefix != "xml" && a.Value == NamespaceXML:
			return p.errorf(a.Span.Start, "only the prefix xml can name %s", NamespaceXML)
		case a.Value == NamespaceXMLNS:
			return p.errorf(a.Span.Start, "no namespace declaration can name %s", NamespaceXMLNS)
		case prefix != "" && a.Value == "":
			return p.errorf(a.Span.Start, "the namespace of prefix %s cannot be empty", prefix)
		}
		p.pushNS(binding{prefix: prefix, uri: a.Value})
	}
	return nil
}

// resolve returns the expanded name of a qualified name written at off.
func (p *parser) resolve(qn string, element bool, off int) (xml.Name, error) {
	colon := strings.IndexByte(qn, ':')
	if colon < 0 {
		if !element {
			return xml.Name{Local: qn}, nil
		}
		uri, _ := p.lookup("")
		return xml.Name{Space: uri, Local: qn}, nil
	}
	prefix, local := qn[:colon], qn[colon+1:]
	switch prefix {
	case "xml":
		return xml.Name{Space: NamespaceXML, Local: local}, nil
	case "xmlns":
		return xml.Name{}, p.errorf(off, "the prefix xmlns is reserved for namespace declarations")
	}
	uri, ok := p.lookup(prefix)
	if !ok {
		return xml.Name{}, p.errorf(off, "namespace prefix %s is not declared (add xmlns:%s='...')", prefix, prefix)
	}
	return xml.Name{Space: uri, Local: local}, nil
}

func (p *parser) lookup(prefix string) (string, bool) {
	if p.nsTop != nil {
		if i := p.top(prefix); i >= 0 {
			return p.ns[i].uri, true
		}
		return "", false
	}
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.ns[i].prefix == prefix {
			return p.ns[i].uri, true
		}
	}
	return "", false
}

// resolveAttrs resolves prefixed attribute names and rejects two attributes
// with one expanded name.
func (p *parser) resolveAttrs(e *Element) error {
	many := len(e.Attrs) >= manyLinear
	if many {
		p.names = reset(p.names, len(e.Attrs))
	}
	for i := range e.Attrs {
		a := &e.Attrs[i]
		if a.Name.Local != "" {
			continue // unprefixed or a namespace declaration
		}
		name, err := p.resolve(a.QName, false, a.Span.Start)
		if err != nil {
			return err
		}
		a.Name = name
		if many {
			// Only another prefixed attribute can have the same expanded
			// name: name.Space is neither "" nor NamespaceXMLNS.
			if j, ok := p.names[name]; ok {
				if e.Attrs[j].QName == a.QName {
					return p.errorf(a.Span.Start, "duplicate attribute %s", a.QName)
				}
				return p.errorf(a.Span.Start, "attributes %s and %s have the same namespace and name", e.Attrs[j].QName, a.QName)
			}
			p.names[name] = i
			continue
		}
		for j := range e.Attrs {
			b := &e.Attrs[j]
			if j != i && b.Name == name && b.Name.Space != NamespaceXMLNS {
				return p.errorf(a.Span.Start, "attributes %s and %s have the same namespace and name", b.QName, a.QName)
			}
		}
	}
	return nil
}

func (p *parser) endTag(start int) (int, error) {
	k := start + 2
	end, _, err := p.name(k, "end tag name")
	if err != nil {
		return 0, err
	}
	qn := p.s[k:end]
	if len(p.stack) == 0 {
		return 0, p.errorf(start, "end tag </%s> has no start tag", qn)
	}
	f := p.stack[len(p.stack)-1]
	e := f.e
	if qn != e.QName {
		return 0, p.errorf(start, "end tag </%s> does not match start tag <%s> at %s", qn, e.QName, p.doc.Pos(e.Start.Start))
	}
	k = p.skipSpace(end)
	if k >= len(p.src) || p.src[k] != '>' {
		return 0, p.errorf(k, "expected '>' to close end tag </%s>", qn)
	}
	k++
	e.End = Span{start, k}
	p.stack = p.stack[:len(p.stack)-1]
	p.popNS(f.ns)
	if kids := p.pending[f.pend:]; len(kids) > 0 {
		e.Children = p.children(kids)
		p.pending = p.pending[:f.pend]
	}
	p.pending = append(p.pending, e)
	return k, nil
}

// children returns a copy of kids for an element's Children.
func (p *parser) children(kids []*Element) []*Element {
	if len(kids) > cap(p.kids)-len(p.kids) {
		if len(kids) >= p.kidSizes.next/4 {
			// Many children: a chunk of their own, not to leave much of
			// a chunk unused.
			p.kidSizes.left -= len(kids)
			return append([]*Element(nil), kids...)
		}
		p.kids = make([]*Element, 0, p.kidSizes.take(0, len(kids)))
	}
	a := len(p.kids)
	p.kids = append(p.kids, kids...)
	return p.kids[a:len(p.kids):len(p.kids)]
}

func (p *parser) comment(start int) (int, error) {
	k := start + 4
	j := strings.Index(p.s[k:], "--")
	if j < 0 {
		return 0, p.errorf(start, "comment is not closed (expected -->)")
	}
	k += j
	if k+2 >= len(p.s) || p.s[k+2] != '>' {
		return 0, p.errorf(k, "'--' is not allowed inside a comment")
	}
	return k + 3, nil
}

func (p *parser) cdata(start int) (int, error) {
	k := start + len("<![CDATA[")
	j := strings.Index(p.s[k:], "]]>")
	if j < 0 {
		return 0, p.errorf(start, "CDATA section is not closed (expected ]]>)")
	}
	return k + j + 3, nil
}

func (p *parser) procInst(start int) (int, error) {
	k := start + 2
	end, colon, err := p.name(k, "processing instruction target")
	if err != nil {
		return 0, err
	}
	target := p.s[k:end]
	if strings.EqualFold(target, "xml") {
		if target == "xml" {
			return 0, p.errorf(start, "the XML declaration is allowed only at the very start of the document")
		}
		return 0, p.errorf(k, "processing instruction target %s is reserved", target)
	}
	if colon >= 0 {
		return 0, p.errorf(colon, "a processing instruction target cannot contain ':'")
	}
	if strings.HasPrefix(p.s[end:], "?>") {
		return end + 2, nil
	}
	if end >= len(p.s) || !isSpace(p.s[end]) {
		return 0, p.errorf(end, "expected whitespace or '?>' after processing instruction target %s", target)
	}
	j := strings.Index(p.s[end:], "?>")
	if j < 0 {
		return 0, p.errorf(start, "processing instruction is not closed (expected ?>)")
	}
	return end + j + 2, nil
}

// doctype checks a document type declaration:
//
//	<!DOCTYPE Name (S ExternalID)? S? ('[' intSubset ']' S?)? '>'
//
// In the internal subset it checks declarations only lexically (quoted
// strings, no other '<'), and accepts comments and parameter entity
// references between them, but not processing instructions.
func (p *parser) doctype(start int) (int, error) {
	s := p.s
	k := start + len("<!DOCTYPE")
	if k >= len(s) || !isSpace(s[k]) {
		return 0, p.errorf(k, "expected whitespace after <!DOCTYPE")
	}
	k = p.skipSpace(k)
	end, _, err := p.name(k, "document type name")
	if err != nil {
		return 0, err
	}
	k = p.skipSpace(end)
	if k > end && (strings.HasPrefix(s[k:], "SYSTEM") || strings.HasPrefix(s[k:], "PUBLIC")) {
		public := s[k] == 'P'
		k += len("SYSTEM")
		if k, err = p.literal(k, public); err != nil {
			return 0, err
		}
		if public {
			if k, err = p.literal(k, false); err != nil {
				return 0, err
			}
		}
		k = p.skipSpace(k)
	}
	if k < len(s) && s[k] == '[' {
		if k, err = p.internalSubset(k + 1); err != nil {
			return 0, err
		}
		k = p.skipSpace(k)
	}
	if k >= len(s) || s[k] != '>' {
		return 0, p.errorf(k, "DOCTYPE: expected '>', found %s", quoteByte(p.src, k))
	}
	return k + 1, nil
}

// literal reads whitespace and a quoted system or public literal at k.
func (p *parser) literal(k int, public bool) (int, error) {
	s := p.s
	ws := k
	k = p.skipSpace(k)
	if k == ws || k >= len(s) || s[k] != '\'' && s[k] != '"' {
		return 0, p.errorf(k, "DOCTYPE: expected whitespace and a quoted literal")
	}
	j := strings.IndexByte(s[k+1:], s[k])
	if j < 0 {
		return 0, p.errorf(k, "DOCTYPE: literal is not closed")
	}
	if public {
		for x := k + 1; x <= k+j; x++ {
			if !isPubidChar(s[x]) {
				return 0, p.errorf(x, "DOCTYPE: %s is not allowed in a public identifier", quoteByte(p.src, x))
			}
		}
	}
	return k + j + 2, nil
}

// isPubidChar reports whether c may appear in a public identifier.
func isPubidChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte(" \r\n-'()+,./:=?;!*#@$_%", c) >= 0
}

// internalSubset checks a DOCTYPE internal subset from k and returns the
// offset past its closing ']'.
func (p *parser) internalSubset(k int) (int, error) {
	s := p.s
	var err error
	for k < len(s) {
		switch c := s[k]; {
		case isSpace(c):
			k++
		case c == ']':
			return k + 1, nil
		case c == '%':
			end, colon, err := p.name(k+1, "parameter entity reference")
			if err != nil {
				return 0, err
			}
			if colon >= 0 || end >= len(s) || s[end] != ';' {
				return 0, p.errorf(k, "DOCTYPE: malformed parameter entity reference")
			}
			k = end + 1
		case strings.HasPrefix(s[k:], "<!--"):
			if k, err = p.comment(k); err != nil {
				return 0, err
			}
		case strings.HasPrefix(s[k:], "<!"):
			start := k
			if _, _, err := p.name(k+2, "declaration keyword"); err != nil {
				return 0, err
			}
			for k += 2; ; k++ {
				if k >= len(s) {
					return 0, p.errorf(start, "declaration in DOCTYPE is not closed")
				}
				if c := s[k]; c == '\'' || c == '"' {
					j := strings.IndexByte(s[k+1:], c)
					if j < 0 {
						return 0, p.errorf(k, "quoted string in DOCTYPE is not closed")
					}
					k += j + 1
				} else if c == '<' {
					return 0, p.errorf(k, "'<' is not allowed in a declaration outside quotes")
				} else if c == '>' {
					k++
					break
				}
			}
		case strings.HasPrefix(s[k:], "<?"):
			return 0, p.errorf(k, "processing instructions in a DOCTYPE are not supported")
		default:
			return 0, p.errorf(k, "DOCTYPE: unexpected %s in the internal subset", quoteByte(p.src, k))
		}
	}
	return 0, p.errorf(k, "DOCTYPE internal subset is not closed (expected ])")
}

// xmlDeclaration checks <?xml version='1.0' encoding='UTF-8' standalone='no'?>
// at start.
func (p *parser) xmlDeclaration(start int) (int, error) {
	s := p.s
	k := start + len("<?xml")
	for _, want := range []string{"version", "encoding", "standalone"} {
		ws := k
		k = p.skipSpace(k)
		if !strings.HasPrefix(s[k:], want) {
			if want == "version" {
				return 0, p.errorf(k, "XML declaration: expected version")
			}
			k = ws
			continue
		}
		if k == ws {
			return 0, p.errorf(k, "XML declaration: expected whitespace before %s", want)
		}
		k = p.skipSpace(k + len(want))
		if k >= len(s) || s[k] != '=' {
			return 0, p.errorf(k, "XML declaration: expected '=' after %s", want)
		}
		k = p.skipSpace(k + 1)
		if k >= len(s) || s[k] != '\'' && s[k] != '"' {
			return 0, p.errorf(k, "XML declaration: the value of %s must be quoted", want)
		}
		j := strings.IndexByte(s[k+1:], s[k])
		if j < 0 {
			return 0, p.errorf(k, "XML declaration: the value of %s is not closed", want)
		}
		v := s[k+1 : k+1+j]
		switch want {
		case "version":
			if v != "1.0" {
				return 0, p.errorf(k+1, "unsupported XML version %q (only 1.0)", v)
			}
		case "encoding":
			if !strings.EqualFold(v, "utf-8") {
				return 0, p.errorf(k+1, "unsupported encoding %q (only UTF-8)", v)
			}
		case "standalone":
			if v != "yes" && v != "no" {
				return 0, p.errorf(k+1, "XML declaration: standalone must be 'yes' or 'no', not %q", v)
			}
		}
		k += j + 2
	}
	k = p.skipSpace(k)
	if !strings.HasPrefix(s[k:], "?>") {
		return 0, p.errorf(k, "XML declaration: expected '?>'")
	}
	return k + 2, nil
}
