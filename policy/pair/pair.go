package pair

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Kinds of pair, the kind attribute of a metadata record (docs/metadata.md).
const (
	KindNet     = policy.KindNetPair     // a NIC primary and its virtio-net standby, failed over by QEMU
	KindBond    = policy.KindBondPair    // a NIC primary and a virtio-net standby the guest bonds itself
	KindStorage = policy.KindStoragePair // an assigned storage device and a virtio-scsi path to the same LUN
	KindDetach  = policy.KindDetachPair  // an assigned device unplugged for migrations, without a standby
)

// Options are the command line's choices; the zero value pairs by the policy alone.
type Options struct {
	// NICs are host PCI addresses (DDDD:BB:SS.F, or BB:SS.F in domain 0000) of plain PCI
	// <hostdev>s that are NICs and get a standby.
	NICs []string
	// StandbyNetwork or StandbyBridge (at most one) is the source of new standbys instead of the
	// policy's [standby].
	StandbyNetwork, StandbyBridge string
	// Pool is the pool recorded for every NIC primary, instead of the one the record already
	// names, the pool listing the primary's network or VF, or [host] default_pool.
	Pool string
	// Storage adds assigned storage devices to the policy's [[storage]] (and overrides the LUN of
	// a device listed there). A Device that is a user alias names an emulated SCSI <disk> standing
	// in for the assigned device (tests): the record says emulated='yes'.
	Storage []policy.Storage
	// EmulatedPrimary pairs the first virtio <interface> of a domain without assigned devices
	// with a new emulated e1000e primary (failover_pair_id through <qemu:override>; with Bond, a
	// bond pair instead, recorded emulated='yes'): a stand-in for a VF, for tests.
	EmulatedPrimary bool
	// Bond makes the NICs NICs names (and the EmulatedPrimary one) bond pairs: a virtio standby
	// without <teaming> that the guest bonds with the primary in software (active-backup); the
	// orchestrator unplugs the primary for migrations.
	Bond bool
	// Detach lists user aliases of assigned devices the orchestrator unplugs for migrations and
	// plugs back after, without a standby (a GPU).
	Detach []string
	// Adopt records the pairs QEMU can fail over as they are but that have no metadata record
	// (written by hand or by other tools): user aliases where they lack one, and the record. Without
	// it such a pair is left as it is, reported with Unrecorded set.
	Adopt bool
	// Version is written to the metadata's version attribute when something changes.
	Version string
}

// Result is what pairing does to one definition.
type Result struct {
	// Transform holds the edits; Bytes() gives the paired document, Changed() whether it differs.
	Transform *xmlxform.Transform
	// Pairs lists every pair of the domain, in device order: those that were already complete
	// (no Changes) and those this plan adds or completes.
	Pairs []Pair
	// Warnings are things the operator must know or do; they do not stop the plan.
	Warnings []Warning
}

// Changed reports whether the plan changes the document.
func (r *Result) Changed() bool { return r.Transform.Changed() }

// Pair is one failover pair as the plan leaves it.
type Pair struct {
	Kind     string
	Standby  string // user alias of the standby (virtio <interface>, or the virtio-scsi <disk>)
	Primary  string // user alias of the primary (the assigned device, or the emulated NIC)
	Device   string // the primary for messages: "interface type='hostdev' 0000:03:07.1"
	MAC      string // KindNet, KindBond: the MAC both devices carry
	Pool     string // KindNet, KindBond, KindDetach: the pool recorded for the primary; "" for none
	Host     string // KindStorage, KindDetach: host PCI address of the assigned device ("" for none)
	LUN      string // KindStorage: host path of the LUN
	Emulated bool   // the primary is an emulated stand-in (--emulated-primary, a storage stand-in)
	// Unrecorded: QEMU fails the pair over as it is, and it has no metadata record; the plan
	// leaves it alone (Options.Adopt records it). Pool is the pool a record would name.
	Unrecorded bool
	// Changes says what this plan does for the pair, one phrase each ("new standby ua-sby0 on
	// network 'default'"); empty when the pair was complete.
	Changes []string
	// Pos is the position of the primary in the input.
	Pos xmlxform.Pos
}

