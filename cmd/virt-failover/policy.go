package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/internal/sysfs"
	"github.com/virt-failover/virt-failover/internal/trust"
	"github.com/virt-failover/virt-failover/policy"
)

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "work with the policy file",
		Commands: []*cli.Command{{
			Name:      "check",
			Usage:     "validate a policy file (default " + policy.DefaultPath + ") and resolve its pools against sysfs",
			ArgsUsage: "[FILE]",
			Flags:     []cli.Flag{policyFlag()},
			Action: func(ctx context.Context, cmd *cli.Command) error {
				path := cmd.String("policy")
				if cmd.Args().Len() > 1 {
					return usageError("policy check: want at most one FILE")
				}
				if cmd.Args().Len() == 1 {
					path = cmd.Args().First()
				}
				p, err := policy.Load(path)
				if err != nil {
					return policyError(err)
				}
				out := cmd.Root().Writer
				pools := policy.ResolvePools(p, sysfs.FS{Root: p.Host.SysfsRoot})
				// The hook runs as root and trusts only what no one else can change: the policy
				// and the state directory (internal/trust). Checked as the hook would check them
				// when run by this user: the owners only as root.
				var untrusted []error
				for _, f := range []string{path, p.State.Dir} {
					if err := trust.Check(f, os.Geteuid() == 0); err != nil {
						untrusted = append(untrusted, unjoin(err)...)
					}
				}
				switch {
				case len(untrusted) > 0:
					fmt.Fprintf(out, "%s: the hook would refuse it: others than root can change it or its state directory (%s)\n", path, plural(len(untrusted), "problem"))
				case p.Missing:
					fmt.Fprintf(out, "%s: not found; the built-in defaults apply\n", path)
				case len(pools.Problems) > 0:
					fmt.Fprintf(out, "%s: valid, but pool entries do not resolve on this host (%d)\n", path, len(pools.Problems))
				default:
					fmt.Fprintf(out, "%s: ok\n", path)
				}
				printPolicySummary(out, p, pools)
				var lines []string
				if len(untrusted) > 0 {
					lines = append(lines, strings.Split(policyError(errors.Join(untrusted...)).Error(), "\n")...)
				}
				if len(pools.Problems) > 0 {
					for _, pr := range pools.Problems {
						lines = append(lines, path+": "+pr.String())
					}
					lines = append(lines, "hint: sysfs_root is "+p.Host.SysfsRoot+"; a pf is a PF's interface name as \"ip link\" shows it, an address one \"lspci -D\" shows")
				}
				if len(lines) > 0 {
					return &cliError{err: errors.New(strings.Join(lines, "\n")), code: exitFailed}
				}
				return nil
			},
		}},
	}
}

// policyError renders the loader's errors one per line, each followed by its hint.
func policyError(err error) error {
	var lines []string
	for _, e := range unjoin(err) {
		lines = append(lines, e.Error())
		var pe *policy.Error
		if errors.As(e, &pe) && pe.Hint != "" {
			lines = append(lines, "hint: "+pe.Hint)
		}
	}
	return &cliError{err: errors.New(strings.Join(lines, "\n")), code: exitFailed}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func printPolicySummary(w interface{ Write([]byte) (int, error) }, p *policy.Policy, pools *policy.Pools) {
	fmt.Fprintf(w, "  host: enabled=%t accept_incoming=%t on_error=%s enforce=%s\n",
		p.Host.Enabled, p.Host.AcceptIncoming, p.Host.OnError, p.Host.Enforce)
	names := make([]string, 0, len(p.Pools))
	for n := range p.Pools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		pool := p.Pools[n]
		fmt.Fprintf(w, "  pool %s: %d PF(s), %d address(es), %d network(s)", n, len(pool.PF), len(pool.Addresses), len(pool.Networks))
		var vfs, nets int
		var pfs []string
		for _, r := range pools.ByName[n].Resources {
			if r.Kind == policy.KindVF {
				vfs++
				if r.PF != "" && !slices.Contains(pfs, r.PF) {
					pfs = append(pfs, r.PF)
				}
			} else {
				nets++
			}
		}
		fmt.Fprintf(w, " -> %d VF(s)", vfs)
		if len(pfs) > 0 {
			fmt.Fprintf(w, " (from %s)", strings.Join(pfs, ", "))
		}
		fmt.Fprintf(w, ", %d network(s) on this host\n", nets)
	}
	fmt.Fprintf(w, "  rewrite: %d network(s), %d bridge(s)\n", len(p.Rewrite.Networks), len(p.Rewrite.Bridges))
	fmt.Fprintf(w, "  log: %s\n  state: %s (claims expire after %s)\n  sysfs: %s\n", p.Log.File, p.State.Dir, p.State.ClaimTTL, p.Host.SysfsRoot)
	fmt.Fprintf(w, "  orchestrate: replug=%s through %s, unplug within %s, replug within %s\n",
		p.Orchestrate.Replug, p.Orchestrate.Connect, p.Orchestrate.UnplugTimeout, p.Orchestrate.ReplugTimeout)
}
