// Package orchestrate drives what QEMU cannot fail over alone: it unplugs ("parks") assigned
// devices before a migration and plugs them back on the destination, switches a running guest to
// its emulated devices and back, and converges a guest whose orchestration was interrupted.
//
// State lives in the guest's own metadata (docs/metadata.md#parked): a device is parked (its
// whole definition recorded, live and in the persistent definition) before it is detached, and
// unparked only after it is back in the live definition. Whoever finds a parked record (this
// package's Migrate, Switch and Repair, the replug worker the hook starts on arrival) can finish
// the work from the record alone, and attaching is idempotent: a device whose alias is in the live
// definition already is never attached again.
//
// It talks to libvirt only through virt.Hypervisor, so its tests run against virttest's daemons.
package orchestrate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Device is a device the orchestrator handles: parks, supervises or plugs back.
type Device struct {
	Alias string // its user alias
	Kind  string // the kind of its pair record (policy.KindNetPair...), or KindDetachPair
	Pool  string // the pool its host resource comes from, "" for none
	// Standby is the alias of the emulated device that carries the guest meanwhile ("" for a
	// device with no fallback).
	Standby string
}

// Plan is what a migration or a switch does to a domain's devices.
type Plan struct {
	Domain string
	// QEMU are the teaming primaries QEMU unplugs and plugs back itself during a migration: the
	// orchestrator only supervises them.
	QEMU []Device
	// Park are the devices the orchestrator detaches first and plugs back afterwards.
	Park []Device
	// Parked are the devices parked already (by a switch, or an interrupted run), with the
	// reason of their record.
	Parked []ParkedDevice
	// Blockers are assigned devices nothing fails over and no --detach names: libvirt refuses to
	// migrate the domain with them.
	Blockers []string
	// Back is what a plug-back (switch --to assigned, repair, the replug worker) does with each
	// parked device; such a plan has nothing else (planPlugBack).
	Back     []Back
	plugBack bool
}

// Back is a parked device and what a plug-back does with it.
type Back struct {
	ParkedDevice
	Action string // BackAttach, BackDrop or BackLeave
}

// What a plug-back does with a parked device.
const (
	BackAttach = "plug back" // attach it from its record (its resource claimed on this host first)
	BackDrop   = "drop"      // it is in the domain already: only its record goes
	BackLeave  = "leave"     // not this plug-back's (repair leaves devices parked by a switch)
)

// ParkedDevice is a device a parked record holds.
type ParkedDevice struct {
	Device
	Reason string
	Host   string // the host whose claim its definition carries, "" for none
}

// PlanMigration plans the migration of the running domain dom (its live definition): every
// recorded pair whose primary is present, and every device named in detach, is either QEMU's
// (a teaming primary) or parked by the orchestrator. An alias in detach that the domain does not
// have is an error; so is an assigned device nothing handles (a blocker).
func PlanMigration(dom *policy.Domain, detach []string) (*Plan, error) {
	p := planDevices(dom)
	for _, alias := range detach {
		if slices.ContainsFunc(p.Parked, func(d ParkedDevice) bool { return d.Alias == alias }) {
			continue
		}
		if len(dom.Aliases[alias]) == 0 {
			return nil, fmt.Errorf("--detach %s: the domain %s has no device with that alias", alias, dom.Name)
		}
		if slices.ContainsFunc(p.QEMU, func(d Device) bool { return d.Alias == alias }) {
			return nil, fmt.Errorf("--detach %s: QEMU fails that teaming primary over itself; leave it out", alias)
		}
		if !slices.ContainsFunc(p.Park, func(d Device) bool { return d.Alias == alias }) {
			p.Park = append(p.Park, Device{Alias: alias, Kind: policy.KindDetachPair})
		}
	}
	p.Blockers = blockers(dom, p)
	return p, nil
}

// PlanSwitch plans a switch to the emulated devices: every recorded primary that is present is
// parked, teaming primaries too (the guest's net_failover, bond or multipath falls back on its
// own), and every device named in detach.
func PlanSwitch(dom *policy.Domain, detach []string) (*Plan, error) {
	p, err := PlanMigration(dom, detach)
	if err != nil {
		return nil, err
	}
	p.Park = append(p.QEMU, p.Park...)
	p.QEMU = nil
	p.Blockers = nil
	return p, nil
}

// planDevices sorts the recorded pairs of dom.
func planDevices(dom *policy.Domain) *Plan {
	p := &Plan{Domain: dom.Name}
	for _, pk := range dom.Parked {
		p.Parked = append(p.Parked, ParkedDevice{Device: Device{Alias: pk.Alias, Kind: pk.Kind, Pool: pk.Pool}, Reason: pk.Reason, Host: pk.Host})
	}
	seen := map[string]bool{}
	for _, r := range dom.Records {
		if r.Primary == "" || seen[r.Primary] || dom.ParkedFor(r.Primary) != nil || len(dom.Aliases[r.Primary]) != 1 {
			continue
		}
		seen[r.Primary] = true
		d := Device{Alias: r.Primary, Kind: r.Kind, Pool: r.Pool, Standby: r.Standby}
		if r.Kind == policy.KindNetPair && teamingPrimary(dom, r.Primary) {
			p.QEMU = append(p.QEMU, d)
			continue
		}
		if r.Kind == policy.KindNetPair {
			// A net record whose primary is no teaming primary (an emulated primary with
			// failover_pair_id): QEMU fails it over too.
			if _, ok := dom.PairIDs[r.Primary]; ok {
				p.QEMU = append(p.QEMU, d)
				continue
			}
		}
		p.Park = append(p.Park, d)
	}
	return p
}