// Warning is something the operator must know or do.
type Warning struct {
	Pos  xmlxform.Pos // zero when not about one place
	Msg  string
	Hint string
}

// Error is why a definition cannot be paired. Nothing is changed when Plan returns one.
type Error struct {
	Pos  xmlxform.Pos // zero when not about one place
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	if e.Pos.Line > 0 {
		return e.Pos.String() + ": " + e.Msg
	}
	return e.Msg
}

// planner holds the state of one Plan call.
type planner struct {
	doc  *xmlxform.Doc
	dom  *policy.Domain
	pol  *policy.Policy
	opt  Options
	t    *xmlxform.Transform
	plan *Result

	taken   map[string]bool            // aliases in use or given out
	macs    map[string]bool            // MACs in use or given out
	claimed map[*xmlxform.Element]bool // standbys that have a primary

	pairIDValues map[string]bool            // standby aliases <qemu:override> failover_pair_id names
	records      []record                   // metadata records the domain must have
	detached     map[*xmlxform.Element]bool // devices unplugged for migrations (--detach, kind='detach')
	seed         string                     // what stable MACs derive from: the UUID, else the name

	standbyAnchor *xmlxform.Element // where new interfaces go: after it, or by libvirt's order
}

// Plan plans the pairing of doc under policy pol.
func Plan(doc *xmlxform.Doc, pol *policy.Policy, opt Options) (*Result, error) {
	if pol == nil {
		pol = policy.Default()
	}
	root := doc.Root
	if root == nil || root.Name.Space != "" || root.Name.Local != "domain" {
		name := ""
		if root != nil {
			name = root.QName
		}
		return nil, &Error{Msg: fmt.Sprintf("not a domain definition: the root element is <%s>, not <domain>", name),
			Hint: "give the output of \"virsh dumpxml DOMAIN\" or a file \"virsh define\" takes"}
	}
	if typ, _ := root.Attr("type"); typ != "qemu" && typ != "kvm" {
		what := fmt.Sprintf("a <domain type='%s'>", typ)
		if _, ok := root.Attr("type"); !ok {
			what = "a <domain> without a type"
		}
		return nil, &Error{Pos: doc.Pos(root.Start.Start),
			Msg:  fmt.Sprintf("%s cannot fail over: only QEMU/KVM guests can (QEMU's virtio-net failover, libvirt's <teaming>)", what),
			Hint: "pair the definitions of QEMU/KVM guests: <domain type='kvm'> or <domain type='qemu'>"}
	}
	p := &planner{
		doc:     doc,
		dom:     policy.NewDomain(doc),
		pol:     pol,
		opt:     opt,
		t:       xmlxform.NewTransform(doc),
		plan:    &Result{},
		taken:   map[string]bool{},
		macs:    map[string]bool{},
		claimed: map[*xmlxform.Element]bool{},

		pairIDValues: map[string]bool{},
		detached:     map[*xmlxform.Element]bool{},
	}
	p.opt.NICs = slices.Clone(opt.NICs)
	p.opt.Detach = slices.Clone(opt.Detach)
	p.opt.Storage = slices.Clone(opt.Storage)
	p.plan.Transform = p.t
	if err := p.run(); err != nil {
		return nil, err
	}
	return p.plan, nil
}

