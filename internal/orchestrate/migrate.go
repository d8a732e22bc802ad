package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/policy/lint"
)

// MigrateOptions are the settings of Migrate.
type MigrateOptions struct {
	Domain string
	// Source and Dest are connections to both hosts; DestURI is the destination as the SOURCE
	// daemon reaches it (peer to peer), MigrateURI where QEMU's stream goes ("" for libvirt's
	// choice).
	Source, Dest        virt.Hypervisor
	DestURI, MigrateURI string
	// Detach are aliases of further devices to unplug for the migration (no fallback).
	Detach []string
	// UnplugTimeout bounds each detach and QEMU's wait for the guest to release its teaming
	// primaries (wait-unplug): past it the migration is aborted and QEMU plugs them back.
	// ReplugTimeout bounds each attach.
	UnplugTimeout, ReplugTimeout time.Duration
	// DryRun stops after the preflight and the plan.
	DryRun bool
	// Linter checks the live definition in the preflight (errors stop the migration).
	Linter *lint.Linter
	Logf   Logf
	Now    func() time.Time
}

// Phase names, in the order of a migration.
const (
	PhasePreflight  = "preflight"
	PhaseUnplug     = "unplug"
	PhaseMigration  = "migration"
	PhaseDowntime   = "downtime"
	PhaseWaitUnplug = "wait-unplug"
	PhaseReplug     = "replug"
	PhaseRollback   = "rollback"
	PhaseTotal      = "total"
)

// Report is what a migration did: its plan, its phases' durations and its outcome.
type Report struct {
	Domain string   `json:"domain"`
	Source string   `json:"source"`
	Dest   string   `json:"destination"`
	Plan   *Plan    `json:"-"`
	Checks []Check  `json:"preflight"`
	Phases []Timing `json:"phases"`
	Parked []string `json:"parked,omitempty"`
	// Plugged are the parked devices back in the guest: plugged back by this run, or on the
	// destination by the replug worker its hook started, whichever came first.
	Plugged []string `json:"plugged,omitempty"`
	// QEMUFailover lists the teaming primaries QEMU unplugged (UNPLUG_PRIMARY) and the standbys
	// it negotiated failover for again on the destination (FAILOVER_NEGOTIATED).
	Unplugged  []string `json:"qemu_unplugged,omitempty"`
	Negotiated []string `json:"qemu_negotiated,omitempty"`
	// Outcome is "migrated", "planned" (dry run), "rolled-back" or "failed"; Where is the host the
	// guest runs on at the end, State what it has.
	Outcome string `json:"outcome"`
	Where   string `json:"runs_on"`
	State   string `json:"state"`
	Error   string `json:"error,omitempty"`
}

// Timing is one phase's duration.
type Timing struct {
	Phase    string        `json:"phase"`
	Duration time.Duration `json:"-"`
	Millis   int64         `json:"ms"`
}

func (r *Report) phase(name string, d time.Duration) {
	r.Phases = append(r.Phases, Timing{Phase: name, Duration: d, Millis: d.Milliseconds()})
}

// Time returns a phase's duration.
func (r *Report) Time(name string) (time.Duration, bool) {
	for _, t := range r.Phases {
		if t.Phase == name {
			return t.Duration, true
		}
	}
	return 0, false
}

// Check is one preflight check.
type Check struct {
	Name   string `json:"check"`
	Status string `json:"status"` // "ok", "unchecked" or "failed"
	Detail string `json:"detail"`
}

