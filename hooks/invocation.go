// Package hooks implements the libvirt QEMU hook protocol: argv, the operation table, the
// stdin/stdout filter contract, exit-code semantics and the decision log. It owns the host's pool
// resources too (docs/pools.md): at migrate/restore begin it claims a free VF or network of each
// primary's pool, and of each device the orchestrator parked for the migration, and rewrites the
// host side of the definition, prepare confirms the claims, release frees them and reconnect
// rebuilds them, in the claims ledger (internal/ledger); every transaction also reaps the claims
// of domains that no longer run here (a release that could not take the ledger's lock leaves its
// claims behind). At started it launches the detached worker that plugs parked devices back
// (worker.go). The whole call has a deadline.
//
// The package never opens a libvirt connection: libvirt holds the domain's job lock while a hook
// runs, and a hook that calls back into libvirt deadlocks (docs/failover.md#hook-protocol).
package hooks

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/virt-failover/virt-failover/internal/hostpaths"
)

// Invocation is one call of the hook as libvirt makes it:
// /etc/libvirt/hooks/qemu OBJECT OPERATION SUB-OPERATION EXTRA.
type Invocation struct {
	Driver string // "qemu"
	Object string // the domain name
	Op     string // prepare, start, started, stopped, release, migrate, restore, reconnect, attach
	SubOp  string // begin, end or "-"
	Extra  string // "-" unless libvirt says more (the release reason on libvirt >= 10.5)
}

// String renders the invocation the way messages name it: "qemu web-01 migrate begin".
func (inv Invocation) String() string {
	return strings.Join([]string{inv.Driver, inv.Object, inv.Op, inv.SubOp}, " ")
}

// IsHookPath reports whether argv0 is the path libvirt runs a QEMU hook by: a file named qemu in a
// hooks directory, or any file in hooks/qemu.d/.
func IsHookPath(argv0 string) bool {
	dir, base := filepath.Split(argv0)
	dir = filepath.Base(filepath.Clean(dir))
	return (base == "qemu" && dir == "hooks") || dir == "qemu.d"
}

// ParseArgs reads libvirt's hook arguments. driver is "qemu" for the QEMU hook; args are
// OBJECT OPERATION SUB-OPERATION EXTRA. libvirt always passes four; missing trailing ones are
// taken as "-" so an operator can type "qemu web-01 prepare begin".
func ParseArgs(driver string, args []string) (Invocation, error) {
	if driver != "qemu" {
		return Invocation{}, fmt.Errorf("driver %q is not handled: only the qemu hook is", driver)
	}
	if len(args) < 2 {
		return Invocation{}, fmt.Errorf("want DOMAIN OPERATION [SUB-OPERATION [EXTRA]], got %d argument(s)", len(args))
	}
	if len(args) > 4 {
		return Invocation{}, fmt.Errorf("want at most 4 arguments after the driver, got %d", len(args))
	}
	v := [4]string{"-", "-", "-", "-"}
	copy(v[:], args)
	return Invocation{Driver: driver, Object: v[0], Op: v[1], SubOp: v[2], Extra: v[3]}, nil
}

// RootFor returns the tree a hook installed at argv0 belongs to: DIR for
// DIR/etc/libvirt/hooks/qemu (or DIR/etc/libvirt/hooks/qemu.d/NAME), "" for the system's own
// /etc/libvirt/hooks/qemu or a path that is not a hook's. libvirt gives hooks a bare environment
// and no arguments to say more (docs/failover.md#hook-protocol).
func RootFor(argv0 string) string {
	dir := filepath.Dir(filepath.Clean(argv0))
	if filepath.Base(dir) == "qemu.d" {
		dir = filepath.Dir(dir)
	}
	// dir is now .../etc/libvirt/hooks
	if filepath.Base(dir) != "hooks" || filepath.Base(filepath.Dir(dir)) != "libvirt" {
		return ""
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(dir)))
	if root == "/" {
		return ""
	}
	return root
}

// PathsFor returns the host paths of a hook installed at argv0, those of the tree it is installed
// in (RootFor): for the system's /etc/libvirt/hooks/qemu the policy is
// /etc/virt-failover/policy.toml; for DIR/etc/libvirt/hooks/qemu it is
// DIR/etc/virt-failover/policy.toml, and libvirt's status files, the log, the claims and sysfs are
// taken under DIR too.
func PathsFor(argv0 string) hostpaths.Paths { return hostpaths.Paths{Root: RootFor(argv0)} }
