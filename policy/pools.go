package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// ResourceKind is what a pool hands out.
type ResourceKind string

// Resource kinds.
const (
	KindVF      ResourceKind = "vf"      // a VF, by PCI address
	KindNetwork ResourceKind = "network" // a libvirt network or a host bridge, by name
)

// Resource is one thing a pool can give a primary.
type Resource struct {
	Pool   string
	Kind   ResourceKind
	Name   string // the PCI address of a VF, the name of a network or bridge
	PF     string // the PF a VF was found on ("" for an addresses entry)
	Index  int    // the VF's number on PF (-1 when not found from a PF)
	Driver string // the driver bound to a VF ("" for none); read it with Pools.DriverOf
}

// ResolvedPool is a pool with its resources as this host has them, in policy order: the VFs of
// each PF by VF number, then the addresses, then the networks.
type ResolvedPool struct {
	Name      string
	Resources []Resource
}

// PoolProblem is a pool entry that does not resolve on this host.
type PoolProblem struct {
	Pool  string
	Key   string // "pf", "addresses" or "networks"
	Value string
	Msg   string
}

func (p PoolProblem) String() string {
	return fmt.Sprintf("[pools.%s] %s: %s: %s", tomlKey(p.Pool), p.Key, p.Value, p.Msg)
}

// Pools is every pool of a policy, resolved against this host.
type Pools struct {
	Names    []string // sorted
	ByName   map[string]*ResolvedPool
	Problems []PoolProblem
	byRes    map[resKey]*Resource
	sys      SysfsView
}

// driverUnknown marks a VF whose driver has not been read yet.
const driverUnknown = "\x00"

// DriverOf returns the driver bound to a VF resource ("" for none), reading sysfs once.
func (ps *Pools) DriverOf(r Resource) string {
	if r.Driver != driverUnknown {
		return r.Driver
	}
	drv, _ := ps.sys.PCIDevice(r.Name)
	if p := ps.byRes[resKey{r.Kind, r.Name}]; p != nil {
		p.Driver = drv
	}
	return drv
}

type resKey struct {
	kind ResourceKind
	name string
}

// SysfsView is what resolving pools needs to know about the host; internal/sysfs.FS has it.
type SysfsView interface {
	// PFVFs returns the PCI addresses of a PF's VFs, by VF number.
	PFVFs(pf string) ([]string, error)
	// PCIDevice reports whether a PCI device exists and the driver bound to it.
	PCIDevice(addr string) (driver string, ok bool)
}

// ResolvePools finds the resources of every pool on this host: the VFs of each PF from its
// virtfn links, each listed address that exists, each network as listed (libvirt networks are not
// in sysfs). Entries that do not resolve are Problems; a VF that two pools reach (through a PF
// and an address) is a problem and stays in the first pool only.
func ResolvePools(p *Policy, sys SysfsView) *Pools {
	ps := &Pools{ByName: map[string]*ResolvedPool{}, byRes: map[resKey]*Resource{}, sys: sys}
	ps.Names = sortedKeys(p.Pools)
	type pending struct {
		pool string
		r    Resource
		key  string
	}
	var all []pending
	for _, name := range ps.Names {
		pool := p.Pools[name]
		for _, pf := range pool.PF {
			vfs, err := sys.PFVFs(pf)
			if err != nil {
				ps.Problems = append(ps.Problems, PoolProblem{name, "pf", pf, err.Error()})
				continue
			}
			for i, addr := range vfs {
				if addr == "" {
					continue
				}
				// The driver is read when it matters (DriverOf): the hook looks at few VFs.
				all = append(all, pending{name, Resource{Pool: name, Kind: KindVF, Name: addr, PF: pf, Index: i, Driver: driverUnknown}, "pf"})
			}
		}
		for _, addr := range pool.Addresses {
			drv, ok := sys.PCIDevice(addr)
			if !ok {
				ps.Problems = append(ps.Problems, PoolProblem{name, "addresses", addr, "no such PCI device on this host (no bus/pci/devices/" + addr + " in sysfs)"})
				continue
			}
			all = append(all, pending{name, Resource{Pool: name, Kind: KindVF, Name: addr, Index: -1, Driver: drv}, "addresses"})
		}
		for _, n := range pool.Networks {
			all = append(all, pending{name, Resource{Pool: name, Kind: KindNetwork, Name: n, Index: -1}, "networks"})
		}
	}
	for _, e := range all {
		k := resKey{e.r.Kind, e.r.Name}
		if first, dup := ps.byRes[k]; dup {
			via := "an address entry"
			if first.PF != "" {
				via = fmt.Sprintf("VF %d of %s", first.Index, first.PF)
			}
			ps.Problems = append(ps.Problems, PoolProblem{e.pool, e.key, e.r.Name,
				fmt.Sprintf("already in pool '%s' (%s); a resource belongs to one pool", first.Pool, via)})
			continue
		}
		rp := ps.ByName[e.pool]
		if rp == nil {
			rp = &ResolvedPool{Name: e.pool}
			ps.ByName[e.pool] = rp
		}
		rp.Resources = append(rp.Resources, e.r)
		ps.byRes[k] = &rp.Resources[len(rp.Resources)-1]
	}
	// The pointers above may have moved as the slices grew: index again.
	for _, name := range ps.Names {
		if rp := ps.ByName[name]; rp != nil {
			for i := range rp.Resources {
				r := &rp.Resources[i]
				ps.byRes[resKey{r.Kind, r.Name}] = r
			}
		} else {
			ps.ByName[name] = &ResolvedPool{Name: name}
		}
	}
	return ps
}

