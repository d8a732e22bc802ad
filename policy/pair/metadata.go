package pair

import (
	"slices"

	"github.com/beevik/etree"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// record is a <vfo:pair> the domain's metadata must hold (docs/metadata.md).
type record struct {
	kind, standby, primary string
	mac, pool              string // KindNet, KindBond (pool: KindDetach too)
	device, lun            string // KindStorage (device: KindDetach too)
	emulated               bool   // a stand-in for the assigned device (tests)
	pos                    int    // offset of the primary, for the order of new records
	pair                   int    // index of the pair in Result.Pairs
}

// recordAttrs are the attributes a record may have, in the order they are written.
var recordAttrs = []string{"kind", "standby", "primary", "mac", "pool", "device", "lun", "emulated"}

// attrs returns the record's attributes in the order they are written.
func (r record) attrs() []string {
	a := []string{"kind", r.kind}
	if r.kind != KindDetach {
		a = append(a, "standby", r.standby)
	}
	a = append(a, "primary", r.primary)
	switch r.kind {
	case KindNet, KindBond:
		a = append(a, "mac", r.mac)
		if r.pool != "" {
			a = append(a, "pool", r.pool)
		}
	case KindStorage:
		if r.device != "" {
			a = append(a, "device", r.device)
		}
		a = append(a, "lun", r.lun)
	case KindDetach:
		if r.pool != "" {
			a = append(a, "pool", r.pool)
		}
		if r.device != "" {
			a = append(a, "device", r.device)
		}
	}
	if r.emulated {
		a = append(a, "emulated", "yes")
	}
	return a
}

// records is what the domain's metadata already holds.
type records struct {
	metadata  *xmlxform.Element // <metadata>, or nil
	failover  *xmlxform.Element // <vfo:failover>, or nil
	byPrimary map[string]*xmlxform.Element
}

func (p *planner) existingRecords() *records {
	// Records are read from every <vfo:failover> (the first record of a primary counts), as the
	// linter and the hook read them (policy.Domain.Records); new ones go into the first.
	recs := &records{metadata: p.dom.Metadata, failover: p.dom.Failover, byPrimary: map[string]*xmlxform.Element{}}
	for _, r := range p.dom.Records {
		if _, ok := r.El.Attr("primary"); ok && recs.byPrimary[r.Primary] == nil {
			recs.byPrimary[r.Primary] = r.El
		}
	}
	return recs
}

// addPair reports a pair and the record it must have.
func (p *planner) addPair(primary *xmlxform.Element, pr Pair, r record) {
	pr.Pos = p.pos(primary)
	r.pos = primary.Start.Start
	r.pair = len(p.plan.Pairs)
	p.plan.Pairs = append(p.plan.Pairs, pr)
	p.records = append(p.records, r)
}

// writeRecords brings the metadata up to date with the pairs: a record that differs is updated in
// place, a missing one is added after the others, and the version is stamped when anything in the
// document changes.
func (p *planner) writeRecords(recs *records) error {
	slices.SortStableFunc(p.records, func(a, b record) int { return a.pos - b.pos })
	prefix := "vfo"
	ownDecl := true
	if recs.failover != nil {
		if pf, ok := recs.failover.LookupPrefix(policy.NamespaceMetadata); ok {
			prefix, ownDecl = pf, false
		}
	}
	var fresh []*etree.Element
	for _, r := range p.records {
		attrs := r.attrs()
		changes := &p.plan.Pairs[r.pair].Changes
		if el := recs.byPrimary[r.primary]; el != nil {
			changed := false
			for i := 0; i < len(attrs); i += 2 {
				if v, ok := el.Attr(attrs[i]); !ok || v != clean(attrs[i+1]) {
					p.setAttr(el, attrs[i], attrs[i+1])
					changed = true
				}
			}
			for _, name := range recordAttrs {
				if _, has := el.Attr(name); has && !slices.Contains(attrs, name) {
					p.t.RemoveAttr(el, name)
					changed = true
				}
			}
			if changed {
				*changes = append(*changes, "metadata record updated")
			}
			continue
		}
		if recs.failover != nil && ownDecl {
			attrs = append([]string{"xmlns:vfo", policy.NamespaceMetadata}, attrs...)
		}
		fresh = append(fresh, elem(prefix+":pair", attrs...))
		*changes = append(*changes, "metadata record")
	}
	switch {
	case len(fresh) == 0:
	case recs.failover != nil:
		for _, e := range fresh {
			if err := p.t.InsertChild(recs.failover, nil, p.frag(e)); err != nil {
				return err
			}
		}
	default:
		attrs := []string{"xmlns:vfo", policy.NamespaceMetadata}
		if p.opt.Version != "" {
			attrs = append(attrs, "version", p.opt.Version)
		}
		fo := add(elem("vfo:failover", attrs...), fresh...)
		if recs.metadata != nil {
			return p.t.InsertChild(recs.metadata, nil, p.frag(fo))
		}
		return p.insertAfter(p.doc.Root, "metadata", rootBeforeMeta, p.frag(add(elem("metadata"), fo)))
	}
	if recs.failover != nil && p.opt.Version != "" && p.t.Changed() {
		p.setAttr(recs.failover, "version", p.opt.Version)
	}
	return nil
}
