package hooks

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/sysfs"
	"github.com/virt-failover/virt-failover/internal/vfmac"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// poolCtx is what one invocation knows about this host's pools and the domain's pool devices.
type poolCtx struct {
	r      *run
	dom    *policy.Domain
	uuid   string
	name   string
	pools  *policy.Pools
	sys    sysfs.FS
	devs   []*policy.PoolDevice
	notes  []string
	used   usage // resources of the other running domains
	ledger *ledger.Ledger
}

// refusal aborts a ledger transaction with the outcome to report.
type refusal struct{ out outcome }

func (e *refusal) Error() string { return e.out.reason }

func refuse(reason string, hints ...string) error {
	return &refusal{outcome{decision: Refuse, reason: reason, hints: hints}}
}

// domainIdentity returns the domain's UUID and name; the UUID names the claims' owner.
func domainIdentity(dom *policy.Domain, fallbackName string) (uuid, name string) {
	name = fallbackName
	if n := dom.Root.Child("name"); n != nil {
		if v := strings.TrimSpace(n.Text(dom.Doc)); v != "" {
			name = v
		}
	}
	if u := dom.Root.Child("uuid"); u != nil {
		uuid = strings.ToLower(strings.TrimSpace(u.Text(dom.Doc)))
	}
	if uuid == "" {
		uuid = "name:" + name
	}
	return uuid, name
}

// poolContext gathers the host's pools for a domain that uses them; nil when it uses none, so a
// domain without pool devices costs no sysfs, status-file or ledger access.
func (r *run) poolContext(dom *policy.Domain) (*poolCtx, error) {
	if !policy.WantsPools(dom, r.pol) {
		return nil, nil
	}
	pc := &poolCtx{r: r, dom: dom, sys: sysfs.FS{Root: r.pol.Host.SysfsRoot}, ledger: r.ledger()}
	pc.uuid, pc.name = domainIdentity(dom, r.inv.Object)
	pc.pools = policy.ResolvePools(r.pol, pc.sys)
	pc.devs, pc.notes = policy.PoolDevices(dom, r.pol, pc.pools)
	if len(pc.devs) == 0 {
		return nil, nil
	}
	running, err := ReadRunning(r.opts.StatusDir)
	if err != nil {
		pc.notes = append(pc.notes, "reading libvirt's status files: "+err.Error())
	}
	pc.used = usageOf(running, pc.uuid)
	return pc, nil
}

func (r *run) ledger() *ledger.Ledger {
	l := ledger.Open(r.pol.State.Dir)
	l.Now = r.opts.Now
	return l
}

func (pc *poolCtx) owner(dev *policy.PoolDevice) ledger.Owner {
	return ledger.Owner{UUID: pc.uuid, Domain: pc.name, Alias: dev.Alias}
}

// whyTaken says why res is not free for dev, "" when it is: claimed by another device, used by
// another running domain, or (binding true) a VF that libvirt would bind to vfio-pci itself
// (managed='yes') but that is bound to vfio-pci already while no running guest has it: something
// outside libvirt holds it.
func (pc *poolCtx) whyTaken(tx *ledger.Tx, res policy.Resource, dev *policy.PoolDevice, binding bool) string {
	if h, ok := tx.Holder(res.Pool, res.Name); ok {
		if h.Owner.Same(pc.owner(dev)) {
			return ""
		}
		what := "claimed"
		if h.State == ledger.Pending {
			what = "pending (an incoming migration)"
		}
		return fmt.Sprintf("%s by %s (%s)", what, h.Domain, h.Alias)
	}
	if doms := pc.used[resKey{res.Kind, res.Name}]; len(doms) > 0 {
		return "in use by running guest " + strings.Join(doms, ", ")
	}
	if binding && res.Kind == policy.KindVF && dev.Managed && pc.pools.DriverOf(res) == "vfio-pci" {
		return "bound to vfio-pci although no running guest has it"
	}
	return ""
}

// counts says how pool's resources of dev's kind are taken, for a refusal.
func (pc *poolCtx) counts(tx *ledger.Tx, pool string, dev *policy.PoolDevice) policy.Counts {
	var c policy.Counts
	for _, res := range pc.pools.ByName[pool].Resources {
		if res.Kind != dev.Kind {
			continue
		}
		c.Total++
		if h, ok := tx.Holder(res.Pool, res.Name); ok && !h.Owner.Same(pc.owner(dev)) {
			if h.State == ledger.Pending {
				c.Pending++
			} else {
				c.Claimed++
			}
			continue
		}
		if pc.whyTaken(tx, res, dev, true) != "" {
			c.InUse++
		}
	}
	return c
}