func (p *planner) run() error {
	if err := p.checkOptions(); err != nil {
		return err
	}
	p.seed = seedOf(p.dom)
	for name := range p.dom.Aliases {
		p.taken[name] = true
	}
	// A parked device comes back with its alias: none is given out while it is away.
	for _, pk := range p.dom.Parked {
		p.taken[pk.Alias] = true
	}
	// Names the domain refers to without a device having them yet are not given out either.
	for _, ov := range p.overrideDevices() {
		if a, ok := ov.Attr("alias"); ok {
			p.taken[a] = true
		}
	}
	for _, prop := range p.dom.PairIDs {
		if v, ok := prop.Attr("value"); ok {
			p.taken[v] = true
			p.pairIDValues[v] = true
		}
	}
	for _, n := range p.dom.NICs {
		p.taken[n.Persistent] = true
	}
	for _, h := range p.dom.Hostdevs {
		p.taken[h.Persistent] = true
	}
	for _, n := range p.dom.NICs {
		if n.MAC != "" {
			p.macs[n.MAC] = true
		}
	}
	// So does a parked NIC's MAC.
	for _, pk := range p.dom.Parked {
		if mac, ok := policy.NormalMAC(policy.AttrOf(policy.DeviceChild(pk.Device, "mac"), "address")); ok && pk.Device != nil {
			p.macs[mac] = true
		}
	}
	if ifs := p.devicesNamed("interface"); len(ifs) > 0 {
		p.standbyAnchor = ifs[len(ifs)-1]
	}
	recs := p.existingRecords()
	if err := p.findDetached(); err != nil {
		return err
	}

	nics, stores, err := p.classify()
	if err != nil {
		return err
	}
	if stores, err = p.standIns(stores); err != nil {
		return err
	}
	if p.opt.EmulatedPrimary {
		if err := p.checkNoAssigned(nics, stores); err != nil {
			return err
		}
	}
	// Storage first: where new disks, controllers and interfaces share a place, libvirt's order
	// (disk, controller, interface) is the order of the insertions.
	if err := p.pairStorage(stores, recs); err != nil {
		return err
	}
	if err := p.pairEmulatedExisting(); err != nil {
		return err
	}
	if err := p.pairEmulatedBondExisting(recs); err != nil {
		return err
	}
	if err := p.pairNICs(nics, recs); err != nil {
		return err
	}
	if p.opt.EmulatedPrimary {
		if err := p.pairEmulatedNew(p.opt.Bond); err != nil {
			return err
		}
	}
	if err := p.pairDetached(recs); err != nil {
		return err
	}
	if err := p.writeRecords(recs); err != nil {
		return err
	}
	if p.opt.Pool != "" && slices.ContainsFunc(p.plan.Pairs, func(pr Pair) bool { return pr.Unrecorded }) {
		p.warn(nil, fmt.Sprintf("--pool %s is not recorded for the pairs QEMU fails over as they stand: they have no record to name it", p.opt.Pool),
			"add --adopt to record them with the pool")
	}
	if err := p.checkOutput(); err != nil {
		return err
	}
	slices.SortStableFunc(p.plan.Pairs, func(a, b Pair) int {
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Col - b.Pos.Col
	})
	return nil
}

func (p *planner) checkOptions() error {
	if p.opt.StandbyNetwork != "" && p.opt.StandbyBridge != "" {
		return &Error{Msg: "a standby connects to a network or to a bridge, not both",
			Hint: "give one of --standby-network and --standby-bridge"}
	}
	if p.opt.Bond && len(p.opt.NICs) == 0 && !p.opt.EmulatedPrimary {
		return &Error{Msg: "--bond pairs the NICs --nic names, or with --emulated-primary a new emulated one, and there is neither",
			Hint: "give --nic PCIADDR for each assigned NIC the guest bonds"}
	}
	for _, a := range p.opt.Detach {
		if !policy.IsUserAlias(a) {
			return &Error{Msg: fmt.Sprintf("--detach %q is not a user alias", a),
				Hint: "name the device by its user alias (ua-...): give it <alias name='ua-gpu0'/> first; only a user alias stays the same when the device is plugged back"}
		}
	}
	for i, a := range p.opt.NICs {
		n, ok := normalPCIAddress(a)
		if !ok {
			return &Error{Msg: fmt.Sprintf("--nic %q is not a PCI address", a),
				Hint: "write the host address as lspci -D shows it: DDDD:BB:SS.F, like 0000:03:00.0"}
		}
		p.opt.NICs[i] = n
	}
	for i, s := range p.opt.Storage {
		if policy.IsUserAlias(s.Device) {
			if !strings.HasPrefix(s.LUN, "/") {
				return &Error{Msg: fmt.Sprintf("--storage %q: the LUN must be an absolute host path", s.Device+"="+s.LUN),
					Hint: "name the shared disk the stand-in reads, like /dev/loop7"}
			}
			continue // an emulated stand-in, by alias (storage.go)
		}
		n, ok := normalPCIAddress(s.Device)
		if !ok {
			return &Error{Msg: fmt.Sprintf("--storage %q: %q is not a PCI address", s.Device+"="+s.LUN, s.Device),
				Hint: "write DEVICE=LUNPATH, DEVICE as lspci -D shows it: 0000:81:00.0=/dev/disk/by-id/wwn-0x... (or the user alias of an emulated disk standing in for one, for tests)"}
		}
		if !strings.HasPrefix(s.LUN, "/") {
			return &Error{Msg: fmt.Sprintf("--storage %q: the LUN must be an absolute host path", s.Device+"="+s.LUN),
				Hint: "name the LUN by a stable path, like /dev/disk/by-id/wwn-0x5000c500a1b2c3d4"}
		}
		p.opt.Storage[i].Device = n
	}
	if p.opt.Pool != "" {
		if _, ok := p.pol.Pools[p.opt.Pool]; !ok {
			where := "the policy"
			if p.pol.Source != "" {
				where = p.pol.Source
			}
			p.warn(nil, fmt.Sprintf("--pool %s: %s has no [pools.%s]; it is recorded as given", p.opt.Pool, where, p.opt.Pool),
				"the hook claims a primary's VF from its pool on each host: define the pool in every host's policy")
		}
	}
	return nil
}

