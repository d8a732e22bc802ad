package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/internal/hostpaths"
	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/watch"
	"github.com/virt-failover/virt-failover/policy"
)

// rootFlag is the --root flag of the commands that read this host's libvirt and virt-failover
// state: a tree to use instead of /.
func rootFlag() cli.Flag {
	return &cli.StringFlag{
		Name:      "root",
		Usage:     "the host's tree: DIR/etc/libvirt, DIR/run/libvirt, DIR/etc/virt-failover and the policy's state dir under DIR (for tests)",
		Value:     "/",
		TakesFile: true,
	}
}

// host is where a command finds this host's policy, running domains and claims.
type host struct {
	paths      hostpaths.Paths
	policyPath string
	statusDir  string
	pol        *policy.Policy
}

// rootPaths is the host tree --root names.
func rootPaths(cmd *cli.Command) (hostpaths.Paths, error) {
	root, err := filepath.Abs(cmd.String("root"))
	if err != nil {
		return hostpaths.Paths{}, usageError("--root: %v", err)
	}
	return hostpaths.Paths{Root: root}, nil
}

// loadHost reads the policy named by --policy (default: the root's etc/virt-failover/policy.toml)
// and maps the host paths it names into --root.
func loadHost(cmd *cli.Command) (*host, error) {
	paths, err := rootPaths(cmd)
	if err != nil {
		return nil, err
	}
	h := &host{paths: paths, policyPath: cmd.String("policy"), statusDir: paths.StatusDir()}
	if !cmd.IsSet("policy") {
		h.policyPath = paths.PolicyFile()
	}
	h.pol, err = policy.Load(h.policyPath)
	if err != nil {
		return nil, policyError(err)
	}
	paths.MapPolicy(h.pol)
	return h, nil
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show this host's pools: every resource free, claimed, pending or in use, and the claims with their domains and ages",
		Description: "Reads the pools from sysfs, the claims from the ledger in the policy's state dir and the running\n" +
			"guests from libvirt's status files, as the hook does; it never calls libvirt. When \"virt-failover\n" +
			"watch\" runs, it adds each guest's failover state and last migration from watch's /guests; when it\n" +
			"does not, it says so.",
		Flags: []cli.Flag{policyFlag(), rootFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON"},
			&cli.StringFlag{Name: "watch", Usage: `where "virt-failover watch" serves, for the guests' failover state (default: the policy's [watch] listen)`}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return usageError("status: takes no arguments")
			}
			h, err := loadHost(cmd)
			if err != nil {
				return err
			}
			now := time.Now()
			st, err := claims.HostStatus(h.pol, h.statusDir, now)
			if err != nil {
				return &cliError{err: err, code: exitFailed}
			}
			addr := h.pol.Watch.Listen
			if cmd.IsSet("watch") {
				addr = cmd.String("watch")
			}
			rep, werr := watchReport(ctx, addr)
			out := cmd.Root().Writer
			if cmd.Bool("json") {
				v := statusJSON{Status: st, Watch: rep}
				if werr != nil {
					v.WatchError = werr.Error()
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(v); err != nil {
					return err
				}
			} else {
				printStatus(out, st, now)
				printGuests(out, addr, rep, werr, now)
			}
			if len(st.Problems) > 0 {
				// A policy whose pools do not resolve is as broken here as in "policy check".
				return &cliError{err: fmt.Errorf("status: the pools of %s do not resolve on this host (%s)", h.policyPath, plural(len(st.Problems), "problem")),
					hints: []string{`"virt-failover policy check" names each with its fix`}, code: exitFailed}
			}
			return nil
		},
	}
}

// statusJSON is status --json: the pools and claims, and watch's report when it runs.
type statusJSON struct {
	*claims.Status
	Watch      *watch.Report `json:"watch,omitempty"`
	WatchError string        `json:"watch_error,omitempty"` // why there is no report
}

// watchReport asks a running "virt-failover watch" for its report.
func watchReport(ctx context.Context, addr string) (*watch.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+watch.GuestsPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
		err = uerr.Err // not the URL again
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s%s: %s", addr, watch.GuestsPath, resp.Status)
	}
	var r watch.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s%s: %w", addr, watch.GuestsPath, err)
	}
	return &r, nil
}