// free returns the first free resource of dev's pool and kind.
func (pc *poolCtx) free(tx *ledger.Tx, dev *policy.PoolDevice) (policy.Resource, bool) {
	for _, res := range pc.pools.ByName[dev.Pool].Resources {
		if res.Kind == dev.Kind && pc.whyTaken(tx, res, dev, true) == "" {
			return res, true
		}
	}
	return policy.Resource{}, false
}

func (pc *poolCtx) noFree(tx *ledger.Tx, dev *policy.PoolDevice) error {
	noun := pc.pools.ByName[dev.Pool].Noun()
	if dev.Kind == policy.KindVF {
		noun = "VF"
	} else if noun == "resource" {
		noun = "network"
	}
	return refuse(fmt.Sprintf("no free %s in pool '%s' on this host for %s (%s)", noun, dev.Pool, dev.Label, pc.counts(tx, dev.Pool, dev)),
		`hint: "virt-failover status" lists the claims; free one or add resources to the pool in `+pc.r.pol.Source)
}

// claimLine renders a claim for the log.
func claimLine(c ledger.Claim) string {
	return fmt.Sprintf("%s: %s for %s %s (%s)", c.Pool, c.Resource, c.Domain, c.Alias, c.State)
}

// macJob is a VF MAC the hook programs once the decision stands.
type macJob struct {
	dev *policy.PoolDevice
	vf  sysfs.VF
	mac vfmac.MAC
}

// plainMAC prepares the MAC programming of a plain <hostdev> primary given VF addr.
func (pc *poolCtx) plainMAC(dev *policy.PoolDevice, addr string) (macJob, error) {
	if dev.MAC == "" {
		return macJob{}, refuse(fmt.Sprintf("%s: its standby has no MAC to give VF %s; the guest would never pair them", dev.Label, addr),
			"hint: give the standby <interface> a <mac address='...'/> (virt-failover pair does)")
	}
	mac, err := vfmac.ParseMAC(dev.MAC)
	if err != nil {
		return macJob{}, refuse(fmt.Sprintf("%s: standby MAC %q: %v", dev.Label, dev.MAC, err))
	}
	vf, err := pc.sys.VFOf(addr)
	if err != nil {
		return macJob{}, refuse(fmt.Sprintf("%s: cannot program the MAC of %s: %v", dev.Label, addr, err),
			"hint: a plain <hostdev> primary needs its VF's MAC set through its PF; use <interface type='hostdev'> to let libvirt do it")
	}
	return macJob{dev: dev, vf: vf, mac: mac}, nil
}

// programMACs sets each VF's MAC through its PF; the first failure refuses.
func (pc *poolCtx) programMACs(jobs []macJob) ([]string, error) {
	var done []string
	for _, j := range jobs {
		if err := pc.r.opts.VFMAC.SetMAC(j.vf.PF, j.vf.Index, j.mac); err != nil {
			return done, refuse(fmt.Sprintf("%s: setting the MAC of VF %d of %s (%s) to %s failed: %v; the guest would never pair it with its standby",
				j.dev.Label, j.vf.Index, j.vf.PF, j.vf.Addr, j.mac, err))
		}
		done = append(done, fmt.Sprintf("%s: VF %d of %s (%s) MAC set to %s", j.dev.Label, j.vf.Index, j.vf.PF, j.vf.Addr, j.mac))
	}
	return done, nil
}

// transaction runs fn on the ledger: for real, or on a snapshot that is never written (dry run).
func (pc *poolCtx) transaction(fn func(tx *ledger.Tx) error) error {
	if pc.r.opts.DryRun {
		return pc.ledger.View(fn)
	}
	return pc.ledger.Update(fn)
}

// asOutcome turns a transaction's error into the outcome to report.
func asOutcome(err error, what string) outcome {
	var rf *refusal
	if errors.As(err, &rf) {
		return rf.out
	}
	return errorOutcome(what, err)
}

