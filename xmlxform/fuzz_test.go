package xmlxform

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedFuzz adds every XML file under testdata/xmlxform to f, with extra
// arguments from args.
func seedFuzz(f *testing.F, args ...any) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	more, err := filepath.Glob(filepath.Join(goldenDir, "*", "*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, more...)
	if len(files) == 0 {
		f.Fatal("no seed files")
	}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]any{src}, args...)...)
	}
	for _, s := range []string{
		"<a/>",
		"<?xml version='1.0'?>\n<!DOCTYPE a [<!ENTITY x 'y'>]>\n<a><![CDATA[<x>]]><!-- c --><?pi d?></a>",
		"\uFEFF<a xmlns:q='u' q:b='1'><q:c xmlns='v'><d/></q:c></a>",
		"<a>\r\n\t<b x=\"1&#10;2\"/>\r\n</a>\r\n",
		"<a><b><c/></b></a>",
		"<!DOCTYPE a PUBLIC '-//x//y' \"z\" [<!ELEMENT a (#PCDATA)> <!ATTLIST a b CDATA '1'> %p; <!-- c -->\n]>\n<a/>",
		// Past manyLinear: maps find duplicates and namespace bindings.
		"<a xmlns='d' xmlns:p0='u0' xmlns:p1='u1' xmlns:p2='u2' xmlns:p3='u3' xmlns:p4='u4' xmlns:p5='u5' xmlns:p6='u6' xmlns:p7='u7' xmlns:p8='u8' " +
			"xmlns:p9='u9' xmlns:pa='ua' xmlns:pb='ub' xmlns:pc='uc' xmlns:pd='ud' xmlns:pe='ue' xmlns:pf='uf' xmlns:pg='ug' b0='' b1='' p0:b0='' p1:b0='' " +
			"p2:b0=''><p3:c xmlns:p3='w' xmlns='' p3:y='' pg:y=''><d/></p3:c><p3:d/><e/></a>",
	} {
		f.Add(append([]any{[]byte(s)}, args...)...)
	}
}

// stdDoc is what encoding/xml reads from a document, for comparison.
type stdDoc struct {
	starts []xml.StartElement
	texts  []string // direct character data of each element, by start order
}

// parseStd decodes src with encoding/xml in strict mode.
func parseStd(src []byte) (*stdDoc, error) {
	dec := xml.NewDecoder(bytes.NewReader(src))
	sd := &stdDoc{}
	var open []int
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return sd, nil
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			open = append(open, len(sd.starts))
			sd.starts = append(sd.starts, tok.Copy())
			sd.texts = append(sd.texts, "")
		case xml.EndElement:
			open = open[:len(open)-1]
		case xml.CharData:
			if len(open) > 0 {
				sd.texts[open[len(open)-1]] += string(tok)
			}
		}
	}
}

