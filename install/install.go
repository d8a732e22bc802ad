// Package install holds the files "virt-failover install" writes: the commented sample policy.
package install

import _ "embed"

// SamplePolicy is install/policy.toml: every key with its default, commented out.
//
//go:embed policy.toml
var SamplePolicy []byte
