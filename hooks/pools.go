package hooks

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/trust"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

func (r *run) ledger() *ledger.Ledger {
	l := claims.OpenLedger(r.pol)
	l.Now = r.opts.Now
	l.Deadline = r.deadline
	return l
}

// planned is a plan the hook made and, unless it is a dry run, carried out.
type planned struct {
	plan     claims.Plan
	reaped   []claims.Reap
	taken    []ledger.Claim
	released []ledger.Claim
	actions  []string // MACs programmed, or (dry run) to program
}

// errRefused aborts a ledger transaction whose plan refuses after it changed the ledger; nothing is
// written.
var errRefused = errors.New("refused")

// reaper says which claims a transaction may reap: those of domains that do not run here
// (running), except the claims of the domain the hook decides for (its UUID).
type reaper struct {
	running claims.Running
	except  string
}

// carry makes a plan from the ledger and carries it out in one transaction. First the claims of
// domains that no longer run here are reaped (claims.PlanReap: a release that could not take the
// lock left them), so the plan sees the resources they held as free; then the plan is made from
// the transaction's own view, applied to it, and the VF MACs it needs are programmed before the
// ledger is written, so a failure leaves no claim behind. A plan that refuses still writes the
// reaps. A dry run plans from a snapshot, writes nothing and programs nothing: it reports the same
// plan.
func (r *run) carry(rp reaper, make func(claims.Snapshot) (claims.Plan, error)) (planned, error) {
	var pd planned
	l := r.ledger()
	// The ledger says which guest has which VF: only one no one but root can change is read.
	if err := trust.Check(l.Dir, os.Geteuid() == 0); err != nil {
		return pd, err
	}
	reap := func(tx *ledger.Tx) error {
		reaps := claims.PlanReap(tx, rp.running, rp.except, r.opts.Now(), r.pol.State.ClaimTTL)
		_, _, err := claims.Apply(tx, claims.Plan{Reaps: reaps})
		pd.reaped = reaps
		return err
	}
	if r.opts.DryRun {
		err := l.View(func(tx *ledger.Tx) error {
			if err := reap(tx); err != nil {
				return err
			}
			p, err := make(tx)
			pd.plan = p
			return err
		})
		for _, t := range pd.plan.Takes {
			pd.taken = append(pd.taken, ledger.Claim{Pool: t.Pool, Resource: t.Resource, Owner: t.Owner, State: t.State})
		}
		pd.released = pd.plan.Releases
		for _, j := range pd.plan.MACs {
			pd.actions = append(pd.actions, fmt.Sprintf("%s: would set the MAC of VF %d of %s (%s) to %s", j.Label, j.VF.Index, j.VF.PF, j.VF.Addr, j.MAC))
		}
		return pd, err
	}
	r.at("waiting for the claims ledger's lock " + l.LockPath())
	err := l.Update(func(tx *ledger.Tx) error {
		r.at("planning the claims")
		if err := reap(tx); err != nil {
			return err
		}
		p, err := make(tx)
		if err != nil {
			return err
		}
		pd.plan = p
		if p.Refusal != nil {
			return nil // the reaps stand
		}
		if pd.taken, pd.released, err = claims.Apply(tx, p); err != nil {
			return err
		}
		r.at("programming VF MACs")
		done, rf := claims.ProgramMACs(r.opts.VFMAC, p.MACs)
		pd.actions = done
		if rf != nil {
			pd.plan.Refusal = rf
			return errRefused
		}
		r.at("writing the claims ledger " + l.Path())
		return nil
	})
	if errors.Is(err, errRefused) {
		pd.reaped, pd.taken, pd.released = nil, nil, nil // nothing was written
		err = nil
	}
	if err != nil {
		pd.reaped = nil
	}
	return pd, err
}

