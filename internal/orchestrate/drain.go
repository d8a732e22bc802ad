package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/policy/lint"
)

// Destination is a host a drain may move guests to.
type Destination struct {
	// URI is the destination as the SOURCE daemon reaches it (peer to peer); MigrateURI is where
	// QEMU's stream goes ("" for libvirt's choice).
	URI, MigrateURI string
	// Conn is the drain's own connection to it; nil when it could not be reached, and
	// Unreachable says why.
	Conn        virt.Hypervisor
	Unreachable error
}

// DrainOptions are the settings of PlanDrain and Drain.
type DrainOptions struct {
	Source virt.Hypervisor
	// Dests are tried in this order for each guest: the next when one is unreachable, its
	// checks fail or its hook refuses the guest.
	Dests []Destination
	// Parallel is how many guests move at a time (at least 1).
	Parallel                     int
	UnplugTimeout, ReplugTimeout time.Duration
	Linter                       *lint.Linter
	// Logf returns the progress logger of one guest's moves (nil: no progress).
	Logf func(domain string) Logf
	Now  func() time.Time
}

// Outcomes of a destination tried for a guest (Attempt.Outcome).
const (
	TriedUnreachable = "unreachable" // the drain could not connect to it
	TriedUnsuitable  = "unsuitable"  // its preflight check failed (it runs the guest already, or does not answer)
	TriedRefused     = "refused"     // its hook refused the incoming migration; nothing changed
)

// Outcomes of a guest in a drain (GuestResult.Outcome).
const (
	DrainMoved  = "migrated" // it runs on a destination with every device
	DrainStayed = "stayed"   // it runs here, unchanged or rolled back, with every device
	DrainFailed = "failed"   // not every device is back, here or on the destination (State says)
)

// DrainPlan is what a drain does: every guest that runs on the source, in the order they move,
// and the first destination each tries, or why it stays.
type DrainPlan struct {
	Source string         `json:"source"`
	Dests  []string       `json:"destinations"`
	Guests []PlannedGuest `json:"guests"`
}

// PlannedGuest is one guest of a drain's plan.
type PlannedGuest struct {
	Domain string `json:"domain"`
	State  string `json:"state"`
	// First is the index in the destinations of the first one to try (-1: the guest stays);
	// Dest its URI.
	First int    `json:"-"`
	Dest  string `json:"destination,omitempty"`
	// Plan and Checks are the migration's plan and preflight against that destination.
	Plan   *Plan   `json:"-"`
	Checks []Check `json:"preflight,omitempty"`
	// Stay says why the guest is not moved ("" when it is).
	Stay string `json:"stays,omitempty"`
	// Passed are the destinations passed over before First, and why.
	Passed []Attempt `json:"passed_over,omitempty"`
}

// Attempt is one destination tried (or passed over) for a guest.
type Attempt struct {
	Dest    string `json:"destination"`
	Outcome string `json:"outcome"` // Tried* or a migration's outcome
	Why     string `json:"why,omitempty"`
}

// GuestResult is what a drain did with one guest.
type GuestResult struct {
	Domain string `json:"domain"`
	// Dest is the destination it runs on now ("" when it did not move).
	Dest    string `json:"destination,omitempty"`
	Outcome string `json:"outcome"` // Drain*
	// Why says why it did not move; State where it runs and what it has.
	Why      string    `json:"why,omitempty"`
	State    string    `json:"state"`
	Attempts []Attempt `json:"attempts,omitempty"`
	// Start is when its first move began after the drain's start; Duration how long its
	// moves took.
	Start    time.Duration `json:"-"`
	StartMS  int64         `json:"started_ms"`
	Duration time.Duration `json:"-"`
	MS       int64         `json:"ms"`
	// Report is its last migration's (nil when none was tried).
	Report *Report `json:"migration,omitempty"`
}

// DrainReport is what a drain did, guest by guest in the plan's order.
type DrainReport struct {
	Source string        `json:"source"`
	Guests []GuestResult `json:"guests"`
	// Moved counts the guests that run on a destination with every device now.
	Moved    int `json:"moved"`
	NotMoved int `json:"not_moved"`
}

// PlanDrain lists the guests that run on the source, by name, and plans each one's move: the
// preflight of Migrate (a dry run) against the first destination that is reachable and whose
// checks pass. A guest whose own checks fail (not running, lint errors, assigned devices nothing
// fails over) stays, with why; so does one no destination can take.
func PlanDrain(ctx context.Context, o DrainOptions) (*DrainPlan, error) {
	doms, err := o.Source.ActiveDomains(ctx)
	if err != nil {
		return nil, err
	}
	plan := &DrainPlan{Source: o.Source.URI()}
	for _, d := range o.Dests {
		plan.Dests = append(plan.Dests, d.URI)
	}
	for _, d := range doms {
		g := PlannedGuest{Domain: d.Name, State: d.State.String(), First: -1}
		for i, dest := range o.Dests {
			if dest.Conn == nil {
				g.Passed = append(g.Passed, Attempt{dest.URI, TriedUnreachable, oneLine(dest.Unreachable)})
				continue
			}
			rep, err := Migrate(ctx, o.migrateOptions(d.Name, dest, true))
			if err == nil {
				g.First, g.Dest, g.Plan, g.Checks = i, dest.URI, rep.Plan, rep.Checks
				break
			}
			if destinationFailed(rep) {
				g.Passed = append(g.Passed, Attempt{dest.URI, TriedUnsuitable, oneLine(err)})
				continue
			}
			g.Plan, g.Checks, g.Stay = rep.Plan, rep.Checks, oneLine(err)
			break
		}
		if g.First < 0 && g.Stay == "" {
			g.Stay = "no destination can take it: " + passedOver(g.Passed)
		}
		plan.Guests = append(plan.Guests, g)
	}
	return plan, nil
}

