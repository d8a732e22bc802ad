// Package lint checks libvirt domain definitions for failover mistakes, offline.
//
// [Check] takes a file name, its bytes and a [Config] (the policy, which rules run) and returns
// [Finding]s: each with a stable rule ID (VF001, VF002, …), a severity, the line and column of the
// exact element or attribute, a message, related positions and a hint. The document is parsed
// once, with xmlxform; the rules read it through policy.Domain. Nothing here reads files, runs
// programs, prints or exits, and the package imports no command-line machinery, so the hook can
// run the rules marked [Rule].HookSafe at prepare.
//
// The registry ([Rules], [Lookup]) is the single source of the rule documentation:
// docs/rules.md is generated from it (go generate ./policy/lint) and a test fails when the file
// is stale.
//
// A finding is suppressed by a comment on the element's line or the line above:
//
//	<!-- virt-failover:ignore VF027 the orchestrator unplugs this HBA before migrating -->
//
// A suppression needs a reason; one without a reason, or naming an unknown rule, is itself a
// finding (VF037).
package lint

//go:generate go run ./internal/rulesdoc -o ../../docs/rules.md
