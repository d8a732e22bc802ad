package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/internal/manpage"
	"github.com/virt-failover/virt-failover/internal/manpage/mdpage"
	"github.com/virt-failover/virt-failover/policy"
)

// Every visible command, at every depth, has its man page, named after its words, and the page
// lists each of its flags, its usage and its arguments: the pages are made from the definitions.
func TestManPageOfEveryCommand(t *testing.T) {
	pages := map[string]string{}
	for _, p := range commandPages(manpage.Meta{Date: "2026-12-04", Source: "virt-failover test", Manual: "virt-failover manual"}) {
		if p.Section != 1 {
			t.Errorf("%s: section %d", p.Name, p.Section)
		}
		pages[p.Name] = string(p.Roff)
	}
	seen := 0
	var walk func(path []*cli.Command)
	walk = func(path []*cli.Command) {
		cmd := path[len(path)-1]
		name := manpage.PageName(path)
		page, ok := pages[name]
		if !ok {
			t.Errorf("%q has no man page %s(1)", fullName(cmd), name)
			return
		}
		seen++
		if !strings.Contains(page, "\n.SH \"NAME\"\n"+roff(name)+` \- `+roff(cmd.Usage)+"\n") {
			t.Errorf("%s(1): NAME is not %q:\n%s", name, cmd.Usage, page)
		}
		if cmd.ArgsUsage != "" && !strings.Contains(page, roff(cmd.ArgsUsage)) {
			t.Errorf("%s(1): the synopsis lacks %q", name, cmd.ArgsUsage)
		}
		for _, f := range manpage.Flags(cmd, len(path) == 1) {
			for _, n := range f.Names() {
				if !strings.Contains(page, `\fB`+roff(dashes(n))) {
					t.Errorf("%s(1) does not list %s", name, dashes(n))
				}
			}
		}
		for _, sub := range cmd.Commands {
			if sub.Hidden || sub.Name == "help" {
				if _, ok := pages[manpage.PageName(append(path[:len(path):len(path)], sub))]; ok {
					t.Errorf("%s has a man page, but the help lists no such command", fullName(sub))
				}
				continue
			}
			walk(append(path[:len(path):len(path)], sub))
		}
	}
	root := newApp(strings.NewReader(""), io.Discard, io.Discard)
	walk([]*cli.Command{root})
	if seen != len(pages) || seen < 15 {
		t.Errorf("%d commands have a page, %d pages made", seen, len(pages))
	}
	// The commands the operator knows best, by name.
	for _, name := range []string{"virt-failover", "virt-failover-lint", "virt-failover-pair", "virt-failover-migrate", "virt-failover-install", "virt-failover-policy-check", "virt-failover-claims-rebuild"} {
		if _, ok := pages[name]; !ok {
			t.Errorf("no %s(1)", name)
		}
	}
	// What the root's description says of exit codes is the root page's EXIT STATUS, and a
	// command whose description says nothing of them gets the root's.
	for _, name := range []string{"virt-failover", "virt-failover-status"} {
		if !strings.Contains(pages[name], "\n.SH \"EXIT STATUS\"\n.PP\n0 success, 1 the command ran and found a problem") {
			t.Errorf("%s(1): no EXIT STATUS from the root's description:\n%s", name, pages[name])
		}
	}
	if !strings.Contains(pages["virt-failover-lint"], "\n.SH \"EXIT STATUS\"\n.PP\n0 nothing at or above \\-\\-fail\\-on") {
		t.Errorf("virt-failover-lint(1): no EXIT STATUS of its own:\n%s", pages["virt-failover-lint"])
	}
	// The hidden commands have none: the replug worker, and the completion scripts.
	for _, name := range []string{"virt-failover-replug", "virt-failover-completion", "virt-failover-help"} {
		if _, ok := pages[name]; ok {
			t.Errorf("%s(1) exists: the command is hidden", name)
		}
	}
}

func roff(s string) string { return strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s) }

// virt-failover-policy(5) is docs/policy.md: every key of the policy is in it.
func TestPolicyManPage(t *testing.T) {
	doc, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	p, err := mdpage.FromMarkdown(policyPage, 5, policyBlurb, doc, manpage.Meta{Date: "2026-12-04", Source: "virt-failover test", Manual: "virt-failover manual"})
	if err != nil {
		t.Fatal(err)
	}
	page := string(p.Roff)
	for _, key := range []string{"enabled", "accept_incoming", "on_error", "enforce", "default_pool", "sysfs_root",
		"claim_ttl", "lock_timeout", "require_migratable", "standby_networks", "replug_timeout", "unplug_timeout"} {
		if !strings.Contains(page, "\n.TP\n\\fB"+key+"\\fR\n") {
			t.Errorf("%s(5) has no entry for the key %s", policyPage, key)
		}
	}
	if !strings.Contains(page, policy.DefaultPath) {
		t.Errorf("%s(5) does not name %s", policyPage, policy.DefaultPath)
	}
}

// "completion SHELL" writes urfave/cli's script for each shell the package installs
// (testdata/script/completion.txtar runs the scripts' questions through the binary).
func TestCompletionScripts(t *testing.T) {
	for _, sh := range completionShells {
		var stdout, stderr bytes.Buffer
		if code := runCLI(context.Background(), []string{programName, "completion", sh[0]}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
			t.Fatalf("completion %s: exit %d\n%s", sh[0], code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "--generate-shell-completion") || !strings.Contains(stdout.String(), programName) {
			t.Errorf("completion %s: not a script that asks %s:\n%s", sh[0], programName, stdout.String())
		}
	}
}
