package lint

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Config says how to lint.
type Config struct {
	// Policy supplies the [lint] keys (require_migratable, standby_networks, disable) and the
	// pools. nil means policy.Default().
	Policy *policy.Policy
	// Disable switches rules off (IDs or names), beyond the policy's [lint] disable.
	Disable []string
	// Enable switches rules on again that the policy or Disable switched off.
	Enable []string
	// HookSafeOnly runs only the rules marked HookSafe (what the hook runs at prepare).
	HookSafeOnly bool
	// Schema, when set, validates a document against libvirt's schemas (the command line runs
	// virt-xml-validate); its problems become VF038 findings. Its error is returned by Check.
	Schema func(file string, src []byte) ([]SchemaProblem, error)
}

// Linter lints documents with one Config. Its Check may be called from several goroutines.
type Linter struct {
	pol    *policy.Policy
	on     [numRules]bool
	checks []*Rule // the enabled rules with a check, in ID order
	schema func(string, []byte) ([]SchemaProblem, error)
}

// numRules is the size of the registry; the registry test keeps it right.
const numRules = 41

// New prepares a Linter. Unknown rule IDs or names in Enable or Disable are an error; the
// policy's own list was checked when it was loaded.
func New(cfg Config) (*Linter, error) {
	l := &Linter{pol: cfg.Policy, schema: cfg.Schema}
	if l.pol == nil {
		l.pol = policy.Default()
	}
	for i, r := range registry {
		l.on[i] = !cfg.HookSafeOnly || r.HookSafe
	}
	set := func(list []string, v bool, what string) error {
		var errs []error
		for _, id := range list {
			r := Lookup(strings.TrimSpace(id))
			if r == nil {
				errs = append(errs, fmt.Errorf("%s: unknown rule %q", what, id))
				continue
			}
			l.on[r.index()] = v && (!cfg.HookSafeOnly || r.HookSafe)
		}
		return errors.Join(errs...)
	}
	for _, id := range l.pol.Lint.Disable {
		if r := Lookup(id); r != nil {
			l.on[r.index()] = false
		}
	}
	if err := set(cfg.Disable, false, "disable"); err != nil {
		return nil, err
	}
	if err := set(cfg.Enable, true, "enable"); err != nil {
		return nil, err
	}
	for i, r := range registry {
		if l.on[i] && r.check != nil {
			l.checks = append(l.checks, r)
		}
	}
	return l, nil
}

func (r *Rule) index() int {
	for i, x := range registry {
		if x == r {
			return i
		}
	}
	panic("lint: rule not in the registry: " + r.ID)
}

// Check lints one document. file is the name findings carry. The findings are sorted by
// position. The error is the schema validator's, when it could not run.
func (l *Linter) Check(file string, src []byte) ([]Finding, error) {
	doc, err := xmlxform.Parse(src)
	if err != nil {
		var se *xmlxform.SyntaxError
		if !l.on[ruleNotWellFormed.index()] {
			return nil, nil
		}
		f := Finding{Rule: ruleNotWellFormed.ID, Name: ruleNotWellFormed.Name, Severity: ruleNotWellFormed.Severity,
			Position: Position{File: file}, Message: "not well-formed XML: " + err.Error(),
			Hint: "libvirt cannot read this definition; fix the XML at this position", anchor: -1}
		if errors.As(err, &se) {
			f.Line, f.Col, f.Message = se.Line, se.Col, "not well-formed XML: "+se.Msg
		}
		return []Finding{f}, nil
	}
	return l.CheckDoc(file, doc)
}

// CheckDoc lints a document parsed already (the hook parses once for everything it does).
func (l *Linter) CheckDoc(file string, doc *xmlxform.Doc) ([]Finding, error) {
	var out []*Finding
	if doc.Root.Name.Local != "domain" || doc.Root.Name.Space != "" {
		if l.on[ruleRootNotDomain.index()] {
			pos := doc.Pos(doc.Root.Start.Start)
			out = append(out, &Finding{Rule: ruleRootNotDomain.ID, Name: ruleRootNotDomain.Name, Severity: ruleRootNotDomain.Severity,
				Position: Position{File: file, Line: pos.Line, Col: pos.Col},
				Message:  fmt.Sprintf("the root element is <%s>, not <domain>: this is not a libvirt domain definition", doc.Root.QName),
				Hint:     "lint domain definitions (virsh dumpxml DOMAIN); other libvirt XML is not checked", anchor: doc.Root.Start.Start})
		}
		return flatten(out), nil
	}
	return l.CheckDomain(file, policy.NewDomain(doc))
}

