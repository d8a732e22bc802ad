package lint

import (
	"fmt"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
)

var ruleNotWellFormed = &Rule{
	ID: "VF001", Name: "not-well-formed", Severity: Error, HookSafe: true,
	Summary: "the file is not well-formed XML (or not UTF-8)",
	Doc: Doc{
		What: "The file does not parse as an XML 1.0 document in UTF-8: a tag is not closed, an attribute is not quoted, " +
			"a byte is not UTF-8 or not an XML character, or elements nest deeper than 1000 levels. " +
			"The finding points at the first byte that is wrong; no other rule runs on the file.",
		Why: "libvirt cannot read such a definition at all; `virsh define` fails with a one-line parser error. " +
			"A linter in CI should say where, not crash or give up on the whole run.",
		Bad:  "<domain type='kvm'>\n  <name>web-01</name>\n  <devices>\n    <interface type='bridge'>\n  </devices>\n</domain>",
		Good: "<domain type='kvm'>\n  <name>web-01</name>\n  <devices>\n    <interface type='bridge'/>\n  </devices>\n</domain>",
	},
}

var ruleRootNotDomain = &Rule{
	ID: "VF002", Name: "root-not-domain", Severity: Error, HookSafe: true,
	Summary: "the root element is not <domain>",
	Doc: Doc{
		What: "The document's root element is not `<domain>` in no namespace, so it is not a libvirt domain definition " +
			"(a network, a storage pool, a capabilities dump, or another tool's XML). No other rule runs on the file.",
		Why: "Every rule reads a domain definition; linting other XML as a domain would report nonsense. " +
			"A directory of libvirt XML often mixes domains with networks: lint the domains.",
		Bad:  "<network>\n  <name>fabric</name>\n  <forward mode='hostdev' managed='yes'/>\n</network>",
		Good: "<domain type='kvm'>\n  <name>web-01</name>\n</domain>",
	},
}

var ruleTeamingUnknownAttr = &Rule{
	ID: "VF003", Name: "teaming-unknown-attribute", Severity: Error, HookSafe: true,
	Summary: "<teaming> has an attribute or child libvirt does not know, or the pre-release <driver failover=…> syntax is used",
	Doc: Doc{
		What: "A `<teaming>` element has an attribute other than `type` and `persistent`, or child elements; or an " +
			"`<interface>`'s `<driver>` carries `failover=` or `backupAlias=`, the syntax of the 2020 RFC that was " +
			"replaced by `<teaming>` before libvirt 6.1 merged it.",
		Why: "libvirt's schema allows exactly `type` and `persistent` on `<teaming>` (domaincommon.rng); without " +
			"`virsh define --validate` libvirt silently drops what it does not know, so a misspelt `persistant=` " +
			"turns into a transient without a partner (docs/failover.md#teaming-xml, docs/failover.md#teaming-validation).",
		Bad:  "<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:02'/>\n  <teaming type='transient' persistant='ua-sby0'/>\n</interface>",
		Good: "<interface type='hostdev' managed='yes'>\n  <mac address='52:54:00:6d:90:02'/>\n  <teaming type='transient' persistent='ua-sby0'/>\n</interface>",
	},
	check: func(p *pass) {
		for _, t := range teamings(p) {
			for _, a := range t.Attrs {
				if a.QName == "xmlns" || strings.HasPrefix(a.QName, "xmlns:") || a.QName == "type" || a.QName == "persistent" {
					continue
				}
				f := p.report(t, a.Span.Start, fmt.Sprintf("<teaming> has an unknown attribute %s=: libvirt drops it, or refuses the definition with --validate", a.QName))
				if near := policy.ClosestName(a.QName, []string{"type", "persistent"}); near != "" {
					f.Hint = "did you mean " + near + "=?"
				} else {
					f.Hint = "<teaming> takes type= and, for type='transient', persistent= only"
				}
			}
			for _, c := range t.Children {
				f := p.at(c, fmt.Sprintf("<teaming> has a child element <%s>: it takes attributes only", c.QName))
				f.Hint = "write <teaming type='persistent'/> or <teaming type='transient' persistent='ua-…'/>"
			}
		}
		for _, n := range p.dom.NICs {
			d := n.El.Child("driver")
			if d == nil {
				continue
			}
			for _, name := range []string{"failover", "backupAlias"} {
				if d.AttrNode(name) != nil {
					f := p.atAttr(d, name, fmt.Sprintf("<driver %s=…> is the pre-release failover syntax; libvirt replaced it with <teaming> and ignores it", name))
					f.Hint = "put <teaming type='persistent'/> on the virtio standby and <teaming type='transient' persistent='ua-…'/> on the primary"
				}
			}
		}
	},
}

var ruleSuppression = &Rule{
	ID: "VF037", Name: "suppression-invalid", Severity: Warning,
	Summary: "a virt-failover:ignore comment gives no reason or names an unknown rule",
	Doc: Doc{
		What: "A suppression comment `<!-- virt-failover:ignore VF0NN reason -->` has no reason after the rule IDs, " +
			"names no rule, or names a rule that does not exist. A suppression still applies to the rules it names " +
			"correctly; this finding itself cannot be suppressed.",
		Why: "A suppression is a decision someone must be able to review later: the reason is the record of why a " +
			"finding does not apply. Not hook-safe: libvirt does not keep comments in the definitions it formats.",
		Bad:  "<!-- virt-failover:ignore VF027 -->\n<hostdev mode='subsystem' type='pci' managed='yes'>",
		Good: "<!-- virt-failover:ignore VF027 the GPU stays; this guest is never live-migrated -->\n<hostdev mode='subsystem' type='pci' managed='yes'>",
	},
}

var ruleSchema = &Rule{
	ID: "VF038", Name: "schema-invalid", Severity: Error,
	Summary: "libvirt's RelaxNG schema rejects the document (only with --schema)",
	Doc: Doc{
		What: "With `--schema`, each file is also validated by `virt-xml-validate` (libvirt's RelaxNG schemas, " +
			"through xmllint) and each of its complaints becomes a finding, placed on the element it names.",
		Why: "The schema catches what no failover rule is about (a misplaced element, a wrong value type). " +
			"`virt-xml-validate` alone prints cryptic, sometimes misleading RelaxNG messages and no machine-readable " +
			"output; here they land in the same report, formats and exit code. Not hook-safe: it runs a program.",
		Bad:  "<devices>\n  <interface type='bridge'>\n    <source bridge='br0'/>\n    <bogus/>\n  </interface>\n</devices>",
		Good: "<devices>\n  <interface type='bridge'>\n    <source bridge='br0'/>\n    <model type='virtio'/>\n  </interface>\n</devices>",
	},
}
