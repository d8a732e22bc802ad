package harness

import (
	"context"
	"regexp"
	"strings"
)

// NoKVM is the message libvirt gives when a definition asks for <domain type='kvm'> on a host
// whose QEMU cannot use KVM (no /dev/kvm): the definition is refused, not run under TCG.
const NoKVM = "does not support virt type 'kvm'"

// KVM reports whether the host's QEMU driver offers KVM, as libvirt itself decides it.
func (h *Host) KVM(ctx context.Context) (bool, error) {
	out, err := h.Virsh(ctx, "capabilities")
	if err != nil {
		return false, err
	}
	return strings.Contains(out, "<domain type='kvm'"), nil
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
