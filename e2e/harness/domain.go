package harness

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
	"time"
)

// domainTemplate is the one place the test guest's definition comes from: a failover pair of a
// virtio standby (<teaming type='persistent'/>) and an emulated e1000e primary with the same MAC,
// paired through QEMU's failover_pair_id set with <qemu:override>.
//
//go:embed domain.xml.tmpl
var domainTemplate string

// Guest describes the test guest.
type Guest struct {
	Name      string
	MemoryMiB int
	Machine   string // q35
	Kernel    string
	Initrd    string
	IP        string // with prefix length, like 198.51.100.10/24
	Gateway   string
	Network   string // libvirt network of both interfaces
	MAC       string
	SerialLog string // a path outside the hosts' private mounts, the same on both hosts
}

// DefaultGuest is the test guest with the given kernel, initramfs and serial log.
func DefaultGuest(kernel, initrd, serialLog string) Guest {
	return Guest{
		Name:      "vfo-guest",
		MemoryMiB: 320,
		Machine:   "q35",
		Kernel:    kernel,
		Initrd:    initrd,
		IP:        GuestIP + GuestNet,
		Gateway:   GuestGW,
		Network:   "lan",
		MAC:       "52:54:00:5f:00:10",
		SerialLog: serialLog,
	}
}

// XML renders the guest's domain definition.
func (g Guest) XML() ([]byte, error) {
	t, err := template.New("domain").Option("missingkey=error").Parse(domainTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, g); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Boot starts the guest as a transient domain on h and waits until its heartbeat shows the
// failover master with the primary enslaved. It returns the heartbeat.
func (h *Host) Boot(ctx context.Context, g Guest, serial *Serial) (Heartbeat, error) {
	xml, err := g.XML()
	if err != nil {
		return Heartbeat{}, err
	}
	if err := os.MkdirAll(filepath.Dir(g.SerialLog), 0o755); err != nil {
		return Heartbeat{}, err
	}
	path := filepath.Join(h.Dir, g.Name+".xml")
	if err := os.WriteFile(path, xml, 0o644); err != nil {
		return Heartbeat{}, err
	}
	mark := serial.Len()
	if _, err := h.Virsh(ctx, "create", path); err != nil {
		return Heartbeat{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	hb, err := serial.WaitHeartbeat(ctx, mark, "heartbeat with the primary enslaved to the failover master",
		Heartbeat.PrimaryEnslaved)
	if err != nil {
		return hb, fmt.Errorf("booting %s on %s: %w", g.Name, h.Name, err)
	}
	return hb, nil
}
