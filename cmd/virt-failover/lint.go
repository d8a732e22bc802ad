package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/policy/lint"
	"github.com/virt-failover/virt-failover/policy/lint/xmlvalidate"
)

// maxLintInput caps one file, as the hook caps its input: libvirt never writes a larger domain.
const maxLintInput = 64 << 20

func lintCommand() *cli.Command {
	return &cli.Command{
		Name:      "lint",
		Usage:     "check domain XML for failover mistakes, offline",
		ArgsUsage: "PATH...  (files, directories searched for *.xml, or - for stdin)",
		Description: "Checks libvirt domain definitions for everything that breaks transparent failover of assigned\n" +
			"devices: teaming structure, aliases, MACs, standbys, hot-plug, migration blockers, storage pairs.\n" +
			"Each finding has a stable rule ID; --explain RULE says what it means and how to fix it.\n" +
			"Exit status: 0 nothing at or above --fail-on, 1 findings at or above it, 2 usage or I/O errors.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "output format: text, json, sarif, junit or github"},
			&cli.StringFlag{Name: "fail-on", Value: "error", Usage: "exit 1 on findings of this severity or worse: error, warning, info or never"},
			&cli.StringFlag{Name: "explain", Usage: "print the documentation of `RULE` (an ID like VF007, or its name) and exit"},
			&cli.BoolFlag{Name: "list-rules", Usage: "list the rules and exit"},
			&cli.StringSliceFlag{Name: "enable", Usage: "run these rules even if the policy disables them (IDs or names, comma-separated)"},
			&cli.StringSliceFlag{Name: "disable", Usage: "do not run these rules (IDs or names, comma-separated)"},
			policyFlag(),
			&cli.BoolFlag{Name: "require-migratable", Usage: "an assigned device that blocks migration is an error (overrides [lint] require_migratable)"},
			&cli.BoolFlag{Name: "schema", Usage: "also validate against libvirt's schemas with virt-xml-validate (VF038)"},
			&cli.BoolFlag{Name: "hook-safe", Usage: "run only the rules the hook runs at prepare"},
			&cli.StringFlag{Name: "stdin-name", Value: "<stdin>", Usage: "the file name findings on stdin carry"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: runtime.GOMAXPROCS(0), Usage: "files linted at once"},
		},
		Action: runLint,
	}
}

func runLint(ctx context.Context, cmd *cli.Command) error {
	out := cmd.Root().Writer
	format := cmd.String("format")
	if !isFormat(format) {
		return &cliError{err: fmt.Errorf("lint: unknown --format %q", format), hints: []string{"use text, json, sarif, junit or github"}, code: exitUsage}
	}
	failOn := lint.Severity(0)
	switch v := cmd.String("fail-on"); v {
	case "never":
		failOn = lint.Error + 1
	default:
		s, ok := lint.ParseSeverity(v)
		if !ok {
			return &cliError{err: fmt.Errorf("lint: unknown --fail-on %q", v), hints: []string{"use error, warning, info or never"}, code: exitUsage}
		}
		failOn = s
	}
	if id := cmd.String("explain"); id != "" {
		r := lint.Lookup(id)
		if r == nil {
			return &cliError{err: fmt.Errorf("lint: no rule %q", id), hints: []string{`"virt-failover lint --list-rules" lists them`}, code: exitUsage}
		}
		writeExplain(out, r)
		return nil
	}
	if cmd.Bool("list-rules") {
		return writeRuleList(out, format)
	}
	if !cmd.Args().Present() {
		return &cliError{err: errors.New("lint: no PATH given"), hints: []string{"name files or directories of domain XML, or - for stdin: virt-failover lint /etc/libvirt/qemu"}, code: exitUsage}
	}
	pol, err := policy.Load(cmd.String("policy"))
	if err != nil {
		ce := policyError(err).(*cliError)
		ce.code = exitUsage
		return ce
	}
	if cmd.IsSet("require-migratable") {
		pol.Lint.RequireMigratable = cmd.Bool("require-migratable")
	}
	cfg := lint.Config{
		Policy:       pol,
		Enable:       splitList(cmd.StringSlice("enable")),
		Disable:      splitList(cmd.StringSlice("disable")),
		HookSafeOnly: cmd.Bool("hook-safe"),
	}
	if cmd.Bool("schema") {
		if err := xmlvalidate.Available(); err != nil {
			return &cliError{err: fmt.Errorf("lint: --schema: %v", err), code: exitUsage}
		}
		cfg.Schema = func(file string, src []byte) ([]lint.SchemaProblem, error) {
			text, failed, err := xmlvalidate.Run(file, src)
			if err != nil {
				return nil, err
			}
			return lint.ParseValidatorOutput(text, failed), nil
		}
	}
	l, err := lint.New(cfg)
	if err != nil {
		return &cliError{err: fmt.Errorf("lint: %v", strings.ReplaceAll(err.Error(), "\n", "; ")),
			hints: []string{`"virt-failover lint --list-rules" lists the rules`}, code: exitUsage}
	}

	inputs, ioErrs := collectInputs(cmd.Args().Slice(), cmd.String("stdin-name"))
	results := lintAll(l, inputs, cmd.Root().Reader, max(1, cmd.Int("jobs")))
	var all []lint.Finding
	files := 0
	for _, r := range results {
		if r.err != nil {
			ioErrs = append(ioErrs, r.err)
			continue
		}
		files++
		all = append(all, r.findings...)
	}
	rep := &report{files: files, names: lintedNames(results), findings: all, failOn: failOn, version: version()}
	for _, e := range ioErrs {
		rep.unread = append(rep.unread, e.Error())
	}
	if err := rep.write(out, format); err != nil {
		return &cliError{err: fmt.Errorf("lint: writing the report: %w", err), code: exitUsage}
	}
	if len(ioErrs) > 0 {
		return &cliError{err: errors.Join(ioErrs...), code: exitUsage}
	}
	if rep.failing() > 0 {
		return &cliError{err: silent{}, code: exitFailed}
	}
	return nil
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

// lintInput is one thing to lint: a file path, or stdin.
type lintInput struct {
	path  string // "" for stdin
	name  string // the name findings carry
	stdin bool
}

// collectInputs expands the arguments: "-" is stdin, a directory is searched for *.xml (hidden
// directories skipped), anything else is a file. Symbolic links are followed, to files and to
// directories (libvirt's autostart directory is all links), and every *.xml path is linted under
// its own name, also when two paths lead to one file; a link back to a directory being walked is
// reported, not followed again.
func collectInputs(args []string, stdinName string) ([]lintInput, []error) {
	var in []lintInput
	var errs []error
	for _, a := range args {
		if a == "-" {
			in = append(in, lintInput{name: stdinName, stdin: true})
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("lint: %v", err))
			continue
		}
		if !st.IsDir() {
			in = append(in, lintInput{path: a, name: a})
			continue
		}
		w := dirWalk{in: in, errs: errs}
		w.walk(a, st, nil)
		in, errs = w.in, w.errs
	}
	return in, errs
}