// CheckDomain lints a domain whose read model is built already (the hook builds it once per call).
func (l *Linter) CheckDomain(file string, dom *policy.Domain) ([]Finding, error) {
	var out []*Finding
	doc := dom.Doc
	m := buildModel(dom, l.pol)
	for _, r := range l.checks {
		r.check(&pass{rule: r, dom: dom, pol: l.pol, m: m, file: file, out: &out})
	}
	var schemaErr error
	if l.schema != nil && l.on[ruleSchema.index()] {
		probs, err := l.schema(file, doc.Src)
		if err != nil {
			schemaErr = err
		}
		out = append(out, schemaFindings(file, doc, probs)...)
	}
	out = l.suppress(file, doc, out)
	return flatten(out), schemaErr
}

func flatten(fs []*Finding) []Finding {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Rule < b.Rule
	})
	out := make([]Finding, len(fs))
	for i, f := range fs {
		out[i] = *f
	}
	return out
}

// suppression is one <!-- virt-failover:ignore IDS REASON --> comment.
type suppression struct {
	first, last int // lines the comment spans
	rules       []*Rule
	reason      string
}

const ignoreMarker = "virt-failover:ignore"

// suppress drops the findings a suppression comment covers and adds findings for malformed
// suppressions.
func (l *Linter) suppress(file string, doc *xmlxform.Doc, fs []*Finding) []*Finding {
	src := doc.Src
	if !bytes.Contains(src, []byte(ignoreMarker)) {
		return fs
	}
	var sups []suppression
	for i := 0; ; {
		j := bytes.Index(src[i:], []byte("<!--"))
		if j < 0 {
			break
		}
		start := i + j
		k := bytes.Index(src[start+4:], []byte("-->"))
		if k < 0 {
			break
		}
		end := start + 4 + k
		i = end + 3
		text := strings.TrimSpace(string(src[start+4 : end]))
		rest, ok := strings.CutPrefix(text, ignoreMarker)
		if !ok || rest != "" && rest[0] != ' ' && rest[0] != '\t' && rest[0] != '\n' && rest[0] != '\r' {
			continue
		}
		if insideCDATA(src, start) {
			continue
		}
		fields := strings.Fields(rest)
		s := suppression{first: doc.Pos(start).Line, last: doc.Pos(end).Line}
		var bad []string
		if len(fields) > 0 {
			for _, id := range strings.Split(fields[0], ",") {
				if id == "" {
					continue
				}
				if r := Lookup(id); r != nil {
					s.rules = append(s.rules, r)
				} else {
					bad = append(bad, id)
				}
			}
			s.reason = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), fields[0]))
		}
		if l.on[ruleSuppression.index()] {
			pos := doc.Pos(start)
			mk := func(msg, hint string) {
				fs = append(fs, &Finding{Rule: ruleSuppression.ID, Name: ruleSuppression.Name, Severity: ruleSuppression.Severity,
					Position: Position{File: file, Line: pos.Line, Col: pos.Col}, Message: msg, Hint: hint, anchor: -1})
			}
			switch {
			case len(fields) == 0:
				mk("virt-failover:ignore names no rule and gives no reason", "write <!-- virt-failover:ignore VF027 why this is fine here -->")
			case len(bad) > 0:
				mk(fmt.Sprintf("virt-failover:ignore names unknown rule %s", strings.Join(bad, ", ")), `"virt-failover lint --list-rules" lists the rule IDs`)
			case s.reason == "":
				mk(fmt.Sprintf("virt-failover:ignore %s gives no reason", fields[0]), "say why the finding does not apply here, after the rule IDs: <!-- virt-failover:ignore "+fields[0]+" REASON -->")
			}
		}
		if len(s.rules) > 0 {
			sups = append(sups, s)
		}
	}
	if len(sups) == 0 {
		return fs
	}
	kept := fs[:0]
	for _, f := range fs {
		if !suppressed(doc, f, sups) {
			kept = append(kept, f)
		}
	}
	return kept
}

// suppressed reports whether a suppression for f's rule is on f's line, the line above, or (for
// a finding inside a multi-line element) the line of the element or the one above it.
func suppressed(doc *xmlxform.Doc, f *Finding, sups []suppression) bool {
	if f.Rule == ruleSuppression.ID || f.Rule == ruleNotWellFormed.ID || f.Line == 0 {
		return false
	}
	lines := [2]int{f.Line, f.Line}
	if f.anchor >= 0 {
		lines[1] = doc.Pos(f.anchor).Line
	}
	for _, s := range sups {
		for _, r := range s.rules {
			if r.ID != f.Rule {
				continue
			}
			for _, ln := range lines {
				if ln >= s.first && ln <= s.last || ln-1 >= s.first && ln-1 <= s.last {
					return true
				}
			}
		}
	}
	return false
}

// insideCDATA reports whether off lies in a CDATA section (where "<!--" is text, not a comment).
func insideCDATA(src []byte, off int) bool {
	open := bytes.LastIndex(src[:off], []byte("<![CDATA["))
	if open < 0 {
		return false
	}
	return !bytes.Contains(src[open:off], []byte("]]>"))
}