// normSpace maps tab, CR and LF to spaces, as attribute values normalize.
func normSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// hasNonASCII reports whether src has a non-ASCII byte. Where it does, a
// name may be one that encoding/xml rejects: it checks names against the
// older (fourth edition) XML tables, Parse against the fifth edition ones.
func hasNonASCII(src []byte) bool {
	for _, c := range src {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// checkInvariants checks the spans of every element of d.
func checkInvariants(t *testing.T, d *Doc) {
	t.Helper()
	src := d.Src
	n := 0
	for e := range d.Elements() {
		n++
		st := string(src[e.Start.Start:e.Start.End])
		if !strings.HasPrefix(st, "<"+e.QName) || !strings.HasSuffix(st, ">") {
			t.Fatalf("%s: start tag %q", e.Path(), st)
		}
		if e.SelfClosing != strings.HasSuffix(st, "/>") {
			t.Fatalf("%s: SelfClosing %v for %q", e.Path(), e.SelfClosing, st)
		}
		if e.SelfClosing && e.End != e.Start {
			t.Fatalf("%s: self-closing End %v != Start %v", e.Path(), e.End, e.Start)
		}
		if !e.SelfClosing {
			et := string(src[e.End.Start:e.End.End])
			if !strings.HasPrefix(et, "</"+e.QName) || !strings.HasSuffix(et, ">") {
				t.Fatalf("%s: end tag %q", e.Path(), et)
			}
		}
		local := e.QName
		if i := strings.IndexByte(local, ':'); i >= 0 {
			local = local[i+1:]
		}
		if e.Name.Local != local {
			t.Fatalf("%s: Name.Local %q for QName %q", e.Path(), e.Name.Local, e.QName)
		}
		prev := e.Start.Start + 1 + len(e.QName)
		for _, a := range e.Attrs {
			if a.Span.Start <= prev || a.Span.End > e.Start.End {
				t.Fatalf("%s: attribute %s span %v out of order", e.Path(), a.QName, a.Span)
			}
			prev = a.Span.End
			if !strings.HasPrefix(string(src[a.Span.Start:a.Span.End]), a.QName) {
				t.Fatalf("%s: attribute span %q does not start with %s", e.Path(), src[a.Span.Start:a.Span.End], a.QName)
			}
			if src[a.ValueSpan.Start-1] != a.Quote || src[a.ValueSpan.End] != a.Quote || a.ValueSpan.End+1 != a.Span.End {
				t.Fatalf("%s: attribute %s quotes around %v", e.Path(), a.QName, a.ValueSpan)
			}
		}
		pos := e.Start.End
		for _, c := range e.Children {
			if c.Parent != e || c.Start.Start < pos || c.End.End > e.End.Start {
				t.Fatalf("%s: child %s out of place", e.Path(), c.Path())
			}
			pos = c.End.End
		}
		if got := d.Find(e.Path()); got != e {
			t.Fatalf("Find(%q) = %v, want %v", e.Path(), got, e)
		}
	}
	if n != d.Len() {
		t.Fatalf("Elements yielded %d, Len %d", n, d.Len())
	}
}

// compareStd checks d against encoding/xml's reading of the same bytes.
func compareStd(t *testing.T, d *Doc, sd *stdDoc) {
	t.Helper()
	if len(sd.starts) != d.Len() {
		t.Fatalf("encoding/xml sees %d elements, Parse %d", len(sd.starts), d.Len())
	}
	i := 0
	for e := range d.Elements() {
		se := sd.starts[i]
		// A namespace name is a normalized attribute value too.
		if normSpace(se.Name.Space) != e.Name.Space || se.Name.Local != e.Name.Local {
			t.Fatalf("%s: encoding/xml name %v, Parse %v", e.Path(), se.Name, e.Name)
		}
		if len(se.Attr) != len(e.Attrs) {
			t.Fatalf("%s: encoding/xml sees %d attributes, Parse %d", e.Path(), len(se.Attr), len(e.Attrs))
		}
		for k, a := range e.Attrs {
			sa := se.Attr[k]
			want := a.Name
			if want.Space == NamespaceXMLNS {
				want = xml.Name{Space: "xmlns", Local: a.Name.Local}
				if a.QName == "xmlns" {
					want = xml.Name{Local: "xmlns"}
				}
			}
			if sa.Name.Local != want.Local || normSpace(sa.Name.Space) != want.Space {
				t.Fatalf("%s: attribute %d: encoding/xml name %v, Parse %v", e.Path(), k, sa.Name, a.Name)
			}
			if normSpace(sa.Value) != normSpace(a.Value) {
				t.Fatalf("%s: attribute %s: encoding/xml value %q, Parse %q", e.Path(), a.QName, sa.Value, a.Value)
			}
		}
		if got := e.Text(d); got != sd.texts[i] {
			t.Fatalf("%s: encoding/xml text %q, Parse %q", e.Path(), sd.texts[i], got)
		}
		i++
	}
}

func FuzzParse(f *testing.F) {
	seedFuzz(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		d, err := Parse(src)
		sd, stdErr := parseStd(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *SyntaxError", err, err)
			}
			if se.Line < 1 || se.Col < 1 || se.Msg == "" {
				t.Fatalf("bad error position: %v", err)
			}
			return
		}
		out, err := Apply(src, nil)
		if err != nil || !bytes.Equal(out, src) {
			t.Fatalf("Apply with no edits: %v, changed bytes", err)
		}
		checkInvariants(t, d)
		if stdErr != nil {
			if hasNonASCII(src) && strings.Contains(stdErr.Error(), "name") {
				return // name character tables differ; see hasNonASCII
			}
			t.Fatalf("Parse accepts what encoding/xml rejects: %v", stdErr)
		}
		compareStd(t, d, sd)
	})
}

