// Package claims is the claims engine: this host's pools, the resources its running domains use,
// and the ledger of claims. Planning is pure — Plan* functions take a domain, the host and a
// snapshot of the ledger and say what to claim, remap, program and release, or why to refuse —
// and Apply carries a plan out inside a ledger transaction. The hook, its dry run, status, claims
// and install all go through it.
package claims

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/shell"
	"github.com/virt-failover/virt-failover/internal/sysfs"
	"github.com/virt-failover/virt-failover/internal/vfmac"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Host is what one decision knows of this host: its policy, its pools resolved against sysfs, and
// the resources the other running domains use.
type Host struct {
	Pol     *policy.Policy
	Sys     sysfs.FS
	Pools   *policy.Pools
	Running Running // what runs here (Load reads it)
	// Name is this host's name (its hostname), which a parked device's record names when this
	// host has claimed the device's resource for its re-plug (docs/metadata.md#parked).
	Name string
	used usage
}

// Subject is the domain a plan is for: its identity and the devices that use pool resources.
type Subject struct {
	Dom   *policy.Domain
	UUID  string // owner of its claims; "name:NAME" when the definition has no UUID
	Name  string
	Devs  []*policy.PoolDevice
	Notes []string // what the host could not read, for the log
}

// Identity returns the domain's UUID and name; the UUID names the claims' owner.
func Identity(dom *policy.Domain, fallbackName string) (uuid, name string) {
	name, uuid = dom.Name, dom.UUID
	if name == "" {
		name = fallbackName
	}
	if uuid == "" {
		uuid = "name:" + name
	}
	return uuid, name
}

// Load reads the host's side of a decision for dom: nil, nil when dom uses no pool resource, so a
// domain without pool devices costs no sysfs or status-file access.
func Load(pol *policy.Policy, statusDir string, dom *policy.Domain, fallbackName string) (*Host, *Subject) {
	if !policy.WantsPools(dom, pol) {
		return nil, nil
	}
	h := resolve(pol)
	s := h.subject(dom, fallbackName)
	if s == nil {
		return nil, nil
	}
	h.Running = LoadRunning(statusDir)
	if h.Running.Err != nil {
		s.Notes = append(s.Notes, "reading libvirt's status files: "+h.Running.Err.Error())
	}
	h.used = usageOf(h.Running.Domains, s.UUID)
	return h, s
}

// resolve reads the host's pools (sysfs).
func resolve(pol *policy.Policy) *Host {
	h := &Host{Pol: pol, Sys: sysfs.FS{Root: pol.Host.SysfsRoot}, Name: HostName()}
	h.Pools = policy.ResolvePools(pol, h.Sys)
	return h
}

// HostName is this host's name as parked records name it: its hostname (uname -n), "" when it
// cannot be read.
func HostName() string {
	name, _ := os.Hostname()
	return name
}

// subject finds dom's pool devices on the host; nil when it has none.
func (h *Host) subject(dom *policy.Domain, fallbackName string) *Subject {
	s := &Subject{Dom: dom}
	s.UUID, s.Name = Identity(dom, fallbackName)
	s.Devs, s.Notes = policy.PoolDevices(dom, h.Pol, h.Pools)
	if len(s.Devs) == 0 {
		return nil
	}
	return s
}

// Snapshot is the ledger as a plan reads it; *ledger.Tx is one.
type Snapshot interface {
	Holder(pool, resource string) (ledger.Claim, bool)
	Claims() []ledger.Claim
	Status(ledger.Claim) ledger.Status
}

// Take is one claim a plan takes (or confirms: taking a resource the owner holds already).
type Take struct {
	Pool, Resource string
	Owner          ledger.Owner
	State          ledger.State
	TTL            time.Duration // pending claims only
	// Fresh: a new run of the domain (prepare), so a claim it still held from an earlier run
	// starts its age anew; reconnect's confirmation keeps the age of the run it finds.
	Fresh bool
}

func (t Take) String() string {
	return fmt.Sprintf("%s: %s for %s %s (%s)", t.Pool, t.Resource, t.Owner.Domain, t.Owner.Alias, t.State)
}

// MACJob is a VF MAC to program through its PF once the decision stands (plain <hostdev> primaries;
// libvirt programs <interface type='hostdev'> itself).
type MACJob struct {
	Label string
	VF    sysfs.VF
	MAC   vfmac.MAC
}

func (j MACJob) String() string {
	return fmt.Sprintf("%s: VF %d of %s (%s) MAC set to %s", j.Label, j.VF.Index, j.VF.PF, j.VF.Addr, j.MAC)
}

