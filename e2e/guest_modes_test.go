package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
)

// TestGuestModes proves the two guests that fail over without QEMU's help, on host A: the bonded
// guest (no net_failover: an e1000e primary standing in for a VF and a virtio NIC in an
// active-backup bond) and the multipath guest (dm-multipath over a disk on a pvscsi controller,
// standing in for an assigned HBA's path, and a virtio-scsi path to the same LUN, with a writer
// that writes and verifies checksummed blocks through the map). Each primary is hot-unplugged
// with virsh detach-device-alias and attached again with virsh attach-device; the guest must
// fail over to the standby and take the primary back, with no I/O error and traffic throughout.
func TestGuestModes(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	s := setup(t)
	t.Run("bond", s.testBond)
	t.Run("multipath", s.testMultipath)
}

// modeTimeout bounds each wait for a guest state: the machine is slow and shared, and TCG.
const modeTimeout = 3 * time.Minute

// wait waits for a heartbeat from mark on that satisfies ok.
func wait(ctx context.Context, serial *harness.Serial, mark int, what string, ok func(harness.Heartbeat) bool) (harness.Heartbeat, error) {
	ctx, cancel := context.WithTimeout(ctx, modeTimeout)
	defer cancel()
	return serial.WaitHeartbeat(ctx, mark, what, ok)
}

// later waits for a heartbeat at least secs guest seconds after hb that satisfies ok.
func later(ctx context.Context, serial *harness.Serial, hb harness.Heartbeat, secs float64, what string, ok func(harness.Heartbeat) bool) (harness.Heartbeat, error) {
	return wait(ctx, serial, hb.Index+1, what, func(h harness.Heartbeat) bool {
		return h.Uptime >= hb.Uptime+secs && ok(h)
	})
}

// bootMode boots g on A and destroys it when the test ends.
func (s *suite) bootMode(t *testing.T, g harness.Guest, serial *harness.Serial) harness.Heartbeat {
	t.Helper()
	t.Cleanup(func() {
		if st, _ := s.pair.A.DomState(s.ctx, g.Name); st != "" {
			_, _ = s.pair.A.Virsh(s.ctx, "destroy", g.Name)
		}
	})
	start := time.Now()
	hb, err := s.pair.A.Boot(s.ctx, g, serial)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s booted on a in %.1fs: %s", g.Name, time.Since(start).Seconds(), hb.Summary())
	return hb
}

// hotplug is one detach or attach of a guest's primary: how long virsh and libvirt took (until
// the live XML agreed), and when the guest's heartbeat first showed the state expected after it.
type hotplug struct {
	took, seen time.Duration
	hb         harness.Heartbeat
}

// plug runs step (a detach or an attach) and waits for a heartbeat after it that satisfies ok.
func plug(t *testing.T, ctx context.Context, serial *harness.Serial, step func() (time.Duration, error), what string, ok func(harness.Heartbeat) bool) hotplug {
	t.Helper()
	mark := serial.Len()
	start := time.Now()
	took, err := step()
	if err != nil {
		t.Fatal(err)
	}
	hb, err := wait(ctx, serial, mark, what, ok)
	if err != nil {
		t.Fatal(err)
	}
	return hotplug{took: took, seen: serial.SeenAt(hb.Index).Sub(start), hb: hb}
}

// txDelta is how many packets the NIC called name sent between two heartbeats (-1: it is not in
// one of them, or it was replaced in between).
func txDelta(a, b harness.Heartbeat, name string) int64 {
	var ta, tb int64 = -1, -1
	for _, n := range a.Netdevs {
		if n.Name == name {
			ta = n.TxPackets
		}
	}
	for _, n := range b.Netdevs {
		if n.Name == name {
			tb = n.TxPackets
		}
	}
	if ta < 0 || tb < ta {
		return -1
	}
	return tb - ta
}

