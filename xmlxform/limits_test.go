package xmlxform

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// maxInput is the hook's input cap (hooks.DefaultMaxInput), the largest
// document the hook parses.
const maxInput = 64 << 20

// atTheLimits is a document of n bytes with MaxElements elements and
// MaxAttrs attributes whose values Parse must decode (tabs), taking the most
// memory a document within the limits can.
func atTheLimits(n int) []byte {
	const per = MaxAttrs / (MaxElements - 1)
	overhead := len("<domain>") + len("</domain>") + (MaxElements-1)*(len("<a/>")+per*len(" b0=''"))
	size := max(0, n-overhead) / (MaxElements - 1) / per
	val := strings.Repeat("lorem\tipsum ", size/12+1)[:size]
	var b bytes.Buffer
	b.Grow(n)
	b.WriteString("<domain>")
	for range MaxElements - 1 {
		b.WriteString("<a")
		for j := range per {
			fmt.Fprintf(&b, " b%d='%s'", j, val)
		}
		b.WriteString("/>")
	}
	b.WriteString("</domain>")
	return b.Bytes()
}

// TestParseHostileUnderLimits parses each shape at 4 MiB and at the hook's
// input cap in a child process limited as a hook can be: 1 GiB of address
// space (of which the Go runtime reserves some 700 MB for itself at start)
// and 20 s of CPU (Parse takes about one). Each must parse, or be refused with
// ErrLimit or a syntax error, and not die. Before Parse bounded its memory
// and time, at 64 MiB most died of "fatal error: out of memory" (which
// nothing can recover from), and at 4 MiB many attributes on one element ran
// out of CPU time.
func TestParseHostileUnderLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("parses 64 MiB documents in child processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "parsecheck")
	// Built apart from this test binary, which may be built with -race
	// (the race detector's shadow memory does not fit in 1 GiB).
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/parsecheck").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The outcome at 4 MiB and at 64 MiB.
	want := map[string][2]string{
		"libvirt-domain":                {"ok", "limit"},
		"attrs-on-one-element":          {"limit", "limit"},
		"prefixed-attrs-on-one-element": {"limit", "limit"},
		"namespace-declarations":        {"limit", "limit"},
		"namespace-scopes":              {"limit", "limit"},
		"elements":                      {"limit", "limit"},
		"deep-nesting":                  {"limit", "limit"},
		"long-text":                     {"ok", "ok"},
		"newlines":                      {"ok", "ok"},
		"long-attribute-value":          {"ok", "ok"},
		"lt-in-text":                    {"ok", "ok"},
		"lt-in-cdata":                   {"ok", "ok"},
		"lt-in-comments":                {"ok", "ok"},
		"lt-only":                       {"syntax", "syntax"},
		"at-the-limits":                 {"ok", "ok"},
	}
	cases := append(shapes[:len(shapes):len(shapes)], shape{name: "at-the-limits", make: atTheLimits})
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			env = append(env, kv)
		}
	}
	line := regexp.MustCompile(`^outcome=(\w+) size=(\d+) `)
	for k, size := range []int{4 << 20, maxInput} {
		for _, sh := range cases {
			t.Run(fmt.Sprintf("%s/%dMiB", sh.name, size>>20), func(t *testing.T) {
				file := filepath.Join(dir, "in.xml")
				src := sh.make(size)
				if len(src) > size || len(src) < size-1<<20 {
					t.Fatalf("the shape made %d bytes", len(src))
				}
				if err := os.WriteFile(file, src, 0o600); err != nil {
					t.Fatal(err)
				}
				in, err := os.Open(file)
				if err != nil {
					t.Fatal(err)
				}
				defer in.Close()
				// dash's ulimit takes one limit at a time.
				cmd := exec.Command("sh", "-c", `ulimit -v 1048576 && ulimit -t 20 && exec "$0"`, bin)
				cmd.Stdin = in
				cmd.Env = env
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					msg := stderr.String()
					if i := strings.Index(msg, "\ngoroutine "); i >= 0 {
						msg = msg[:i]
					}
					t.Fatalf("parsecheck: %v\n%s", err, msg)
				}
				t.Logf("%s", bytes.TrimSpace(out))
				m := line.FindSubmatch(out)
				if m == nil {
					t.Fatalf("parsecheck printed %q", out)
				}
				if w := want[sh.name][k]; string(m[1]) != w {
					t.Errorf("outcome %s, want %s", m[1], w)
				}
				if string(m[2]) != fmt.Sprint(len(src)) {
					t.Errorf("parsecheck read %s bytes of %d", m[2], len(src))
				}
			})
		}
	}
}

