package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/policy"
)

// Exit codes of the command line.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and found a problem (a refusal, a bad policy)
	exitUsage   = 2 // usage or I/O errors
	programName = "virt-failover"
)

// cliError is an error with hints and an exit code; only this package turns errors into text.
type cliError struct {
	err   error
	hints []string
	code  int
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &cliError{err: fmt.Errorf(format, args...), code: exitUsage}
}

// policyFlag is the --policy flag every command that reads the policy takes.
func policyFlag() cli.Flag {
	return &cli.StringFlag{
		Name:      "policy",
		Usage:     "policy file",
		Value:     policy.DefaultPath,
		TakesFile: true,
	}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.Command {
	app := &cli.Command{
		Name:    programName,
		Usage:   "transparent failover for libvirt guests with assigned devices",
		Version: version(),
		Description: "Installed as libvirt's QEMU hook it acts on every lifecycle operation; run by its own name it is\n" +
			"the operator's command line below.\n\n" +
			"Exit status: 0 success, 1 the command ran and found a problem (lint findings, a refusal, a bad\n" +
			"policy), 2 usage or I/O errors.",
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		// "virt-failover completion bash|zsh|fish" prints a script that asks the program itself
		// (--generate-shell-completion) for the commands and flags at the cursor.
		EnableShellCompletion: true,
		// The completion command is made when the program runs; it gets the usage contract too.
		ConfigureShellCompletionCommand: enforceUsage,
		Commands: []*cli.Command{
			hookCommand(),
			policyCommand(),
			statusCommand(),
			claimsCommand(),
			installCommand(),
			uninstallCommand(),
			lintCommand(),
			pairCommand(),
			migrateCommand(),
			switchCommand(),
			repairCommand(),
			drainCommand(),
			uncordonCommand(),
			replugCommand(),
			watchCommand(),
		},
		// Errors are printed once, by cliMain, with the program prefix and hints.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
	}
	app.Action = commandGroupAction
	enforceUsage(app)
	return app
}

// enforceUsage gives every command, at every depth, the same contract for usage mistakes: one line
// naming what was wrong, a did-you-mean hint where a close name exists, and exit 2 - never the whole
// help text, and never exit 1, which several commands use to mean "found a problem".
func enforceUsage(cmd *cli.Command) {
	cmd.OnUsageError = func(_ context.Context, c *cli.Command, err error, _ bool) error {
		return flagUsageError(c, err)
	}
	if len(cmd.Commands) > 0 {
		if cmd.Action == nil {
			cmd.Action = commandGroupAction
		}
		if cmd.Command("help") == nil {
			cmd.Commands = append(cmd.Commands, helpCommand())
		}
	}
	for _, sub := range cmd.Commands {
		enforceUsage(sub)
	}
}

// flagUsageError rewrites urfave/cli's flag parsing errors into the program's usage error.
func flagUsageError(c *cli.Command, err error) error {
	where := commandPath(c)
	help := fmt.Sprintf("%q lists the flags", fullName(c)+" --help")
	if where != "" {
		where += ": "
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimLeft(name, "-")
		var hints []string
		if s := closestFlag(name, flagNames(c)); s != "" {
			hints = append(hints, "did you mean "+dashes(s)+"?")
		}
		return &cliError{err: fmt.Errorf("%sunknown flag %s", where, dashes(name)), hints: append(hints, help), code: exitUsage}
	}
	if m := invalidFlagValue.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("invalid value %s for %s: %s", m[1], dashes(m[2]), valueWanted(c, m[2], m[3]))
	}
	return &cliError{err: fmt.Errorf("%s%s", where, msg), hints: []string{help}, code: exitUsage}
}

// invalidFlagValue is urfave/cli's message for a flag value that does not parse.
var invalidFlagValue = regexp.MustCompile(`^invalid value ("(?:[^"\\]|\\.)*") for flag -(\S+): (.*)$`)

// valueWanted says what a flag takes, instead of the parser's words ("parse error",
// "strconv.ParseInt: parsing ...").
func valueWanted(c *cli.Command, name, parserErr string) string {
	for _, f := range c.Flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		switch f.(type) {
		case *cli.BoolFlag:
			return "want true or false"
		case *cli.IntFlag:
			return "want a whole number"
		}
	}
	return parserErr
}