// checkCarried fails unless the NIC carrying is the one that sent the probes between a and b and
// idle sent nothing (active-backup: the backup slave does not transmit). A probe is counted when
// it ends, its packet when it is sent, so the counts differ by the probes in flight at a and b:
// carrying must have sent at least half as many packets as probes ended.
func checkCarried(t *testing.T, a, b harness.Heartbeat, carrying, idle, when string) {
	t.Helper()
	probes := int64((b.Recv + b.Lost) - (a.Recv + a.Lost))
	got := txDelta(a, b, carrying)
	if probes < 2 || got < 1 || 2*got < probes {
		t.Errorf("%s: %s sent %d packets for %d probes; want it to carry them\n%s\n%s", when, carrying, got, probes, a.Raw, b.Raw)
	}
	if idle != "" {
		if d := txDelta(a, b, idle); d != 0 {
			t.Errorf("%s: the backup %s sent %d packets, want none\n%s\n%s", when, idle, d, a.Raw, b.Raw)
		}
	}
	if lost := b.Lost - a.Lost; lost != 0 {
		t.Errorf("%s: %d of %d probes lost", when, lost, probes)
	}
}

func (s *suite) testBond(t *testing.T) {
	ctx := s.ctx
	h := s.pair.A
	serial := harness.NewSerial(filepath.Join(s.run, "serial", "bond.log"))
	g := harness.BondGuest(s.img.Kernel, s.img.ModesInitrd, serial.Path)
	s.bootMode(t, g, serial)

	// Whole: both NICs under the bond, the primary active and carrying the traffic.
	before, err := wait(ctx, serial, serial.Len(), "bond whole with probes answered", harness.Answering(harness.Heartbeat.BondWhole))
	if err != nil {
		t.Fatal(err)
	}
	pri, _ := before.BondPrimary()
	sby, _ := before.BondStandby()
	steady, err := later(ctx, serial, before, 3, "bond whole 3 s later", harness.Heartbeat.BondWhole)
	if err != nil {
		t.Fatal(err)
	}
	checkCarried(t, before, steady, pri.Name, sby.Name, "whole")

	// Unplug the primary: the bond fails over to the virtio NIC and the probes go on through it.
	def, err := h.DeviceXML(ctx, g.Name, harness.BondPrimary)
	if err != nil {
		t.Fatal(err)
	}
	unplug := plug(t, ctx, serial, func() (time.Duration, error) { return h.DetachAlias(ctx, g.Name, harness.BondPrimary) },
		"bond on the virtio NIC alone", harness.Heartbeat.BondOnStandby)
	answering, err := wait(ctx, serial, unplug.hb.Index, "probes answered through the virtio NIC", harness.Answering(harness.Heartbeat.BondOnStandby))
	if err != nil {
		t.Fatal(err)
	}
	standbyOnly, err := later(ctx, serial, answering, 3, "bond on the virtio NIC 3 s later", harness.Heartbeat.BondOnStandby)
	if err != nil {
		t.Fatal(err)
	}
	checkCarried(t, answering, standbyOnly, sby.Name, "", "on the virtio NIC")
	lostUnplug := answering.Lost - steady.Lost
	t.Logf("bond: %s detached in %.2fs; the guest ran on %s alone %.1fs after the detach; %d probes lost until answered again",
		harness.BondPrimary, unplug.took.Seconds(), sby.Name, unplug.seen.Seconds(), lostUnplug)

	// Plug it back: enslaved again (under whatever name it gets), the primary and active once its
	// link is up.
	replug := plug(t, ctx, serial, func() (time.Duration, error) { return h.AttachDevice(ctx, g.Name, harness.BondPrimary, def) },
		"both NICs back under the bond, the primary active", harness.Heartbeat.BondWhole)
	answering, err = wait(ctx, serial, replug.hb.Index, "probes answered through the primary again", harness.Answering(harness.Heartbeat.BondWhole))
	if err != nil {
		t.Fatal(err)
	}
	end, err := later(ctx, serial, answering, 3, "bond whole 3 s later", harness.Heartbeat.BondWhole)
	if err != nil {
		t.Fatal(err)
	}
	pri2, _ := end.BondPrimary()
	checkCarried(t, answering, end, pri2.Name, sby.Name, "whole again")
	t.Logf("bond: %s attached in %.2fs; both NICs under the bond, %s (was %s) primary and active %.1fs after the attach; %d probes lost until answered again",
		harness.BondPrimary, replug.took.Seconds(), pri2.Name, pri.Name, replug.seen.Seconds(), answering.Lost-standbyOnly.Lost)
	t.Logf("bond: %d of %d probes lost from the unplug to the end", end.Lost-steady.Lost, (end.Recv+end.Lost)-(steady.Recv+steady.Lost))
	if c := serial.Crash(0); c != nil {
		t.Error(c)
	}
}