// incoming decides migrate begin and restore begin for a domain with pool devices: every primary
// keeps its incoming resource when it is in its pool on this host and free, or gets a free one,
// its host-side source rewritten; each is claimed pending until prepare confirms it. No free
// resource refuses, and nothing is claimed. [rewrite] applies to everything else. The ABI guard
// runs before anything is claimed, and plain <hostdev> primaries get their VF's MAC.
func (pc *poolCtx) incoming(doc *xmlxform.Doc) outcome {
	var skip []*xmlxform.Element
	for _, dev := range pc.devs {
		if dev.Primary {
			skip = append(skip, dev.El)
		}
	}
	var out outcome
	err := pc.transaction(func(tx *ledger.Tx) error {
		out = outcome{decision: Pass}
		plan := policy.PlanRewrite(doc, pc.r.pol, skip...)
		changes := plan.Changes
		var claims []ledger.Claim
		var jobs []macJob
		for _, dev := range pc.devs {
			res, inPool := dev.InPool(pc.pools)
			keep := inPool && pc.whyTaken(tx, res, dev, true) == ""
			if !keep && !dev.Primary {
				return refuse(fmt.Sprintf("%s uses %s of pool '%s', which is %s", dev.Label, dev.Describe(dev.Current), dev.Pool,
					pc.whyTaken(tx, res, dev, true)), `hint: "virt-failover status" lists the claims`)
			}
			if !keep {
				var ok bool
				if res, ok = pc.free(tx, dev); !ok {
					return pc.noFree(tx, dev)
				}
				line, err := dev.Remap(plan.Transform, res.Name)
				if err != nil {
					return err
				}
				changes = append(changes, line)
			}
			c, err := tx.Take(res.Pool, res.Name, pc.owner(dev), ledger.Pending, pc.r.pol.State.ClaimTTL)
			if err != nil {
				return err
			}
			claims = append(claims, c)
			if dev.Plain && res.Kind == policy.KindVF {
				job, err := pc.plainMAC(dev, res.Name)
				if err != nil {
					return err
				}
				jobs = append(jobs, job)
			}
		}
		for _, c := range claims {
			out.claims = append(out.claims, claimLine(c))
		}
		if len(changes) > 0 {
			b, err := checkedRewrite(doc, plan.Transform)
			if err != nil {
				return err
			}
			out = outcome{decision: Rewrite, output: b, changes: changes, claims: out.claims}
		}
		if !pc.r.opts.DryRun {
			done, err := pc.programMACs(jobs)
			out.actions = done
			if err != nil {
				return err
			}
		} else {
			for _, j := range jobs {
				out.actions = append(out.actions, fmt.Sprintf("%s: would set the MAC of VF %d of %s (%s) to %s", j.dev.Label, j.vf.Index, j.vf.PF, j.vf.Addr, j.mac))
			}
		}
		return nil
	})
	if err != nil {
		return asOutcome(err, "claims")
	}
	out.message = strings.Join(pc.notes, "; ")
	return out
}

