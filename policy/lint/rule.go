package lint

import (
	"strings"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Rule is one check of the registry.
type Rule struct {
	ID       string // "VF001", stable forever, never reused
	Name     string // kebab-case, "teaming-persistent-unknown-alias"
	Severity Severity
	// HookSafe marks the rules the hook may run at prepare: correct on live-format XML (libvirt's
	// generated aliases, addresses and MACs, no comments), fast, and free of side effects.
	HookSafe bool
	// Summary is one line: what the rule reports.
	Summary string
	Doc     Doc
	// check runs the rule on one parsed domain. Rules the engine runs itself (the document and
	// suppression rules, the schema check) have none.
	check func(*pass)
}

// Doc is a rule's documentation: what it reports, why it matters (with the facts it rests on),
// and a bad and a good snippet of domain XML.
type Doc struct {
	What string
	Why  string
	Bad  string
	Good string
}

// Rules returns the registry in ID order. The slice is shared: do not modify it.
func Rules() []*Rule { return registry }

// Lookup finds a rule by ID ("VF007", case-insensitive) or name.
func Lookup(idOrName string) *Rule {
	for _, r := range registry {
		if strings.EqualFold(r.ID, idOrName) || r.Name == idOrName {
			return r
		}
	}
	return nil
}

// pass is one rule's run over one domain.
type pass struct {
	rule *Rule
	dom  *policy.Domain
	pol  *policy.Policy
	m    *model
	file string
	out  *[]*Finding
}

// report adds a finding of the rule's severity about the element e, at the offset off (the
// element's start tag, or one of its attributes).
func (p *pass) report(e *xmlxform.Element, off int, msg string) *Finding {
	pos := p.dom.Doc.Pos(off)
	anchor := off
	if e != nil {
		anchor = e.Start.Start
	}
	f := &Finding{
		Rule: p.rule.ID, Name: p.rule.Name, Severity: p.rule.Severity,
		Position: Position{File: p.file, Line: pos.Line, Col: pos.Col},
		Message:  msg, anchor: anchor,
	}
	*p.out = append(*p.out, f)
	return f
}

// at reports about the element e, at its start tag.
func (p *pass) at(e *xmlxform.Element, msg string) *Finding { return p.report(e, e.Start.Start, msg) }

// atAttr reports about the attribute name of e, or at e's start tag when it has no such
// attribute.
func (p *pass) atAttr(e *xmlxform.Element, name, msg string) *Finding {
	if a := e.AttrNode(name); a != nil {
		return p.report(e, a.Span.Start, msg)
	}
	return p.at(e, msg)
}

// relatedEl adds the start tag of e as a related position.
func (p *pass) relatedEl(f *Finding, e *xmlxform.Element, msg string) {
	if e != nil {
		p.related(f, e.Start.Start, msg)
	}
}

// related adds a related position to f.
func (p *pass) related(f *Finding, off int, msg string) {
	pos := p.dom.Doc.Pos(off)
	f.Related = append(f.Related, Related{Position: Position{File: p.file, Line: pos.Line, Col: pos.Col}, Message: msg})
}
