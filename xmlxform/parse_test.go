package xmlxform

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const qemuNS = "http://libvirt.org/schemas/domain/qemu/1.0"

// attrAt describes an attribute as a test expects it.
type attrAt struct {
	qname string
	space string
	value string
	raw   string // the bytes between the quotes
	quote byte
	pos   string // of the attribute's first byte
}

func TestParseSpans(t *testing.T) {
	libvirt := "<domain type='kvm' xmlns:qemu='" + qemuNS + "'>\n" +
		"  <devices>\n" +
		"    <interface type='hostdev'>\n" +
		"      <teaming type='transient' persistent='ua-net0'/>\n" +
		"    </interface>\n" +
		"  </devices>\n" +
		"  <qemu:commandline>\n" +
		"    <qemu:arg value='-global'/>\n" +
		"  </qemu:commandline>\n" +
		"</domain>\n"
	tests := []struct {
		name        string
		src         string
		path        string
		pos         string // of the start tag
		endPos      string // of the end tag
		nameSpace   string
		selfClosing bool
		attrs       []attrAt
		text        string
	}{
		{
			name: "libvirt-teaming-attributes", src: libvirt,
			path: "/domain/devices/interface/teaming", pos: "4:7", endPos: "4:7", selfClosing: true,
			attrs: []attrAt{
				{qname: "type", value: "transient", raw: "transient", quote: '\'', pos: "4:16"},
				{qname: "persistent", value: "ua-net0", raw: "ua-net0", quote: '\'', pos: "4:33"},
			},
		},
		{
			name: "element-with-end-tag", src: libvirt,
			path: "/domain/devices/interface", pos: "3:5", endPos: "5:5",
			attrs: []attrAt{{qname: "type", value: "hostdev", raw: "hostdev", quote: '\'', pos: "3:16"}},
			text:  "\n      \n    ",
		},
		{
			name: "qemu-namespace-resolved", src: libvirt,
			path: "/domain/qemu:commandline/qemu:arg", pos: "8:5", endPos: "8:5", nameSpace: qemuNS, selfClosing: true,
			attrs: []attrAt{{qname: "value", value: "-global", raw: "-global", quote: '\'', pos: "8:15"}},
		},
		{
			name: "namespace-declaration-attribute", src: libvirt,
			path: "/domain", pos: "1:1", endPos: "10:1",
			attrs: []attrAt{
				{qname: "type", value: "kvm", raw: "kvm", quote: '\'', pos: "1:9"},
				{qname: "xmlns:qemu", space: NamespaceXMLNS, value: qemuNS, raw: qemuNS, quote: '\'', pos: "1:20"},
			},
			text: "\n  \n  \n",
		},
		{
			name: "declared-on-the-element-itself",
			src:  "<domain><metadata><vfo:pair xmlns:vfo='urn:vfo' vfo:pool='a'/></metadata></domain>",
			path: "/domain/metadata/vfo:pair", pos: "1:19", endPos: "1:19", nameSpace: "urn:vfo", selfClosing: true,
			attrs: []attrAt{
				{qname: "xmlns:vfo", space: NamespaceXMLNS, value: "urn:vfo", raw: "urn:vfo", quote: '\'', pos: "1:29"},
				{qname: "vfo:pool", space: "urn:vfo", value: "a", raw: "a", quote: '\'', pos: "1:49"},
			},
		},
		{
			name: "default-namespace-not-on-attributes",
			src:  `<a xmlns="urn:d"><b c="1"></b></a>`,
			path: "/a/b", pos: "1:18", endPos: "1:27", nameSpace: "urn:d",
			attrs: []attrAt{{qname: "c", value: "1", raw: "1", quote: '"', pos: "1:21"}},
		},
		{
			name: "xml-prefix-predeclared",
			src:  `<a xml:lang="en"/>`,
			path: "/a", pos: "1:1", endPos: "1:1", selfClosing: true,
			attrs: []attrAt{{qname: "xml:lang", space: NamespaceXML, value: "en", raw: "en", quote: '"', pos: "1:4"}},
		},
		{
			name: "references-in-attribute-value",
			src:  `<a v="x&amp;y &#60;z&#x3E; &quot;'"/>`,
			path: "/a", pos: "1:1", endPos: "1:1", selfClosing: true,
			attrs: []attrAt{{qname: "v", value: `x&y <z> "'`, raw: `x&amp;y &#60;z&#x3E; &quot;'`, quote: '"', pos: "1:4"}},
		},
		{
			name: "attribute-whitespace-normalized",
			src:  "<a v='1\t2\r\n3\n4&#10;5'/>",
			path: "/a", pos: "1:1", endPos: "1:1", selfClosing: true,
			attrs: []attrAt{{qname: "v", value: "1 2 3 4\n5", raw: "1\t2\r\n3\n4&#10;5", quote: '\'', pos: "1:4"}},
		},
		{
			name: "attributes-over-lines-and-spaces-around-equals",
			src:  "<a\n  x = '1'\n\ty=\"2\"\n/>",
			path: "/a", pos: "1:1", endPos: "1:1", selfClosing: true,
			attrs: []attrAt{
				{qname: "x", value: "1", raw: "1", quote: '\'', pos: "2:3"},
				{qname: "y", value: "2", raw: "2", quote: '"', pos: "3:2"},
			},
		},
		{
			name: "crlf-line-ends",
			src:  "<a>\r\n  <b x='1'>t\r\nu</b>\r\n</a>\r\n",
			path: "/a/b", pos: "2:3", endPos: "3:2",
			attrs: []attrAt{{qname: "x", value: "1", raw: "1", quote: '\'', pos: "2:6"}},
			text:  "t\nu",
		},
		{
			name: "byte-order-mark-counts-in-columns",
			src:  "\uFEFF<a/>",
			path: "/a", pos: "1:4", endPos: "1:4", selfClosing: true,
		},
		{
			name: "prolog-declaration-doctype-comment-pi",
			src:  "<?xml version='1.0' encoding='utf-8' standalone='yes'?>\n<!DOCTYPE domain PUBLIC '-//V F//DTD x 1.0//EN' \"x.dtd\" [<!ENTITY e '>]'> %p; <!-- ] -->]>\n<!-- c -->\n<?pi x?>\n<domain/>\n<!-- after -->\n",
			path: "/domain", pos: "5:1", endPos: "5:1", selfClosing: true,
		},
		{
			name: "cdata-comments-and-pis-in-text",
			src:  "<a>x<![CDATA[<y>&amp;]]>z<!-- c --><?p q?>&lt;w&gt;</a>",
			path: "/a", pos: "1:1", endPos: "1:52",
			text: "x<y>&amp;z<w>",
		},
		{
			name: "text-is-only-direct-character-data",
			src:  "<a>x<b>inner</b>y<c/>z</a>",
			path: "/a", pos: "1:1", endPos: "1:23",
			text: "xyz",
		},
		{
			name: "end-tag-with-space",
			src:  "<a>v</a >",
			path: "/a", pos: "1:1", endPos: "1:5",
			text: "v",
		},
		{
			name: "non-ascii-names-and-values",
			src:  "<données clé='été'>ça</données>",
			path: "/données", pos: "1:1", endPos: "1:27",
			attrs: []attrAt{{qname: "clé", value: "été", raw: "été", quote: '\'', pos: "1:11"}},
			text:  "ça",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			e := d.Find(tt.path)
			if e == nil {
				t.Fatalf("no element %s", tt.path)
			}
			if got := d.Pos(e.Start.Start).String(); got != tt.pos {
				t.Errorf("start tag at %s, want %s", got, tt.pos)
			}
			if got := d.Pos(e.End.Start).String(); got != tt.endPos {
				t.Errorf("end tag at %s, want %s", got, tt.endPos)
			}
			local := e.QName[strings.IndexByte(e.QName, ':')+1:]
			if want := (xml.Name{Space: tt.nameSpace, Local: local}); e.Name != want {
				t.Errorf("Name = %v, want %v", e.Name, want)
			}
			if e.SelfClosing != tt.selfClosing {
				t.Errorf("SelfClosing = %v, want %v", e.SelfClosing, tt.selfClosing)
			}
			if e.SelfClosing {
				if e.End != e.Start || e.Inner() != (Span{e.Start.End, e.Start.End}) {
					t.Errorf("self-closing: End %v, Inner %v, Start %v", e.End, e.Inner(), e.Start)
				}
			} else if et := string(d.Src[e.End.Start:e.End.End]); !strings.HasPrefix(et, "</"+e.QName) {
				t.Errorf("end tag %q", et)
			}
			if st := string(d.Src[e.Start.Start:e.Start.End]); !strings.HasPrefix(st, "<"+e.QName) || !strings.HasSuffix(st, ">") {
				t.Errorf("start tag %q", st)
			}
			if e.Span() != (Span{e.Start.Start, e.End.End}) {
				t.Errorf("Span = %v", e.Span())
			}
			if len(e.Attrs) != len(tt.attrs) {
				t.Fatalf("%d attributes, want %d", len(e.Attrs), len(tt.attrs))
			}
			for i, want := range tt.attrs {
				a := e.Attrs[i]
				wantLocal := want.qname[strings.IndexByte(want.qname, ':')+1:]
				if a.QName != want.qname || a.Name != (xml.Name{Space: want.space, Local: wantLocal}) {
					t.Errorf("attribute %d: QName %q Name %v, want %q {%s %s}", i, a.QName, a.Name, want.qname, want.space, wantLocal)
				}
				if a.Value != want.value {
					t.Errorf("%s: Value %q, want %q", a.QName, a.Value, want.value)
				}
				if raw := string(d.Src[a.ValueSpan.Start:a.ValueSpan.End]); raw != want.raw {
					t.Errorf("%s: raw value %q, want %q", a.QName, raw, want.raw)
				}
				if a.Quote != want.quote {
					t.Errorf("%s: Quote %q, want %q", a.QName, a.Quote, want.quote)
				}
				if got := d.Pos(a.Span.Start).String(); got != want.pos {
					t.Errorf("%s: at %s, want %s", a.QName, got, want.pos)
				}
				whole := fmt.Sprintf("%s=%c%s%c", a.QName, a.Quote, want.raw, a.Quote)
				if got := string(d.Src[a.Span.Start:a.Span.End]); strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(whole, " ", "") {
					t.Errorf("%s: span %q, want %q", a.QName, got, whole)
				}
			}
			if got := e.Text(d); got != tt.text {
				t.Errorf("Text = %q, want %q", got, tt.text)
			}
			checkInvariants(t, d)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		pos  string
		msg  string
	}{
		{"empty-input", "", "1:1", "no root element"},
		{"only-whitespace-and-comment", "\n <!-- x -->\n", "3:1", "no root element"},
		{"not-utf8", "<a>\n  caf\xe9</a>", "2:6", "invalid UTF-8"},
		{"not-utf8-in-attribute", "<a b='\xff'/>", "1:7", "invalid UTF-8"},
		{"control-character", "<a>\x01</a>", "1:4", "illegal character U+0001"},
		{"nul-byte", "<a/>\x00", "1:5", "illegal character U+0000"},
		{"non-character-fffe", "<a>\uFFFE</a>", "1:4", "illegal character U+FFFE"},
		{"two-roots", "<a/>\n<b/>", "2:1", "more than one root element"},
		{"text-before-root", "x<a/>", "1:1", "text before the root element"},
		{"text-after-root", "<a/>x", "1:5", "text after the root element"},
		{"unclosed-element", "<a>\n  <b>\n", "3:1", "<b> opened at 2:3 is not closed"},
		{"mismatched-end-tag", "<a>\n</b>", "2:1", "</b> does not match start tag <a> at 1:1"},
		{"end-tag-without-start", "</a>", "1:1", "has no start tag"},
		{"unclosed-start-tag", "<a b='1'", "1:1", "start tag <a> is not closed"},
		{"duplicate-attribute", "<a x='1' x='2'/>", "1:10", "duplicate attribute x"},
		{"duplicate-expanded-attribute", "<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>", "1:36", "same namespace and name"},
		{"unquoted-attribute", "<a x=1/>", "1:6", "must be quoted"},
		{"attribute-without-value", "<a x/>", "1:5", "has no value"},
		{"no-space-between-attributes", "<a x='1'y='2'/>", "1:9", "expected whitespace"},
		{"lt-in-attribute", "<a x='<'/>", "1:7", "'<' is not allowed"},
		{"unclosed-attribute-value", "<a x='1/>", "1:6", "is not closed"},
		{"undefined-entity", "<a>&nbsp;</a>", "1:4", "undefined entity &nbsp;"},
		{"bare-ampersand", "<a>AT&T</a>", "1:6", "'&' must start a reference"},
		{"char-ref-nul", "<a>&#0;</a>", "1:4", "not an XML character"},
		{"char-ref-surrogate", "<a b='&#xD800;'/>", "1:7", "not an XML character"},
		{"char-ref-too-big", "<a>&#x110000;</a>", "1:4", "out of range"},
		{"char-ref-bad-digit", "<a>&#12a;</a>", "1:4", "malformed character reference"},
		{"cdata-end-in-text", "<a>]]></a>", "1:4", "']]>' is not allowed"},
		{"double-dash-in-comment", "<a><!-- a -- b --></a>", "1:11", "'--' is not allowed"},
		{"unclosed-comment", "<a><!-- x </a>", "1:4", "comment is not closed"},
		{"unclosed-cdata", "<a><![CDATA[x</a>", "1:4", "CDATA section is not closed"},
		{"unclosed-pi", "<a><?p x</a>", "1:4", "processing instruction is not closed"},
		{"cdata-outside-root", "<![CDATA[x]]><a/>", "1:1", "CDATA section outside"},
		{"doctype-after-root", "<a/><!DOCTYPE a>", "1:5", "DOCTYPE must come once"},
		{"unknown-markup", "<a><!ELEMENT a></a>", "1:4", "unknown markup"},
		{"doctype-junk-after-name", "<!DOCTYPE A<><A/>", "1:12", "DOCTYPE: expected '>', found '<'"},
		{"doctype-pi-in-subset", "<!DOCTYPE a [<?p x?>]><a/>", "1:14", "processing instructions in a DOCTYPE"},
		{"doctype-text-in-subset", "<!DOCTYPE a [ x ]><a/>", "1:15", "unexpected 'x' in the internal subset"},
		{"doctype-lt-in-declaration", "<!DOCTYPE a [<!ENTITY e <b>]><a/>", "1:25", "'<' is not allowed in a declaration"},
		{"doctype-bad-public-id", "<!DOCTYPE a PUBLIC 'a{b' 'c'><a/>", "1:22", "not allowed in a public identifier"},
		{"doctype-system-without-literal", "<!DOCTYPE a SYSTEM><a/>", "1:19", "expected whitespace and a quoted literal"},
		{"doctype-unclosed-subset", "<!DOCTYPE a [<!ENTITY e 'x'>", "1:29", "internal subset is not closed"},
		{"undeclared-prefix", "<domain>\n  <qemu:commandline/>\n</domain>", "2:4", "namespace prefix qemu is not declared"},
		{"undeclared-attribute-prefix", "<a p:x='1'/>", "1:4", "namespace prefix p is not declared"},
		{"empty-prefixed-namespace", "<a xmlns:p=''/>", "1:4", "cannot be empty"},
		{"xmlns-prefix-on-element", "<xmlns:a/>", "1:2", "reserved for namespace declarations"},
		{"rebinding-xml-prefix", "<a xmlns:xml='urn:x'/>", "1:4", "the prefix xml can only be bound"},
		{"two-colons-in-name", "<a:b:c/>", "1:5", "only one ':'"},
		{"name-starts-with-digit", "<1a/>", "1:2", "expected a name"},
		{"space-after-lt", "< a/>", "1:2", "expected a name"},
		{"colon-first-in-name", "<:a/>", "1:2", "cannot start with ':'"},
		{"declaration-not-at-start", " <?xml version='1.0'?><a/>", "1:2", "only at the very start"},
		{"declaration-version-1-1", "<?xml version='1.1'?><a/>", "1:16", "unsupported XML version"},
		{"declaration-latin1", "<?xml version='1.0' encoding='ISO-8859-1'?><a/>", "1:31", "unsupported encoding"},
		{"declaration-without-version", "<?xml encoding='UTF-8'?><a/>", "1:7", "expected version"},
		{"reserved-pi-target", "<a><?XML x?></a>", "1:6", "is reserved"},
		{"eof-after-lt", "<a><", "1:4", "unexpected end of input after '<'"},
		{"slash-without-gt", "<a/ >", "1:3", "expected '>' after '/'"},
		{"end-tag-junk", "<a></a b>", "1:8", "expected '>' to close end tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded (root %v)", d.Root)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *SyntaxError: %v", err, err)
			}
			if got := fmt.Sprintf("%d:%d", se.Line, se.Col); got != tt.pos {
				t.Errorf("error at %s, want %s: %v", got, tt.pos, err)
			}
			if !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", se.Msg, tt.msg)
			}
			if want := tt.pos + ": " + se.Msg; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestParseDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(strings.Repeat("<a>", n) + strings.Repeat("</a>", n))
	}
	tests := []struct {
		name  string
		depth int
		ok    bool
	}{
		{"at-the-limit", MaxDepth, true},
		{"one-past-the-limit", MaxDepth + 1, false},
		{"hundred-thousand-levels", 100000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(nest(tt.depth))
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				var deepest *Element
				for e := range d.Elements() {
					deepest = e
				}
				if got := strings.Count(deepest.Path(), "/"); got != tt.depth {
					t.Fatalf("deepest element at depth %d", got)
				}
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) || !strings.Contains(se.Msg, "deeper than 1000") || se.Col != 3*MaxDepth+1 {
				t.Fatalf("error = %v, want nesting error at column %d", err, 3*MaxDepth+1)
			}
		})
	}
}