// Refusal is a plan's "no": the reason (one line) and hint lines ("hint: ...").
type Refusal struct {
	Reason string
	Hints  []string
}

func (r *Refusal) Error() string { return r.Reason }

func refuse(reason string, hints ...string) *Refusal { return &Refusal{Reason: reason, Hints: hints} }

// Plan is what a decision does to the host: the claims to take, the definition's host-side
// rewrite, the VF MACs to program, the claims to release or reap; or a refusal, and nothing else.
type Plan struct {
	Takes     []Take
	Releases  []ledger.Claim // the claims to remove, as the snapshot has them
	Reaps     []Reap         // other domains' claims to remove (PlanReap)
	Changes   []string       // what the rewrite changes, for the log
	Output    []byte         // the rewritten definition; nil when unchanged
	MACs      []MACJob
	Refusal   *Refusal
	Conflicts []string // rebuild: resources it could not claim (it never refuses)
}

// view is the snapshot with the plan's own takes on top, so a plan with two devices never gives
// both the same resource.
type view struct {
	snap  Snapshot
	taken map[[2]string]ledger.Owner
}

func (v *view) holder(pool, res string) (ledger.Owner, ledger.State, bool) {
	if o, ok := v.taken[[2]string{pool, res}]; ok {
		return o, ledger.Pending, true
	}
	if c, ok := v.snap.Holder(pool, res); ok {
		return c.Owner, c.State, true
	}
	return ledger.Owner{}, "", false
}

func (v *view) take(t Take) {
	if v.taken == nil {
		v.taken = map[[2]string]ledger.Owner{}
	}
	v.taken[[2]string{t.Pool, t.Resource}] = t.Owner
}

func owner(s *Subject, dev *policy.PoolDevice) ledger.Owner {
	return ledger.Owner{UUID: s.UUID, Domain: s.Name, Alias: dev.Alias}
}

// whyTaken says why res is not free for dev, "" when it is: claimed by another device, used by
// another running domain, or (binding true) a VF that libvirt would bind to vfio-pci itself
// (managed='yes') but that is bound to vfio-pci already while no running guest has it: something
// outside libvirt holds it.
func (h *Host) whyTaken(v *view, s *Subject, res policy.Resource, dev *policy.PoolDevice, binding bool) string {
	if o, st, ok := v.holder(res.Pool, res.Name); ok {
		if o.Same(owner(s, dev)) {
			return ""
		}
		what := "claimed"
		if st == ledger.Pending {
			what = "pending (an incoming migration)"
		}
		return fmt.Sprintf("%s by %s (%s)", what, o.Domain, o.Alias)
	}
	if doms := h.used[resKey{res.Kind, res.Name}]; len(doms) > 0 {
		return "in use by running guest " + strings.Join(doms, ", ")
	}
	if binding && res.Kind == policy.KindVF && dev.Managed && h.Pools.DriverOf(res) == "vfio-pci" {
		return "bound to vfio-pci although no running guest has it"
	}
	return ""
}

// counts says how pool's resources of dev's kind are taken, for a refusal.
func (h *Host) counts(v *view, s *Subject, dev *policy.PoolDevice) policy.Counts {
	var c policy.Counts
	for _, res := range h.Pools.ByName[dev.Pool].Resources {
		if res.Kind != dev.Kind {
			continue
		}
		c.Total++
		if o, st, ok := v.holder(res.Pool, res.Name); ok && !o.Same(owner(s, dev)) {
			if st == ledger.Pending {
				c.Pending++
			} else {
				c.Claimed++
			}
			continue
		}
		if h.whyTaken(v, s, res, dev, true) != "" {
			c.InUse++
		}
	}
	return c
}

// free returns the first free resource of dev's pool and kind.
func (h *Host) free(v *view, s *Subject, dev *policy.PoolDevice) (policy.Resource, bool) {
	for _, res := range h.Pools.ByName[dev.Pool].Resources {
		if res.Kind == dev.Kind && h.whyTaken(v, s, res, dev, true) == "" {
			return res, true
		}
	}
	return policy.Resource{}, false
}

func (h *Host) noFree(v *view, s *Subject, dev *policy.PoolDevice) *Refusal {
	noun := h.Pools.ByName[dev.Pool].Noun()
	if dev.Kind == policy.KindVF {
		noun = "VF"
	} else if noun == "resource" {
		noun = "network"
	}
	return refuse(fmt.Sprintf("no free %s in pool '%s' on this host for %s (%s)", noun, dev.Pool, dev.Label, h.counts(v, s, dev)),
		`hint: "virt-failover status" lists the claims; free one or add resources to the pool in `+h.Pol.Source)
}

