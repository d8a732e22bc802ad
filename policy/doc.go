// Package policy decides what virt-failover does to a domain, as pure functions of the domain
// definition, what the host has and the operator's policy file.
//
// The policy file is TOML, read from [DefaultPath] by [Load] or from bytes by [Parse]. It is
// validated strictly: an unknown key, a value of the wrong type or a value that cannot be right
// (an unknown on_error mode, a malformed PCI address, one VF in two pools) is an [*Error] that
// names the file, line and column of the offending key, with a hint; every problem in a file is
// reported at once, in file order, joined with [errors.Join]. A missing file is not an error: the
// built-in defaults of [Default] apply. docs/policy.md describes every key.
//
// Nothing here prints, exits or talks to libvirt; the hook and the command line turn results into
// text and exit codes.
package policy
