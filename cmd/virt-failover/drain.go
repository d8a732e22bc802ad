package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/internal/orchestrate"
	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/policy/lint"
)

func drainCommand() *cli.Command {
	return &cli.Command{
		Name:  "drain",
		Usage: "cordon this host and live-migrate every running guest away, with its assigned devices",
		Description: "Plans first: every guest that runs here, by name, with the first destination of --to that answers\n" +
			"and whose checks pass (the preflight of migrate), or why it stays (not running, lint errors, assigned\n" +
			"devices nothing fails over). Then cordons the host: [host] accept_incoming = false in the policy\n" +
			"file, the rest of the file kept as it is (\"virt-failover uncordon\" undoes it), so that no guest\n" +
			"comes back meanwhile. Then moves the guests as migrate does, --parallel at a time: a guest tries\n" +
			"the next destination when one cannot be reached, fails its checks or its hook refuses the guest\n" +
			"(a refusal changes nothing: the guest is rolled back here first); any other failure leaves the\n" +
			"guest here, rolled back with every device. Ends with a table of every guest: where it runs, how\n" +
			"long it took, and why a guest did not move. --to URIs are the destinations as this host's libvirtd\n" +
			"reaches them (peer to peer), and this command connects to them too.\n" +
			"Exit status: 0 every guest moved (or planned, --dry-run), 1 some guest did not move (each listed\n" +
			"with why and where it runs), 2 usage errors.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "to", Usage: "the destinations, tried in this order: `URI`[,URI...]", Required: true},
			connectFlag("this host's libvirt"),
			&cli.IntFlag{Name: "parallel", Usage: "how many guests move at a time", Value: 1},
			&cli.StringSliceFlag{Name: "migrate-uri", Usage: "where QEMU's migration stream goes: one `URI` per --to destination, in its order, like tcp://192.0.2.2 (default: libvirt's choice)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan; change nothing, not even the cordon"},
			durationFlag("unplug-timeout", "how long a device (and QEMU's wait-unplug) may take to go"),
			durationFlag("replug-timeout", "how long a device may take to come back"),
			&cli.BoolFlag{Name: "json", Usage: "print the report (with --dry-run: the plan) as JSON on stdout; the rest goes to stderr"},
			policyFlag(),
			rootFlag(),
		},
		Action: runDrain,
	}
}