// checkedRewrite renders the rewritten document and runs the ABI guard on it.
func checkedRewrite(doc *xmlxform.Doc, t *xmlxform.Transform) ([]byte, error) {
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

// prepare confirms the domain's claims at prepare begin (any start): each pool device's resource
// must exist in its pool on this host and be free or already this domain's. A definition naming a
// resource this host does not have (a definition copied by virsh migrate --persistent, which the
// migrate hook never sees) is refused with the free resource to use and the command that fixes it.
func (pc *poolCtx) prepare() outcome {
	var out outcome
	err := pc.transaction(func(tx *ledger.Tx) error {
		out = outcome{decision: Pass}
		keep := map[string]bool{}
		for _, dev := range pc.devs {
			res, inPool := dev.InPool(pc.pools)
			var why string
			switch {
			case !inPool && dev.Current == "":
				why = fmt.Sprintf("%s names no host resource, and its pool is '%s'", dev.Label, dev.Pool)
			case !inPool:
				why = fmt.Sprintf("%s uses %s, which is not in pool '%s' on this host", dev.Label, dev.Describe(dev.Current), dev.Pool)
			default:
				if w := pc.whyTaken(tx, res, dev, true); w != "" {
					why = fmt.Sprintf("%s uses %s of pool '%s', which is %s", dev.Label, dev.Describe(dev.Current), dev.Pool, w)
				}
			}
			if why != "" {
				return pc.prepareRefusal(tx, dev, why)
			}
			c, err := tx.Take(res.Pool, res.Name, pc.owner(dev), ledger.Confirmed, 0)
			if err != nil {
				return err
			}
			keep[dev.Alias] = true
			out.claims = append(out.claims, claimLine(c))
			if dev.Plain && !pc.r.opts.DryRun {
				job, err := pc.plainMAC(dev, res.Name)
				if err != nil {
					return err
				}
				done, err := pc.programMACs([]macJob{job})
				out.actions = append(out.actions, done...)
				if err != nil {
					return err
				}
			}
		}
		for _, c := range tx.Remove(func(c ledger.Claim) bool { return c.UUID == pc.uuid && !keep[c.Alias] }) {
			out.releases = append(out.releases, claimLine(c))
		}
		return nil
	})
	if err != nil {
		return asOutcome(err, "claims")
	}
	out.message = strings.Join(pc.notes, "; ")
	return out
}

func (pc *poolCtx) prepareRefusal(tx *ledger.Tx, dev *policy.PoolDevice, why string) error {
	free, ok := pc.free(tx, dev)
	if !ok {
		return refuse(why+"; and no other is free ("+pc.counts(tx, dev.Pool, dev).String()+")",
			`hint: "virt-failover status" lists the claims; free one or add resources to the pool in `+pc.r.pol.Source)
	}
	return refuse(why,
		fmt.Sprintf(`hint: %s is free in pool '%s': run "virsh edit %s" and set %s`, dev.Describe(free.Name), dev.Pool, pc.name, dev.SourceFix(free.Name)),
		"hint: a definition copied from another host (virsh migrate --persistent) keeps that host's resources")
}

// rebuild records the running domain's resources at reconnect begin (libvirtd restarted): it
// claims what the domain uses and drops the domain's other claims. It never refuses: a failing
// reconnect makes libvirt kill the guest. A resource another live claim holds is reported.
func (pc *poolCtx) rebuild() outcome {
	var out outcome
	err := pc.ledger.Update(func(tx *ledger.Tx) error {
		out = outcome{decision: Pass}
		keep := map[string]bool{}
		var conflicts []string
		for _, dev := range pc.devs {
			res, ok := pc.pools.Lookup(dev.Kind, dev.Current)
			if !ok {
				conflicts = append(conflicts, fmt.Sprintf("%s uses %s, which is in no pool on this host", dev.Label, dev.Describe(dev.Current)))
				continue
			}
			c, err := tx.Take(res.Pool, res.Name, pc.owner(dev), ledger.Confirmed, 0)
			if err != nil {
				conflicts = append(conflicts, fmt.Sprintf("%s uses %s, but %v", dev.Label, dev.Describe(dev.Current), err))
				continue
			}
			keep[dev.Alias] = true
			out.claims = append(out.claims, claimLine(c))
		}
		for _, c := range tx.Remove(func(c ledger.Claim) bool { return c.UUID == pc.uuid && !keep[c.Alias] }) {
			out.releases = append(out.releases, claimLine(c))
		}
		if len(conflicts) > 0 {
			out.decision = Error
			out.reason = "claims: " + strings.Join(conflicts, "; ")
		}
		return nil
	})
	if err != nil {
		return errorOutcome("claims", err)
	}
	if out.reason == "" {
		out.message = strings.Join(pc.notes, "; ")
	}
	return out
}

// releaseClaims frees every claim of the domain on this host (release end: it stopped, or left
// by migration, or its incoming migration failed).
func (r *run) releaseClaims(uuid string) outcome {
	l := r.ledger()
	if _, err := os.Stat(l.Path()); err != nil {
		return outcome{decision: Pass} // no ledger, nothing to free
	}
	out := outcome{decision: Pass}
	do := l.Update
	if r.opts.DryRun {
		do = l.View
	}
	err := do(func(tx *ledger.Tx) error {
		for _, c := range tx.Remove(func(c ledger.Claim) bool { return c.UUID == uuid }) {
			out.releases = append(out.releases, claimLine(c))
		}
		return nil
	})
	if err != nil {
		return errorOutcome("claims", err)
	}
	return out
}

// Seed records the claims of running domains, as reconnect would for each: the daemon's SIGHUP
// after an install brings no reconnect. It returns one line per claim taken and per problem.
func Seed(pol *policy.Policy, statusDir string, now time.Time) (claims, problems []string, err error) {
	running, err := ReadRunning(statusDir)
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, rd := range running {
		doc, err := xmlxform.Parse(rd.XML)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", rd.File, err))
			continue
		}
		r := &run{inv: Invocation{"qemu", rd.Name, "reconnect", "begin", "-"}, opts: withDefaults(Options{StatusDir: statusDir, Now: func() time.Time { return now }}), pol: pol}
		pc, err := r.poolContext(policy.NewDomain(doc))
		if err != nil || pc == nil {
			continue
		}
		out := pc.rebuild()
		claims = append(claims, out.claims...)
		if out.reason != "" {
			problems = append(problems, rd.Name+": "+out.reason)
		}
	}
	return claims, problems, nil
}