// Lookup finds the resource of that kind and name in any pool.
func (ps *Pools) Lookup(kind ResourceKind, name string) (Resource, bool) {
	if r, ok := ps.byRes[resKey{kind, name}]; ok {
		return *r, true
	}
	return Resource{}, false
}

// Noun names what a pool hands out, for messages: "VF", "network" or "resource".
func (rp *ResolvedPool) Noun() string {
	kinds := map[ResourceKind]bool{}
	for _, r := range rp.Resources {
		kinds[r.Kind] = true
	}
	switch {
	case len(kinds) == 1 && kinds[KindVF]:
		return "VF"
	case len(kinds) == 1 && kinds[KindNetwork]:
		return "network"
	}
	return "resource"
}

// PoolDevice is a device of a domain that draws a host resource from a pool, or holds one: a
// failover primary, or any other device whose host resource a pool lists.
type PoolDevice struct {
	El    *xmlxform.Element // the <interface> or <hostdev>
	Label string            // "hostdev ua-pri0", for messages
	// Alias is what claims call the device, the same in every form of the definition (inactive,
	// live, migratable): its user alias (ua-*); for a primary without one, "primary of" its
	// standby's alias (libvirt gives such a device an alias like hostdev0 only while it runs);
	// else its alias or label.
	Alias   string
	Kind    ResourceKind
	Current string // the resource the definition names: a PCI address or a network/bridge name
	Primary bool
	Pool    string // the pool the primary draws from: its pair metadata's, else [host] default_pool
	Managed bool   // managed='yes': libvirt binds the VF to vfio-pci itself
	Plain   bool   // a plain <hostdev> primary: libvirt does not program its VF's MAC
	MAC     string // the MAC its VF must have (the standby's), for Plain
	Attr    string // "network" or "bridge": the <source> attribute of a network resource
	// Parked is the record of a device the orchestrator unplugged for a migration
	// (docs/metadata.md#parked): El is the definition inside it, and its resource is claimed for
	// the re-plug on the host the domain arrives on. nil for a device of <devices>.
	Parked *Parked
	source *xmlxform.Element
}