// dirWalk collects the *.xml files under a directory.
type dirWalk struct {
	in   []lintInput
	errs []error
}

// walk reads dir (whose stat is st) in name order; up holds the directories above it, to catch
// a link that leads back to one of them.
func (w *dirWalk) walk(dir string, st fs.FileInfo, up []fs.FileInfo) {
	for _, u := range up {
		if os.SameFile(u, st) {
			w.errs = append(w.errs, fmt.Errorf("lint: %s: a directory link loop (it leads back to a directory above it); not followed", dir))
			return
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		w.errs = append(w.errs, fmt.Errorf("lint: %v", err))
		return
	}
	up = append(up, st)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var fi fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			if fi, err = os.Stat(p); err != nil {
				if strings.HasSuffix(e.Name(), ".xml") {
					w.errs = append(w.errs, fmt.Errorf("lint: %v", err)) // a dangling link named *.xml
				}
				continue
			}
		} else if fi, err = e.Info(); err != nil {
			w.errs = append(w.errs, fmt.Errorf("lint: %v", err))
			continue
		}
		switch {
		case fi.IsDir():
			if !strings.HasPrefix(e.Name(), ".") {
				w.walk(p, fi, up)
			}
		case strings.HasSuffix(e.Name(), ".xml") && fi.Mode().IsRegular():
			w.in = append(w.in, lintInput{path: p, name: p})
		}
	}
}

type lintResult struct {
	name     string
	findings []lint.Finding
	err      error
}

// lintAll lints the inputs with jobs workers; results are in input order.
func lintAll(l *lint.Linter, inputs []lintInput, stdin io.Reader, jobs int) []lintResult {
	results := make([]lintResult, len(inputs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(jobs, len(inputs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = lintOne(l, inputs[i], stdin)
			}
		}()
	}
	for i := range inputs {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

func lintOne(l *lint.Linter, in lintInput, stdin io.Reader) lintResult {
	res := lintResult{name: in.name}
	var src []byte
	var err error
	if in.stdin {
		src, err = io.ReadAll(io.LimitReader(stdin, maxLintInput+1))
	} else {
		var f *os.File
		if f, err = os.Open(in.path); err == nil {
			src, err = io.ReadAll(io.LimitReader(f, maxLintInput+1))
			f.Close()
		}
	}
	if err != nil {
		res.err = fmt.Errorf("lint: %s: %v", in.name, err)
		return res
	}
	if len(src) > maxLintInput {
		res.err = fmt.Errorf("lint: %s: larger than %d MiB; libvirt never writes such a definition", in.name, maxLintInput>>20)
		return res
	}
	res.findings, err = l.Check(in.name, src)
	if err != nil {
		res.err = fmt.Errorf("lint: %s: --schema: %v", in.name, err)
	}
	return res
}

func lintedNames(results []lintResult) []string {
	var names []string
	for _, r := range results {
		if r.err == nil {
			names = append(names, r.name)
		}
	}
	return names
}
