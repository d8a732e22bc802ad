package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/internal/ledger"
)

func claimsCommand() *cli.Command {
	return &cli.Command{
		Name:  "claims",
		Usage: "repair this host's pool claims",
		Commands: []*cli.Command{
			{
				Name:      "release",
				Usage:     "free every claim of a domain on this host",
				ArgsUsage: "DOMAIN  (name or UUID)",
				Description: "The hook frees a domain's claims at its release; this is for when that never came.\n" +
					"A domain that runs keeps its claims unless --force.",
				Flags: []cli.Flag{policyFlag(), rootFlag(), &cli.BoolFlag{Name: "force", Usage: "release a running domain's claims too"}},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Len() != 1 {
						return usageError("claims release: want one DOMAIN")
					}
					h, err := loadHost(cmd)
					if err != nil {
						return err
					}
					dom := cmd.Args().First()
					gone, err := claims.ReleaseClaims(h.pol, h.statusDir, dom, cmd.Bool("force"))
					if errors.Is(err, claims.ErrRunning) {
						return &cliError{err: fmt.Errorf("claims release: %w", err), code: exitFailed,
							hints: []string{"its claims say what it uses; another guest could be given it. Use --force if libvirt is wrong"}}
					}
					if err != nil {
						return &cliError{err: err, code: exitFailed}
					}
					printClaims(cmd, "released", gone, "no claims of "+dom)
					return nil
				},
			},
			{
				Name:  "prune",
				Usage: "remove stale claims (an earlier boot) and expired pending ones",
				Flags: []cli.Flag{policyFlag(), rootFlag()},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Present() {
						return usageError("claims prune: takes no arguments")
					}
					h, err := loadHost(cmd)
					if err != nil {
						return err
					}
					gone, err := claims.PruneClaims(h.pol, time.Now())
					if err != nil {
						return &cliError{err: err, code: exitFailed}
					}
					printClaims(cmd, "pruned", gone, "nothing to prune")
					return nil
				},
			},
		},
	}
}

func printClaims(cmd *cli.Command, verb string, cs []ledger.Claim, none string) {
	w := cmd.Root().Writer
	if len(cs) == 0 {
		fmt.Fprintln(w, none)
		return
	}
	for _, c := range cs {
		fmt.Fprintf(w, "%s %s: %s for %s %s (%s, %s old)\n", verb, c.Pool, c.Resource, c.Domain, c.Alias, c.State, claims.Age(time.Since(c.Time)))
	}
}