// WantsPools reports whether the domain may use pool resources, so that the caller resolves the
// pools (which reads sysfs) only then: a primary with a pool, an assigned PCI device, or an
// interface on a network some pool lists.
func WantsPools(d *Domain, p *Policy) bool {
	if len(p.Pools) == 0 {
		return false
	}
	if p.Host.DefaultPool != "" && hasPrimary(d) {
		return true
	}
	for _, r := range d.Records {
		if r.Pool != "" {
			return true
		}
	}
	for _, pk := range d.Parked {
		if pk.Pool != "" && pk.Reason == ParkedForMigration {
			return true
		}
	}
	for _, h := range d.Hostdevs {
		if h.Type == "pci" {
			return true
		}
	}
	for _, n := range d.NICs {
		if n.Type == "hostdev" {
			return true
		}
		if src := n.El.Child("source"); src != nil {
			for _, attr := range []string{"network", "bridge"} {
				if v, ok := src.Attr(attr); ok && inAnyPoolNetworks(p, v) {
					return true
				}
			}
		}
	}
	return false
}

func hasPrimary(d *Domain) bool {
	for _, n := range d.NICs {
		if n.TeamType == "transient" || d.PairIDs[n.Alias] != nil {
			return true
		}
	}
	for _, h := range d.Hostdevs {
		if h.TeamType == "transient" {
			return true
		}
	}
	return false
}

func inAnyPoolNetworks(p *Policy, name string) bool {
	for _, pool := range p.Pools {
		if slices.Contains(pool.Networks, name) {
			return true
		}
	}
	return false
}

// PoolDevices lists the devices of d that draw from or hold pool resources: every failover
// primary with a pool (a <teaming type='transient'> hostdev or hostdev interface, or an emulated
// primary: an interface that failover_pair_id names through <qemu:override>), and every other
// device whose host resource is in a pool. A primary on a libvirt network (a hostdev network,
// <forward mode='hostdev'>) is left out: libvirt picks its VF on each host. Notes say what was
// left alone and why.
func PoolDevices(d *Domain, p *Policy, ps *Pools) (devs []*PoolDevice, notes []string) {
	if d.Devices == nil {
		return nil, nil
	}
	// A primary's pool is its record's, else [host] default_pool: a pair made by hand or by
	// libvirt has no record.
	wanted := func(alias, label string) string {
		pool := p.Host.DefaultPool
		if r := d.RecordFor(alias); r != nil && r.Pool != "" {
			pool = r.Pool
		}
		if pool != "" {
			if _, ok := p.Pools[pool]; !ok {
				notes = append(notes, fmt.Sprintf("pool '%s' of %s is not defined in this host's policy; left alone", pool, label))
				return ""
			}
		}
		return pool
	}
	for _, dev := range d.Devices.Children {
		if dev.Name.Space != "" {
			continue
		}
		var pd *PoolDevice
		var standby string // the standby alias a <teaming type='transient'> names
		switch dev.Name.Local {
		case "interface":
			n := nicOf(d, dev)
			src := dev.Child("source")
			onNetwork := false
			if src != nil {
				_, onNetwork = src.Attr("network")
			}
			switch {
			case onNetwork && n.TeamType == "transient":
				// A hostdev network: type='network' in a definition, type='hostdev' with the
				// network still named in the live XML.
				notes = append(notes, DeviceLabel(dev)+": on a hostdev network; libvirt picks its VF")
				continue
			case n.Type == "hostdev":
				pd = &PoolDevice{Kind: KindVF, Primary: n.TeamType == "transient", Managed: AttrOf(dev, "managed") == "yes"}
				pd.source = ChildPath(dev, "source", "address")
				pd.Current = PCIAddress(pd.source)
			case n.Type == "network" || n.Type == "bridge":
				// A running domain's live XML shows a network interface as its actual type (bridge
				// for a network in forward mode bridge) with the network still in <source network>.
				pd = &PoolDevice{Kind: KindNetwork, Primary: n.Alias != "" && d.PairIDs[n.Alias] != nil, Attr: n.Type, source: src}
				if onNetwork {
					pd.Attr = "network"
				}
				pd.Current = AttrOf(src, pd.Attr)
			default:
				continue
			}
			pd.Alias = n.Alias
			if pd.Primary {
				standby = n.Persistent
			}
		case "hostdev":
			h := hostdevOf(d, dev)
			if h.Type != "pci" {
				continue
			}
			pd = &PoolDevice{Kind: KindVF, Primary: h.TeamType == "transient", Managed: AttrOf(dev, "managed") == "yes", Alias: h.Alias}
			pd.source = ChildPath(dev, "source", "address")
			pd.Current = PCIAddress(pd.source)
			if pd.Primary {
				pd.Plain = true
				standby = h.Persistent
				if sby := d.NICByAlias(h.Persistent); sby != nil {
					pd.MAC = sby.MAC
				}
			}
		default:
			continue
		}
		if r := d.RecordFor(pd.Alias); r != nil && r.Kind == KindBondPair && pd.Kind == KindVF {
			// A bond's primary draws from the pool its record names, as a teaming primary does;
			// a plain <hostdev> one gets the bond's MAC through its PF.
			pd.Primary = true
			if dev.Name.Local == "hostdev" {
				pd.Plain, pd.MAC = true, bondMAC(d, r)
			}
		}
		pd.El = dev
		pd.Label = DeviceLabel(dev)
		alias := pd.Alias
		if standby != "" && !IsUserAlias(alias) {
			pd.Alias = "primary of " + standby
			if pd.Label == dev.Path() {
				pd.Label = dev.Name.Local + " (" + pd.Alias + ")"
			}
		}
		if pd.Alias == "" {
			pd.Alias = pd.Label
		}
		if pd.Primary {
			pd.Pool = wanted(alias, pd.Label)
		}
		if pd.Pool == "" {
			// Not drawing from a pool: it matters only when it holds a pool's resource.
			r, ok := ps.Lookup(pd.Kind, pd.Current)
			if !ok {
				continue
			}
			pd.Pool = r.Pool
			pd.Primary = false
		}
		devs = append(devs, pd)
	}
	for _, pk := range d.Parked {
		if pd, note := parkedPoolDevice(d, pk, p); pd != nil {
			devs = append(devs, pd)
		} else if note != "" {
			notes = append(notes, note)
		}
	}
	return devs, notes
}

