package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/hooks"
	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/orchestrate"
	"github.com/virt-failover/virt-failover/internal/vfmac"
	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/policy/lint"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// connectFlag is the --connect flag of the commands that talk to libvirt.
func connectFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "connect", Aliases: []string{"c"}, Usage: usage + " (default: the policy's [orchestrate] connect, qemu:///system)", Value: ""}
}

func durationFlag(name, usage string) cli.Flag {
	return &cli.DurationFlag{Name: name, Usage: usage + " (default: the policy's [orchestrate] " + strings.ReplaceAll(strings.TrimPrefix(name, "--"), "-", "_") + ")"}
}

// orchestration is what the orchestrating commands share: the policy, the timeouts and the
// progress output.
type orchestration struct {
	host           *host
	pol            *policy.Policy
	unplug, replug time.Duration
	out            io.Writer
	start          time.Time
	// logf prints a progress line with the time since the command started.
	logf func(format string, args ...any)
}

func loadOrchestration(cmd *cli.Command) (*orchestration, error) {
	h, err := loadHost(cmd)
	if err != nil {
		return nil, err
	}
	pol := h.pol
	o := &orchestration{host: h, pol: pol, unplug: pol.Orchestrate.UnplugTimeout, replug: pol.Orchestrate.ReplugTimeout,
		out: cmd.Root().Writer, start: time.Now()}
	o.logf = func(format string, args ...any) {
		fmt.Fprintf(o.out, "[%6.2fs] %s\n", time.Since(o.start).Seconds(), fmt.Sprintf(format, args...))
	}
	if cmd.IsSet("unplug-timeout") {
		o.unplug = cmd.Duration("unplug-timeout")
	}
	if cmd.IsSet("replug-timeout") {
		o.replug = cmd.Duration("replug-timeout")
	}
	return o, nil
}

// connectURI is --connect, else the policy's.
func (o *orchestration) connectURI(cmd *cli.Command) string {
	if u := cmd.String("connect"); u != "" {
		return u
	}
	return o.pol.Orchestrate.Connect
}

// onHost is what switch, repair and drain start with: the policy and timeouts, and a connection to the
// host the guest runs on (close it).
func onHost(ctx context.Context, cmd *cli.Command) (*orchestration, virt.Hypervisor, error) {
	o, err := loadOrchestration(cmd)
	if err != nil {
		return nil, nil, err
	}
	h, err := dial(ctx, "host", o.connectURI(cmd))
	if err != nil {
		return nil, nil, err
	}
	return o, h, nil
}

func dial(ctx context.Context, what, uri string) (virt.Hypervisor, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := virt.Dial(dctx, uri)
	if err != nil {
		return nil, &cliError{err: fmt.Errorf("%s: %w", what, err), code: exitFailed,
			hints: []string{"is libvirtd running there, and the URI right? " + `"virsh -c URI list" tells`}}
	}
	return h, nil
}

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:      "migrate",
		Usage:     "live-migrate a guest with its assigned devices: unplug what QEMU cannot fail over, migrate, plug back",
		ArgsUsage: "DOMAIN DEST-URI",
		Description: "Plans from the guest's live definition (its pair records and --detach), checks (lint, the guest side\n" +
			"through the guest agent when there is one, the destination), prints the plan, then parks and\n" +
			"detaches each device QEMU cannot fail over (its definition recorded in the guest's metadata first),\n" +
			"migrates live peer to peer while it watches QEMU unplug teaming primaries (past --unplug-timeout it\n" +
			"aborts, and QEMU plugs them back), and plugs the parked devices back on the destination with what\n" +
			"the destination's hook claimed there. Any failure before the guest runs on the destination plugs\n" +
			"everything back on the source. DEST-URI is the destination as the source's libvirtd reaches it.\n" +
			"Exit status: 0 migrated (or planned, --dry-run), 1 not migrated or not every device back (the last\n" +
			"line says where the guest runs and what it has), 2 usage errors.",
		Flags: []cli.Flag{
			connectFlag("the source host's libvirt"),
			&cli.StringFlag{Name: "dest-connect", Usage: "the destination's libvirt as this command reaches it (default: DEST-URI)"},
			&cli.StringFlag{Name: "migrate-uri", Usage: "where QEMU's migration stream goes, like tcp://192.0.2.2 (virsh migrate --migrateuri)"},
			&cli.StringSliceFlag{Name: "detach", Usage: "also unplug the device with this `ALIAS` for the migration and plug it back after (repeatable)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "plan and check, change nothing"},
			durationFlag("unplug-timeout", "how long a device (and QEMU's wait-unplug) may take to go"),
			durationFlag("replug-timeout", "how long a device may take to come back"),
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout (the plan and the progress go to stderr)"},
			policyFlag(),
			rootFlag(),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 2 {
				return usageError("migrate: want DOMAIN DEST-URI")
			}
			o, err := loadOrchestration(cmd)
			if err != nil {
				return err
			}
			name, destURI := cmd.Args().Get(0), cmd.Args().Get(1)
			if cmd.Bool("json") {
				// stdout is the report's alone; what it will do and its progress go to stderr.
				o.out = cmd.Root().ErrWriter
			}
			src, err := dial(ctx, "source", o.connectURI(cmd))
			if err != nil {
				return err
			}
			defer src.Close()
			destConnect := cmd.String("dest-connect")
			if destConnect == "" {
				destConnect = destURI
			}
			dst, err := dial(ctx, "destination", destConnect)
			if err != nil {
				return err
			}
			defer dst.Close()
			linter, err := lint.New(lint.Config{Policy: o.pol})
			if err != nil {
				return err
			}
			opts := orchestrate.MigrateOptions{Domain: name, Source: src, Dest: dst, DestURI: destURI,
				MigrateURI: cmd.String("migrate-uri"), Detach: cmd.StringSlice("detach"),
				UnplugTimeout: o.unplug, ReplugTimeout: o.replug, Linter: linter, Logf: o.logf}
			// The plan is printed before anything changes: a dry run first, unless this is one.
			dry := opts
			dry.DryRun, dry.Logf = true, func(string, ...any) {}
			rep, err := orchestrate.Migrate(ctx, dry)
			printPlan(o.out, fmt.Sprintf("migrate %s from %s to %s", name, src.URI(), destURI), rep)
			if err == nil && !cmd.Bool("dry-run") {
				rep, err = orchestrate.Migrate(ctx, opts)
			}
			return finishReport(cmd, o.out, rep, err)
		},
	}
}