func TestParseLimits(t *testing.T) {
	elements := func(n int) string { return "<r>" + strings.Repeat("<a/>", n-1) + "</r>" }
	attrs := func(n int) string {
		var b strings.Builder
		b.WriteString("<r>")
		for i := 0; i < n; i += 100 {
			b.WriteString("<a")
			for j := i; j < min(n, i+100); j++ {
				fmt.Fprintf(&b, " a%d=''", j-i)
			}
			b.WriteString("/>")
		}
		b.WriteString("</r>")
		return b.String()
	}
	tests := []struct {
		name string
		src  string
		msg  string // "" when within the limits
		col  int
	}{
		{"elements-at-the-limit", elements(MaxElements), "", 0},
		{"elements-past-the-limit", elements(MaxElements + 1), "more than 100000 elements", 4 + 4*(MaxElements-1)},
		{"attributes-at-the-limit", attrs(MaxAttrs), "", 0},
		{"attributes-past-the-limit", attrs(MaxAttrs + 1), "more than 250000 attributes", len(attrs(MaxAttrs)) - len("</r>") + len("<a ") + 1},
		{"depth-past-the-limit", strings.Repeat("<a>", MaxDepth+1), "elements nest deeper than 1000 levels", 3*MaxDepth + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.src))
			if tt.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				if d.Len() == 0 {
					t.Fatal("no elements")
				}
				return
			}
			var se *SyntaxError
			if !errors.Is(err, ErrLimit) || !errors.As(err, &se) {
				t.Fatalf("error %v does not wrap ErrLimit in a *SyntaxError", err)
			}
			if se.Msg != tt.msg || se.Line != 1 || se.Col != tt.col {
				t.Errorf("error %v, want 1:%d: %s", err, tt.col, tt.msg)
			}
		})
	}
	if _, err := Parse([]byte("<a></b>")); errors.Is(err, ErrLimit) {
		t.Errorf("a syntax error %v wraps ErrLimit", err)
	}
}

// attrList writes n empty attributes named prefix+"a0", prefix+"a1", ...
func attrList(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " %sa%d=''", prefix, i)
	}
	return b.String()
}

// TestParseManyAttributes covers elements with more attributes than a
// linear search looks through, where maps find the duplicates.
func TestParseManyAttributes(t *testing.T) {
	decls := " xmlns:p='urn:x' xmlns:q='urn:x'"
	tests := []struct {
		name string
		src  string
		msg  string // "" when well-formed
	}{
		{"forty-distinct", "<e" + attrList("", 40) + "/>", ""},
		{"duplicate-after-many", "<e" + attrList("", 40) + " a3=''/>", "duplicate attribute a3"},
		{"duplicate-as-the-first-mapped", "<e" + attrList("", manyLinear) + " a0=''/>", "duplicate attribute a0"},
		{"duplicate-of-the-last-linear", "<e" + attrList("", manyLinear) + " a15=''/>", "duplicate attribute a15"},
		{"next-element-starts-afresh", "<r><e" + attrList("", 100) + "/><f" + attrList("", 20) + "/></r>", ""},
		{"prefixed-forty-distinct", "<e" + decls + attrList("p:", 40) + "/>", ""},
		{"prefixed-duplicate-after-many", "<e" + decls + attrList("p:", 40) + " p:a7=''/>", "duplicate attribute p:a7"},
		{"prefixed-duplicate-among-unprefixed", "<e" + decls + " p:b=''" + attrList("", 40) + " p:b=''/>", "duplicate attribute p:b"},
		{"declaration-duplicate-after-many", "<e" + decls + attrList("", 40) + " xmlns:p='urn:y'/>", "duplicate attribute xmlns:p"},
		{"prefixed-same-expanded-name", "<e" + decls + attrList("p:", 40) + " q:a5=''/>", "attributes p:a5 and q:a5 have the same namespace and name"},
		{"prefixed-same-local-other-namespace", "<e" + decls + " xmlns:o='urn:o'" + attrList("p:", 40) + " o:a5=''/>", ""},
		{"prefixed-undeclared-after-many", "<e" + decls + attrList("p:", 40) + " u:a=''/>", "namespace prefix u is not declared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.src))
			if tt.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				checkInvariants(t, d)
				sd, err := parseStd([]byte(tt.src))
				if err != nil {
					t.Fatalf("encoding/xml: %v", err)
				}
				compareStd(t, d, sd)
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) || !strings.HasPrefix(se.Msg, tt.msg) {
				t.Fatalf("error %v, want %q", err, tt.msg)
			}
			if want := strings.LastIndexByte(tt.src, ' ') + 2; se.Col != want {
				t.Errorf("error at column %d, want %d (the last attribute)", se.Col, want)
			}
		})
	}
}