// macJob plans the MAC programming of a plain <hostdev> primary given VF addr.
func (h *Host) macJob(dev *policy.PoolDevice, addr string) (MACJob, *Refusal) {
	if dev.MAC == "" {
		return MACJob{}, refuse(fmt.Sprintf("%s: its standby has no MAC to give VF %s; the guest would never pair them", dev.Label, addr),
			"hint: give the standby <interface> a <mac address='...'/> (virt-failover pair does)")
	}
	mac, err := vfmac.ParseMAC(dev.MAC)
	if err != nil {
		return MACJob{}, refuse(fmt.Sprintf("%s: standby MAC %q: %v", dev.Label, dev.MAC, err))
	}
	vf, err := h.Sys.VFOf(addr)
	if err != nil {
		return MACJob{}, refuse(fmt.Sprintf("%s: cannot program the MAC of %s: %v", dev.Label, addr, err),
			"hint: a plain <hostdev> primary needs its VF's MAC set through its PF; use <interface type='hostdev'> to let libvirt do it")
	}
	return MACJob{Label: dev.Label, VF: vf, MAC: mac}, nil
}

// PlanIncoming decides migrate begin and restore begin: every primary keeps its incoming resource
// when it is in its pool on this host and free, or gets a free one, its host-side source rewritten;
// each is claimed pending until prepare confirms it. No free resource refuses. [rewrite] applies to
// everything else. The rewrite passes the ABI guard before the plan claims anything, and plain
// <hostdev> primaries get their VF's MAC. A device the orchestrator parked for the migration is a
// primary too: its definition inside its record is rewritten (metadata, which libvirt's ABI check
// does not compare) and the record names this host as the one that claimed it. The error is for
// what kept it from planning.
func PlanIncoming(h *Host, s *Subject, doc *xmlxform.Doc, snap Snapshot) (Plan, error) {
	var skip []*xmlxform.Element
	for _, dev := range s.Devs {
		if dev.Primary {
			skip = append(skip, dev.El)
		}
	}
	rw := policy.PlanRewrite(doc, h.Pol, skip...)
	p := Plan{Changes: rw.Changes}
	v := &view{snap: snap}
	for _, dev := range s.Devs {
		res, inPool := dev.InPool(h.Pools)
		keep := inPool && h.whyTaken(v, s, res, dev, true) == ""
		if !keep && !dev.Primary {
			return Plan{Refusal: refuse(fmt.Sprintf("%s uses %s of pool '%s', which is %s", dev.Label, dev.Describe(dev.Current), dev.Pool,
				h.whyTaken(v, s, res, dev, true)), `hint: "virt-failover status" lists the claims`)}, nil
		}
		if !keep {
			var ok bool
			if res, ok = h.free(v, s, dev); !ok {
				return Plan{Refusal: h.noFree(v, s, dev)}, nil
			}
			line, err := dev.Remap(rw.Transform, res.Name)
			if err != nil {
				return Plan{}, err
			}
			p.Changes = append(p.Changes, line)
		}
		t := Take{Pool: res.Pool, Resource: res.Name, Owner: owner(s, dev), State: ledger.Pending, TTL: h.Pol.State.ClaimTTL}
		v.take(t)
		p.Takes = append(p.Takes, t)
		if dev.Plain && res.Kind == policy.KindVF {
			job, rf := h.macJob(dev, res.Name)
			if rf != nil {
				return Plan{Refusal: rf}, nil
			}
			p.MACs = append(p.MACs, job)
		}
		if pk := dev.Parked; pk != nil && pk.Host != h.Name && h.Name != "" {
			rw.Transform.SetAttr(pk.El, "host", h.Name)
			p.Changes = append(p.Changes, fmt.Sprintf("%s: claimed for its re-plug on host %s", dev.Label, h.Name))
		}
	}
	if len(p.Changes) > 0 {
		out, err := CheckedRewrite(doc, rw.Transform)
		if err != nil {
			return Plan{}, err
		}
		p.Output = out
	}
	return p, nil
}

// CheckedRewrite renders a rewritten document and runs the ABI guard on it.
func CheckedRewrite(doc *xmlxform.Doc, t *xmlxform.Transform) ([]byte, error) {
	out, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	after, err := xmlxform.Parse(out)
	if err != nil {
		return nil, fmt.Errorf("the rewritten definition does not parse: %w", err)
	}
	if err := policy.CheckABI(doc, after); err != nil {
		return nil, fmt.Errorf("the rewrite would change the guest ABI, so libvirt would refuse it: %w", err)
	}
	return out, nil
}