// printPlan prints a migration's preflight and plan.
func printPlan(w io.Writer, title string, rep *orchestrate.Report) {
	fmt.Fprintf(w, "%s\n", title)
	for _, c := range rep.Checks {
		fmt.Fprintf(w, "  check    %-14s %s: %s\n", c.Name, c.Status, c.Detail)
	}
	if rep.Plan != nil {
		fmt.Fprint(w, rep.Plan.String())
	}
}

// finishReport prints a migration's phase table (or its JSON) and turns its outcome into the
// exit status: the last line says where the guest runs and what it has.
func finishReport(cmd *cli.Command, w io.Writer, rep *orchestrate.Report, err error) error {
	if cmd.Bool("json") {
		enc := json.NewEncoder(cmd.Root().Writer)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(rep); eerr != nil {
			return eerr
		}
	} else if rep.Outcome != "planned" {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "phase\ttime")
		for _, t := range rep.Phases {
			name := t.Phase
			if name == orchestrate.PhaseWaitUnplug {
				name = "  " + name
			}
			fmt.Fprintf(tw, "%s\t%s\n", name, t.Duration.Round(time.Millisecond))
		}
		tw.Flush()
	}
	if err != nil {
		return &cliError{err: fmt.Errorf("migrate %s: %s: %s", rep.Domain, rep.Outcome, rep.State), code: exitFailed,
			hints: []string{"why: " + strings.ReplaceAll(err.Error(), "\n", "; ")}}
	}
	if !cmd.Bool("json") {
		fmt.Fprintf(w, "%s: %s\n", rep.Outcome, rep.State)
	}
	return nil
}

func switchCommand() *cli.Command {
	return &cli.Command{
		Name:      "switch",
		Usage:     "switch a running guest to its emulated devices, or back to its assigned ones",
		ArgsUsage: "DOMAIN",
		Description: "--to emulated parks and detaches every recorded primary (teaming primaries too: the guest's\n" +
			"net_failover, bond or multipath falls back to the standby on its own) and the --detach devices; they\n" +
			"stay out, across migrations (plain virsh migrate included), until --to assigned plugs them back on\n" +
			"the host the guest runs on then. Without its VFs a guest's memory is no longer pinned for VFIO:\n" +
			"the host can overcommit it (docs/orchestrate.md).\n" +
			"Exit status: 0 done, 1 not every device moved (the last line says what the guest has), 2 usage errors.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Usage: "`emulated` or assigned", Required: true},
			connectFlag("the host's libvirt"),
			&cli.StringSliceFlag{Name: "detach", Usage: "also unplug the device with this `ALIAS` (--to emulated; repeatable)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would move, change nothing"},
			durationFlag("unplug-timeout", "how long a device may take to go"),
			durationFlag("replug-timeout", "how long a device may take to come back"),
			policyFlag(),
			rootFlag(),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			start := time.Now()
			if cmd.Args().Len() != 1 {
				return usageError("switch: want one DOMAIN")
			}
			to := cmd.String("to")
			if to != "emulated" && to != "assigned" {
				return usageError("switch: --to %q: want emulated or assigned", to)
			}
			o, h, err := onHost(ctx, cmd)
			if err != nil {
				return err
			}
			defer h.Close()
			name := cmd.Args().First()
			opts := orchestrate.SwitchOptions{Domain: name, Host: h, Detach: cmd.StringSlice("detach"),
				UnplugTimeout: o.unplug, ReplugTimeout: o.replug, DryRun: true, Logf: o.logf, Claim: o.claimParked}
			run := orchestrate.SwitchToEmulated
			if to == "assigned" {
				run = orchestrate.SwitchToAssigned
			}
			res, err := run(ctx, opts)
			if err == nil {
				fmt.Fprintf(o.out, "switch %s on %s to %s devices\n%s", name, h.URI(), to, res.Plan)
				if !cmd.Bool("dry-run") {
					opts.DryRun = false
					res, err = run(ctx, opts)
				}
			}
			return switchOutcome(o.out, "switch "+name, h, name, res, err, cmd.Bool("dry-run"), time.Since(start))
		},
	}
}