func TestParseLargeInput(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("<domain type='kvm'>\n  <devices>\n")
	// Three megabytes of interfaces, 7 lines and 6 elements each: some
	// 65,000 elements, within MaxElements.
	const lines = 7
	for b.Len() < 3<<20 {
		fmt.Fprintf(&b, "    <interface type='bridge'>\n      <mac address='52:54:00:00:%02x:%02x'/>\n      <source bridge='br-fabric-a'/>\n      <model type='virtio'/>\n      <alias name='net%d'/>\n      <address type='pci' domain='0x0000' bus='0x%02x' slot='0x%02x' function='0x0'/>\n    </interface>\n",
			b.Len()%256, b.Len()/256%256, b.Len(), b.Len()/32%256, b.Len()%32)
	}
	b.WriteString("  </devices>\n</domain>\n")
	tests := []struct {
		name string
		src  []byte
		msg  string
	}{
		{"three-megabytes", b.Bytes(), ""},
		{"three-megabytes-truncated", b.Bytes()[:b.Len()-len("</domain>\n")], "<domain> opened at 1:1 is not closed"},
		{"three-megabytes-bad-byte-at-the-end", append(bytes.Clone(b.Bytes()[:b.Len()-1]), 0xff), "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.src)
			if tt.msg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("error = %v, want %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := len(d.Root.Child("devices").Children)
			if n < 10000 {
				t.Fatalf("only %d interfaces", n)
			}
			last := d.Root.Child("devices").Children[n-1]
			if p := d.Pos(last.Start.Start); p.Line != 2+lines*(n-1)+1 || p.Col != 5 {
				t.Fatalf("last interface at %v", p)
			}
		})
	}
}

