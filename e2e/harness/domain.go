package harness

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/template"
)

// domainTemplate is where the test guest's definition starts: a plain domain with one virtio
// NIC. The binary under test pairs it (virt-failover pair --emulated-primary): the NIC becomes
// the virtio standby (<teaming type='persistent'/>) and an emulated e1000e primary with the same
// MAC is added, paired through QEMU's failover_pair_id set with <qemu:override>.
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
	// Plain makes the yardstick guest: its one virtio NIC stays unpaired (no primary, no failover)
	// and carries the address itself.
	Plain bool
	// Bond makes the bonded guest (BondGuest): an e1000e primary and a virtio NIC with the same
	// MAC, not paired; the guest bonds them (vfo.bond=1). Its Initrd must be the modes initramfs.
	Bond bool
	// LUN, a host block device, makes the multipath guest (MultipathGuest): two SCSI paths to it,
	// and dm-multipath over them in the guest (vfo.mpath=1). Its Initrd must be the modes initramfs.
	LUN string
	// Bin is the virt-failover binary that pairs the definition. Empty: the host's hook when Boot
	// runs it (the binary under test), else $VF_BIN, else one built from this module.
	Bin string
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

// YardstickGuest is the guest the failover figures are read against: DefaultGuest with its one
// virtio NIC left plain (no primary, nothing to fail over), and its own name, MAC and address, so
// it can run beside the failover guest on the same bridge.
func YardstickGuest(kernel, initrd, serialLog string) Guest {
	g := DefaultGuest(kernel, initrd, serialLog)
	g.Name, g.Plain = "vfo-plain", true
	g.IP, g.MAC = PlainIP+GuestNet, "52:54:00:5f:00:11"
	return g
}

// The aliases of the bonded and the multipath guests' devices: the primaries are what a test
// (or the orchestrator) unplugs, the standbys stay.
const (
	BondPrimary = "ua-pri0"    // the e1000e
	BondStandby = "ua-sby0"    // the virtio NIC
	LUNPrimary  = "ua-hd0"     // the disk on the pvscsi controller
	LUNStandby  = "ua-lun0"    // the disk on the virtio-scsi controller
	PVSCSI      = "ua-pvscsi1" // the pvscsi controller (index 1)

	// LUNWWN and LUNSerial are both paths' WWN (NAA 5) and serial: the guest reads the WWID
	// naa.<LUNWWN> on each.
	LUNWWN    = "5001405000e2e001"
	LUNSerial = "vfo-lun0"
)

// BondGuest is the guest that bonds an emulated e1000e primary and a virtio NIC itself, without
// net_failover, with its own name, MAC and address. initrd must be the modes initramfs
// (guest.Image.ModesInitrd).
func BondGuest(kernel, initrd, serialLog string) Guest {
	g := DefaultGuest(kernel, initrd, serialLog)
	g.Name, g.Bond = "vfo-bond", true
	g.IP, g.MAC = BondIP+GuestNet, "52:54:00:5f:00:12"
	return g
}

// MultipathGuest is the guest that runs dm-multipath over two SCSI paths to the host block device
// lun, with a plain virtio NIC and its own name, MAC and address. initrd must be the modes
// initramfs (guest.Image.ModesInitrd).
func MultipathGuest(kernel, initrd, serialLog, lun string) Guest {
	g := DefaultGuest(kernel, initrd, serialLog)
	g.Name, g.Plain, g.LUN = "vfo-mpath", true, lun
	g.IP, g.MAC = MultipathIP+GuestNet, "52:54:00:5f:00:13"
	return g
}