func repairCommand() *cli.Command {
	return &cli.Command{
		Name:      "repair",
		Usage:     "finish what an interrupted migrate or switch left: plug parked devices back, drop stale records",
		ArgsUsage: "DOMAIN",
		Description: "Reads the guest's parked records on the host it runs on: a device parked for a migration is\n" +
			"plugged back (from the record, with the claim the host's hook made for it), a record whose device\n" +
			"is in the guest already is dropped, a device parked by a switch stays parked. Waits for a\n" +
			"migration job of the guest to end first. Never attaches a device twice. Leaked claims on a host\n" +
			"are freed by its hook and by \"virt-failover claims prune\".\n" +
			"Exit status: 0 converged, 1 not every device back, 2 usage errors.",
		Flags: []cli.Flag{
			connectFlag("the libvirt of the host the guest runs on"),
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would be done, change nothing"},
			durationFlag("replug-timeout", "how long a device may take to come back"),
			policyFlag(),
			rootFlag(),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			start := time.Now()
			if cmd.Args().Len() != 1 {
				return usageError("repair: want one DOMAIN")
			}
			o, h, err := onHost(ctx, cmd)
			if err != nil {
				return err
			}
			defer h.Close()
			name := cmd.Args().First()
			// The plan first (its own dry run), then the repair.
			opts := orchestrate.SwitchOptions{Domain: name, Host: h, ReplugTimeout: o.replug, DryRun: true, Logf: o.logf, Claim: o.claimParked}
			res, err := orchestrate.Repair(ctx, opts)
			if err == nil {
				fmt.Fprintf(o.out, "repair %s on %s\n%s", name, h.URI(), res.Plan)
				if !cmd.Bool("dry-run") {
					opts.DryRun = false
					res, err = orchestrate.Repair(ctx, opts)
				}
			}
			return switchOutcome(o.out, "repair "+name, h, name, res, err, cmd.Bool("dry-run"), time.Since(start))
		},
	}
}

// replugCommand is the worker the hook starts, detached, when a guest arrives with devices parked
// for its migration (hidden: libvirt's hook runs it, not an operator). Its standard streams are
// /dev/null: it writes what it does to the hook's log, one JSON line an event (op "replug").
func replugCommand() *cli.Command {
	return &cli.Command{
		Name:      "replug",
		Usage:     "plug back the devices a guest's migration parked, once it runs here (started by the hook)",
		ArgsUsage: "DOMAIN",
		Hidden:    true,
		Flags: []cli.Flag{
			connectFlag("this host's libvirt"),
			durationFlag("replug-timeout", "how long the worker tries"),
			policyFlag(),
			rootFlag(),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return usageError("replug: want one DOMAIN")
			}
			o, err := loadOrchestration(cmd)
			if err != nil {
				return err
			}
			name := cmd.Args().First()
			start := time.Now()
			logRecord := func(decision hooks.Decision, msg string) {
				rec := hooks.Record{Time: time.Now().UTC().Format(time.RFC3339Nano), Domain: name, Op: "replug", SubOp: "worker",
					Decision: decision, DurationMS: float64(time.Since(start).Microseconds()) / 1000, Message: msg,
					Policy: o.pol.Source, PID: os.Getpid(), Version: version()}
				if err := hooks.AppendRecord(o.pol.Log.File, rec); err != nil {
					fmt.Fprintf(cmd.Root().ErrWriter, "virt-failover: warning: %v\n", err)
				}
			}
			o.logf = func(format string, args ...any) {
				msg := fmt.Sprintf(format, args...)
				fmt.Fprintf(o.out, "[%6.2fs] %s\n", time.Since(o.start).Seconds(), msg)
				logRecord(hooks.Pass, msg)
			}
			// The worker tries for the whole replug timeout; connecting is part of it.
			wctx, cancel := context.WithTimeout(ctx, o.replug)
			defer cancel()
			var h virt.Hypervisor
			for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
				h, err = virt.Dial(wctx, o.connectURI(cmd))
				if err == nil {
					break
				}
				select {
				case <-wctx.Done():
					logRecord(hooks.Error, err.Error())
					return &cliError{err: fmt.Errorf("replug %s: %w", name, err), code: exitFailed}
				case <-time.After(backoff):
				}
			}
			defer h.Close()
			res, err := orchestrate.Replug(wctx, orchestrate.SwitchOptions{Domain: name, Host: h, ReplugTimeout: o.replug, Logf: o.logf, Claim: o.claimParked})
			if err != nil {
				logRecord(hooks.Error, err.Error())
			} else {
				logRecord(hooks.Pass, fmt.Sprintf("done: plugged %d, dropped %d record(s) of devices in the guest already", len(res.Plugged), len(res.Dropped)))
			}
			return switchOutcome(o.out, "replug "+name, h, name, res, err, false, time.Since(start))
		},
	}
}

