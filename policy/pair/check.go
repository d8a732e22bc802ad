package pair

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/virt-failover/virt-failover/policy/lint"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// checkOutput lints what the plan writes, under the plan's policy, and refuses the plan when the
// linter finds an error: pair never writes a definition its own linter rejects. The refusal is
// placed in the input (an error inside an inserted element at the place of the insertion) and
// says whether the input has the error already.
func (p *planner) checkOutput() error {
	if !p.t.Changed() {
		return nil
	}
	out, err := p.t.Bytes()
	if err != nil {
		return err
	}
	l, err := lint.New(lint.Config{Policy: p.pol})
	if err != nil {
		return err
	}
	found, err := l.Check("", out)
	if err != nil {
		return err
	}
	var errs []lint.Finding
	for _, f := range found {
		if f.Severity >= lint.Error {
			errs = append(errs, f)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	f := errs[0]
	at := inputOffset(p.t.Edits(), lineColOffset(out, f.Line, f.Col))
	more := ""
	if len(errs) > 1 {
		more = fmt.Sprintf(" (and %d more errors; \"virt-failover lint\" on the output shows them all)", len(errs)-1)
	}
	hint := f.Hint
	if hint == "" {
		hint = "\"virt-failover lint --explain " + f.Rule + "\" tells the rule"
	}
	if before, _ := l.CheckDoc("", p.doc); slices.ContainsFunc(before, func(g lint.Finding) bool {
		return g.Rule == f.Rule && g.Severity >= lint.Error && g.Line == p.doc.Pos(at).Line
	}) {
		return &Error{Pos: p.doc.Pos(at), Hint: hint + "; then pair again",
			Msg: fmt.Sprintf("the definition has an error pairing does not fix, and pair writes nothing virt-failover lint rejects: %s %s: %s%s", f.Rule, f.Name, f.Message, more)}
	}
	return &Error{Pos: p.doc.Pos(at), Hint: hint,
		Msg: fmt.Sprintf("pairing would write what virt-failover lint rejects, so it writes nothing: %s %s: %s%s", f.Rule, f.Name, f.Message, more)}
}

// lineColOffset returns the byte offset of a 1-based line and byte column in src (0 for line 0).
func lineColOffset(src []byte, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return len(src)
		}
		off += i + 1
	}
	if col > 0 {
		off += col - 1
	}
	return min(off, len(src))
}

// inputOffset maps an offset in the output of edits back to the input: a byte the edits kept maps
// to itself, one an edit wrote to the start of what that edit replaced.
func inputOffset(edits []xmlxform.Edit, out int) int {
	sorted := slices.Clone(edits)
	slices.SortStableFunc(sorted, func(a, b xmlxform.Edit) int { return a.Span.Start - b.Span.Start })
	in, o := 0, 0 // the input offset and the output offset where the kept bytes start
	for _, e := range sorted {
		kept := e.Span.Start - in
		if out < o+kept {
			return in + (out - o)
		}
		o += kept
		if out < o+len(e.Text) {
			return e.Span.Start
		}
		o += len(e.Text)
		in = e.Span.End
	}
	return in + (out - o)
}
