package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
)

// TestGuestModes proves the two guests that fail over without QEMU's help: the bonded guest (no
// net_failover: an e1000e primary standing in for a VF and a virtio NIC in an active-backup bond)
// and the multipath guest (dm-multipath over a disk on a pvscsi controller, standing in for an
// assigned HBA's path, and a virtio-scsi path to the same LUN, with a writer that writes and
// verifies checksummed blocks through the map). On A, each primary is hot-unplugged with virsh
// detach-device-alias and attached again with virsh attach-device: the guest must fail over to
// the standby and take the primary back, traffic and I/O going on throughout. Then the primary
// is unplugged again, the guest migrated to B on its standby, and the primary attached on B.
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

// modeGuest is a guest whose primary is unplugged and plugged back by someone else.
type modeGuest struct {
	g      harness.Guest
	serial *harness.Serial
	alias  string // the primary
	// whole: the primary in use; standby: the primary gone, the standby in use.
	whole, standby func(harness.Heartbeat) bool
	// check asserts that the guest worked between two heartbeats of one state (both whole, or
	// both on the standby); describe sums up a heartbeat for the log.
	check    func(t *testing.T, a, b harness.Heartbeat, when string)
	describe func(h harness.Heartbeat) string
}

// settle waits from heartbeat from on for one in state ok whose probes are answered, then for one
// 3 s later in the same state, and checks the guest between the two. It returns the later one.
func (m *modeGuest) settle(t *testing.T, ctx context.Context, from harness.Heartbeat, what string, ok func(harness.Heartbeat) bool) harness.Heartbeat {
	t.Helper()
	a, err := wait(ctx, m.serial, from.Index, what+", probes answered", harness.Answering(ok))
	if err != nil {
		t.Fatal(err)
	}
	b, err := wait(ctx, m.serial, a.Index+1, what+" 3 s later", func(h harness.Heartbeat) bool {
		return h.Uptime >= a.Uptime+3 && ok(h)
	})
	if err != nil {
		t.Fatal(err)
	}
	m.check(t, a, b, what)
	return b
}

// plug runs step (a detach, an attach or a migration) and waits for the first heartbeat in state
// ok printed after step began (after it ended, with after: for a state the guest was in before).
// It returns that heartbeat, how long step took (virsh and libvirt, until the live XML agreed)
// and how long after step began the heartbeat was seen.
func (m *modeGuest) plug(t *testing.T, ctx context.Context, step func() (time.Duration, error), after bool, what string, ok func(harness.Heartbeat) bool) (hb harness.Heartbeat, took, seen time.Duration) {
	t.Helper()
	mark := m.serial.Len()
	start := time.Now()
	took, err := step()
	if err != nil {
		t.Fatal(err)
	}
	if after {
		mark = m.serial.Len()
	}
	if hb, err = wait(ctx, m.serial, mark, what, ok); err != nil {
		t.Fatal(err)
	}
	return hb, took, m.serial.SeenAt(hb.Index).Sub(start)
}

// runMode boots the guest on A and goes through the unplug and re-plug on A, then the unplug on A,
// the migration to B and the re-plug on B.
func (s *suite) runMode(t *testing.T, m *modeGuest) {
	ctx := s.ctx
	a, b, name := s.pair.A, s.pair.B, m.g.Name
	t.Cleanup(func() {
		for _, h := range s.pair.Hosts() {
			if st, _ := h.DomState(s.ctx, name); st != "" {
				_, _ = h.Virsh(s.ctx, "destroy", name)
			}
		}
	})
	start := time.Now()
	booted, err := a.Boot(ctx, m.g, m.serial)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s booted on a in %.1fs: %s", name, time.Since(start).Seconds(), booted.Summary())
	last := m.settle(t, ctx, booted, "whole on a", m.whole)
	def, err := a.DeviceXML(ctx, name, m.alias)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		what   string
		detach bool
		on     *harness.Host
		ok     func(harness.Heartbeat) bool
	}{
		{"on the standby on a", true, a, m.standby},
		{"whole again on a", false, a, m.whole},
		{"on the standby on a before the migration", true, a, m.standby},
		{"on the standby on b", false, nil, m.standby}, // the migration
		{"whole on b", false, b, m.whole},
	} {
		var act func() (time.Duration, error)
		var verb string
		switch {
		case step.on == nil:
			verb = "migrated a->b"
			act = func() (time.Duration, error) {
				start := time.Now()
				out, err := a.Migrate(ctx, name, b)
				if err != nil {
					return 0, fmt.Errorf("migrating %s a->b: %v: %s", name, err, out)
				}
				return time.Since(start), nil
			}
		case step.detach:
			verb = "detached on " + step.on.Name
			act = func() (time.Duration, error) { return step.on.DetachAlias(ctx, name, m.alias) }
		default:
			verb = "attached on " + step.on.Name
			act = func() (time.Duration, error) { return step.on.AttachDevice(ctx, name, m.alias, def) }
		}
		hb, took, seen := m.plug(t, ctx, act, step.on == nil, step.what, step.ok)
		settled := m.settle(t, ctx, hb, step.what, step.ok)
		t.Logf("%s %s in %.2fs; %s %.1fs after it began; %d probes lost; %s", m.alias, verb, took.Seconds(),
			step.what, seen.Seconds(), settled.Lost-last.Lost, m.describe(settled))
		last = settled
	}
	if c := m.serial.Crash(0); c != nil {
		t.Error(c)
	}
}

func (s *suite) testBond(t *testing.T) {
	serial := harness.NewSerial(filepath.Join(s.run, "serial", "bond.log"))
	s.runMode(t, &modeGuest{
		g:       harness.BondGuest(s.img.Kernel, s.img.ModesInitrd, serial.Path),
		serial:  serial,
		alias:   harness.BondPrimary,
		whole:   harness.Heartbeat.BondWhole,
		standby: harness.Heartbeat.BondOnStandby,
		check: func(t *testing.T, a, b harness.Heartbeat, when string) {
			t.Helper()
			pri, hasPrimary := b.BondPrimary()
			sby, _ := b.BondStandby()
			if hasPrimary {
				checkCarried(t, a, b, pri.Name, sby.Name, when)
			} else {
				checkCarried(t, a, b, sby.Name, "", when)
			}
		},
		describe: func(h harness.Heartbeat) string {
			bond, _ := h.Bond()
			return fmt.Sprintf("bond active %s, slaves %v", bond.Active, bond.Slaves)
		},
	})
}

func (s *suite) testMultipath(t *testing.T) {
	lun, err := harness.NewLUN(s.ctx, filepath.Join(s.run, "lun.img"), 64<<20)
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
	s.runMode(t, &modeGuest{
		g:       harness.MultipathGuest(s.img.Kernel, s.img.ModesInitrd, serial.Path, lun.Dev),
		serial:  serial,
		alias:   harness.LUNPrimary,
		whole:   harness.Heartbeat.MultipathWhole,
		standby: harness.Heartbeat.MultipathOnStandby,
		check:   progressed,
		describe: func(h harness.Heartbeat) string {
			m := h.Multipath
			return fmt.Sprintf("I/O on %v, %s", m.Using(), multipathCounts(m))
		},
	})
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
// idle sent nothing (active-backup: the backup slave does not transmit), and no probe was lost. A
// probe is counted when it ends, its packet when it is sent, so the counts differ by the probes in
// flight at a and b: carrying must have sent at least half as many packets as probes ended.
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