// PlanPrepare decides prepare begin (any start): each pool device's resource must exist in its pool
// on this host and be free or already this domain's; it is claimed (confirmed), the domain's other
// claims released. A definition naming a resource this host does not have (a definition copied by
// virsh migrate --persistent, which the migrate hook never sees) is refused with the free resource
// to use and the command that fixes it.
func PlanPrepare(h *Host, s *Subject, snap Snapshot) Plan {
	var p Plan
	v := &view{snap: snap}
	keep := map[string]bool{}
	for _, dev := range s.Devs {
		res, inPool := dev.InPool(h.Pools)
		if dev.Parked != nil {
			// A parked device never stops a start: its resource is confirmed when this host
			// claimed it (the record names it) and still can, else left to whoever plugs it back.
			if dev.Parked.Host == h.Name && h.Name != "" && inPool && h.whyTaken(v, s, res, dev, true) == "" {
				t := Take{Pool: res.Pool, Resource: res.Name, Owner: owner(s, dev), State: ledger.Confirmed}
				v.take(t)
				p.Takes = append(p.Takes, t)
				keep[dev.Alias] = true
			}
			continue
		}
		var why string
		switch {
		case !inPool && dev.Current == "":
			why = fmt.Sprintf("%s names no host resource, and its pool is '%s'", dev.Label, dev.Pool)
		case !inPool:
			why = fmt.Sprintf("%s uses %s, which is not in pool '%s' on this host", dev.Label, dev.Describe(dev.Current), dev.Pool)
		default:
			if w := h.whyTaken(v, s, res, dev, true); w != "" {
				why = fmt.Sprintf("%s uses %s of pool '%s', which is %s", dev.Label, dev.Describe(dev.Current), dev.Pool, w)
			}
		}
		if why != "" {
			return Plan{Refusal: h.prepareRefusal(v, s, dev, why)}
		}
		t := Take{Pool: res.Pool, Resource: res.Name, Owner: owner(s, dev), State: ledger.Confirmed, Fresh: true}
		v.take(t)
		p.Takes = append(p.Takes, t)
		keep[dev.Alias] = true
		if dev.Plain {
			job, rf := h.macJob(dev, res.Name)
			if rf != nil {
				return Plan{Refusal: rf}
			}
			p.MACs = append(p.MACs, job)
		}
	}
	p.Releases = others(snap, s.UUID, keep)
	return p
}

func (h *Host) prepareRefusal(v *view, s *Subject, dev *policy.PoolDevice, why string) *Refusal {
	free, ok := h.free(v, s, dev)
	if !ok {
		return refuse(why+"; and no other is free ("+h.counts(v, s, dev).String()+")",
			`hint: "virt-failover status" lists the claims; free one or add resources to the pool in `+h.Pol.Source)
	}
	return refuse(why,
		fmt.Sprintf(`hint: %s is free in pool '%s': run "virsh edit %s" and set %s`, dev.Describe(free.Name), dev.Pool, shell.Quote(s.Name), dev.SourceFix(free.Name)),
		"hint: a definition copied from another host (virsh migrate --persistent) keeps that host's resources")
}

// PlanRebuild records a running domain's resources (reconnect begin: libvirtd restarted; install
// seeding guests already running): it claims what the domain uses and releases its other claims.
// It never refuses: a failing reconnect makes libvirt kill the guest. A resource in no pool, or one
// another live claim holds, is a conflict to report.
func PlanRebuild(h *Host, s *Subject, snap Snapshot) Plan {
	var p Plan
	v := &view{snap: snap}
	keep := map[string]bool{}
	for _, dev := range s.Devs {
		if dev.Parked != nil && (dev.Parked.Host != h.Name || h.Name == "") {
			continue // parked, and its resource claimed elsewhere or not at all
		}
		res, ok := h.Pools.Lookup(dev.Kind, dev.Current)
		if !ok {
			p.Conflicts = append(p.Conflicts, fmt.Sprintf("%s uses %s, which is in no pool on this host", dev.Label, dev.Describe(dev.Current)))
			continue
		}
		if o, _, held := v.holder(res.Pool, res.Name); held && !o.Same(owner(s, dev)) {
			p.Conflicts = append(p.Conflicts, fmt.Sprintf("%s uses %s, but %v: %s %s holds %s", dev.Label, dev.Describe(dev.Current),
				ledger.ErrHeld, o.Domain, o.Alias, res.Name))
			continue
		}
		t := Take{Pool: res.Pool, Resource: res.Name, Owner: owner(s, dev), State: ledger.Confirmed}
		v.take(t)
		p.Takes = append(p.Takes, t)
		keep[dev.Alias] = true
	}
	p.Releases = others(snap, s.UUID, keep)
	return p
}

