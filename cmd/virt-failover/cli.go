package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	return &cli.Command{
		Name:      programName,
		Usage:     "transparent failover for libvirt guests with assigned devices",
		Version:   version(),
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			hookCommand(),
			policyCommand(),
			statusCommand(),
			claimsCommand(),
			installCommand(),
			uninstallCommand(),
			lintCommand(),
			pairCommand(),
		},
		// Errors are printed once, by cliMain, with the program prefix and hints.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
		OnUsageError: func(_ context.Context, _ *cli.Command, err error, _ bool) error {
			return &cliError{err: err, code: exitUsage}
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return &cliError{
					err:   fmt.Errorf("unknown command %q", cmd.Args().First()),
					hints: []string{`"` + programName + ` --help" lists the commands`},
					code:  exitUsage,
				}
			}
			return cli.ShowAppHelp(cmd)
		},
	}
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
