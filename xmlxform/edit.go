package xmlxform

import (
	"fmt"
	"slices"
)

// Edit replaces Src[Span.Start:Span.End] with Text. An empty span inserts
// Text at Span.Start.
type Edit struct {
	Span Span
	Text []byte
}

// Apply returns src with the edits made. Edits are ordered by Start (then
// by End, so an insertion at an offset comes before a replacement that
// starts there); insertions at one offset keep their given order. Spans that
// overlap, or lie outside src, are an error. With no edits Apply returns a
// copy of src.
func Apply(src []byte, edits []Edit) ([]byte, error) {
	sorted := slices.Clone(edits)
	slices.SortStableFunc(sorted, func(a, b Edit) int {
		if a.Span.Start != b.Span.Start {
			return a.Span.Start - b.Span.Start
		}
		return a.Span.End - b.Span.End
	})
	size := len(src)
	prev := 0
	for i, e := range sorted {
		if e.Span.Start < 0 || e.Span.End < e.Span.Start || e.Span.End > len(src) {
			return nil, fmt.Errorf("xmlxform: edit at [%d,%d) is outside the %d-byte document", e.Span.Start, e.Span.End, len(src))
		}
		if e.Span.Start < prev {
			p := sorted[i-1].Span
			return nil, fmt.Errorf("xmlxform: edits at [%d,%d) and [%d,%d) overlap", p.Start, p.End, e.Span.Start, e.Span.End)
		}
		prev = e.Span.End
		size += len(e.Text) - e.Span.Len()
	}
	out := make([]byte, 0, size)
	pos := 0
	for _, e := range sorted {
		out = append(out, src[pos:e.Span.Start]...)
		out = append(out, e.Text...)
		pos = e.Span.End
	}
	return append(out, src[pos:]...), nil
}
