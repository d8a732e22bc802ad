package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/policy"
)

// SwitchOptions are the settings of SwitchToEmulated, SwitchToAssigned, Repair and Replug.
type SwitchOptions struct {
	Domain string
	Host   virt.Hypervisor
	// Detach are aliases of further devices to unplug (SwitchToEmulated).
	Detach                       []string
	UnplugTimeout, ReplugTimeout time.Duration
	DryRun                       bool
	Logf                         Logf
	Now                          func() time.Time
	// Claim, if set, claims on this host the pool resources of the domain's devices parked for a
	// migration before they are plugged back (claims.PlanParked): it returns the definition with
	// the records rewritten to this host's resources, nil when nothing changed. Nil plugs the
	// records' definitions back as they are.
	Claim func(ctx context.Context, domainXML []byte) ([]byte, error)
}

func (o *SwitchOptions) guest() *guest {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &guest{h: o.Host, name: o.Domain, logf: o.Logf, now: o.Now}
}

// SwitchResult is what a switch or repair did.
type SwitchResult struct {
	Plan     *Plan
	Parked   []string // devices detached (to emulated)
	Plugged  []string // devices attached (to assigned, repair, replug)
	Dropped  []string // parked records dropped because the device was in the domain already
	Left     []string // parked records left alone (reason switch, for repair)
	Duration time.Duration
}

// SwitchToEmulated parks every recorded primary of a running domain (teaming ones too: the guest
// falls back to its standby on its own) and the devices named in Detach, with the reason
// "switch": they stay out, across migrations, until SwitchToAssigned.
func SwitchToEmulated(ctx context.Context, o SwitchOptions) (*SwitchResult, error) {
	g := o.guest()
	start := time.Now()
	res := &SwitchResult{}
	defer func() { res.Duration = time.Since(start) }()
	dom, err := running(ctx, g)
	if err != nil {
		return res, err
	}
	plan, err := PlanSwitch(dom, o.Detach)
	if err != nil {
		return res, err
	}
	res.Plan = plan
	if o.DryRun {
		return res, nil
	}
	for _, d := range plan.Park {
		o.Logf("unplug %s (%s) from %s", d.Alias, d.Kind, o.Domain)
		if err := g.park(ctx, d, policy.ParkedForSwitch, o.UnplugTimeout); err != nil {
			// Leave the guest as it was: plug back what this switch took.
			var errs []error
			for _, alias := range res.Parked {
				if rerr := g.replugOne(ctx, alias, o.ReplugTimeout); rerr != nil {
					errs = append(errs, rerr)
				}
			}
			return res, errors.Join(append([]error{err}, errs...)...)
		}
		res.Parked = append(res.Parked, d.Alias)
	}
	return res, nil
}

// SwitchToAssigned plugs back every parked device of a running domain, whatever the reason,
// claiming each one's resource from this host's pool first when its record carries no claim of
// this host (o.Claim).
func SwitchToAssigned(ctx context.Context, o SwitchOptions) (*SwitchResult, error) {
	return plugBack(ctx, o, func(*policy.Parked) bool { return true })
}

// Repair converges a domain whose orchestration was interrupted: it waits for a migration job of
// the domain to end, then plugs back every device parked for a migration (a device in the domain
// already only loses its record) and leaves devices parked by a switch parked. Nothing is
// attached twice.
func Repair(ctx context.Context, o SwitchOptions) (*SwitchResult, error) {
	return plugBack(ctx, o, func(p *policy.Parked) bool { return p.Reason == policy.ParkedForMigration })
}