// switchOutcome prints what a switch, repair or replug did and, on failure, the guest's state
// in one line.
// took is the command's time so far: its plan's dry run waits for a migration job to end too.
func switchOutcome(w io.Writer, what string, h virt.Hypervisor, name string, res *orchestrate.SwitchResult, err error, dry bool, took time.Duration) error {
	if res != nil && !dry {
		for _, a := range res.Parked {
			fmt.Fprintf(w, "  unplugged %s\n", a)
		}
		for _, a := range res.Plugged {
			fmt.Fprintf(w, "  plugged   %s\n", a)
		}
		for _, a := range res.Dropped {
			fmt.Fprintf(w, "  dropped the record of %s: it is in the guest\n", a)
		}
		for _, a := range res.Left {
			fmt.Fprintf(w, "  left      %s parked (switched to emulated: \"virt-failover switch %s --to assigned\" plugs it back)\n", a, name)
		}
	}
	if err != nil {
		return &cliError{err: fmt.Errorf("%s: %s", what, guestState(h, name)), code: exitFailed,
			hints: []string{"why: " + strings.ReplaceAll(err.Error(), "\n", "; ")}}
	}
	if !dry && res != nil {
		fmt.Fprintf(w, "done in %s: %s\n", took.Round(time.Millisecond), guestState(h, name))
	}
	return nil
}

// guestState says in one line where a guest runs and which of its devices are parked.
func guestState(h virt.Hypervisor, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := h.Domain(ctx, name)
	if errors.Is(err, virt.ErrNoDomain) {
		return fmt.Sprintf("%s is not on %s", name, h.URI())
	}
	if err != nil {
		return fmt.Sprintf("state of %s unknown: %v", name, err)
	}
	xml, err := h.LiveXML(ctx, name)
	if err != nil {
		return fmt.Sprintf("%s is %s on %s", name, info.State, h.URI())
	}
	parked, err := orchestrate.ParkedAliases(xml)
	if err != nil || len(parked) == 0 {
		return fmt.Sprintf("%s is %s on %s with every device", name, info.State, h.URI())
	}
	return fmt.Sprintf("%s is %s on %s; parked: %s", name, info.State, h.URI(), strings.Join(parked, ", "))
}

// claimParked claims on this host the pool resources of a running domain's devices parked for a
// migration (claims.PlanParked), programs the MACs of plain <hostdev> VFs, and returns the
// definition with the records rewritten to them (nil when nothing changed).
func (o *orchestration) claimParked(ctx context.Context, src []byte) ([]byte, error) {
	doc, err := xmlxform.Parse(src)
	if err != nil {
		return nil, err
	}
	ch, s := claims.Load(o.pol, o.host.statusDir, policy.NewDomain(doc), "")
	if ch == nil {
		return nil, nil
	}
	var out []byte
	err = claims.OpenLedger(o.pol).Update(func(tx *ledger.Tx) error {
		p, err := claims.PlanParked(ch, s, doc, tx)
		if err != nil {
			return err
		}
		if p.Refusal != nil {
			return p.Refusal
		}
		taken, _, err := claims.Apply(tx, p)
		if err != nil {
			return err
		}
		if _, rf := claims.ProgramMACs(vfmac.Netlink{}, p.MACs); rf != nil {
			return rf
		}
		for _, c := range taken {
			o.logf("claimed %s", claims.Line(c))
		}
		out = p.Output
		return nil
	})
	return out, err
}
