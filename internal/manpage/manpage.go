// Package manpage writes man pages: one per command of a urfave/cli command tree, made from the
// commands' own definitions (usage, arguments, description, flags), so a new command or flag has
// its page and its entry without anyone writing one. Package mdpage beside it makes pages from the
// project's Markdown documents.
package manpage

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"
)

// Meta is what the header and footer of every page carry.
type Meta struct {
	Date   string // "2026-12-04"
	Source string // "virt-failover 1.2.0"
	Manual string // "virt-failover manual"
}

// Page is one man page.
type Page struct {
	Name    string // "virt-failover-policy-check"
	Section int
	Roff    []byte
}

// File is the page's file name: NAME.SECTION.
func (p Page) File() string { return fmt.Sprintf("%s.%d", p.Name, p.Section) }

// Ref is how a page names another: NAME(SECTION).
func (p Page) Ref() string { return fmt.Sprintf("%s(%d)", p.Name, p.Section) }

// Options add what the command definitions do not hold.
type Options struct {
	Meta
	// SeeAlso lists other pages, as "NAME(SECTION)", that every command's page points to.
	SeeAlso []string
	// Files are the program's files, path and what it is, listed on the program's own page.
	Files [][2]string
}

// Commands returns the program's page (section 1, named after root) and one section-1 page for
// every visible command below it at any depth, named after its words joined by '-'
// ("virt-failover-policy-check"). Hidden commands and the "help" commands get none.
func Commands(root *cli.Command, o Options) []Page {
	var pages []Page
	var walk func(path []*cli.Command)
	walk = func(path []*cli.Command) {
		pages = append(pages, commandPage(path, o))
		for _, sub := range Documented(path[len(path)-1]) {
			walk(append(path[:len(path):len(path)], sub))
		}
	}
	walk([]*cli.Command{root})
	return pages
}

// Documented are the subcommands of cmd that have a page: the visible ones but "help".
func Documented(cmd *cli.Command) []*cli.Command {
	var subs []*cli.Command
	for _, sub := range cmd.VisibleCommands() {
		if sub.Name != "help" {
			subs = append(subs, sub)
		}
	}
	return subs
}

// PageName is the name of the page of the command at the end of path (root first).
func PageName(path []*cli.Command) string {
	var words []string
	for _, c := range path {
		words = append(words, c.Name)
	}
	return strings.Join(words, "-")
}

// Flags are the flags cmd's page lists, in its help's order: its visible flags, then the help and
// version flags urfave/cli adds when the program runs.
func Flags(cmd *cli.Command, isRoot bool) []cli.Flag {
	flags := cmd.VisibleFlags()
	if isRoot && cmd.Version != "" && !cmd.HideVersion && cli.VersionFlag != nil {
		flags = append(flags, cli.VersionFlag)
	}
	if !cmd.HideHelp && cli.HelpFlag != nil {
		flags = append(flags, cli.HelpFlag)
	}
	return flags
}

func commandPage(path []*cli.Command, o Options) Page {
	cmd := path[len(path)-1]
	isRoot := len(path) == 1
	name := PageName(path)
	var words []string
	for _, c := range path {
		words = append(words, c.Name)
	}
	typed := strings.Join(words, " ")

	var w roffWriter
	w.header(name, 1, o.Meta)

	w.section("NAME")
	w.line(escape(name) + ` \- ` + escape(cmd.Usage))

	w.section("SYNOPSIS")
	w.synopsis(cmd, typed)

	desc, exit := splitExitStatus(cmd.Description)
	w.section("DESCRIPTION")
	if desc == "" {
		desc = sentence(cmd.Usage)
	}
	w.text(desc)
	if len(cmd.Aliases) > 0 {
		w.WriteString(".PP\n")
		w.line("Also run as " + strings.Join(quoteEach(cmd.Aliases, strings.Join(words[:len(words)-1], " ")), ", ") + ".")
	}

	if subs := Documented(cmd); len(subs) > 0 {
		w.section("COMMANDS")
		for _, sub := range subs {
			sp := PageName(append(path[:len(path):len(path)], sub))
			w.tagged(`\fB`+escape(strings.Join(sub.Names(), ", "))+`\fR`,
				escape(sentence(sub.Usage))+` See \fB`+escape(sp)+`\fR(1).`)
		}
	}

	if flags := Flags(cmd, isRoot); len(flags) > 0 {
		w.section("OPTIONS")
		for _, f := range flags {
			names, usage, _ := strings.Cut(f.String(), "\t")
			w.tagged(flagNames(names), escape(usage))
		}
	}

	if exit == "" && !isRoot {
		_, exit = splitExitStatus(path[0].Description)
	}
	if exit != "" {
		w.section("EXIT STATUS")
		w.text(exit)
	}

	if isRoot && len(o.Files) > 0 {
		w.section("FILES")
		for _, f := range o.Files {
			w.tagged(`\fI`+escape(f[0])+`\fR`, escape(f[1]))
		}
	}

	var see []string
	if !isRoot {
		see = append(see, PageName(path[:1])+"(1)")
		if len(path) > 2 {
			see = append(see, PageName(path[:len(path)-1])+"(1)")
		}
	}
	for _, sub := range Documented(cmd) {
		see = append(see, PageName(append(path[:len(path):len(path)], sub))+"(1)")
	}
	see = append(see, o.SeeAlso...)
	if len(see) > 0 {
		w.section("SEE ALSO")
		var refs []string
		for _, s := range see {
			n, sec, _ := strings.Cut(s, "(")
			refs = append(refs, `\fB`+escape(n)+`\fR(`+sec)
		}
		w.line(strings.Join(refs, ", "))
	}
	return Page{Name: name, Section: 1, Roff: w.Bytes()}
}