func (o DrainOptions) migrateOptions(dom string, dest Destination, dry bool) MigrateOptions {
	logf := Logf(func(string, ...any) {})
	if o.Logf != nil && !dry {
		logf = o.Logf(dom)
	}
	return MigrateOptions{Domain: dom, Source: o.Source, Dest: dest.Conn, DestURI: dest.URI, MigrateURI: dest.MigrateURI,
		UnplugTimeout: o.UnplugTimeout, ReplugTimeout: o.ReplugTimeout, Linter: o.Linter, DryRun: dry, Logf: logf, Now: o.Now}
}

// Drain moves the planned guests, o.Parallel at a time in the plan's order: each tries its first
// destination, and the next ones in turn while a destination is unreachable, its checks fail or
// its hook refuses the guest (a refusal comes before anything changes, and the guest is rolled
// back on the source with every device). Any other failure ends the guest's attempts: it would
// likely fail the same way anywhere, and a failed migration may have cost the guest its devices
// for a while already. The report lists every guest, in the plan's order.
func Drain(ctx context.Context, o DrainOptions, plan *DrainPlan) *DrainReport {
	if o.Parallel < 1 {
		o.Parallel = 1
	}
	start := time.Now()
	rep := &DrainReport{Source: plan.Source, Guests: make([]GuestResult, len(plan.Guests))}
	slots := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i, g := range plan.Guests {
		if g.Stay != "" {
			rep.Guests[i] = GuestResult{Domain: g.Domain, Outcome: DrainStayed, Why: g.Stay, Attempts: g.Passed,
				State: fmt.Sprintf("unchanged on %s", plan.Source)}
			continue
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			began := time.Now()
			r := o.move(ctx, g)
			r.Start, r.Duration = began.Sub(start), time.Since(began)
			r.StartMS, r.MS = r.Start.Milliseconds(), r.Duration.Milliseconds()
			rep.Guests[i] = r
		}()
	}
	wg.Wait()
	for _, g := range rep.Guests {
		if g.Outcome == DrainMoved {
			rep.Moved++
		} else {
			rep.NotMoved++
		}
	}
	return rep
}

// move tries a guest's destinations from its planned first one on.
func (o DrainOptions) move(ctx context.Context, g PlannedGuest) GuestResult {
	r := GuestResult{Domain: g.Domain, Attempts: g.Passed}
	for _, dest := range o.Dests[g.First:] {
		if dest.Conn == nil {
			r.Attempts = append(r.Attempts, Attempt{dest.URI, TriedUnreachable, oneLine(dest.Unreachable)})
			continue
		}
		rep, err := Migrate(ctx, o.migrateOptions(g.Domain, dest, false))
		r.Report, r.State = rep, rep.State
		switch {
		case err == nil:
			r.Attempts = append(r.Attempts, Attempt{Dest: dest.URI, Outcome: rep.Outcome})
			r.Dest, r.Outcome = dest.URI, DrainMoved
			return r
		case destinationFailed(rep):
			r.Attempts = append(r.Attempts, Attempt{dest.URI, TriedUnsuitable, oneLine(err)})
			continue
		case refused(rep, err):
			r.Attempts = append(r.Attempts, Attempt{dest.URI, TriedRefused, refusal(err)})
			continue
		}
		r.Attempts = append(r.Attempts, Attempt{dest.URI, rep.Outcome, oneLine(err)})
		r.Why, r.Outcome = oneLine(err), DrainStayed
		if rep.Outcome != "rolled-back" && !strings.HasPrefix(rep.State, "unchanged") {
			r.Outcome = DrainFailed
			if rep.Where == dest.Conn.URI() {
				r.Dest = dest.URI
			}
		}
		return r
	}
	r.Outcome = DrainStayed
	r.Why = "no destination took it: " + passedOver(r.Attempts)
	return r
}

// destinationFailed reports a migration stopped by its preflight check of the destination
// (unreachable, or running the guest already): nothing was changed, another one may do.
func destinationFailed(rep *Report) bool {
	for _, c := range rep.Checks {
		if c.Name == "destination" && c.Status == "failed" {
			return true
		}
	}
	return false
}

// refused reports a migration the destination's hook refused, and rolled back on the source
// with every device.
func refused(rep *Report, err error) bool {
	return errors.Is(err, virt.ErrHookFailed) && rep.Outcome == "rolled-back"
}

// refusal is the reason a destination's hook gave: libvirt carries it in its error after the
// hook's command line ("virt-failover: qemu DOM migrate begin: refused: ..."), first line only.
func refusal(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "refused: "); i >= 0 {
		msg = msg[i+len("refused: "):]
	}
	return oneLine(errors.New(msg))
}

// oneLine is an error's first line.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return strings.TrimSpace(msg)
}

// passedOver says in one line why each destination did not take a guest.
func passedOver(as []Attempt) string {
	if len(as) == 0 {
		return "no destination given"
	}
	var parts []string
	for _, a := range as {
		if a.Outcome == TriedUnreachable {
			parts = append(parts, a.Dest+" unreachable") // why is said once, with the plan
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s)", a.Dest, a.Outcome, a.Why))
	}
	return strings.Join(parts, "; ")
}