func TestPos(t *testing.T) {
	src := []byte("ab\ncd\r\n\nx")
	d := &Doc{Src: src}
	var msg string
	if d.marks, _, msg = checkChars(src); msg != "" {
		t.Fatal(msg)
	}
	tests := []struct {
		offset int
		want   Pos
	}{
		{-5, Pos{1, 1}},
		{0, Pos{1, 1}},
		{2, Pos{1, 3}},
		{3, Pos{2, 1}},
		{5, Pos{2, 3}}, // the CR
		{7, Pos{3, 1}},
		{8, Pos{4, 1}},
		{9, Pos{4, 2}}, // end of input
		{99, Pos{4, 2}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("offset-%d", tt.offset), func(t *testing.T) {
			if got := d.Pos(tt.offset); got != tt.want {
				t.Errorf("Pos(%d) = %v, want %v", tt.offset, got, tt.want)
			}
		})
	}
}

func TestDocStyle(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		quote   byte
		indent  string
		newline string
	}{
		{"libvirt-single-quotes-two-spaces", "<d a='1'>\n  <e b='2' c=\"3\">\n    <f/>\n  </e>\n</d>\n", '\'', "  ", "\n"},
		{"mostly-double-quotes", "<d a=\"1\">\n    <e b=\"2\" c='3'/>\n</d>", '"', "    ", "\n"},
		{"tie-prefers-single-quotes", "<d a=\"1\" b='2'/>", '\'', "  ", "\n"},
		{"no-attributes", "<d>\n\t<e>\n\t\t<f/>\n\t</e>\n</d>", '\'', "\t", "\n"},
		{"crlf", "<d>\r\n   <e/>\r\n</d>\r\n", '\'', "   ", "\r\n"},
		{"one-line-has-no-indent", "<d><e/><f/></d>", '\'', "  ", "\n"},
		{"deeper-levels-vote-too", "<d>\n  <e>\n      <f/>\n      <g/>\n      <h/>\n  </e>\n</d>", '\'', "    ", "\n"},
		{"later-elements-on-a-line-do-not-vote", "<d>\n\t<e/><f/><g/><h/>\n  <i><j/></i>\n</d>", '\'', "\t", "\n"},
		{"siblings-after-a-deep-one", "<d>\n   <e>\n      <f>\n         <g/>\n      </f>\n   </e>\n   <h/>\n</d>", '\'', "   ", "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Quote(); got != tt.quote {
				t.Errorf("Quote() = %q, want %q", got, tt.quote)
			}
			if got := d.Indent(); got != tt.indent {
				t.Errorf("Indent() = %q, want %q", got, tt.indent)
			}
			if got := d.Newline(); got != tt.newline {
				t.Errorf("Newline() = %q, want %q", got, tt.newline)
			}
		})
	}
}