// splitExitStatus takes the "Exit status: ..." paragraph out of a description: the line that starts
// it, to the end of its paragraph.
func splitExitStatus(desc string) (rest, exit string) {
	lines := strings.Split(desc, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "Exit status:") {
			continue
		}
		end := i + 1
		for end < len(lines) && strings.TrimSpace(lines[end]) != "" {
			end++
		}
		exit = strings.TrimSpace(strings.TrimPrefix(strings.Join(lines[i:end], "\n"), "Exit status:"))
		rest = strings.Join(append(lines[:i:i], lines[end:]...), "\n")
		return strings.TrimSpace(rest), sentence(exit)
	}
	return strings.TrimSpace(desc), ""
}

// sentence starts s with a capital letter and ends it with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

func quoteEach(aliases []string, parent string) []string {
	var out []string
	for _, a := range aliases {
		out = append(out, `\fB`+escape(strings.TrimSpace(parent+" "+a))+`\fR`)
	}
	return out
}

// flagNames renders the names part of urfave/cli's flag line ("--connect string, -c string",
// "--detach ALIAS [ --detach ALIAS ]"): flags in bold, their values in italics.
func flagNames(s string) string {
	var out []string
	for _, tok := range strings.Fields(s) {
		word, comma := strings.CutSuffix(tok, ",")
		switch {
		case strings.HasPrefix(word, "-"):
			word = `\fB` + escape(word) + `\fR`
		case word == "[" || word == "]":
		default:
			word = `\fI` + escape(word) + `\fR`
		}
		if comma {
			word += ","
		}
		out = append(out, word)
	}
	return strings.Join(out, " ")
}

// roffWriter builds a page in the man(7) macros.
type roffWriter struct{ bytes.Buffer }

func (w *roffWriter) header(name string, section int, m Meta) {
	fmt.Fprintf(w, ".TH %s %d %s %s %s\n", quote(strings.ToUpper(name)), section, quote(m.Date), quote(m.Source), quote(m.Manual))
	// Left-aligned, unhyphenated: flag names and paths must stay whole.
	w.WriteString(".nh\n.ad l\n")
}

func (w *roffWriter) section(title string) { fmt.Fprintf(w, ".SH %s\n", quote(title)) }

func (w *roffWriter) line(roff string) { w.WriteString(roff + "\n") }

// tagged is an indented paragraph under a tag line (.TP); both are roff already.
func (w *roffWriter) tagged(tag, body string) {
	w.WriteString(".TP\n")
	w.line(tag)
	w.line(body)
}

func (w *roffWriter) synopsis(cmd *cli.Command, typed string) {
	w.WriteString(`\fB` + escape(typed) + `\fR`)
	switch {
	case cmd.UsageText != "":
		// UsageText replaces the whole usage line; it starts with the command as typed.
		w.WriteString(" " + escape(strings.TrimSpace(strings.TrimPrefix(cmd.UsageText, typed))))
	default:
		if len(cmd.VisibleFlags()) > 0 || !cmd.HideHelp {
			w.WriteString(` [\fIoptions\fR]`)
		}
		if len(Documented(cmd)) > 0 {
			w.WriteString(` \fIcommand\fR [\fIcommand options\fR]`)
		}
		if cmd.ArgsUsage != "" {
			w.WriteString(" " + escape(cmd.ArgsUsage))
		}
	}
	w.WriteString("\n")
}

// text writes a description as the help shows it, in paragraphs: a blank line starts a paragraph,
// lines that begin with white space are kept as they are (commands, lists), the others filled.
func (w *roffWriter) text(desc string) {
	for _, par := range paragraphs(desc) {
		w.WriteString(".PP\n")
		verbatim := false
		for _, l := range strings.Split(par, "\n") {
			indented := l != "" && (l[0] == ' ' || l[0] == '\t')
			if indented != verbatim {
				if indented {
					w.WriteString(".RS 4\n.nf\n")
				} else {
					w.WriteString(".fi\n.RE\n")
				}
				verbatim = indented
			}
			if indented {
				l = strings.TrimLeft(l, " \t")
			}
			w.line(escape(l))
		}
		if verbatim {
			w.WriteString(".fi\n.RE\n")
		}
	}
}

// escape makes text safe as roff: backslashes and minus signs escaped, a leading '.' or '\” kept
// from being read as a request.
func escape(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// quote makes s one argument of a request.
func quote(s string) string {
	return `"` + strings.ReplaceAll(escape(s), `"`, `\(dq`) + `"`
}

// paragraphs splits text at its blank lines.
func paragraphs(text string) []string {
	var pars []string
	var cur []string
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.TrimSpace(l) == "" {
			if len(cur) > 0 {
				pars = append(pars, strings.Join(cur, "\n"))
			}
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	if len(cur) > 0 {
		pars = append(pars, strings.Join(cur, "\n"))
	}
	return pars
}
