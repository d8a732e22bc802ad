package manpage

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

var meta = Meta{Date: "2026-12-04", Source: "tool 1.0", Manual: "tool manual"}

func tree() *cli.Command {
	return &cli.Command{
		Name:    "tool",
		Usage:   "do things",
		Version: "1.0",
		Description: "Tool does things.\n\n" +
			"Exit status: 0 done, 1 not done,\n2 usage errors.",
		Commands: []*cli.Command{
			{
				Name:      "run",
				Aliases:   []string{"r"},
				Usage:     "run a thing",
				ArgsUsage: "THING...",
				Description: ".dot at the start, a back\\slash and -dashes.\n" +
					"Run it as:\n" +
					"  tool run --fast x\n" +
					"  tool run y\n" +
					"and it runs.",
				Flags: []cli.Flag{
					&cli.BoolFlag{Name: "fast", Aliases: []string{"f"}, Usage: "run fast"},
					&cli.StringFlag{Name: "out", Usage: "write to `FILE`", Value: "-"},
					&cli.StringSliceFlag{Name: "tag", Usage: "a tag (repeatable)"},
					&cli.BoolFlag{Name: "secret", Hidden: true},
				},
			},
			{
				Name:  "group",
				Usage: "group things",
				Commands: []*cli.Command{
					{Name: "leaf", Usage: "a leaf", Description: "Exit status: 0 always."},
					{Name: "help", Usage: "the group's help"},
				},
			},
			{Name: "worker", Hidden: true, Usage: "internal"},
		},
	}
}

func pages(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range Commands(tree(), Options{Meta: meta, SeeAlso: []string{"tool-file(5)"}, Files: [][2]string{{"/etc/tool.conf", "the configuration"}}}) {
		if p.File() != p.Name+".1" || p.Ref() != p.Name+"(1)" {
			t.Errorf("%s: file %s, ref %s", p.Name, p.File(), p.Ref())
		}
		out[p.Name] = string(p.Roff)
	}
	return out
}

// One page per visible command at any depth, named after its words; none for hidden commands
// or help.
func TestCommandsPageNames(t *testing.T) {
	got := pages(t)
	for _, name := range []string{"tool", "tool-run", "tool-group", "tool-group-leaf"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no page %s", name)
		}
	}
	if len(got) != 4 {
		var names []string
		for n := range got {
			names = append(names, n)
		}
		t.Errorf("pages %v, want 4", names)
	}
}

func TestCommandPageContents(t *testing.T) {
	p := pages(t)
	for _, tc := range []struct{ page, want string }{
		{"tool", ".TH \"TOOL\" 1 \"2026\\-12\\-04\" \"tool 1.0\" \"tool manual\"\n"},
		{"tool", "\n.SH \"NAME\"\ntool \\- do things\n"},
		{"tool", "\n.SH \"SYNOPSIS\"\n\\fBtool\\fR [\\fIoptions\\fR] \\fIcommand\\fR [\\fIcommand options\\fR]\n"},
		{"tool", "\n.SH \"DESCRIPTION\"\n.PP\nTool does things.\n.SH"},
		{"tool", "\n.SH \"EXIT STATUS\"\n.PP\n0 done, 1 not done,\n2 usage errors.\n"},
		{"tool", "\n.TP\n\\fBrun, r\\fR\nRun a thing. See \\fBtool\\-run\\fR(1).\n"},
		{"tool", "\n.TP\n\\fB\\-\\-version\\fR, \\fB\\-v\\fR\nprint the version\n"},
		{"tool", "\n.SH \"FILES\"\n.TP\n\\fI/etc/tool.conf\\fR\nthe configuration\n"},
		{"tool", "\n.SH \"SEE ALSO\"\n\\fBtool\\-run\\fR(1), \\fBtool\\-group\\fR(1), \\fBtool\\-file\\fR(5)\n"},
		// Text is escaped: a leading dot, backslashes, minus signs.
		{"tool-run", "\n.PP\n\\&.dot at the start, a back\\eslash and \\-dashes.\nRun it as:\n.RS 4\n.nf\ntool run \\-\\-fast x\ntool run y\n.fi\n.RE\nand it runs.\n"},
		{"tool-run", "\\fBtool run\\fR [\\fIoptions\\fR] THING...\n"},
		{"tool-run", "Also run as \\fBtool r\\fR."},
		{"tool-run", "\n.TP\n\\fB\\-\\-fast\\fR, \\fB\\-f\\fR\nrun fast\n"},
		{"tool-run", "\n.TP\n\\fB\\-\\-out\\fR \\fIFILE\\fR\nwrite to FILE (default: \"\\-\")\n"},
		{"tool-run", "\n.TP\n\\fB\\-\\-tag\\fR \\fIstring\\fR [ \\fB\\-\\-tag\\fR \\fIstring\\fR ]\na tag (repeatable)\n"},
		{"tool-run", "\n.TP\n\\fB\\-\\-help\\fR, \\fB\\-h\\fR\nshow help\n"},
		// A command without exit codes of its own has the program's.
		{"tool-run", "\n.SH \"EXIT STATUS\"\n.PP\n0 done, 1 not done,\n2 usage errors.\n"},
		{"tool-run", "\n.SH \"SEE ALSO\"\n\\fBtool\\fR(1), \\fBtool\\-file\\fR(5)\n"},
		// No description: the usage, as a sentence.
		{"tool-group", "\n.SH \"DESCRIPTION\"\n.PP\nGroup things.\n"},
		{"tool-group", "\n.TP\n\\fBleaf\\fR\nA leaf. See \\fBtool\\-group\\-leaf\\fR(1).\n"},
		{"tool-group-leaf", "\n.SH \"EXIT STATUS\"\n.PP\n0 always.\n"},
		{"tool-group-leaf", "\n.SH \"SEE ALSO\"\n\\fBtool\\fR(1), \\fBtool\\-group\\fR(1), \\fBtool\\-file\\fR(5)\n"},
	} {
		if !strings.Contains(p[tc.page], tc.want) {
			t.Errorf("%s lacks %q:\n%s", tc.page, tc.want, p[tc.page])
		}
	}
	if strings.Contains(p["tool-run"], "secret") {
		t.Error("a hidden flag is listed")
	}
	if strings.Contains(p["tool"], "worker") || strings.Contains(p["tool-group"], "group's help") {
		t.Error("a hidden command or help is listed")
	}
	if strings.Contains(p["tool-run"], "\\-\\-version") {
		t.Error("a command's page lists the program's --version")
	}
}

// A flag added to a command is on its page without anything else changing.
func TestNewFlagIsListed(t *testing.T) {
	root := tree()
	root.Commands[0].Flags = append(root.Commands[0].Flags, &cli.IntFlag{Name: "retries", Usage: "how often to try", Value: 3})
	for _, p := range Commands(root, Options{Meta: meta}) {
		if p.Name == "tool-run" && !strings.Contains(string(p.Roff), "\n.TP\n\\fB\\-\\-retries\\fR \\fIint\\fR\nhow often to try (default: 3)\n") {
			t.Errorf("the new flag is not listed:\n%s", p.Roff)
		}
	}
}