// bondMAC is the MAC a bond's VF must have: its record's, else its standby's.
func bondMAC(d *Domain, r *Record) string {
	if r.MAC != "" {
		return r.MAC
	}
	if sby := d.NICByAlias(r.Standby); sby != nil {
		return sby.MAC
	}
	return ""
}

// parkedPoolDevice is the pool device of a device parked for a migration whose record names a
// pool: its VF or network is claimed on the host the domain arrives on. nil (with a note when it
// matters) for any other record.
func parkedPoolDevice(d *Domain, pk *Parked, p *Policy) (*PoolDevice, string) {
	if pk.Reason != ParkedForMigration || pk.Pool == "" || pk.Device == nil || !IsUserAlias(pk.Alias) {
		return nil, ""
	}
	dev := pk.Device
	label := "parked " + dev.Name.Local + " " + pk.Alias
	if _, ok := p.Pools[pk.Pool]; !ok {
		return nil, fmt.Sprintf("pool '%s' of %s is not defined in this host's policy; left alone", pk.Pool, label)
	}
	pd := &PoolDevice{El: dev, Label: label, Alias: pk.Alias, Primary: true, Pool: pk.Pool, Parked: pk,
		Managed: AttrOf(dev, "managed") == "yes"}
	src := DeviceChild(dev, "source")
	switch typ := AttrOf(dev, "type"); {
	case dev.Name.Local == "hostdev" && typ == "pci", dev.Name.Local == "interface" && typ == "hostdev":
		pd.Kind, pd.source = KindVF, DeviceChild(src, "address")
		pd.Current = PCIAddress(pd.source)
		if r := d.RecordFor(pk.Alias); dev.Name.Local == "hostdev" && r != nil && (r.Kind == KindBondPair || r.Kind == KindNetPair) {
			pd.Plain, pd.MAC = true, bondMAC(d, r)
		}
	case dev.Name.Local == "interface" && (typ == "network" || typ == "bridge"):
		pd.Kind, pd.source, pd.Attr = KindNetwork, src, typ
		if src != nil && AttrOf(src, "network") != "" {
			pd.Attr = "network"
		}
		pd.Current = AttrOf(src, pd.Attr)
	default:
		return nil, fmt.Sprintf("%s draws nothing a pool hands out (a VF or a network); pool '%s' left alone", label, pk.Pool)
	}
	if pd.source == nil {
		return nil, fmt.Sprintf("%s has no <source> to claim for; pool '%s' left alone", label, pk.Pool)
	}
	return pd, ""
}

