// Package mdpage makes a man page from a Markdown document with go-md2man. It is apart from
// package manpage so that the program, which builds its command pages' inputs, never links the
// Markdown parser: its package initialisation alone costs a hook call a quarter of a millisecond.
package mdpage

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"

	"github.com/virt-failover/virt-failover/internal/manpage"
)

// FromMarkdown turns a Markdown document into a man page. The document's first heading (its
// title) gives way to the page's header, a NAME section with summary and a DESCRIPTION section
// with what follows up to the first "##" heading; "##" headings become sections and deeper ones
// subsections. Links to other documents of the project (relative links) keep their text only: a
// man page has no place to point them. Tables become lists (see tablesToLists).
func FromMarkdown(name string, section int, summary string, doc []byte, m manpage.Meta) (manpage.Page, error) {
	title, body, ok := bytes.Cut(doc, []byte("\n"))
	if !ok || !bytes.HasPrefix(title, []byte("# ")) {
		return manpage.Page{}, fmt.Errorf("%s(%d): the document does not start with a '# ' title", name, section)
	}
	body = tablesToLists(relativeLink.ReplaceAll(body, []byte("$1")))
	var md bytes.Buffer
	fmt.Fprintf(&md, "# %s %d %q %q %q\n\n# NAME\n\n%s - %s\n\n# DESCRIPTION\n", name, section, m.Date, m.Source, m.Manual, name, summary)
	md.Write(body)
	return manpage.Page{Name: name, Section: section, Roff: md2man.Render(md.Bytes())}, nil
}

// relativeLink is a Markdown link to a path, [text](file.md#anchor), not to a URL.
var relativeLink = regexp.MustCompile(`\[([^\]]+)\]\([^):/]+\)`)

// tablesToLists rewrites each table as a definition list: a row's first cell is the term, its
// other cells, each after its column's heading, the definition. A man page is read at 80
// columns, where a table of keys with a column of sentences does not fit (groff warns "table
// wider than line width" and cuts it), while a list of keys reads as every man page's OPTIONS do.
func tablesToLists(doc []byte) []byte {
	lines := strings.Split(string(doc), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "|") || i+1 >= len(lines) || !tableRule.MatchString(lines[i+1]) {
			out = append(out, lines[i])
			continue
		}
		head := cells(lines[i])
		i += 2
		for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
			row := cells(lines[i])
			if len(row) == 0 {
				continue
			}
			var def []string
			for j := 1; j < len(row) && j < len(head); j++ {
				def = append(def, head[j]+": "+row[j])
			}
			out = append(out, row[0], ": "+strings.Join(def, "; "), "")
		}
		i-- // the line after the table is read again by the loop
	}
	return []byte(strings.Join(out, "\n"))
}

// tableRule is the line under a table's heading: |---|:---:|.
var tableRule = regexp.MustCompile(`^\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*$`)

// cells splits a table row at the bars outside code spans.
func cells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(strings.TrimSuffix(row, "|"), "|")
	var out []string
	var cur strings.Builder
	code := false
	for i := 0; i < len(row); i++ {
		switch c := row[i]; {
		case c == '`':
			code = !code
			cur.WriteByte(c)
		case c == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case c == '|' && !code:
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, strings.TrimSpace(cur.String()))
}