// normalPCIAddress parses a host PCI address, DDDD:BB:SS.F or BB:SS.F (domain 0000), and returns
// its canonical spelling (policy.NormalPCIAddress), the one pair prints.
func normalPCIAddress(s string) (string, bool) {
	if strings.Count(s, ":") == 1 {
		s = "0000:" + s
	}
	return policy.NormalPCIAddress(s)
}

func (p *planner) pos(e *xmlxform.Element) xmlxform.Pos {
	if e == nil {
		return xmlxform.Pos{}
	}
	return p.doc.Pos(e.Start.Start)
}

func (p *planner) errorf(e *xmlxform.Element, hint, format string, args ...any) error {
	return &Error{Pos: p.pos(e), Msg: fmt.Sprintf(format, args...), Hint: hint}
}

func (p *planner) warn(e *xmlxform.Element, msg, hint string) {
	p.plan.Warnings = append(p.plan.Warnings, Warning{Pos: p.pos(e), Msg: msg, Hint: hint})
}

// devicesNamed returns the children of <devices> in no namespace named local.
func (p *planner) devicesNamed(local string) []*xmlxform.Element {
	if p.dom.Devices == nil {
		return nil
	}
	return p.dom.Devices.ChildrenNamed(local)
}

// newAlias gives out prefix<N>, N the smallest number not taken.
func (p *planner) newAlias(prefix string) string {
	for n := 0; ; n++ {
		a := prefix + strconv.Itoa(n)
		if !p.taken[a] {
			p.taken[a] = true
			return a
		}
	}
}

// aliasOf returns the alias element of a device and its name.
func aliasOf(dev *xmlxform.Element) (*xmlxform.Element, string) {
	a := dev.Child("alias")
	if a == nil {
		return nil, ""
	}
	name, _ := a.Attr("name")
	return a, name
}

// uniqueUserAlias reports whether dev's alias is a user alias no other device has.
func (p *planner) uniqueUserAlias(dev *xmlxform.Element) (string, bool, error) {
	_, name := aliasOf(dev)
	if !policy.IsUserAlias(name) {
		return name, false, nil
	}
	if n := len(p.dom.Aliases[name]); n > 1 {
		return name, false, p.errorf(dev, "give each device its own alias: libvirt refuses the definition otherwise",
			"alias '%s' is used by %d devices", name, n)
	}
	return name, true, nil
}

// setAttr sets an attribute to a value written as the inserted elements write values.
func (p *planner) setAttr(e *xmlxform.Element, name, value string) {
	p.t.SetAttr(e, name, clean(value))
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
