package policy

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The comments drain writes on the lines it adds to a policy file or changes in it, so that
// uncordon undoes exactly what drain did and an operator reading the file knows who did it.
const (
	cordonAdded = `# added by "virt-failover drain"; "virt-failover uncordon" removes it`
	cordonSet   = `# set by "virt-failover drain"; "virt-failover uncordon" sets it back to true`
)

// CordonEdit is a policy file after Cordon or Uncordon: its new contents, validated, and what
// changed.
type CordonEdit struct {
	Data    []byte
	Changed bool
	// Did says what changed, or why nothing had to: `set [host] accept_incoming = false (it was
	// true)`.
	Did string
}

// Cordon makes a policy file refuse incoming migrations ([host] accept_incoming = false) and
// changes nothing else in it: comments, order and spacing stay byte for byte. A key set to true
// becomes false (with a comment saying so, when its line has none); a missing key is added
// under [host] (the table too, at the end, when the file has none), marked as drain's. The result
// is validated as the hook would read it. name is the file's name in messages.
func Cordon(name string, data []byte) (*CordonEdit, error) {
	f, err := scanHostKey(name, data)
	if err != nil {
		return nil, err
	}
	var edits []textEdit
	var did string
	nl := newline(data)
	switch {
	case f.key != nil && f.key.value == "false":
		return &CordonEdit{Data: data, Did: "[host] accept_incoming = false already: incoming migrations are refused"}, nil
	case f.key != nil:
		text := "false"
		if f.key.comment == "" {
			text += " " + cordonSet
		}
		edits = append(edits, textEdit{f.key.valStart, f.key.valEnd, text})
		did = "set [host] accept_incoming = false (it was true)"
	case f.inline:
		return nil, fmt.Errorf("%s: [host] is an inline table (host = {...}): add accept_incoming = false to it by hand", name)
	case f.header != nil:
		edits = append(edits, textEdit{f.header.lineEnd, f.header.lineEnd, lineBreakAt(data, f.header.lineEnd, nl) + "accept_incoming = false " + cordonAdded + nl})
		did = "added accept_incoming = false to [host]"
	case f.dottedEnd > 0:
		edits = append(edits, textEdit{f.dottedEnd, f.dottedEnd, lineBreakAt(data, f.dottedEnd, nl) + "host.accept_incoming = false " + cordonAdded + nl})
		did = "added host.accept_incoming = false"
	default:
		text := lineBreakAt(data, len(data), nl)
		if len(data) > 0 {
			text += nl
		}
		text += "[host] " + cordonAdded + nl + "accept_incoming = false " + cordonAdded + nl
		edits = append(edits, textEdit{len(data), len(data), text})
		did = "added [host] with accept_incoming = false"
	}
	return finishCordon(name, data, edits, did, false)
}

// Uncordon makes a policy file accept incoming migrations again, undoing Cordon: a line drain
// added goes (with the [host] table drain added, when nothing else is in it), a value drain set is
// true again with drain's comment gone, and any other accept_incoming = false becomes true.
// Everything else stays byte for byte; a file that accepts them already is left as it is.
func Uncordon(name string, data []byte) (*CordonEdit, error) {
	f, err := scanHostKey(name, data)
	if err != nil {
		return nil, err
	}
	k := f.key
	var edits []textEdit
	var did string
	switch {
	case k == nil:
		return &CordonEdit{Data: data, Did: "no [host] accept_incoming: incoming migrations are accepted"}, nil
	case k.comment == cordonAdded:
		edits = append(edits, textEdit{k.lineStart, k.lineEnd, ""})
		did = "removed the accept_incoming = false that drain added"
		if h := f.header; h != nil && h.comment == cordonAdded && f.hostKeys == 1 {
			start := h.lineStart
			if start >= 2 && data[start-1] == '\n' && (data[start-2] == '\n' || start >= 3 && data[start-2] == '\r' && data[start-3] == '\n') {
				start-- // the blank line drain put before the table
				if data[start-1] == '\r' {
					start--
				}
			}
			edits = append(edits, textEdit{start, h.lineEnd, ""})
			did = "removed the [host] table that drain added"
		}
	case k.comment == cordonSet:
		edits = append(edits, textEdit{k.valStart, k.commentEnd, "true"})
		did = "set [host] accept_incoming = true again (drain had set it to false)"
	case k.value == "false":
		edits = append(edits, textEdit{k.valStart, k.valEnd, "true"})
		did = "set [host] accept_incoming = true (it was false)"
	default:
		return &CordonEdit{Data: data, Did: "[host] accept_incoming = true already: incoming migrations are accepted"}, nil
	}
	return finishCordon(name, data, edits, did, true)
}

