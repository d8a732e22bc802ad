package claims

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/sysfs"
	"github.com/virt-failover/virt-failover/policy"
)

// Resource states in a Status.
const (
	StateFree    = "free"
	StateClaimed = "claimed"
	StatePending = "pending"
	StateInUse   = "in use"
)

// Status is what this host's pools hold: the operator's view ("virt-failover status"), made from
// the same sources the hook decides from.
type Status struct {
	Policy   string        `json:"policy"`
	Ledger   string        `json:"ledger"`
	BootID   string        `json:"boot_id"`
	Pools    []PoolStatus  `json:"pools"`
	Claims   []ClaimStatus `json:"claims"`   // every claim in the ledger
	Problems []string      `json:"problems"` // pool entries that do not resolve here
	Warnings []string      `json:"warnings,omitempty"`
	// Parked are the devices the orchestrator unplugged from guests running here, from their
	// records (docs/metadata.md#parked).
	Parked []ParkedStatus `json:"parked"`
}

// ParkedStatus is a device unplugged from a running guest and why.
type ParkedStatus struct {
	Domain string `json:"domain"`
	Alias  string `json:"alias"`
	Kind   string `json:"kind"`
	Reason string `json:"reason"` // migration: to be plugged back; switch: on emulated until switched back
	Pool   string `json:"pool,omitempty"`
	Since  string `json:"since,omitempty"`
	Host   string `json:"claimed_on,omitempty"` // the host whose resource its definition names
}

// PoolStatus is one pool.
type PoolStatus struct {
	Name      string           `json:"name"`
	Counts    map[string]int   `json:"counts"` // by state, and "total"
	Resources []ResourceStatus `json:"resources"`
}

// ResourceStatus is one resource of a pool.
type ResourceStatus struct {
	Name   string              `json:"name"`
	Kind   policy.ResourceKind `json:"kind"`
	PF     string              `json:"pf,omitempty"`
	VF     *int                `json:"vf,omitempty"`
	Driver string              `json:"driver,omitempty"`
	State  string              `json:"state"`
	Domain string              `json:"domain,omitempty"`
	Device string              `json:"device,omitempty"`
	Since  *time.Time          `json:"since,omitempty"`
	Note   string              `json:"note,omitempty"`
}

// ClaimStatus is a claim and what it counts for now.
type ClaimStatus struct {
	ledger.Claim
	Status ledger.Status `json:"status"`  // live, expired or stale
	Known  bool          `json:"in_pool"` // its resource is in a pool of the policy
}

