package xmlxform

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	const src = "0123456789"
	ed := func(start, end int, text string) Edit {
		return Edit{Span: Span{start, end}, Text: []byte(text)}
	}
	tests := []struct {
		name  string
		edits []Edit
		want  string
		err   string
	}{
		{name: "no-edits-copies", want: src},
		{name: "replace", edits: []Edit{ed(2, 4, "ab")}, want: "01ab456789"},
		{name: "delete", edits: []Edit{ed(0, 10, "")}, want: ""},
		{name: "insert-at-start-and-end", edits: []Edit{ed(10, 10, "z"), ed(0, 0, "a")}, want: "a0123456789z"},
		{name: "sorted-by-start", edits: []Edit{ed(8, 9, "X"), ed(1, 2, "Y")}, want: "0Y234567X9"},
		{name: "insertions-at-one-offset-keep-order", edits: []Edit{ed(5, 5, "a"), ed(5, 5, "b"), ed(5, 5, "c")}, want: "01234abc56789"},
		{name: "insertion-before-replacement-at-its-start", edits: []Edit{ed(5, 7, "R"), ed(5, 5, "i")}, want: "01234iR789"},
		{name: "insertion-at-replacement-end", edits: []Edit{ed(7, 7, "i"), ed(5, 7, "R")}, want: "01234Ri789"},
		{name: "adjacent-replacements", edits: []Edit{ed(3, 5, "B"), ed(1, 3, "A")}, want: "0AB56789"},
		{name: "overlap", edits: []Edit{ed(1, 5, "A"), ed(4, 6, "B")}, err: "edits at [1,5) and [4,6) overlap"},
		{name: "insertion-inside-replacement", edits: []Edit{ed(1, 5, "A"), ed(3, 3, "B")}, err: "overlap"},
		{name: "two-replacements-at-one-start", edits: []Edit{ed(1, 2, "A"), ed(1, 3, "B")}, err: "overlap"},
		{name: "past-the-end", edits: []Edit{ed(9, 11, "")}, err: "outside the 10-byte document"},
		{name: "negative", edits: []Edit{ed(-1, 1, "")}, err: "outside"},
		{name: "reversed-span", edits: []Edit{ed(5, 4, "")}, err: "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(src)
			before := append([]Edit(nil), tt.edits...)
			out, err := Apply(in, tt.edits)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Fatalf("got %q, want %q", out, tt.want)
			}
			if len(out) > 0 && &out[0] == &in[0] {
				t.Fatal("output shares the input's array")
			}
			if string(in) != src {
				t.Fatal("input modified")
			}
			for i := range before {
				if before[i].Span != tt.edits[i].Span {
					t.Fatal("edits reordered in place")
				}
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		quote byte // 0: EscapeText
		want  string
	}{
		{"attr-plain-unchanged", "ua-net0", '\'', "ua-net0"},
		{"attr-single-quote", `a&b<c>'d"e`, '\'', `a&amp;b&lt;c>&apos;d"e`},
		{"attr-double-quote", `a&b<c>'d"e`, '"', `a&amp;b&lt;c>'d&quot;e`},
		{"attr-whitespace-as-references", "a\tb\nc\rd", '\'', "a&#9;b&#10;c&#13;d"},
		{"attr-invalid-characters", "a\x00b\xffc\uFFFEd", '\'', "a\uFFFDb\uFFFDc\uFFFDd"},
		{"attr-non-ascii-kept", "été ✓", '"', "été ✓"},
		{"text-plain-unchanged", "/usr/bin/qemu-system-x86_64", 0, "/usr/bin/qemu-system-x86_64"},
		{"text-markup", `a&b<c>]]>'"`, 0, `a&amp;b&lt;c&gt;]]&gt;'"`},
		{"text-line-ends", "a\r\nb\tc", 0, "a&#13;\nb\tc"},
		{"text-invalid-characters", "\x01\xc3", 0, "\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			if tt.quote == 0 {
				got = EscapeText(tt.in)
			} else {
				got = EscapeAttr(tt.in, tt.quote)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEscapeRoundTrip checks that escaped values read back as written.
func TestEscapeRoundTrip(t *testing.T) {
	values := []string{"", "plain", "a&b<c>'d\"e", "line1\nline2\r\n\ttab", "&amp; literally", "été ✓ 𝄞"}
	for _, v := range values {
		for _, q := range []byte{'\'', '"'} {
			src := "<a v=" + string(q) + EscapeAttr(v, q) + string(q) + ">" + EscapeText(v) + "</a>"
			d, err := Parse([]byte(src))
			if err != nil {
				t.Fatalf("%q: %v", src, err)
			}
			if got, _ := d.Root.Attr("v"); got != v {
				t.Errorf("attribute %q reads %q, want %q", src, got, v)
			}
			if got := d.Root.Text(d); got != v {
				t.Errorf("text %q reads %q, want %q", src, got, v)
			}
		}
	}
}

func TestTransform(t *testing.T) {
	const src = "<domain type='kvm'>\n" +
		"  <devices>\n" +
		"    <interface type='hostdev'>\n" +
		"      <teaming type='transient' persistent='ua-net0'/>\n" +
		"    </interface>\n" +
		"  </devices>\n" +
		"</domain>\n"
	teaming := "/domain/devices/interface/teaming"
	tests := []struct {
		name    string
		do      func(t *testing.T, d *Doc, tr *Transform) error
		want    string // the changed line(s), or the whole output when it has several
		changed bool
		err     string
	}{
		{
			name: "set-twice-keeps-the-last",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.SetAttr(d.Find(teaming), "persistent", "one")
				tr.SetAttr(d.Find(teaming), "persistent", "two")
				return nil
			},
			want: "      <teaming type='transient' persistent='two'/>\n", changed: true,
		},
		{
			name: "set-back-to-the-original-is-no-change",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.SetAttr(d.Find(teaming), "persistent", "one")
				tr.SetAttr(d.Find(teaming), "persistent", "ua-net0")
				return nil
			},
			want: "",
		},
		{
			name: "add-twice-keeps-the-last",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.SetAttr(d.Find(teaming), "mode", "a")
				tr.SetAttr(d.Find(teaming), "mode", "b")
				return nil
			},
			want: "      <teaming type='transient' persistent='ua-net0' mode='b'/>\n", changed: true,
		},
		{
			name: "add-then-remove-is-no-change",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.SetAttr(d.Find(teaming), "mode", "a")
				tr.RemoveAttr(d.Find(teaming), "mode")
				return nil
			},
			want: "",
		},
		{
			name: "remove-last-attribute-and-add-another",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.RemoveAttr(d.Find(teaming), "persistent")
				tr.SetAttr(d.Find(teaming), "mode", "a")
				return nil
			},
			want: "      <teaming type='transient' mode='a'/>\n", changed: true,
		},
		{
			name: "set-text-of-self-closing",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.SetText(d.Find(teaming), "x<y")
				return nil
			},
			want: "      <teaming type='transient' persistent='ua-net0'>x&lt;y</teaming>\n", changed: true,
		},
		{
			name: "set-empty-text-of-self-closing-is-no-change",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.SetText(d.Find(teaming), "")
				return nil
			},
			want: "",
		},
		{
			name: "remove-twice-and-remove-inside-removed",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.Remove(d.Find("/domain/devices/interface"))
				tr.Remove(d.Find("/domain/devices/interface"))
				tr.Remove(d.Find(teaming))
				return tr.InsertChild(d.Find("/domain/devices/interface"), nil, "<x/>")
			},
			want: "<domain type='kvm'>\n  <devices>\n  </devices>\n</domain>\n", changed: true,
		},
		{
			name: "remove-after-edits-inside-drops-them",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.SetAttr(d.Find(teaming), "persistent", "x")
				if err := tr.InsertChild(d.Find("/domain/devices/interface"), nil, "<x/>"); err != nil {
					return err
				}
				tr.Remove(d.Find("/domain/devices/interface"))
				return nil
			},
			want: "<domain type='kvm'>\n  <devices>\n  </devices>\n</domain>\n", changed: true,
		},
		{
			name: "replace-an-element-by-insert-and-remove",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.Remove(d.Find(teaming))
				return tr.InsertBefore(d.Find(teaming), "<teaming type='persistent'/>")
			},
			want: "      <teaming type='persistent'/>\n", changed: true,
		},
		{
			name: "bad-attribute-name",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.SetAttr(d.Find(teaming), "bad name", "x")
				return nil
			},
			err: `cannot set attribute "bad name" of /domain/devices/interface/teaming`,
		},
		{
			name: "prefixed-attribute-name",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				tr.SetAttr(d.Find(teaming), "xmlns:q", "urn:q")
				return nil
			},
			err: "not an attribute name without prefix",
		},
		{
			name: "insert-after-a-non-child",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				return tr.InsertChild(d.Root, d.Find(teaming), "<x/>")
			},
			err: "is not a child of /domain",
		},
		{
			name: "insert-before-the-root",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				return tr.InsertBefore(d.Root, "<x/>")
			},
			err: "cannot insert beside the root element",
		},
		{
			name: "fragment-with-text-around",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				return tr.InsertChild(d.Root, nil, "<x/> tail")
			},
			err: "text after the root element",
		},
		{
			name: "fragment-with-a-comment-around",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				return tr.InsertChild(d.Root, nil, "<!-- c --><x/>")
			},
			err: "must be exactly one element",
		},
		{
			name: "fragment-malformed",
			do: func(t *testing.T, d *Doc, tr *Transform) error {
				return tr.InsertChild(d.Root, nil, "<x>")
			},
			err: "invalid fragment: 1:4: unexpected end of input",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			tr := NewTransform(d)
			err = tt.do(t, d, tr)
			if err == nil {
				var out []byte
				out, err = tr.Bytes()
				if err == nil {
					if tr.Changed() != tt.changed || (len(tr.Edits()) > 0) != tt.changed {
						t.Errorf("Changed() = %v with %d edits, want %v", tr.Changed(), len(tr.Edits()), tt.changed)
					}
					if _, err := Parse(out); err != nil {
						t.Fatalf("output does not parse: %v\n%s", err, out)
					}
					got := changedLines(src, string(out))
					if strings.Count(tt.want, "\n") > 1 {
						got = string(out)
					}
					if got != tt.want {
						t.Errorf("got %q, want %q", got, tt.want)
					}
				}
			}
			if tt.err == "" && err != nil {
				t.Fatal(err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error = %v, want %q", err, tt.err)
			}
		})
	}
}

