package mdpage

import (
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/internal/manpage"
)

const doc = "# The file\n\n" +
	"Intro, see [other.md](other.md#part) and [a site](https://example.org).\n\n" +
	"## Keys\n\n" +
	"| Key | Type | Meaning |\n" +
	"|---|:---:|---|\n" +
	"| `a` | string | The `a|b` key. |\n" +
	"| `b` | bool | Yes. |\n\n" +
	"After.\n\n" +
	"### Deeper\n\nText.\n"

func TestFromMarkdown(t *testing.T) {
	p, err := FromMarkdown("tool-file", 5, "the tool's file", []byte(doc), manpage.Meta{Date: "2026-12-04", Source: "tool 1.0", Manual: "tool manual"})
	if err != nil {
		t.Fatal(err)
	}
	if p.File() != "tool-file.5" {
		t.Errorf("file %s", p.File())
	}
	page := string(p.Roff)
	for _, want := range []string{
		`.TH tool-file 5 "2026-12-04" "tool 1.0" "tool manual"`,
		"\n.SH NAME\ntool-file \\- the tool's file\n",
		"\n.SH DESCRIPTION\nIntro, see other.md and a site\n\\[la]https://example.org\\[ra]\\&.\n",
		"\n.SH Keys\n",
		// A table row is a list entry: the first cell, then the others under their headings.
		"\n.TP\n\\fBa\\fR\nType: string; Meaning: The \\fBa|b\\fR key.\n",
		"\n.TP\n\\fBb\\fR\nType: bool; Meaning: Yes.\n",
		"\n.PP\nAfter.\n",
		"\n.SS Deeper\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	for _, bad := range []string{"other.md#part", "The file", ".TS"} {
		if strings.Contains(page, bad) {
			t.Errorf("page has %q:\n%s", bad, page)
		}
	}
}

func TestFromMarkdownNeedsATitle(t *testing.T) {
	if _, err := FromMarkdown("x", 5, "x", []byte("No title\n\ntext\n"), manpage.Meta{}); err == nil {
		t.Error("a document without a title made a page")
	}
}