// HostStatus reads the pools (sysfs), the ledger and libvirt's status files of running domains.
func HostStatus(pol *policy.Policy, statusDir string, now time.Time) (*Status, error) {
	st := &Status{Policy: pol.Source, Problems: []string{}, Claims: []ClaimStatus{}, Pools: []PoolStatus{}, Parked: []ParkedStatus{}}
	ps := policy.ResolvePools(pol, sysfs.FS{Root: pol.Host.SysfsRoot})
	for _, pr := range ps.Problems {
		st.Problems = append(st.Problems, pr.String())
	}
	running, err := ReadRunning(statusDir)
	if err != nil {
		st.Warnings = append(st.Warnings, "libvirt's status files: "+err.Error())
	}
	for _, rd := range running {
		if rd.Domain == nil {
			continue
		}
		for _, pk := range rd.Domain.Parked {
			st.Parked = append(st.Parked, ParkedStatus{Domain: rd.Name, Alias: pk.Alias, Kind: pk.Kind, Reason: pk.Reason,
				Pool: pk.Pool, Since: pk.Since, Host: pk.Host})
		}
	}
	used := usageOf(running, "")
	l := OpenLedger(pol)
	l.Now = func() time.Time { return now }
	st.Ledger, st.BootID = l.Path(), l.BootID
	err = l.View(func(tx *ledger.Tx) error {
		for _, c := range tx.Claims() {
			_, known := ps.Lookup(kindOfClaim(ps, c), c.Resource)
			st.Claims = append(st.Claims, ClaimStatus{Claim: c, Status: tx.Status(c), Known: known})
		}
		for _, name := range ps.Names {
			p := PoolStatus{Name: name, Counts: map[string]int{}, Resources: []ResourceStatus{}}
			for _, r := range ps.ByName[name].Resources {
				if r.Kind == policy.KindVF {
					r.Driver = ps.DriverOf(r)
				}
				rs := ResourceStatus{Name: r.Name, Kind: r.Kind, PF: r.PF, Driver: r.Driver, State: StateFree}
				if r.Index >= 0 {
					rs.VF = &r.Index
				}
				if h, ok := tx.Holder(r.Pool, r.Name); ok {
					rs.State, rs.Domain, rs.Device, rs.Since = StateClaimed, h.Domain, h.Alias, &h.Time
					if h.State == ledger.Pending {
						rs.State = StatePending
						rs.Note = "expires in " + roundDuration(h.Expires.Sub(now))
					}
					if doms := used[resKey{r.Kind, r.Name}]; len(doms) > 0 && !slices.Contains(doms, h.Domain) {
						rs.Note = "also used by running guest " + strings.Join(doms, ", ") + "!"
					}
				} else if doms := used[resKey{r.Kind, r.Name}]; len(doms) > 0 {
					rs.State, rs.Domain = StateInUse, strings.Join(doms, ",")
					rs.Note = "running, not claimed (claimed at its next start; install seeds running guests)"
				} else if r.Kind == policy.KindVF && r.Driver == "vfio-pci" {
					rs.State = StateInUse
					rs.Note = "bound to vfio-pci although no running guest has it"
				}
				p.Counts[rs.State]++
				p.Counts["total"]++
				p.Resources = append(p.Resources, rs)
			}
			st.Pools = append(st.Pools, p)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	return st, nil
}

func kindOfClaim(ps *policy.Pools, c ledger.Claim) policy.ResourceKind {
	if _, ok := ps.Lookup(policy.KindVF, c.Resource); ok {
		return policy.KindVF
	}
	return policy.KindNetwork
}

func roundDuration(d time.Duration) string {
	if d < 0 {
		return "0s"
	}
	return Age(d)
}

// Age renders a duration the way status shows ages: "45s", "12m", "3h5m", "2d4h".
func Age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// ErrRunning is returned by ReleaseClaims for a domain libvirt still runs.
var ErrRunning = errors.New("the domain is running")

// ReleaseClaims frees the claims of a domain, named by name or UUID, and returns them. A domain
// that runs (it has a status file) is refused unless force: another guest could get its resource.
func ReleaseClaims(pol *policy.Policy, statusDir, domain string, force bool) ([]ledger.Claim, error) {
	if !force {
		running, _ := ReadRunning(statusDir)
		for _, rd := range running {
			if rd.Name == domain || strings.EqualFold(rd.UUID, domain) {
				return nil, fmt.Errorf("%w: %s (%s)", ErrRunning, rd.Name, rd.File)
			}
		}
	}
	var gone []ledger.Claim
	l := OpenLedger(pol)
	err := l.Update(func(tx *ledger.Tx) error {
		gone = tx.Remove(func(c ledger.Claim) bool { return c.Domain == domain || strings.EqualFold(c.UUID, domain) })
		return nil
	})
	return gone, err
}

// PruneClaims removes stale claims (an earlier boot), expired pending ones, and the claims
// PlanReap frees: those of domains that no longer run here (running), older than claim_ttl.
func PruneClaims(pol *policy.Policy, running Running, now time.Time) ([]Reap, error) {
	var gone []Reap
	l := OpenLedger(pol)
	l.Now = func() time.Time { return now }
	err := l.Update(func(tx *ledger.Tx) error {
		why := map[ledger.Claim]string{}
		for _, r := range PlanReap(tx, running, "", now, pol.State.ClaimTTL) {
			why[r.Claim] = r.Why
		}
		var p Plan
		for _, c := range tx.Claims() {
			w, ok := why[c]
			switch st := tx.Status(c); {
			case ok:
			case st == ledger.Stale:
				w = "taken in an earlier boot"
			case st == ledger.Expired:
				w = "pending, expired " + Age(now.Sub(c.Expires)) + " ago"
			default:
				continue
			}
			p.Reaps = append(p.Reaps, Reap{Claim: c, Why: w})
		}
		gone = p.Reaps
		_, _, err := Apply(tx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return gone, nil
}

// OpenLedger opens the policy's claims ledger with the policy's lock deadline ([state]
// lock_timeout): an operator's command, like the hook, gives up on a lock another process holds
// too long instead of waiting for it without a word.
func OpenLedger(pol *policy.Policy) *ledger.Ledger {
	l := ledger.Open(pol.State.Dir)
	l.LockTimeout = pol.State.LockTimeout
	return l
}