// claimsErrorOutcome reports a transaction that could not be carried out; a state directory
// the hook does not trust comes with the fix of each problem.
func claimsErrorOutcome(err error) outcome {
	var pe *policy.Error
	if errors.As(err, &pe) {
		return policyErrorOutcome("claims", err)
	}
	return errorOutcome("claims", err)
}

// outcome turns what a plan did into the hook's outcome.
func (pd planned) outcome(notes []string) outcome {
	var reaped []string
	for _, rp := range pd.reaped {
		reaped = append(reaped, rp.String())
	}
	if rf := pd.plan.Refusal; rf != nil {
		return outcome{decision: Refuse, reason: rf.Reason, hints: rf.Hints, actions: pd.actions, reaped: reaped}
	}
	out := outcome{decision: Pass, actions: pd.actions, message: strings.Join(notes, "; "), reaped: reaped}
	for _, c := range pd.taken {
		out.claims = append(out.claims, claims.Line(c))
	}
	for _, c := range pd.released {
		out.releases = append(out.releases, claims.Line(c))
	}
	if pd.plan.Output != nil {
		out.decision, out.output, out.changes = Rewrite, pd.plan.Output, pd.plan.Changes
	}
	if len(pd.plan.Conflicts) > 0 {
		out.decision, out.message = Error, ""
		out.reason = "claims: " + strings.Join(pd.plan.Conflicts, "; ")
	}
	return out
}

// incoming decides migrate begin and restore begin for a domain with pool devices
// (claims.PlanIncoming).
func (r *run) incoming(h *claims.Host, s *claims.Subject, doc *xmlxform.Doc) outcome {
	pd, err := r.carry(reaper{h.Running, s.UUID}, func(snap claims.Snapshot) (claims.Plan, error) { return claims.PlanIncoming(h, s, doc, snap) })
	if err != nil {
		return claimsErrorOutcome(err)
	}
	return pd.outcome(s.Notes)
}

// prepare confirms the domain's claims at prepare begin (claims.PlanPrepare).
func (r *run) prepare(h *claims.Host, s *claims.Subject) outcome {
	pd, err := r.carry(reaper{h.Running, s.UUID}, func(snap claims.Snapshot) (claims.Plan, error) { return claims.PlanPrepare(h, s, snap), nil })
	if err != nil {
		return claimsErrorOutcome(err)
	}
	return pd.outcome(s.Notes)
}

// rebuild records the running domain's resources at reconnect begin (claims.PlanRebuild). It never
// refuses: a failing reconnect makes libvirt kill the guest.
func (r *run) rebuild(h *claims.Host, s *claims.Subject) outcome {
	pd, err := r.carry(reaper{h.Running, s.UUID}, func(snap claims.Snapshot) (claims.Plan, error) { return claims.PlanRebuild(h, s, snap), nil })
	if err != nil {
		return claimsErrorOutcome(err)
	}
	return pd.outcome(s.Notes)
}

// releaseClaims frees every claim of the domain on this host (release end).
func (r *run) releaseClaims(uuid string) outcome {
	if _, err := os.Stat(r.ledger().Path()); err != nil {
		return outcome{decision: Pass} // no ledger, nothing to free
	}
	r.at("reading libvirt's status files")
	rp := reaper{claims.LoadRunning(r.opts.Paths.StatusDir()), uuid}
	pd, err := r.carry(rp, func(snap claims.Snapshot) (claims.Plan, error) { return claims.PlanRelease(uuid, snap), nil })
	if err != nil {
		return claimsErrorOutcome(err)
	}
	return pd.outcome(nil)
}

// subject loads the host's pools for a domain that uses them; nil when it uses none.
func (r *run) subject(dom *policy.Domain) (*claims.Host, *claims.Subject) {
	r.at("reading the host's pools (sysfs) and libvirt's status files")
	h, s := claims.Load(r.pol, r.opts.Paths.StatusDir(), dom, r.inv.Object)
	if h != nil && r.opts.Hostname != "" {
		h.Name = r.opts.Hostname
	}
	return h, s
}
