package virt

import (
	"os"
	"path/filepath"
	"testing"
)

// Without ?socket=, qemu:///system reaches libvirtd's socket, or virtqemud's on a host that has
// only the modular daemon.
func TestParseURIFindsTheLocalSocket(t *testing.T) {
	dir := t.TempDir()
	oldL, oldQ := libvirtdSocket, virtqemudSocket
	t.Cleanup(func() { libvirtdSocket, virtqemudSocket = oldL, oldQ })
	libvirtdSocket, virtqemudSocket = filepath.Join(dir, "libvirt-sock"), filepath.Join(dir, "virtqemud-sock")

	socketOf := func(uri string) string {
		t.Helper()
		u, err := parseURI(uri)
		if err != nil {
			t.Fatal(err)
		}
		return u.Query().Get("socket")
	}
	if got := socketOf("qemu:///system"); got != "" {
		t.Errorf("no daemon socket at all: socket=%q, want go-libvirt's default", got)
	}
	if err := os.WriteFile(virtqemudSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := socketOf("qemu:///system"); got != virtqemudSocket {
		t.Errorf("only virtqemud: socket=%q", got)
	}
	if got := socketOf("qemu:///system?socket=/srv/a/libvirt-sock"); got != "/srv/a/libvirt-sock" {
		t.Errorf("an explicit socket was replaced: %q", got)
	}
	if got := socketOf("qemu+ssh://root@b/system"); got != "" {
		t.Errorf("a remote URI got a local socket: %q", got)
	}
	if err := os.WriteFile(libvirtdSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := socketOf("qemu:///system"); got != "" {
		t.Errorf("libvirtd present: socket=%q, want go-libvirt's default", got)
	}
}