// PlanRelease frees every claim of the domain (release end: it stopped, left by migration, or its
// incoming migration failed).
func PlanRelease(uuid string, snap Snapshot) Plan {
	return Plan{Releases: others(snap, uuid, nil)}
}

// others lists uuid's claims whose alias keep does not name.
func others(snap Snapshot, uuid string, keep map[string]bool) []ledger.Claim {
	var out []ledger.Claim
	for _, c := range snap.Claims() {
		if c.UUID == uuid && !keep[c.Alias] {
			out = append(out, c)
		}
	}
	return out
}

// Apply carries a plan's ledger part out in tx: it removes its reaps, takes its claims and removes
// its releases, and returns the claims taken and released as the ledger held them. A plan that
// refuses changes nothing.
func Apply(tx *ledger.Tx, p Plan) (taken, released []ledger.Claim, err error) {
	if p.Refusal != nil {
		return nil, nil, nil
	}
	type key struct{ pool, res, uuid, alias string }
	keyOf := func(c ledger.Claim) key { return key{c.Pool, c.Resource, c.UUID, c.Alias} }
	reap := map[key]bool{}
	for _, r := range p.Reaps {
		reap[keyOf(r.Claim)] = true
	}
	tx.Remove(func(c ledger.Claim) bool { return reap[keyOf(c)] })
	for _, t := range p.Takes {
		if t.Fresh {
			tx.Remove(func(c ledger.Claim) bool {
				return c.Owner.Same(t.Owner) && c.Pool == t.Pool && c.Resource == t.Resource && c.State == ledger.Confirmed
			})
		}
		c, err := tx.Take(t.Pool, t.Resource, t.Owner, t.State, t.TTL)
		if err != nil {
			return nil, nil, err
		}
		taken = append(taken, c)
	}
	drop := map[key]bool{}
	for _, c := range p.Releases {
		drop[keyOf(c)] = true
	}
	released = tx.Remove(func(c ledger.Claim) bool { return drop[keyOf(c)] })
	return taken, released, nil
}

// ProgramMACs sets each VF's MAC through its PF; the first failure is a refusal, with the jobs done
// before it.
func ProgramMACs(set vfmac.Setter, jobs []MACJob) ([]string, *Refusal) {
	var done []string
	for _, j := range jobs {
		if err := set.SetMAC(j.VF.PF, j.VF.Index, j.MAC); err != nil {
			return done, refuse(fmt.Sprintf("%s: setting the MAC of VF %d of %s (%s) to %s failed: %v; the guest would never pair it with its standby",
				j.Label, j.VF.Index, j.VF.PF, j.VF.Addr, j.MAC, err))
		}
		done = append(done, j.String())
	}
	return done, nil
}

// Line renders a claim for the log.
func Line(c ledger.Claim) string {
	return fmt.Sprintf("%s: %s for %s %s (%s)", c.Pool, c.Resource, c.Domain, c.Alias, c.State)
}

// PlanParked claims, for a domain running on this host, the resources of its parked devices that
// come from a pool here, before they are plugged back (switch --to assigned, repair, the replug
// worker): as PlanIncoming does for an arriving domain, each gets its record's resource when that
// is free in its pool here, or a free one, written into its definition inside the record with
// this host's name; but the claims are confirmed at once (the domain runs: no prepare follows),
// and nothing else of the domain is claimed or rewritten. No free resource refuses.
func PlanParked(h *Host, s *Subject, doc *xmlxform.Doc, snap Snapshot) (Plan, error) {
	p, err := PlanIncoming(h, s, doc, snap)
	if err != nil || p.Refusal != nil {
		return p, err
	}
	parked := map[ledger.Owner]bool{}
	labels := map[string]bool{}
	for _, dev := range s.Devs {
		if dev.Parked != nil {
			parked[owner(s, dev)] = true
			labels[dev.Label] = true
		}
	}
	var takes []Take
	for _, t := range p.Takes {
		if parked[t.Owner] {
			t.State, t.TTL = ledger.Confirmed, 0
			takes = append(takes, t)
		}
	}
	var macs []MACJob
	for _, j := range p.MACs {
		if labels[j.Label] {
			macs = append(macs, j)
		}
	}
	p.Takes, p.MACs = takes, macs
	return p, nil
}