// Migrate moves a running domain to another host with every assigned device: it plans, checks,
// parks (detaches) what QEMU cannot fail over, migrates live peer to peer while it supervises
// QEMU's own unplug of teaming primaries, plugs the parked devices back on the destination from
// the records the destination's hook rewrote, and rolls everything back on the source when the
// migration does not happen. The report is filled in either way.
func Migrate(ctx context.Context, o MigrateOptions) (*Report, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	rep := &Report{Domain: o.Domain, Source: o.Source.URI(), Dest: o.DestURI, Where: o.Source.URI()}
	total := time.Now()
	defer func() { rep.phase(PhaseTotal, time.Since(total)) }()
	src := &guest{h: o.Source, name: o.Domain, logf: o.Logf, now: o.Now}
	dst := &guest{h: o.Dest, name: o.Domain, logf: o.Logf, now: o.Now}

	// 1. Plan and preflight.
	start := time.Now()
	plan, err := preflight(ctx, o, src, rep)
	rep.phase(PhasePreflight, time.Since(start))
	rep.Plan = plan
	if err != nil {
		rep.Outcome, rep.State, rep.Error = "failed", "unchanged: nothing was unplugged", err.Error()
		return rep, err
	}
	if o.DryRun {
		rep.Outcome, rep.State = "planned", "unchanged (dry run)"
		return rep, nil
	}

	// 2. Park.
	start = time.Now()
	for _, d := range plan.Park {
		o.Logf("unplug %s (%s) from %s", d.Alias, d.Kind, o.Domain)
		if err := src.park(ctx, d, policy.ParkedForMigration, o.UnplugTimeout); err != nil {
			rep.phase(PhaseUnplug, time.Since(start))
			return rollback(ctx, o, src, rep, fmt.Errorf("unplug: %w", err))
		}
		rep.Parked = append(rep.Parked, d.Alias)
	}
	rep.phase(PhaseUnplug, time.Since(start))

	// 3. Migrate, supervising QEMU's unplug of teaming primaries.
	mctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	qemuEvents, err := o.Source.QEMUEvents(mctx, o.Domain, "UNPLUG_PRIMARY")
	if err != nil {
		return rollback(ctx, o, src, rep, err)
	}
	negotiated, err := o.Dest.QEMUEvents(mctx, o.Domain, "FAILOVER_NEGOTIATED")
	if err != nil {
		return rollback(ctx, o, src, rep, err)
	}
	var flags virt.MigrateFlags
	if persistent, err := src.inactive(ctx); err != nil {
		return rollback(ctx, o, src, rep, err)
	} else if persistent != nil {
		flags |= virt.PersistDest | virt.UndefineSource
	}
	lastLine, lastPhase := time.Time{}, ""
	var unplugTimedOut bool
	opts := virt.MigrateOptions{MigrateURI: o.MigrateURI, Flags: flags, Dest: o.Dest, Progress: func(p virt.Progress) {
		if p.Phase == "wait-unplug" && len(plan.QEMU) > 0 && o.UnplugTimeout > 0 && !p.PhaseSince.IsZero() &&
			time.Since(p.PhaseSince) > o.UnplugTimeout && !unplugTimedOut {
			unplugTimedOut = true
			abort(fmt.Errorf("the guest did not release its teaming primaries within --unplug-timeout %s (QEMU's wait-unplug); QEMU plugs them back", o.UnplugTimeout))
		}
		// A phase change (QEMU's event) is said at once, without the job's figures, which are of
		// the last reading before it; the readings in between get a line a second.
		switch {
		case p.Phase != lastPhase:
			lastLine, lastPhase = time.Now(), p.Phase
			o.Logf("migrating: phase %s", p.Phase)
		case time.Since(lastLine) >= time.Second:
			lastLine = time.Now()
			o.Logf("migrating: phase %s, %s of %s left, %s elapsed", orDash(p.Phase), bytes(p.DataRemaining), bytes(p.DataTotal), p.Elapsed.Round(100*time.Millisecond))
		}
	}}
	o.Logf("migrate %s to %s", o.Domain, o.DestURI)
	res, merr := o.Source.Migrate(mctx, o.Domain, o.DestURI, opts)
	rep.phase(PhaseMigration, res.Duration)
	if d, ok := res.PhaseTime("wait-unplug"); ok {
		rep.phase(PhaseWaitUnplug, d)
	}
	if res.HaveStats {
		rep.phase(PhaseDowntime, res.Stats.Downtime)
	}
	drainQEMU(qemuEvents, &rep.Unplugged)
	if merr != nil {
		abort(nil)
		if unplugTimedOut {
			merr = fmt.Errorf("%w: %v", merr, context.Cause(mctx))
		}
		return rollback(ctx, o, src, rep, merr)
	}
	rep.Where = o.Dest.URI()

	// 4. Re-plug on the destination, from its claims.
	start = time.Now()
	plugged, perr := dst.replug(ctx, func(p *policy.Parked) bool { return p.Reason == policy.ParkedForMigration }, o.ReplugTimeout)
	rep.Plugged, perr = checkBack(ctx, dst, rep.Parked, plugged, perr)
	if len(plan.QEMU) > 0 {
		waitNegotiated(ctx, negotiated, len(plan.QEMU), o.ReplugTimeout, &rep.Negotiated)
	}
	rep.phase(PhaseReplug, time.Since(start))
	abort(nil)
	if perr != nil {
		rep.Outcome, rep.Error = "failed", perr.Error()
		rep.State = fmt.Sprintf("migrated to %s; not every parked device is back: %v (\"virt-failover repair %s\" on %s retries)", o.Dest.URI(), perr, o.Domain, o.Dest.URI())
		return rep, perr
	}
	var missing []string
	for _, d := range plan.QEMU {
		if !slices.Contains(rep.Negotiated, d.Standby) {
			missing = append(missing, d.Standby)
		}
	}
	rep.Outcome = "migrated"
	rep.State = fmt.Sprintf("runs on %s with every device", o.Dest.URI())
	if len(missing) > 0 {
		rep.State += fmt.Sprintf("; QEMU did not report failover negotiated for %s within %s (the guest plugs the primary back once its driver acks it)", strings.Join(missing, ", "), o.ReplugTimeout)
	}
	return rep, nil
}