// changedLines returns the lines of out that are not lines of src.
func changedLines(src, out string) string {
	old := map[string]bool{}
	for _, l := range strings.SplitAfter(src, "\n") {
		old[l] = true
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		if !old[l] {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestOutsideEditsUnchanged edits the benchmark domain in several ways and
// checks that every byte outside the edited spans is copied unchanged.
func TestOutsideEditsUnchanged(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(goldenDir, "domain.xml"))
	if err != nil {
		t.Fatal(err)
	}
	const frag = "<interface type='hostdev'>\n  <teaming type='transient' persistent='ua-net0'/>\n</interface>"
	tests := []struct {
		name    string
		do      func(d *Doc, tr *Transform) error
		corrupt bool // flip one byte outside the edits: the check must notice
	}{
		{name: "set-attributes", do: func(d *Doc, tr *Transform) error {
			tr.SetAttr(d.Find("/domain/devices/interface[2]/teaming"), "persistent", "ua-sby0")
			tr.SetAttr(d.Find("/domain/devices/interface[4]/teaming"), "mode", "x&y")
			tr.RemoveAttr(d.Root, "id")
			return nil
		}},
		{name: "remove-and-insert", do: func(d *Doc, tr *Transform) error {
			tr.Remove(d.Find("/domain/devices/interface[5]"))
			tr.Remove(d.Find("/domain/features/vmport"))
			return errors.Join(
				tr.InsertChild(d.Find("/domain/devices"), d.Find("/domain/devices/interface[4]"), frag),
				tr.InsertBefore(d.Find("/domain/devices/emulator"), "<hub type='usb'/>"),
				tr.InsertChild(d.Find("/domain/features/acpi"), nil, "<x/>"),
			)
		}},
		{name: "text-and-namespaced", do: func(d *Doc, tr *Transform) error {
			tr.SetText(d.Find("/domain/description"), "a <b> & c")
			tr.SetAttr(d.Find("/domain/qemu:commandline/qemu:arg[2]"), "value", "x")
			return tr.InsertChild(d.Find("/domain/metadata/vfo:failover"), nil, "<vfo:pair standby='ua-net2'/>")
		}},
		{name: "corrupted-byte-is-caught", corrupt: true, do: func(d *Doc, tr *Transform) error {
			tr.SetAttr(d.Find("/domain/devices/interface[2]/teaming"), "persistent", "ua-sby0")
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			tr := NewTransform(d)
			if err := tt.do(d, tr); err != nil {
				t.Fatal(err)
			}
			out, err := tr.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if !tr.Changed() {
				t.Fatal("nothing changed")
			}
			if tt.corrupt {
				out[len(out)-3] ^= 1 // inside "</domain>"
				if outsideDiff(src, out, tr.Edits()) == nil {
					t.Fatal("a changed byte outside the edits went unnoticed")
				}
				return
			}
			if err := outsideDiff(src, out, tr.Edits()); err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(out); err != nil {
				t.Fatalf("output does not parse: %v", err)
			}
		})
	}
}