// fuzzFrag is the element FuzzEdit inserts: two elements.
const fuzzFrag = "<vfo-test a='1'>\n  <vfo-leaf b=\"&amp;\"/>\n</vfo-test>"

// sanitize is what a value reads back as after EscapeAttr or EscapeText.
// Each invalid byte and each character XML does not allow becomes U+FFFD.
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !isChar(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// FuzzEdit runs up to six random edits (three bytes of script each: the
// operation and which element) and checks that the result parses, has the
// elements it should, changed no byte outside the edits, and that setting
// values a second time changes nothing.
func FuzzEdit(f *testing.F) {
	seedFuzz(f, []byte{0, 7, 0}, "ua-sby0")
	f.Add([]byte("<a>\n  <b/>\n</a>"), []byte{2, 1, 0, 3, 0, 0}, "")
	f.Add([]byte("<a><b/></a>"), []byte{3, 1, 0, 3, 1, 0, 5, 1, 0}, "")
	f.Add([]byte("<a>\r\n\t<b x='1'/>\r\n</a>"), []byte{1, 1, 0, 6, 1, 0, 0, 1, 0}, "x<y&'\"\n\t\r")
	f.Add([]byte("<a>\n  <b>text</b>\n</a>"), []byte{4, 1, 0}, "]]>&<")
	f.Fuzz(func(t *testing.T, src, script []byte, val string) {
		d, err := Parse(src)
		if err != nil {
			return
		}
		var elems []*Element
		for e := range d.Elements() {
			elems = append(elems, e)
		}
		tr := NewTransform(d)
		removed := map[*Element]bool{}
		isRemoved := func(e *Element) bool {
			for x := e; x != nil; x = x.Parent {
				if removed[x] {
					return true
				}
			}
			return false
		}
		var inserted []*Element // the parents of inserted fragments
		type setOp struct {
			op   uint8
			path string
			attr string
		}
		var sets []setOp
		structural, texts := false, false
		for k := 0; k+3 <= len(script) && k < 18; k += 3 {
			op := script[k] % 7
			pick := int(script[k+1]) | int(script[k+2])<<8
			e := elems[pick%len(elems)]
			attr := "vfo-new"
			if len(e.Attrs) > 0 {
				if a := e.Attrs[pick/7%len(e.Attrs)]; a.QName == a.Name.Local && a.Name.Space == "" {
					attr = a.QName
				}
			}
			switch op {
			case 0, 1:
				tr.SetAttr(e, attr, val)
				sets = append(sets, setOp{0, e.Path(), attr})
			case 2:
				if e.Parent == nil {
					continue
				}
				tr.Remove(e)
				removed[e] = true
				structural = true
			case 3:
				var after *Element
				if len(e.Children) > 0 && pick%2 == 1 {
					after = e.Children[pick/2%len(e.Children)]
				}
				if err := tr.InsertChild(e, after, fuzzFrag); err != nil {
					t.Fatalf("InsertChild: %v", err)
				}
				inserted = append(inserted, e)
				structural = true
			case 4:
				if len(e.Children) > 0 {
					continue
				}
				tr.SetText(e, val)
				sets = append(sets, setOp{4, e.Path(), ""})
				texts = true
			case 5:
				if e.Parent == nil {
					continue
				}
				if err := tr.InsertBefore(e, fuzzFrag); err != nil {
					t.Fatalf("InsertBefore: %v", err)
				}
				inserted = append(inserted, e.Parent)
				structural = true
			case 6:
				tr.RemoveAttr(e, attr)
				sets = append(sets, setOp{6, e.Path(), attr})
			}
		}
		out, err := tr.Bytes()
		if err != nil {
			if texts && structural && strings.Contains(err.Error(), "overlap") {
				return // SetText replaces all content: inserting into it too conflicts
			}
			t.Fatalf("Bytes: %v", err)
		}
		checkOutside(t, src, out, tr.Edits())
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("the edited document does not parse: %v\n%s", err, out)
		}
		want := 0
		for _, e := range elems {
			if !isRemoved(e) {
				want++
			}
		}
		for _, p := range inserted {
			if !isRemoved(p) {
				want += 2
			}
		}
		if d2.Len() != want {
			t.Fatalf("%d elements after the edits, want %d\n%s", d2.Len(), want, out)
		}
		if structural {
			return // paths may have moved
		}
		// The last operation on each attribute or text decides.
		final := map[setOp]int{}
		for i, s := range sets {
			final[setOp{path: s.path, attr: s.attr}] = i
		}
		tr2 := NewTransform(d2)
		for i, s := range sets {
			e2 := d2.Find(s.path)
			if e2 == nil {
				t.Fatalf("%s is gone", s.path)
			}
			switch s.op {
			case 0:
				tr2.SetAttr(e2, s.attr, val)
			case 4:
				tr2.SetText(e2, val)
			case 6:
				tr2.RemoveAttr(e2, s.attr)
			}
			if final[setOp{path: s.path, attr: s.attr}] != i {
				continue
			}
			switch s.op {
			case 0:
				if got, _ := e2.Attr(s.attr); got != sanitize(val) {
					t.Fatalf("%s/@%s reads %q after SetAttr %q", s.path, s.attr, got, val)
				}
			case 4:
				if got := e2.Text(d2); got != sanitize(val) {
					t.Fatalf("%s reads %q after SetText %q", s.path, got, val)
				}
			case 6:
				if _, ok := e2.Attr(s.attr); ok {
					t.Fatalf("%s/@%s still there after RemoveAttr", s.path, s.attr)
				}
			}
		}
		if tr2.Changed() {
			out2, _ := tr2.Bytes()
			t.Fatalf("a second pass changed the document:\n%s\n---\n%s", out, out2)
		}
	})
}