// checkBack makes sure each device this run parked is back in the guest on the destination: the
// replug worker the destination's hook starts may have plugged one (and dropped its record)
// before this run's replug read the definition. It returns the devices back, those plugged by
// this run first, and the errors (a device neither in the guest nor parked is one).
func checkBack(ctx context.Context, dst *guest, parked, plugged []string, errs error) ([]string, error) {
	live, err := dst.live(ctx)
	if err != nil {
		return plugged, errors.Join(errs, err)
	}
	for _, alias := range parked {
		switch {
		case slices.Contains(plugged, alias), live.ParkedFor(alias) != nil: // back, or its error is in errs
		case len(live.Aliases[alias]) > 0:
			dst.logf("%s is back in %s (plugged by the destination's replug worker)", alias, dst.name)
			plugged = append(plugged, alias)
		default:
			errs = errors.Join(errs, fmt.Errorf("%s is neither in %s on %s nor parked there", alias, dst.name, dst.h.URI()))
		}
	}
	return plugged, errs
}

// preflight plans the migration from the live definition and checks what can be checked.
func preflight(ctx context.Context, o MigrateOptions, src *guest, rep *Report) (*Plan, error) {
	info, err := o.Source.Domain(ctx, o.Domain)
	if err != nil {
		return nil, err
	}
	if info.State != virt.StateRunning {
		return nil, fmt.Errorf("%s on %s is %s: only a running domain migrates live", o.Domain, o.Source.URI(), info.State)
	}
	dom, err := src.live(ctx)
	if err != nil {
		return nil, err
	}
	if o.Linter != nil {
		findings, err := o.Linter.CheckDomain(o.Domain+" (live)", dom)
		if err != nil {
			return nil, err
		}
		var errs []string
		for _, f := range findings {
			if f.Severity == lint.Error {
				errs = append(errs, f.String())
			}
		}
		if len(errs) > 0 {
			rep.Checks = append(rep.Checks, Check{"lint", "failed", strings.Join(errs, "; ")})
			return nil, fmt.Errorf("the live definition of %s has lint errors:\n%s", o.Domain, strings.Join(errs, "\n"))
		}
		rep.Checks = append(rep.Checks, Check{"lint", "ok", fmt.Sprintf("%d findings, no error", len(findings))})
	}
	plan, err := PlanMigration(dom, o.Detach)
	if err != nil {
		return nil, err
	}
	if len(plan.Blockers) > 0 {
		rep.Checks = append(rep.Checks, Check{"migratable", "failed", strings.Join(plan.Blockers, ", ")})
		return plan, fmt.Errorf("%s has assigned devices nothing fails over: %s; pair them (virt-failover pair) or name them with --detach", o.Domain, strings.Join(plan.Blockers, ", "))
	}
	rep.Checks = append(rep.Checks, Check{"migratable", "ok", fmt.Sprintf("%d for QEMU, %d to unplug", len(plan.QEMU), len(plan.Park))})
	rep.Checks = append(rep.Checks, guestReady(ctx, o.Source, dom, plan))
	if _, err := o.Dest.Domain(ctx, o.Domain); err == nil {
		if di, _ := o.Dest.Domain(ctx, o.Domain); di.State == virt.StateRunning || di.State == virt.StatePaused {
			rep.Checks = append(rep.Checks, Check{"destination", "failed", "the domain runs there already"})
			return plan, fmt.Errorf("%s runs on %s already", o.Domain, o.Dest.URI())
		}
	} else if !errors.Is(err, virt.ErrNoDomain) {
		rep.Checks = append(rep.Checks, Check{"destination", "failed", err.Error()})
		return plan, fmt.Errorf("destination %s: %w", o.Dest.URI(), err)
	}
	rep.Checks = append(rep.Checks, Check{"destination", "ok", "reachable, " + o.Dest.URI()})
	return plan, nil
}

