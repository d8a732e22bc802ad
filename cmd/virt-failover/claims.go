package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/shell"
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
						force := []string{programName, "claims", "release"}
						for _, f := range []string{"policy", "root"} {
							if cmd.IsSet(f) {
								force = append(force, "--"+f, shell.Quote(cmd.String(f)))
							}
						}
						force = append(force, "--force", shell.Quote(dom))
						return &cliError{err: fmt.Errorf("claims release: %w", err), code: exitFailed,
							hints: []string{"its claims say what it uses; another guest could be given it. If libvirt is wrong: " + strings.Join(force, " ")}}
					}
					if err != nil {
						return &cliError{err: err, code: exitFailed}
					}
					printClaims(cmd, "released", gone, "no claims of "+dom)
					return nil
				},
			},
			{
				Name:  "rebuild",
				Usage: "move a corrupt claims ledger aside and rebuild the claims from the running guests",
				Description: "The hook refuses to read, or overwrite, a ledger that is not one (every pool guest's migration\n" +
					"and start is then refused). rebuild moves it aside as claims.json.corrupt-TIME and records what\n" +
					"the running guests use, as the hook's reconnect would. A ledger that reads fine is kept unless --force.",
				Flags: []cli.Flag{policyFlag(), rootFlag(), &cli.BoolFlag{Name: "force", Usage: "rebuild a ledger that reads fine too"}},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Present() {
						return usageError("claims rebuild: takes no arguments")
					}
					h, err := loadHost(cmd)
					if err != nil {
						return err
					}
					out := cmd.Root().Writer
					l := claims.OpenLedger(h.pol)
					readErr := l.View(func(*ledger.Tx) error { return nil })
					if readErr == nil && !cmd.Bool("force") {
						return &cliError{err: fmt.Errorf("claims rebuild: %s reads fine; nothing to rebuild", l.Path()), code: exitFailed,
							hints: []string{"--force rebuilds it from the running guests all the same (pending claims of incoming migrations are lost)"}}
					}
					now := time.Now()
					if _, err := os.Stat(l.Path()); err == nil {
						aside := l.Path() + ".corrupt-" + now.UTC().Format("20060102T150405Z")
						if err := os.Rename(l.Path(), aside); err != nil {
							return &cliError{err: fmt.Errorf("claims rebuild: %w", err), code: exitFailed}
						}
						fmt.Fprintf(out, "moved %s aside to %s\n", l.Path(), aside)
					}
					taken, problems, err := claims.Seed(h.pol, h.statusDir, now, true)
					for _, c := range taken {
						fmt.Fprintf(out, "claimed %s: a running guest\n", c)
					}
					for _, p := range problems {
						fmt.Fprintf(out, "warning: %s\n", p)
					}
					if err != nil {
						return &cliError{err: fmt.Errorf("claims rebuild: %w", err), code: exitFailed}
					}
					if len(taken) == 0 {
						fmt.Fprintf(out, "no running guest uses a pool resource (%s)\n", h.statusDir)
					}
					return nil
				},
			},
			{
				Name:  "prune",
				Usage: "remove stale claims (an earlier boot), expired pending ones, and those of guests that no longer run here",
				Description: "A claim of a guest with no status file in libvirt's status directory is removed once it is older\n" +
					"than [state] claim_ttl (a younger one may be a guest starting); the hook does the same at each\n" +
					"transaction. A pending claim of an incoming migration within its TTL is kept.",
				Flags: []cli.Flag{policyFlag(), rootFlag()},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Present() {
						return usageError("claims prune: takes no arguments")
					}
					h, err := loadHost(cmd)
					if err != nil {
						return err
					}
					running := claims.LoadRunning(h.statusDir)
					gone, err := claims.PruneClaims(h.pol, running, time.Now())
					if err != nil {
						return &cliError{err: err, code: exitFailed}
					}
					w := cmd.Root().Writer
					for _, r := range gone {
						c := r.Claim
						fmt.Fprintf(w, "pruned %s: %s for %s %s (%s, %s old): %s\n", c.Pool, c.Resource, c.Domain, c.Alias, c.State, claims.Age(time.Since(c.Time)), r.Why)
					}
					if len(gone) == 0 {
						fmt.Fprintln(w, "nothing to prune")
					}
					if !running.Complete() {
						why := "it does not exist"
						if running.Err != nil {
							why = running.Err.Error()
						}
						fmt.Fprintf(w, "warning: libvirt's status directory %s cannot tell which guests run (%s): the claims of guests that may have stopped were kept\n", running.Dir, why)
					}
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
