package claims

import (
	"fmt"
	"time"

	"github.com/virt-failover/virt-failover/internal/ledger"
)

// Reap is a claim freed because nothing holds it any more, and why.
type Reap struct {
	Claim ledger.Claim
	Why   string
}

// String renders a reaped claim for the log: "POOL: RESOURCE for DOMAIN ALIAS (STATE): WHY".
func (r Reap) String() string { return Line(r.Claim) + ": " + r.Why }

// PlanReap lists the claims whose domain no longer runs on this host, as the status files of
// running (libvirt's status directory) show: a release that could not take the ledger's lock
// leaves its claim behind, and the next transaction frees it. It frees nothing when running is
// not Complete (what does not show may run all the same), and never a claim of except (the domain
// the caller decides for, whose own plan handles its claims), a pending claim within its TTL (an
// incoming migration before its prepare) or a confirmed claim younger than grace (a domain
// starting: libvirt writes its status file after prepare). Pure: it reads snap and changes
// nothing.
func PlanReap(snap Snapshot, running Running, except string, now time.Time, grace time.Duration) []Reap {
	if !running.Complete() {
		return nil
	}
	var out []Reap
	for _, c := range snap.Claims() {
		if c.UUID == except || running.runs(c) {
			continue
		}
		gone := fmt.Sprintf("%s does not run on this host (no status file in %s)", c.Domain, running.Dir)
		var why string
		switch st := snap.Status(c); {
		case st == ledger.Stale:
			why = gone + " and its claim was taken in an earlier boot"
		case st == ledger.Expired:
			why = gone + " and its pending claim expired " + Age(now.Sub(c.Expires)) + " ago"
		case c.State == ledger.Pending:
			continue // an incoming migration, before its prepare
		case now.Sub(c.Time) < grace:
			continue // maybe starting: its status file comes after prepare
		default:
			why = gone + " and no release freed its claim, confirmed " + Age(now.Sub(c.Time)) + " ago"
		}
		out = append(out, Reap{Claim: c, Why: why})
	}
	return out
}