// checkOutside checks that out is src with the edits made and every other
// byte unchanged.
func checkOutside(t *testing.T, src, out []byte, edits []Edit) {
	t.Helper()
	if err := outsideDiff(src, out, edits); err != nil {
		t.Fatal(err)
	}
}

// outsideDiff walks the edits independently of Apply and reports the
// first byte outside them that differs between src and out.
func outsideDiff(src, out []byte, edits []Edit) error {
	sorted := append([]Edit(nil), edits...)
	for i := 1; i < len(sorted); i++ { // insertion sort: stable, by (Start, End)
		for j := i; j > 0; j-- {
			a, b := sorted[j-1].Span, sorted[j].Span
			if a.Start < b.Start || a.Start == b.Start && a.End <= b.End {
				break
			}
			sorted[j-1], sorted[j] = sorted[j], sorted[j-1]
		}
	}
	var si, oi int // positions in src and out
	for _, e := range sorted {
		keep := e.Span.Start - si
		if keep < 0 || oi+keep > len(out) || !bytes.Equal(src[si:e.Span.Start], out[oi:oi+keep]) {
			return fmt.Errorf("bytes %d-%d before the edit at %v changed", si, e.Span.Start, e.Span)
		}
		oi += keep
		if !bytes.HasPrefix(out[oi:], e.Text) {
			return fmt.Errorf("the text of the edit at %v is not in the output", e.Span)
		}
		oi += len(e.Text)
		si = e.Span.End
	}
	if !bytes.Equal(src[si:], out[oi:]) {
		return fmt.Errorf("bytes after %d changed", si)
	}
	return nil
}