func plugBack(ctx context.Context, o SwitchOptions, want func(*policy.Parked) bool) (*SwitchResult, error) {
	g := o.guest()
	start := time.Now()
	res := &SwitchResult{}
	defer func() { res.Duration = time.Since(start) }()
	if err := waitNoJob(ctx, o.Host, o.Domain, o.Logf); err != nil {
		return res, err
	}
	dom, err := running(ctx, g)
	if err != nil {
		return res, err
	}
	res.Plan = planPlugBack(dom, want)
	if o.DryRun {
		return res, nil
	}
	// Devices switched to emulated that are to come back now become devices parked for a
	// migration that has arrived: the claims and the replug worker treat them alike.
	var switched []string
	for _, pk := range dom.Parked {
		if want(pk) && pk.Reason == policy.ParkedForSwitch && len(dom.Aliases[pk.Alias]) == 0 {
			switched = append(switched, pk.Alias)
		}
	}
	for _, alias := range switched {
		if pk := dom.ParkedFor(alias); pk != nil {
			if err := g.setReason(ctx, dom, pk, policy.ParkedForMigration); err != nil {
				return res, err
			}
			if dom, err = g.live(ctx); err != nil {
				return res, err
			}
		}
	}
	if o.Claim != nil && slices.ContainsFunc(dom.Parked, func(p *policy.Parked) bool { return want(p) && p.Pool != "" && len(dom.Aliases[p.Alias]) == 0 }) {
		src, err := g.h.LiveXML(ctx, o.Domain)
		if err != nil {
			return res, err
		}
		out, err := o.Claim(ctx, src)
		if err != nil {
			return res, fmt.Errorf("claim on %s: %w", o.Host.URI(), err)
		}
		if out != nil {
			claimed, err := parseDomain(out, "the definition with this host's claims")
			if err != nil {
				return res, err
			}
			payload, err := claimed.FailoverMetadata()
			if err != nil {
				return res, err
			}
			meta, _, err := g.impacts(ctx, "")
			if err != nil {
				return res, err
			}
			if err := g.setMetadata(ctx, payload, meta); err != nil {
				return res, err
			}
			if dom, err = g.live(ctx); err != nil {
				return res, err
			}
		}
	}
	var errs []error
	for _, pk := range dom.Parked {
		if !want(pk) {
			res.Left = append(res.Left, pk.Alias)
			continue
		}
		if len(dom.Aliases[pk.Alias]) > 0 {
			if err := g.unpark(ctx, pk.Alias); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Dropped = append(res.Dropped, pk.Alias)
			continue
		}
		o.Logf("attach %s (%s) to %s", pk.Alias, pk.Kind, o.Domain)
		if err := g.replugOne(ctx, pk.Alias, o.ReplugTimeout); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Plugged = append(res.Plugged, pk.Alias)
	}
	if err := g.sweep(ctx); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// running reads the live definition of a domain that must be running.
func running(ctx context.Context, g *guest) (*policy.Domain, error) {
	info, err := g.h.Domain(ctx, g.name)
	if err != nil {
		return nil, err
	}
	if info.State != virt.StateRunning && info.State != virt.StatePaused {
		return nil, fmt.Errorf("%s on %s is %s: devices are plugged into a running domain only", g.name, g.h.URI(), info.State)
	}
	return g.live(ctx)
}

// waitNoJob waits while the domain has a job (an orchestrator killed during a migration leaves
// libvirt's migration running: it ends on its own, one way or the other).
func waitNoJob(ctx context.Context, h virt.Hypervisor, dom string, logf Logf) error {
	said := false
	for {
		st, err := h.JobStats(ctx, dom)
		if err != nil || st.Type == virt.JobNone {
			return nil
		}
		if !said {
			logf("waiting for the %s job of %s to end", st.Type, dom)
			said = true
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Replug is the worker the hook starts when a domain with devices parked for a migration arrives:
// it waits for the domain to run (the incoming migration to finish), then plugs them back as
// Repair does, retrying with backoff until ctx ends. A domain that goes away (the migration
// failed) ends it without error.
func Replug(ctx context.Context, o SwitchOptions) (*SwitchResult, error) {
	o.guest()
	backoff := 250 * time.Millisecond
	var last error
	for {
		info, err := o.Host.Domain(ctx, o.Domain)
		switch {
		case errors.Is(err, virt.ErrNoDomain):
			o.Logf("%s is not on %s (any more): nothing to plug back", o.Domain, o.Host.URI())
			return &SwitchResult{}, nil
		case err == nil && info.State == virt.StateRunning:
			res, err := Repair(ctx, o)
			if err == nil {
				return res, nil
			}
			last = err
			o.Logf("plug back into %s: %v; again in %s", o.Domain, err, backoff)
		case err != nil:
			last = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = fmt.Errorf("%s did not run on %s", o.Domain, o.Host.URI())
			}
			return &SwitchResult{}, fmt.Errorf("%w (gave up: %v)", last, context.Cause(ctx))
		case <-time.After(backoff):
		}
		if info.State == virt.StateRunning {
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}