func nicOf(d *Domain, e *xmlxform.Element) *NIC {
	for _, n := range d.NICs {
		if n.El == e {
			return n
		}
	}
	return newNIC(e)
}

func hostdevOf(d *Domain, e *xmlxform.Element) *Hostdev {
	for _, h := range d.Hostdevs {
		if h.El == e {
			return h
		}
	}
	return newHostdev(e)
}

// InPool reports whether the device's current resource is one of pool's on this host.
func (pd *PoolDevice) InPool(ps *Pools) (Resource, bool) {
	r, ok := ps.Lookup(pd.Kind, pd.Current)
	return r, ok && r.Pool == pd.Pool
}

// Describe names the device's current resource: "VF 0000:03:10.0", "network 'fabric-a1'".
func (pd *PoolDevice) Describe(res string) string {
	if pd.Kind == KindVF {
		return "VF " + res
	}
	return pd.Attr + " '" + res + "'"
}

// Remap points the device's host side at resource to, keeping everything guest-visible (libvirt's
// ABI check does not compare interface sources or hostdev host addresses: docs/failover.md#abi-check),
// and returns the change line for the log.
func (pd *PoolDevice) Remap(t *xmlxform.Transform, to string) (string, error) {
	if pd.source == nil {
		return "", fmt.Errorf("%s has no <source> to rewrite", pd.Label)
	}
	switch pd.Kind {
	case KindVF:
		dom, bus, slot, fn, ok := splitPCI(to)
		if !ok {
			return "", fmt.Errorf("%q is not a PCI address", to)
		}
		t.SetAttr(pd.source, "domain", "0x"+dom)
		t.SetAttr(pd.source, "bus", "0x"+bus)
		t.SetAttr(pd.source, "slot", "0x"+slot)
		t.SetAttr(pd.source, "function", "0x"+fn)
		return fmt.Sprintf("%s: source address %s -> %s (pool %s)", pd.Label, orNone(pd.Current), to, pd.Pool), nil
	default:
		t.SetAttr(pd.source, pd.Attr, to)
		return fmt.Sprintf("%s: source %s '%s' -> '%s' (pool %s)", pd.Label, pd.Attr, pd.Current, to, pd.Pool), nil
	}
}

// SourceFix says how to point the device at resource to, for a hint.
func (pd *PoolDevice) SourceFix(to string) string {
	if pd.Kind == KindVF {
		dom, bus, slot, fn, _ := splitPCI(to)
		return fmt.Sprintf("<address type='pci' domain='0x%s' bus='0x%s' slot='0x%s' function='0x%s'/> in the <source> of %s",
			dom, bus, slot, fn, pd.Label)
	}
	return fmt.Sprintf("<source %s='%s'/> in %s", pd.Attr, to, pd.Label)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// splitPCI splits "dddd:bb:ss.f" into its parts, dropping leading zeros of the function.
func splitPCI(a string) (dom, bus, slot, fn string, ok bool) {
	n, ok := NormalPCIAddress(a)
	if !ok {
		return "", "", "", "", false
	}
	f, _ := strconv.ParseUint(n[11:], 16, 8)
	return n[0:4], n[5:7], n[8:10], strconv.FormatUint(f, 16), true
}

// Counts sums up why a pool has no free resource, for a refusal: "4 of 4 taken: 2 claimed,
// 1 pending, 1 in use".
type Counts struct {
	Total, Claimed, Pending, InUse int
}

func (c Counts) String() string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{c.Claimed, "claimed"}, {c.Pending, "pending"}, {c.InUse, "in use"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	taken := c.Claimed + c.Pending + c.InUse
	s := fmt.Sprintf("%d of %d taken", taken, c.Total)
	if c.Total == 0 {
		return "the pool has no resources on this host"
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}