func TestNavigation(t *testing.T) {
	src := `<domain xmlns:qemu='` + qemuNS + `'>
  <devices>
    <interface type='bridge'><alias name='ua-net0'/></interface>
    <hostdev/>
    <interface type='hostdev'><teaming type='transient' persistent='ua-net0'/></interface>
  </devices>
  <qemu:commandline xmlns:q2='` + qemuNS + `'>
    <qemu:arg value='-s'/>
    <qemu:arg value='-S' xmlns:qemu='urn:other'/>
  </qemu:commandline>
</domain>`
	d, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	devices := d.Root.Child("devices")
	if devices == nil {
		t.Fatal("no devices")
	}
	ifaces := devices.ChildrenNamed("interface")
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"path-indexes-same-named-siblings", ifaces[1].Child("teaming").Path(), "/domain/devices/interface[2]/teaming"},
		{"path-without-index-when-unique", devices.Child("hostdev").Path(), "/domain/devices/hostdev"},
		{"path-of-root", d.Root.Path(), "/domain"},
		{"find-default-index-is-one", d.Find("/domain/devices/interface/alias"), ifaces[0].Child("alias")},
		{"find-missing", d.Find("/domain/devices/interface[3]"), (*Element)(nil)},
		{"find-wrong-root", d.Find("/dom"), (*Element)(nil)},
		{"children-named", len(ifaces), 2},
		{"child-in-no-namespace-only", d.Root.Child("commandline"), (*Element)(nil)},
		{"child-ns", d.Root.ChildNS(qemuNS, "commandline").QName, "qemu:commandline"},
		{"attr", must(ifaces[1].Child("teaming").Attr("persistent")), "ua-net0"},
		{"attr-missing", ifaces[1].AttrNode("persistent"), (*Attr)(nil)},
		{"attr-ns", d.Root.AttrNS(NamespaceXMLNS, "qemu").Value, qemuNS},
		{"lookup-namespace", must(devices.LookupNamespace("qemu")), qemuNS},
		{"lookup-shadowed-namespace", must(d.Find("/domain/qemu:commandline/qemu:arg[2]").LookupNamespace("qemu")), "urn:other"},
		{"lookup-xml-namespace", must(devices.LookupNamespace("xml")), NamespaceXML},
		{"lookup-undeclared", must(devices.LookupNamespace("nope")), ""},
		{"lookup-prefix", must(devices.LookupPrefix(qemuNS)), "qemu"},
		{"lookup-prefix-skips-shadowed", must(d.Find("/domain/qemu:commandline/qemu:arg[2]").LookupPrefix(qemuNS)), "q2"},
		{"element-count", d.Len(), 10},
		{"inner-span", string(d.Src[ifaces[0].Inner().Start:ifaces[0].Inner().End]), "<alias name='ua-net0'/>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func must[T any](v T, _ bool) T { return v }