// PlainXML renders the guest's definition before pairing: one virtio NIC, no failover (the
// bonded guest: both its NICs).
func (g Guest) PlainXML() ([]byte, error) {
	t, err := template.New("domain").Option("missingkey=error").Parse(domainTemplate)
	if err != nil {
		return nil, err
	}
	data := struct {
		Guest
		BondPrimary, BondStandby, LUNPrimary, LUNStandby, PVSCSI, LUNWWN, LUNSerial string
	}{g, BondPrimary, BondStandby, LUNPrimary, LUNStandby, PVSCSI, LUNWWN, LUNSerial}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// XML renders the guest's domain definition as an operator would make it: the plain definition,
// paired by "virt-failover pair --emulated-primary" (with the built-in policy). The yardstick,
// bonded and multipath guests are not paired.
func (g Guest) XML() ([]byte, error) {
	plain, err := g.PlainXML()
	if err != nil || g.Plain || g.Bond {
		return plain, err
	}
	bin := g.Bin
	if bin == "" {
		if bin, err = PairBinary(); err != nil {
			return nil, err
		}
	}
	return RunPair(bin, plain, "--emulated-primary")
}

// RunPair runs "BIN pair -q --policy /dev/null ARGS... -" on a definition and returns the paired one.
func RunPair(bin string, def []byte, args ...string) ([]byte, error) {
	argv := append([]string{"pair", "-q", "--policy", "/dev/null"}, args...)
	cmd := exec.Command(bin, append(argv, "-")...)
	cmd.Stdin = bytes.NewReader(def)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", bin, strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// IsStandIn reports whether a hook path is the stand-in script, which cannot pair.
func IsStandIn(bin string) bool { return strings.HasSuffix(bin, "standin-hook.sh") }

var pairBinary struct {
	once sync.Once
	path string
	err  error
}

// PairBinary returns a virt-failover binary for pairing: $VF_BIN unless it is the stand-in hook,
// else one built from this module into .cache/e2e/ (once per process).
func PairBinary() (string, error) {
	if bin := os.Getenv("VF_BIN"); bin != "" && !IsStandIn(bin) {
		return bin, nil
	}
	pairBinary.once.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			pairBinary.err = err
			return
		}
		dir := filepath.Join(root, ".cache", "e2e")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			pairBinary.err = err
			return
		}
		// Built under a name of its own and renamed, so that two test processes never run a
		// half-written binary.
		tmp, err := os.CreateTemp(dir, "virt-failover-*")
		if err != nil {
			pairBinary.err = err
			return
		}
		tmp.Close()
		cmd := exec.Command("go", "build", "-trimpath", "-o", tmp.Name(), "./cmd/virt-failover")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp.Name())
			pairBinary.err = fmt.Errorf("building virt-failover to pair the guest: %v\n%s", err, out)
			return
		}
		pairBinary.path = filepath.Join(dir, "virt-failover")
		pairBinary.err = os.Rename(tmp.Name(), pairBinary.path)
	})
	return pairBinary.path, pairBinary.err
}

// Ready is the heartbeat the guest shows when its network is whole: the failover master with the
// primary enslaved, for a plain guest its virtio NIC up, for the bonded guest both NICs under the
// bond and the primary active; a multipath guest's map also has both paths, I/O on the
// assigned leg.
func (g Guest) Ready() (string, func(Heartbeat) bool) {
	switch {
	case g.LUN != "":
		return "heartbeat with the plain virtio NIC up and both multipath paths active", func(h Heartbeat) bool {
			return h.PlainUp() && h.MultipathWhole()
		}
	case g.Bond:
		return "heartbeat with both NICs under the bond and the primary active", Heartbeat.BondWhole
	case g.Plain:
		return "heartbeat with the plain virtio NIC up", Heartbeat.PlainUp
	}
	return "heartbeat with the primary enslaved to the failover master", Heartbeat.PrimaryEnslaved
}

// Boot starts the guest as a transient domain on h and waits until its heartbeat shows it Ready.
// It returns the heartbeat.
func (h *Host) Boot(ctx context.Context, g Guest, serial *Serial) (Heartbeat, error) {
	if g.Bin == "" && h.hook != "" && !IsStandIn(h.hook) {
		g.Bin = h.hook
	}
	xml, err := g.XML()
	if err != nil {
		return Heartbeat{}, err
	}
	if err := os.MkdirAll(filepath.Dir(g.SerialLog), 0o755); err != nil {
		return Heartbeat{}, err
	}
	what, ready := g.Ready()
	return h.bootXML(ctx, g.Name, xml, serial, what, ready)
}
