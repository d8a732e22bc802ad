package main

import (
	"io"
	"strings"

	"github.com/virt-failover/virt-failover/internal/hostpaths"
	"github.com/virt-failover/virt-failover/internal/manpage"
	"github.com/virt-failover/virt-failover/policy"
)

// What the package ships beside the binary, made from the command definitions by the gendocs
// build (gendocs.go), and where it puts it.
const (
	policyPage  = programName + "-policy" // virt-failover-policy(5), from docs/policy.md
	policyBlurb = "the virt-failover policy file, " + policy.DefaultPath
	docDir      = "/usr/share/doc/" + programName // README.md and docs/
)

// completionShells are the shells "virt-failover completion SHELL" writes a script for that the
// package installs, and where.
var completionShells = [][2]string{
	{"bash", "/usr/share/bash-completion/completions/" + programName},
	{"zsh", "/usr/share/zsh/vendor-completions/_" + programName},
	{"fish", "/usr/share/fish/vendor_completions.d/" + programName + ".fish"},
}

// commandPages are the man pages of the command line: one per visible command of the tree newApp
// makes, so a new command or flag is in them without anyone writing it.
func commandPages(meta manpage.Meta) []manpage.Page {
	pol := policy.Default()
	return manpage.Commands(newApp(strings.NewReader(""), io.Discard, io.Discard), manpage.Options{
		Meta:    meta,
		SeeAlso: []string{policyPage + "(5)"},
		Files: [][2]string{
			{policy.DefaultPath, "the policy: " + policyPage + "(5)"},
			{hostpaths.HooksDir + "/qemu.d/" + hookName, "the hook: a link to the binary (" + hostpaths.HooksDir + "/qemu where libvirt has no qemu.d)"},
			{pol.Log.File, "the hook's decision log, one JSON line per call"},
			{pol.State.Dir, "the claims ledger and the other state"},
			{docDir, "README.md and the documents of docs/"},
		},
	})
}