// closestFlag is the flag the user most likely meant. A one-letter flag is too short to guess
// from: only the same letter in the other case is offered (-Q for -q). A longer name is compared
// with the long names only.
func closestFlag(name string, names []string) string {
	var cands []string
	for _, n := range names {
		if (len(name) == 1) == (len(n) == 1) {
			cands = append(cands, n)
		}
	}
	s := policy.ClosestName(name, cands)
	if len(name) == 1 && !strings.EqualFold(s, name) {
		return ""
	}
	return s
}

// commandGroupAction runs a command that only groups others (and the program itself) when it is
// given no known subcommand: help without arguments, a usage error naming the unknown one.
func commandGroupAction(_ context.Context, c *cli.Command) error {
	if !c.Args().Present() {
		if c.Root() == c {
			return cli.ShowAppHelp(c)
		}
		return cli.ShowSubcommandHelp(c)
	}
	return unknownCommand(c, c.Args().First())
}

// unknownCommand is the usage error for a name that is none of group's commands.
func unknownCommand(group *cli.Command, name string) error {
	full := fullName(group)
	var names []string
	for _, sub := range group.VisibleCommands() {
		names = append(names, sub.Names()...)
	}
	var hints []string
	if s := policy.ClosestName(name, names); s != "" {
		hints = append(hints, fmt.Sprintf("did you mean %q?", full+" "+s))
	}
	hints = append(hints, fmt.Sprintf("%q lists the commands", full+" --help"))
	where := commandPath(group)
	if where != "" {
		where += ": "
	}
	return &cliError{err: fmt.Errorf("%sunknown command %q", where, name), hints: hints, code: exitUsage}
}

// helpCommand is the "help [COMMAND...]" of a command group, in place of urfave/cli's, which exits 3
// with "No help topic" for a name it does not know: here that is a usage error like any other.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show the help of a command",
		ArgsUsage: "[COMMAND...]",
		HideHelp:  true,
		Action: func(ctx context.Context, h *cli.Command) error {
			target := parentOf(h)
			for _, name := range h.Args().Slice() {
				sub := target.Command(name)
				if sub == nil || sub.Name == "help" {
					return unknownCommand(target, name)
				}
				target = sub
			}
			if target == target.Root() {
				return cli.ShowAppHelp(target)
			}
			return cli.ShowCommandHelp(ctx, parentOf(target), target.Name)
		},
	}
}

// commandPath is the command's words below the program: "policy check", or "" for the program.
func commandPath(c *cli.Command) string {
	var words []string
	for ; c != nil && c.Root() != c; c = parentOf(c) {
		words = append([]string{c.Name}, words...)
	}
	return strings.Join(words, " ")
}

// fullName is the command as typed: "virt-failover policy check".
func fullName(c *cli.Command) string {
	return strings.TrimSpace(programName + " " + commandPath(c))
}

// parentOf finds c's parent by walking down from the root (urfave/cli keeps it unexported).
func parentOf(c *cli.Command) *cli.Command {
	var find func(*cli.Command) *cli.Command
	find = func(p *cli.Command) *cli.Command {
		for _, sub := range p.Commands {
			if sub == c {
				return p
			}
			if f := find(sub); f != nil {
				return f
			}
		}
		return nil
	}
	return find(c.Root())
}

func flagNames(c *cli.Command) []string {
	names := []string{"help"}
	for _, f := range c.VisibleFlags() {
		names = append(names, f.Names()...)
	}
	return names
}

// dashes spells a flag name as it is typed: -o for one letter, --format for longer names.
func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func cliMain(args []string) int {
	return runCLI(context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
}

// runCLI runs the command line and returns the exit code; tests call it in-process.
func runCLI(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := newApp(stdin, stdout, stderr).Run(ctx, args)
	if err == nil {
		return exitOK
	}
	var ce *cliError
	code := exitFailed
	var hints []string
	if errors.As(err, &ce) {
		code, hints = ce.code, ce.hints
	} else if ec, ok := err.(cli.ExitCoder); ok {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		// Several errors (errors.Join) print one per line; hint lines stand as they are.
		for _, line := range strings.Split(msg, "\n") {
			if strings.HasPrefix(line, "hint: ") || strings.HasPrefix(line, "\t") {
				fmt.Fprintln(stderr, line)
			} else {
				fmt.Fprintf(stderr, "%s: %s\n", programName, line)
			}
		}
	}
	for _, h := range hints {
		fmt.Fprintf(stderr, "hint: %s\n", h)
	}
	return code
}