func runDrain(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Present() {
		return usageError("drain: takes no arguments (the destinations go to --to)")
	}
	to, migrateURIs := cmd.StringSlice("to"), cmd.StringSlice("migrate-uri")
	if len(migrateURIs) > 0 && len(migrateURIs) != len(to) {
		return usageError("drain: %d --migrate-uri for %d --to destinations: want one for each, in the same order, or none", len(migrateURIs), len(to))
	}
	if cmd.Int("parallel") < 1 {
		return usageError("drain: --parallel %d: want 1 or more", cmd.Int("parallel"))
	}
	o, src, err := onHost(ctx, cmd)
	if err != nil {
		return err
	}
	defer src.Close()
	if cmd.Bool("json") {
		o.out = cmd.Root().ErrWriter
	}
	var dests []orchestrate.Destination
	for i, uri := range to {
		d := orchestrate.Destination{URI: uri}
		if len(migrateURIs) > 0 {
			d.MigrateURI = migrateURIs[i]
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := virt.Dial(dctx, uri)
		cancel()
		if err != nil {
			d.Unreachable = err
		} else {
			d.Conn = c
			defer c.Close()
		}
		dests = append(dests, d)
	}
	linter, err := lint.New(lint.Config{Policy: o.pol})
	if err != nil {
		return err
	}
	out := &lockedWriter{w: o.out}
	opts := orchestrate.DrainOptions{Source: src, Dests: dests, Parallel: int(cmd.Int("parallel")),
		UnplugTimeout: o.unplug, ReplugTimeout: o.replug, Linter: linter,
		Logf: func(dom string) orchestrate.Logf {
			return func(format string, args ...any) {
				out.printf("[%6.2fs] %s: %s\n", time.Since(o.start).Seconds(), dom, fmt.Sprintf(format, args...))
			}
		}}
	plan, err := orchestrate.PlanDrain(ctx, opts)
	if err != nil {
		return &cliError{err: fmt.Errorf("drain: %w", err), code: exitFailed}
	}
	printDrainPlan(out, plan, dests, opts.Parallel)

	path := o.host.policyPath
	if cmd.Bool("dry-run") {
		edit, err := editPolicyFile(path, policy.Cordon, false)
		if err != nil {
			return &cliError{err: fmt.Errorf("drain: cordon: %w", err), code: exitFailed}
		}
		out.printf("cordon (dry run, nothing written): %s\n", wouldDo(edit, path))
		if cmd.Bool("json") {
			return printJSON(cmd.Root().Writer, plan)
		}
		return nil
	}
	edit, err := editPolicyFile(path, policy.Cordon, true)
	if err != nil {
		return &cliError{err: fmt.Errorf("drain: cordon %s: %w", path, err), code: exitFailed,
			hints: []string{"no guest was moved: the host must refuse incoming migrations first"}}
	}
	out.printf("cordon: %s in %s\n", edit.Did, path)

	rep := orchestrate.Drain(ctx, opts, plan)
	if cmd.Bool("json") {
		if err := printJSON(cmd.Root().Writer, struct {
			Policy string `json:"policy"`
			Cordon string `json:"cordon"`
			*orchestrate.DrainReport
		}{path, edit.Did, rep}); err != nil {
			return err
		}
	}
	printDrainReport(out, rep)
	if rep.NotMoved > 0 {
		var names []string
		for _, g := range rep.Guests {
			if g.Outcome != orchestrate.DrainMoved {
				names = append(names, g.Domain)
			}
		}
		return &cliError{err: fmt.Errorf("drain: %d of %d guests did not move: %s (the \"not moved\" lines say why and where each runs)", rep.NotMoved, len(rep.Guests), strings.Join(names, ", ")),
			code: exitFailed, hints: []string{`the host stays cordoned; "virt-failover drain" again moves what is left`}}
	}
	out.printf("drained: %d of %d guests moved; %s refuses incoming migrations until \"virt-failover uncordon\"\n", rep.Moved, len(rep.Guests), src.URI())
	return nil
}

func uncordonCommand() *cli.Command {
	return &cli.Command{
		Name:  "uncordon",
		Usage: "let this host accept incoming migrations again, undoing drain's cordon",
		Description: "Sets [host] accept_incoming back as it was before drain in the policy file: the line drain added\n" +
			"goes (with the [host] table when drain added that too and nothing else is in it), a value drain\n" +
			"set to false is true again; any other accept_incoming = false becomes true. The rest of the file\n" +
			"is kept as it is. Running it again changes nothing.\n" +
			"Exit status: 0 done (or nothing to do), 1 the policy could not be read, edited or written.",
		Flags: []cli.Flag{policyFlag(), rootFlag()},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return usageError("uncordon: takes no arguments")
			}
			h, err := loadHost(cmd)
			if err != nil {
				return err
			}
			edit, err := editPolicyFile(h.policyPath, policy.Uncordon, true)
			if err != nil {
				return &cliError{err: fmt.Errorf("uncordon %s: %w", h.policyPath, err), code: exitFailed}
			}
			fmt.Fprintf(cmd.Root().Writer, "uncordon: %s in %s\n", edit.Did, h.policyPath)
			return nil
		},
	}
}

