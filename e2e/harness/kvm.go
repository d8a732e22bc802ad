package harness

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// NoKVM is the message libvirt gives when a definition asks for <domain type='kvm'> on a host
// whose QEMU cannot use KVM (no /dev/kvm): the definition is refused, not run under TCG.
const NoKVM = "does not support virt type 'kvm'"

// OffersKVM reports whether libvirt's capabilities XML (virsh capabilities) offers KVM guests:
// libvirt's own verdict, after it probed QEMU with the machine's /dev/kvm.
func OffersKVM(caps string) bool { return strings.Contains(caps, "<domain type='kvm'") }

// KVMUnusable reports whether libvirt, whose capabilities XML is caps, offers no KVM although
// /dev/kvm exists: the device is there but does not work (a stand-in such as /dev/null bound
// over it, a KVM module another hypervisor keeps busy). libvirt (9.0) then judges its probed
// capabilities by the device's presence, finds them stale at every lookup ("KVM was not enabled
// when probing, but it should be usable now") and probes QEMU again: seconds to a minute per
// call. Hiding /dev/kvm (Host.Start does it in the host's namespace; WithoutKVM runs a command so) makes its two views agree.
func KVMUnusable(caps string) bool {
	if OffersKVM(caps) {
		return false
	}
	_, err := os.Stat("/dev/kvm")
	return err == nil
}

// hideKVM is a shell script that hides /dev/kvm from the mount namespace it runs in, which must
// have private propagation: an overlay over /dev (upper and work directories under the directory
// $1) whiteouts kvm, the mounts below /dev are bound into it, and it is moved over /dev. Every
// other device stays as it was. Without /dev/kvm it does nothing.
const hideKVM = `set -e
if [ -e /dev/kvm ]; then
	d=$1
	mkdir -p "$d/upper" "$d/work" "$d/merged"
	mount -t overlay vf-dev -o "lowerdir=/dev,upperdir=$d/upper,workdir=$d/work" "$d/merged"
	rm -f "$d/merged/kvm"
	for m in $(awk '$5 ~ "^/dev/[^/]+$" && $5 != "/dev/kvm" { print $5 }' /proc/self/mountinfo | sort -u); do
		mount --rbind "$m" "$d/merged/${m#/dev/}"
	done
	mount --move "$d/merged" /dev
fi
`

// WithoutKVM returns argv to run in a private mount namespace whose /dev has no kvm (the
// overlay's directories are made under dir).
func WithoutKVM(dir string, argv ...string) []string {
	return append([]string{"unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
		hideKVM + "shift\nexec \"$@\"\n", "sh", dir}, argv...)
}

// hideKVM hides /dev/kvm in the host's mount namespace (hideKVM, with the overlay under Dir/.ovl/dev).
func (h *Host) hideKVM(ctx context.Context) error {
	_, err := h.NS(ctx, "sh", "-c", hideKVM, "sh", filepath.Join(h.Dir, ".ovl", "dev"))
	return err
}

var kvmRoot = regexp.MustCompile(`^((?:<\?[^>]*\?>|<!--(?s:.*?)-->|\s)*<domain\s+(?:[^>]*\s)?type=)(['"])kvm(['"])`)

// AsQEMU returns def with the root element's type='kvm' changed to type='qemu' (TCG, which
// every host has), and whether it changed anything; nothing else in def moves.
func AsQEMU(def []byte) ([]byte, bool) {
	m := kvmRoot.FindSubmatchIndex(def)
	if m == nil {
		return def, false
	}
	out := append([]byte{}, def[:m[1]-len("kvm")-1]...)
	out = append(out, "qemu"...)
	return append(out, def[m[1]-1:]...), true
}