// planPlugBack plans a plug-back of the running domain dom's parked devices: those want takes
// are attached, or only lose their record when they are in the domain already; the others stay.
func planPlugBack(dom *policy.Domain, want func(*policy.Parked) bool) *Plan {
	p := &Plan{Domain: dom.Name, plugBack: true}
	for _, pk := range dom.Parked {
		b := Back{ParkedDevice: ParkedDevice{Device: Device{Alias: pk.Alias, Kind: pk.Kind, Pool: pk.Pool}, Reason: pk.Reason, Host: pk.Host}}
		switch {
		case !want(pk):
			b.Action = BackLeave
		case len(dom.Aliases[pk.Alias]) > 0:
			b.Action = BackDrop
		default:
			b.Action = BackAttach
		}
		p.Back = append(p.Back, b)
	}
	return p
}

// teamingPrimary reports whether the device with alias is a <teaming type='transient'> primary.
func teamingPrimary(dom *policy.Domain, alias string) bool {
	for _, n := range dom.NICs {
		if n.Alias == alias && n.TeamType == "transient" {
			return true
		}
	}
	for _, h := range dom.Hostdevs {
		if h.Alias == alias && h.TeamType == "transient" {
			return true
		}
	}
	return false
}

// blockers lists the assigned devices libvirt refuses to migrate that the plan leaves in place:
// PCI hostdevs (and <interface type='hostdev'>) without a transient teaming.
func blockers(dom *policy.Domain, p *Plan) []string {
	handled := map[string]bool{}
	for _, d := range p.QEMU {
		handled[d.Alias] = true
	}
	for _, d := range p.Park {
		handled[d.Alias] = true
	}
	var out []string
	for _, h := range dom.Hostdevs {
		if h.Mode == "subsystem" && h.Type == "pci" && h.TeamType != "transient" && !handled[h.Alias] {
			out = append(out, describe(dom.Doc, h.El, h.Alias))
		}
	}
	for _, n := range dom.NICs {
		if n.Type == "hostdev" && n.TeamType != "transient" && !handled[n.Alias] {
			out = append(out, describe(dom.Doc, n.El, n.Alias))
		}
	}
	return out
}

func describe(doc *xmlxform.Doc, e *xmlxform.Element, alias string) string {
	if alias == "" {
		return fmt.Sprintf("<%s> on line %d (no alias)", e.Name.Local, doc.Pos(e.Start.Start).Line)
	}
	return fmt.Sprintf("<%s> '%s'", e.Name.Local, alias)
}

// String is the plan as the commands print it before acting.
func (p *Plan) String() string {
	if p.plugBack {
		return p.backString()
	}
	var b strings.Builder
	for _, d := range p.QEMU {
		fmt.Fprintf(&b, "  qemu     %-14s %s primary; QEMU unplugs it and plugs it back (standby %s)\n", d.Alias, d.Kind, d.Standby)
	}
	for _, d := range p.Park {
		fmt.Fprintf(&b, "  park     %-14s %s", d.Alias, d.Kind)
		if d.Standby != "" {
			fmt.Fprintf(&b, ", standby %s", d.Standby)
		} else {
			b.WriteString(", no fallback: the guest is without it meanwhile")
		}
		if d.Pool != "" {
			fmt.Fprintf(&b, ", pool %s", d.Pool)
		}
		b.WriteString("\n")
	}
	for _, d := range p.Parked {
		fmt.Fprintf(&b, "  parked   %-14s %s, reason %s", d.Alias, d.Kind, d.Reason)
		if d.Host != "" {
			fmt.Fprintf(&b, ", claimed on %s", d.Host)
		}
		b.WriteString("\n")
	}
	if b.Len() == 0 {
		b.WriteString("  nothing to unplug: no recorded pair, no --detach\n")
	}
	return b.String()
}

func (p *Plan) backString() string {
	var b strings.Builder
	for _, d := range p.Back {
		fmt.Fprintf(&b, "  %-9s %-14s %s, parked for the %s", d.Action, d.Alias, d.Kind, d.Reason)
		if d.Pool != "" {
			fmt.Fprintf(&b, ", pool %s", d.Pool)
		}
		if d.Host != "" {
			fmt.Fprintf(&b, ", claimed on %s", d.Host)
		}
		switch d.Action {
		case BackDrop:
			b.WriteString(": in the guest already, only its record goes")
		case BackLeave:
			b.WriteString(": it stays until switch --to assigned")
		}
		b.WriteString("\n")
	}
	if b.Len() == 0 {
		b.WriteString("  nothing parked: nothing to plug back\n")
	}
	return b.String()
}

// ParkedAliases lists the parked devices of a definition, each with its reason.
func ParkedAliases(domainXML []byte) ([]string, error) {
	dom, err := parseDomain(domainXML, "the definition")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range dom.Parked {
		out = append(out, fmt.Sprintf("%s (%s)", p.Alias, p.Reason))
	}
	return out, nil
}