// guestReady asks the guest agent whether the guest sees every primary and standby the plan
// relies on; without an agent the check is reported unchecked.
func guestReady(ctx context.Context, h virt.Hypervisor, dom *policy.Domain, plan *Plan) Check {
	if len(plan.QEMU)+len(plan.Park) == 0 {
		return Check{"guest", "ok", "no device to fail over"}
	}
	ifaces, err := h.InterfaceAddresses(ctx, dom.Name)
	if errors.Is(err, virt.ErrNoAgent) {
		return Check{"guest", "unchecked", "no guest agent: the guest side (net_failover, bond, multipath) is not checked"}
	}
	if err != nil {
		return Check{"guest", "unchecked", err.Error()}
	}
	macs := map[string]int{}
	for _, i := range ifaces {
		macs[strings.ToLower(i.MAC)]++
	}
	var problems []string
	for _, d := range plan.QEMU {
		n := dom.NICByAlias(d.Standby)
		if n != nil && macs[n.MAC] < 3 {
			problems = append(problems, fmt.Sprintf("%s: the guest shows %d interfaces with %s, net_failover makes 3 (failover not negotiated?)", d.Standby, macs[n.MAC], n.MAC))
		}
	}
	if len(problems) > 0 {
		return Check{"guest", "failed", strings.Join(problems, "; ")}
	}
	return Check{"guest", "ok", fmt.Sprintf("guest agent: %d interfaces", len(ifaces))}
}

// rollback plugs back on the source everything this migration parked and reports the outcome.
func rollback(ctx context.Context, o MigrateOptions, src *guest, rep *Report, cause error) (*Report, error) {
	start := time.Now()
	var errs []error
	if len(rep.Parked) > 0 {
		o.Logf("roll back: plug %s back into %s on %s", strings.Join(rep.Parked, ", "), o.Domain, o.Source.URI())
	}
	for _, alias := range rep.Parked {
		if err := src.replugOne(ctx, alias, o.ReplugTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if len(rep.Parked) > 0 {
		rep.phase(PhaseRollback, time.Since(start))
	}
	rep.Outcome, rep.Error = "rolled-back", cause.Error()
	rep.State = fmt.Sprintf("runs on %s with every device", o.Source.URI())
	if len(errs) > 0 {
		rep.Outcome = "failed"
		rep.State = fmt.Sprintf("runs on %s; not every device is back: %v (\"virt-failover repair %s\" retries)", o.Source.URI(), errors.Join(errs...), o.Domain)
		return rep, errors.Join(append([]error{cause}, errs...)...)
	}
	return rep, cause
}

func drainQEMU(ch <-chan virt.QEMUEvent, into *[]string) {
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return
			}
			*into = append(*into, e.Field("device-id"))
		default:
			return
		}
	}
}

func waitNegotiated(ctx context.Context, ch <-chan virt.QEMUEvent, n int, timeout time.Duration, into *[]string) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for len(*into) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				return
			}
			*into = append(*into, e.Field("device-id"))
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func bytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
