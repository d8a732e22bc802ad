// Package hostpaths owns where virt-failover finds a host's files: the system's own paths, or the
// same paths inside a tree (a hook installed as DIR/etc/libvirt/hooks/qemu, or --root DIR), where
// the tree is the whole host and nothing outside it is read or written.
package hostpaths

import (
	"path/filepath"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
)

// The host's well-known paths, as on the system.
const (
	LibvirtEtc = "/etc/libvirt"       // libvirt's configuration
	StatusDir  = "/run/libvirt/qemu"  // libvirt's status XML of the running QEMU domains
	HooksDir   = "/etc/libvirt/hooks" // libvirt's hook scripts
	Bin        = "/usr/local/bin/virt-failover"
)

// Paths maps the host's paths into Root; Root "" or "/" is the system itself.
type Paths struct{ Root string }

// System reports whether the paths are the system's own.
func (p Paths) System() bool { return p.Root == "" || p.Root == "/" }

// Under maps a path of the host (like /var/lib/virt-failover) into the tree. A path already inside
// the tree is kept, and a relative path is taken as it is.
func (p Paths) Under(path string) string {
	if p.System() || path == "" || !filepath.IsAbs(path) {
		return path
	}
	if rel, err := filepath.Rel(p.Root, path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return path
	}
	return filepath.Join(p.Root, path)
}

// PolicyFile is the default policy file.
func (p Paths) PolicyFile() string { return p.Under(policy.DefaultPath) }

// StatusDir is where libvirt keeps the status files of running domains.
func (p Paths) StatusDir() string { return p.Under(StatusDir) }

// HooksDir is libvirt's hooks directory.
func (p Paths) HooksDir() string { return p.Under(HooksDir) }

// LibvirtEtc is libvirt's configuration directory: a host without it has no libvirt installed.
func (p Paths) LibvirtEtc() string { return p.Under(LibvirtEtc) }

// PIDFile is where a libvirt daemon that runs the QEMU hook writes its process id.
type PIDFile struct{ Daemon, Path string }

// DaemonPIDFiles lists the pid files of the daemons that run the QEMU hook, in the order to look:
// the monolithic libvirtd's, then the modular virtqemud's, each in /run and /run/libvirt.
func (p Paths) DaemonPIDFiles() []PIDFile {
	var out []PIDFile
	for _, d := range []string{"libvirtd", "virtqemud"} {
		for _, dir := range []string{"/run", "/run/libvirt"} {
			out = append(out, PIDFile{d, p.Under(dir + "/" + d + ".pid")})
		}
	}
	return out
}

// MapPolicy maps the host paths a policy names (the log file, the state directory, sysfs) into
// the tree, so that a tree's hook, status and claims use the tree's files only.
func (p Paths) MapPolicy(pol *policy.Policy) {
	pol.Log.File = p.Under(pol.Log.File)
	pol.State.Dir = p.Under(pol.State.Dir)
	pol.Host.SysfsRoot = p.Under(pol.Host.SysfsRoot)
}
