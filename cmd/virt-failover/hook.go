package main

import (
	"context"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/hooks"
)

func hookCommand() *cli.Command {
	return &cli.Command{
		Name:      "hook",
		Usage:     "run the libvirt hook by hand: the same code libvirt runs, for operators and tests",
		ArgsUsage: "qemu DOMAIN OPERATION SUB-OPERATION EXTRA  (domain XML on stdin)",
		Description: "Runs exactly what /etc/libvirt/hooks/qemu runs, reading the domain XML from stdin.\n" +
			"With --dry-run it decides as the hook would, prints a diff of any rewrite instead of the\n" +
			"document, and writes no log line.",
		Flags: []cli.Flag{
			policyFlag(),
			rootFlag(),
			&cli.BoolFlag{Name: "dry-run", Usage: "decide and print a diff; take no claim, change nothing"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			args := cmd.Args().Slice()
			if len(args) == 0 {
				return usageError("hook: want qemu DOMAIN OPERATION SUB-OPERATION EXTRA")
			}
			inv, err := hooks.ParseArgs(args[0], args[1:])
			if err != nil {
				return usageError("hook: %v", err)
			}
			paths, err := rootPaths(cmd)
			if err != nil {
				return err
			}
			pol := cmd.String("policy")
			if !cmd.IsSet("policy") {
				pol = paths.PolicyFile()
			}
			code := hooks.Run(inv, hooks.Options{
				Paths:      paths,
				PolicyPath: pol,
				Stdin:      cmd.Root().Reader,
				Stdout:     cmd.Root().Writer,
				Stderr:     cmd.Root().ErrWriter,
				DryRun:     cmd.Bool("dry-run"),
				Version:    version(),
			})
			if code != 0 {
				// hooks.Run already printed the reason in the hook's own format.
				return &cliError{err: silent{}, code: code}
			}
			return nil
		},
	}
}

// silent is an error whose text has already been printed.
type silent struct{}

func (silent) Error() string { return "" }