// progressed fails unless the writer wrote and verified blocks between a and b, and no read or
// write failed and no block read back wrong up to b.
func progressed(t *testing.T, a, b harness.Heartbeat, when string) {
	t.Helper()
	ma, mb := a.Multipath, b.Multipath
	if mb.Written <= ma.Written || mb.Verified <= ma.Verified {
		t.Errorf("%s: the writer made no progress: %s -> %s", when, multipathCounts(ma), multipathCounts(mb))
	}
	if mb.IOErrors != 0 || mb.Bad != 0 {
		t.Errorf("%s: %s", when, multipathCounts(mb))
	}
}

func multipathCounts(m *harness.Multipath) string {
	return fmt.Sprintf("written %d, verified %d, I/O errors %d, bad blocks %d", m.Written, m.Verified, m.IOErrors, m.Bad)
}

func (s *suite) testMultipath(t *testing.T) {
	ctx := s.ctx
	h := s.pair.A
	lun, err := harness.NewLUN(ctx, filepath.Join(s.run, "lun.img"), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lun.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("LUN: %s over %s", lun.Dev, lun.File)
	serial := harness.NewSerial(filepath.Join(s.run, "serial", "mpath.log"))
	g := harness.MultipathGuest(s.img.Kernel, s.img.ModesInitrd, serial.Path, lun.Dev)
	booted := s.bootMode(t, g, serial)
	whole := harness.Heartbeat.MultipathWhole

	before, err := later(ctx, serial, booted, 3, "both paths, writer going", whole)
	if err != nil {
		t.Fatal(err)
	}
	progressed(t, booted, before, "both paths")
	if u := before.Multipath.Using(); len(u) != 1 || u[0].HBA == "virtio_scsi" {
		t.Errorf("I/O goes through %v, want the pvscsi path", u)
	}

	// Unplug the assigned leg: the map drops it and the writer goes on through virtio-scsi.
	def, err := h.DeviceXML(ctx, g.Name, harness.LUNPrimary)
	if err != nil {
		t.Fatal(err)
	}
	unplug := plug(t, ctx, serial, func() (time.Duration, error) { return h.DetachAlias(ctx, g.Name, harness.LUNPrimary) },
		"the map on the virtio-scsi path alone", harness.Heartbeat.MultipathOnStandby)
	standbyOnly, err := later(ctx, serial, unplug.hb, 3, "the map on the virtio-scsi path 3 s later", harness.Heartbeat.MultipathOnStandby)
	if err != nil {
		t.Fatal(err)
	}
	progressed(t, before, unplug.hb, "through the unplug")
	progressed(t, unplug.hb, standbyOnly, "on the virtio-scsi path")
	t.Logf("multipath: %s detached in %.2fs; the map ran on %s alone %.1fs after the detach; %s",
		harness.LUNPrimary, unplug.took.Seconds(), standbyOnly.Multipath.Paths[0].Dev, unplug.seen.Seconds(), multipathCounts(standbyOnly.Multipath))

	// Plug it back: the map takes the new disk and I/O returns to it.
	replug := plug(t, ctx, serial, func() (time.Duration, error) { return h.AttachDevice(ctx, g.Name, harness.LUNPrimary, def) },
		"both paths active again, I/O on the pvscsi path", whole)
	end, err := later(ctx, serial, replug.hb, 3, "both paths 3 s later", whole)
	if err != nil {
		t.Fatal(err)
	}
	progressed(t, standbyOnly, replug.hb, "through the re-plug")
	progressed(t, replug.hb, end, "both paths again")
	t.Logf("multipath: %s attached in %.2fs; both paths active, I/O on %s, %.1fs after the attach; %s",
		harness.LUNPrimary, replug.took.Seconds(), end.Multipath.Using()[0].Dev, replug.seen.Seconds(), multipathCounts(end.Multipath))
	if c := serial.Crash(0); c != nil {
		t.Error(c)
	}
}