// finishCordon applies the edits and validates the result: it must parse, and accept (or refuse)
// incoming migrations as wanted.
func finishCordon(name string, data []byte, edits []textEdit, did string, accept bool) (*CordonEdit, error) {
	slices.SortFunc(edits, func(a, b textEdit) int { return b.start - a.start })
	out := slices.Clone(data)
	for _, e := range edits {
		out = slices.Concat(out[:e.start], []byte(e.text), out[e.end:])
	}
	p, err := Parse(name, out)
	if err != nil {
		return nil, fmt.Errorf("the edited policy would not be valid (nothing was written): %w", err)
	}
	if p.Host.AcceptIncoming != accept {
		return nil, fmt.Errorf("%s: the edited policy still has accept_incoming = %t (nothing was written)", name, p.Host.AcceptIncoming)
	}
	return &CordonEdit{Data: out, Changed: true, Did: did}, nil
}

type textEdit struct {
	start, end int
	text       string
}

// hostKeyScan is where a policy file sets [host] accept_incoming, and where it could.
type hostKeyScan struct {
	key       *keyLine // the accept_incoming line, if any
	header    *keyLine // the [host] header line, if any (value and valStart unused)
	hostKeys  int      // key-values under the [host] header
	dottedEnd int      // the end of the last top-level host.KEY line (0: none)
	inline    bool     // host = {...}
}

// keyLine is a line of the file: where it starts and ends (after its line break), and for a
// key-value its value and comment.
type keyLine struct {
	lineStart, lineEnd int
	value              string
	valStart, valEnd   int
	comment            string // the line's comment after the value (or header), "" if none
	commentEnd         int
}

// scanHostKey checks a policy file as the hook reads it, then finds where it sets [host]
// accept_incoming and where it could.
func scanHostKey(name string, data []byte) (*hostKeyScan, error) {
	if _, err := Parse(name, data); err != nil {
		return nil, err
	}
	f := &hostKeyScan{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyParts(e.Key())
			if e.Kind == unstable.ArrayTable {
				table = append(table, elemMark)
			}
			if slices.Equal(table, []string{"host"}) {
				first := e.Key()
				first.Next()
				k := first.Node()
				end := int(k.Raw.Offset + k.Raw.Length)
				closing := end + bytes.IndexByte(data[end:], ']') + 1
				l := lineAround(data, int(k.Raw.Offset), closing)
				f.header = &l
			}
		case unstable.KeyValue:
			parts := append(slices.Clone(table), keyParts(e.Key())...)
			if len(parts) == 0 || parts[0] != "host" {
				continue
			}
			first := e.Key()
			first.Next()
			v := e.Value()
			switch {
			case len(table) == 0 && len(parts) == 1:
				f.inline = true
				continue
			case len(table) == 0:
				f.dottedEnd = lineAround(data, int(first.Node().Raw.Offset), int(v.Raw.Offset+v.Raw.Length)).lineEnd
			case slices.Equal(table, []string{"host"}):
				f.hostKeys++
			}
			if !slices.Equal(parts, []string{"host", "accept_incoming"}) {
				continue
			}
			if v.Kind != unstable.Bool {
				return nil, fmt.Errorf("%s: [host] accept_incoming is not true or false", name)
			}
			l := lineAround(data, int(first.Node().Raw.Offset), int(v.Raw.Offset+v.Raw.Length))
			l.value = string(v.Data)
			l.valStart, l.valEnd = int(v.Raw.Offset), int(v.Raw.Offset+v.Raw.Length)
			f.key = &l
		}
	}
	if err := p.Error(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// lineAround is the line that holds [start, end), and the comment after end on it.
func lineAround(data []byte, start, end int) keyLine {
	l := keyLine{lineStart: bytes.LastIndexByte(data[:start], '\n') + 1, lineEnd: len(data)}
	if i := bytes.IndexByte(data[end:], '\n'); i >= 0 {
		l.lineEnd = end + i + 1
	}
	rest := data[end:l.lineEnd]
	trimmed := bytes.TrimLeft(rest, " \t")
	if len(trimmed) > 0 && trimmed[0] == '#' {
		c := bytes.TrimRight(trimmed, " \t\r\n")
		l.comment = string(c)
		l.commentEnd = end + (len(rest) - len(trimmed)) + len(c)
	}
	return l
}

// newline is the file's line break: CRLF if it uses them, else LF.
func newline(data []byte) string {
	if bytes.Contains(data, []byte("\r\n")) {
		return "\r\n"
	}
	return "\n"
}

// lineBreakAt is the line break to put before text inserted at off: one when off ends a last
// line that has none.
func lineBreakAt(data []byte, off int, nl string) string {
	if off > 0 && off == len(data) && data[off-1] != '\n' {
		return nl
	}
	return ""
}