// declarations writes n namespace declarations " xmlns:p0='urn:0' ...".
func declarations(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " xmlns:p%d='urn:%d'", i, i)
	}
	return b.String()
}

// TestParseManyNamespaces covers more bindings in scope than a linear search
// looks through: shadowing, and what an end tag takes out of scope.
func TestParseManyNamespaces(t *testing.T) {
	root := "<r xmlns='urn:default'" + declarations(2*manyLinear) + ">"
	inner := "<a xmlns:p5='urn:five' xmlns='' xmlns:new='urn:new'><p5:x/><new:y/><z/><p0:w p5:v=''/></a>"
	valid := root + inner + "<p5:b/><c/>" + inner + "</r>"
	d, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, d)
	sd, err := parseStd([]byte(valid))
	if err != nil {
		t.Fatalf("encoding/xml: %v", err)
	}
	compareStd(t, d, sd)
	want := map[string]string{"r": "urn:default", "a": "", "p5:x": "urn:five", "new:y": "urn:new", "z": "", "p0:w": "urn:0", "p5:b": "urn:5", "c": "urn:default"}
	for e := range d.Elements() {
		if e.Name.Space != want[e.QName] {
			t.Errorf("%s: <%s> in namespace %q, want %q", d.Pos(e.Start.Start), e.QName, e.Name.Space, want[e.QName])
		}
	}
	if a := d.Find("/r/a/p0:w").Attrs[0]; a.Name.Space != "urn:five" {
		t.Errorf("p5:v in namespace %q, want urn:five", a.Name.Space)
	}
	_, err = Parse([]byte(root + inner + "<new:d/></r>"))
	if err == nil || !strings.Contains(err.Error(), "namespace prefix new is not declared") {
		t.Errorf("a prefix out of scope: error %v", err)
	}
}

// TestInsertInManyNamespaces checks a fragment against the scope of its
// parent when that scope has many bindings.
func TestInsertInManyNamespaces(t *testing.T) {
	d, err := Parse([]byte("<r" + declarations(2*manyLinear) + ">\n  <a xmlns:p3='urn:three'/>\n</r>\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := d.Find("/r/a")
	if err := NewTransform(d).InsertChild(a, nil, "<p3:x p31:y=''/>"); err != nil {
		t.Errorf("a fragment with prefixes in scope: %v", err)
	}
	if err := NewTransform(d).InsertChild(a, nil, "<p32:x/>"); err == nil || !strings.Contains(err.Error(), "prefix p32 is not declared") {
		t.Errorf("a fragment with a prefix out of scope: error %v", err)
	}
}

// TestPosAcrossLineMarks compares Pos with counting lines from the start, at
// every offset of documents whose lines and multi-byte characters straddle
// the line marks.
func TestPosAcrossLineMarks(t *testing.T) {
	docs := map[string]string{
		"one-long-line":          "<a>" + strings.Repeat("x", 3*lineBlock) + "</a>",
		"newline-at-each-mark":   "<a>" + strings.Repeat(strings.Repeat("y", lineBlock-1)+"\n", 4) + "</a>",
		"newline-before-a-mark":  "<a>" + strings.Repeat(strings.Repeat("y", lineBlock-2)+"\n", 4) + "</a>",
		"crlf-and-blank-lines":   "<a>\r\n" + strings.Repeat("z\r\n\n", lineBlock) + "</a>",
		"runes-straddling-marks": "<a>" + strings.Repeat("é€😀\n", lineBlock/2) + "</a>",
		"only-newlines":          "<a>" + strings.Repeat("\n", 2*lineBlock) + "</a>",
		"exactly-one-block":      "<a>" + strings.Repeat("w", lineBlock-7) + "</a>",
	}
	for name, src := range docs {
		t.Run(name, func(t *testing.T) {
			d, err := Parse([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			line, start := 1, 0
			for off := 0; off <= len(src); off++ {
				if got, want := d.Pos(off), (Pos{line, off - start + 1}); got != want {
					t.Fatalf("Pos(%d) = %v, want %v", off, got, want)
				}
				if got := d.lineStart(off); got != start {
					t.Fatalf("lineStart(%d) = %d, want %d", off, got, start)
				}
				if off < len(src) && src[off] == '\n' {
					line, start = line+1, off+1
				}
			}
		})
	}
}
