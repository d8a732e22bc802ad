package hooks

import (
	"fmt"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/policy/lint"
)

// lintAtPrepare applies [host] enforce to the hook-safe lint rules: off skips them, warn logs
// their errors, refuse refuses a definition with errors, listing each rule ID and line. It runs
// before any claim is taken.
func (r *run) lintAtPrepare(dom *policy.Domain) (findings []string, refusal *outcome) {
	if r.pol.Host.Enforce == policy.EnforceOff {
		return nil, nil
	}
	fs, err := runLint(r.pol, r.inv.Object+".xml", dom)
	if err != nil {
		if r.pol.Host.Enforce != policy.EnforceRefuse {
			// warn only logs: a linter failure must not stop a start.
			return []string{"lint failed: " + err.Error()}, nil
		}
		out := errorOutcome("lint", err)
		return nil, &out
	}
	var ids, hints []string
	for _, f := range fs {
		if f.Severity < lint.Error {
			continue
		}
		findings = append(findings, fmt.Sprintf("%s %s line %d: %s", f.Rule, f.Name, f.Line, f.Message))
		ids = append(ids, fmt.Sprintf("%s (line %d)", f.Rule, f.Line))
		hints = append(hints, f.String())
		if f.Hint != "" {
			hints = append(hints, "hint: "+f.Hint)
		}
	}
	if len(findings) == 0 || r.pol.Host.Enforce != policy.EnforceRefuse {
		return findings, nil
	}
	hints = append(hints, `hint: "virt-failover lint" shows them on the persistent definition; [host] enforce = "warn" in `+r.pol.Source+" only logs them")
	return findings, &outcome{
		decision: Refuse,
		reason:   fmt.Sprintf("lint: %d error(s) in the definition: %s", len(findings), strings.Join(ids, ", ")),
		hints:    hints,
		lint:     findings,
	}
}

// runLint runs the hook-safe rules; a panic in a rule is an error, not the hook's end.
func runLint(pol *policy.Policy, file string, dom *policy.Domain) (fs []lint.Finding, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	l, err := lint.New(lint.Config{Policy: pol, HookSafeOnly: true})
	if err != nil {
		return nil, err
	}
	return l.CheckDomain(file, dom)
}