// editPolicyFile runs a cordon edit on the policy file (a missing one is empty) and, when write is
// set and it changed, replaces the file with the result: atomically, with the file's mode and
// owner.
func editPolicyFile(path string, edit func(string, []byte) (*policy.CordonEdit, error), write bool) (*policy.CordonEdit, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	e, err := edit(path, data)
	if err != nil {
		return nil, policyError(err)
	}
	if write && e.Changed {
		if err := replaceFile(path, e.Data, nil); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// wouldDo says what a cordon edit would do.
func wouldDo(e *policy.CordonEdit, path string) string {
	if !e.Changed {
		return e.Did
	}
	return "would have " + e.Did + " in " + path
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// lockedWriter lets the guests moving at once print whole lines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

// printDrainPlan prints which guests move, in what order, and the first destination each tries.
func printDrainPlan(out *lockedWriter, plan *orchestrate.DrainPlan, dests []orchestrate.Destination, parallel int) {
	var b strings.Builder
	fmt.Fprintf(&b, "drain %s to %s, %d at a time\n", plan.Source, strings.Join(plan.Dests, ", "), parallel)
	for _, d := range dests {
		if d.Conn == nil {
			fmt.Fprintf(&b, "  destination %s cannot be reached: %v\n", d.URI, d.Unreachable)
		}
	}
	if len(plan.Guests) == 0 {
		b.WriteString("  no guest runs here\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	n := 0
	for _, g := range plan.Guests {
		if g.Stay != "" {
			fmt.Fprintf(tw, "  -\t%s\t%s\tstays: %s\n", g.Domain, g.State, g.Stay)
			continue
		}
		n++
		fmt.Fprintf(tw, "  %d\t%s\t%s\t-> %s\t%s\n", n, g.Domain, g.State, g.Dest, devicesMoving(g.Plan))
	}
	tw.Flush()
	out.printf("%s", b.String())
}

// devicesMoving says in a few words what a guest's migration does with its assigned devices.
func devicesMoving(p *orchestrate.Plan) string {
	var parts []string
	for _, d := range p.QEMU {
		parts = append(parts, d.Alias+" by QEMU (teaming)")
	}
	for _, d := range p.Park {
		parts = append(parts, "unplug "+d.Alias+" ("+d.Kind+")")
	}
	if len(parts) == 0 {
		return "no assigned device to unplug"
	}
	return strings.Join(parts, ", ")
}

// printDrainReport prints the summary table: every guest, where it runs, how long it took; then
// the destinations each guest passed over, and why the others did not move.
func printDrainReport(out *lockedWriter, rep *orchestrate.DrainReport) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "guest\tdestination\toutcome\tstarted\ttotal\tunplug\tmigration\tdowntime\treplug")
	for _, g := range rep.Guests {
		dest := g.Dest
		if dest == "" {
			dest = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Domain, dest, g.Outcome, seconds(g.Start, g.Report != nil), seconds(g.Duration, g.Report != nil),
			phase(g.Report, orchestrate.PhaseUnplug), phase(g.Report, orchestrate.PhaseMigration),
			phase(g.Report, orchestrate.PhaseDowntime), phase(g.Report, orchestrate.PhaseReplug))
	}
	tw.Flush()
	// What the guests that moved passed over on their way (unreachable destinations are said
	// once, with the plan); why the others did not move.
	for _, g := range rep.Guests {
		for _, a := range g.Attempts {
			if g.Outcome == orchestrate.DrainMoved && (a.Outcome == orchestrate.TriedRefused || a.Outcome == orchestrate.TriedUnsuitable) {
				fmt.Fprintf(&b, "%s: %s %s: %s\n", g.Domain, a.Dest, a.Outcome, a.Why)
			}
		}
	}
	for _, g := range rep.Guests {
		if g.Outcome != orchestrate.DrainMoved {
			fmt.Fprintf(&b, "not moved: %s: %s; %s\n", g.Domain, g.Why, g.State)
		}
	}
	out.printf("%s", b.String())
}

func seconds(d time.Duration, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func phase(rep *orchestrate.Report, name string) string {
	if rep == nil {
		return "-"
	}
	d, ok := rep.Time(name)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