// printGuests shows watch's per-guest state, or says it is not running.
func printGuests(w io.Writer, addr string, r *watch.Report, err error, now time.Time) {
	if err != nil {
		fmt.Fprintf(w, "watch: not running at %s (%v): no failover state of the guests; \"systemctl start virt-failover-watch\" starts it\n", addr, err)
		return
	}
	if !r.Connected {
		fmt.Fprintf(w, "watch at %s is not connected to libvirt (%s): the guests' state below may be old\n", addr, r.Reason)
	}
	if len(r.Guests) == 0 {
		fmt.Fprintf(w, "guests (virt-failover watch at %s): none running\n", addr)
		return
	}
	fmt.Fprintf(w, "guests (virt-failover watch at %s):\n", addr)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Which devices are parked, and why, the parked section below says (from the same records).
	fmt.Fprintln(tw, "  DOMAIN\tFAILOVER\tEMULATED FOR\tLAST MIGRATION")
	for _, g := range r.Guests {
		emulated := "-"
		if g.EmulatedSince != nil {
			emulated = claims.Age(now.Sub(*g.EmulatedSince))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", g.Name, g.State, emulated, migrationLine(g.Migration))
	}
	tw.Flush()
}

// migrationLine is a migration in a few words: direction, outcome and the phases seen.
func migrationLine(m *watch.Migration) string {
	if m == nil {
		return "-"
	}
	if ph := m.Phases(); ph != "" {
		return m.Direction + " " + m.Outcome + ", " + ph
	}
	return m.Direction + " " + m.Outcome
}

func printStatus(w io.Writer, st *claims.Status, now time.Time) {
	if len(st.Pools) == 0 {
		fmt.Fprintf(w, "no pools in %s\n", st.Policy)
	}
	for _, p := range st.Pools {
		var parts []string
		for _, s := range []string{claims.StateFree, claims.StateClaimed, claims.StatePending, claims.StateInUse} {
			if n := p.Counts[s]; n > 0 || s == claims.StateFree {
				parts = append(parts, fmt.Sprintf("%d %s", n, s))
			}
		}
		fmt.Fprintf(w, "pool %s: %d resource(s): %s\n", p.Name, p.Counts["total"], strings.Join(parts, ", "))
		if len(p.Resources) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  RESOURCE\tSTATE\tDOMAIN\tDEVICE\tAGE\tDETAIL")
		for _, r := range p.Resources {
			age := "-"
			if r.Since != nil {
				age = claims.Age(now.Sub(*r.Since))
			}
			var detail []string
			if r.PF != "" && r.VF != nil {
				detail = append(detail, "VF "+strconv.Itoa(*r.VF)+" of "+r.PF)
			}
			if r.Driver != "" {
				detail = append(detail, r.Driver)
			}
			if r.Note != "" {
				detail = append(detail, r.Note)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.State, dash(r.Domain), dash(r.Device), age, strings.Join(detail, ", "))
		}
		tw.Flush()
	}
	if len(st.Parked) > 0 {
		fmt.Fprintln(w, "parked devices (unplugged by virt-failover; \"virt-failover repair DOMAIN\" plugs back those parked for a migration):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  DOMAIN\tDEVICE\tKIND\tREASON\tPOOL\tSINCE")
		for _, p := range st.Parked {
			since := "-"
			if t, err := time.Parse(time.RFC3339, p.Since); err == nil {
				since = claims.Age(now.Sub(t))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", p.Domain, p.Alias, p.Kind, p.Reason, dash(p.Pool), since)
		}
		tw.Flush()
	}
	var other []claims.ClaimStatus
	for _, c := range st.Claims {
		if c.Status != ledger.Live || !c.Known {
			other = append(other, c)
		}
	}
	if len(other) > 0 {
		fmt.Fprintln(w, "other claims (stale and expired ones hold nothing; \"virt-failover claims prune\" removes them):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range other {
			why := string(c.Status)
			if !c.Known {
				why += ", in no pool"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.Pool, c.Resource, why, c.Domain, c.Alias, claims.Age(now.Sub(c.Time)))
		}
		tw.Flush()
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	for _, p := range st.Warnings {
		fmt.Fprintf(w, "warning: %s\n", p)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
