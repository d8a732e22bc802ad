package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/guest"
	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/policy"
)

// vf1 is the device TestVirtClient unplugs and plugs back: an emulated e1000e with a MAC of its
// own, standing in for an assigned device that QEMU does not fail over (a bonded VF, a GPU). The
// guest sees it as one more netdev, outside the failover trio.
const vf1 = `<interface type='network'>
      <mac address='52:54:00:5f:00:20'/>
      <source network='lan'/>
      <model type='e1000e'/>
      <rom enabled='no'/>
      <alias name='ua-vf1'/>
    </interface>`

// e2eNS is the namespace of the metadata record the test writes (beside the pair's own record,
// which it must not replace: libvirt's metadata API sets a namespace's whole element).
const e2eNS = "http://virt-failover.org/xmlns/e2e/1.0"

// TestVirtClient proves internal/virt against the two real hosts: a persistent failover guest
// with one more hot-pluggable NIC (ua-vf1) on A; its definitions read raw and typed; metadata
// written and read live and config; ua-vf1 detached with the DEVICE_REMOVED wait and attached
// back; live peer-to-peer migrations A->B->A with progress, QEMU's failover events followed on
// both sides, the guest answering probes after each; a migration aborted in wait-unplug through
// the context; and no taint from the QEMU monitor event API.
func TestVirtClient(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	ctx := context.Background()
	root, run := runDir(t, "virt")
	hook := hookUnderTest(t, root, run)
	img, err := guest.Build(ctx, guest.DefaultCacheDir(root), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := harness.StartPair(ctx, harness.PairConfig{Dir: run, Hook: hook, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pair.Stop)
	serial := harness.NewSerial(filepath.Join(run, "serial", "guest.log"))
	g := harness.DefaultGuest(img.Kernel, img.Initrd, serial.Path)
	if !harness.IsStandIn(hook) {
		g.Bin = hook
	}
	dom := g.Name

	conns := map[*harness.Host]*virt.Conn{}
	for _, h := range pair.Hosts() {
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		c, err := virt.Dial(dctx, h.URI())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[h] = c
	}
	a, b := conns[pair.A], conns[pair.B]

	// The guest: the paired definition plus ua-vf1, defined and started on A.
	def, err := g.XML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(def)
	i := strings.LastIndex(s, "</devices>")
	def = []byte(s[:i] + "  " + vf1 + "\n  " + s[i:])
	path := filepath.Join(run, dom+".xml")
	if err := os.WriteFile(path, def, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(serial.Path), 0o755); err != nil {
		t.Fatal(err)
	}
	mark := serial.Len()
	if _, err := pair.A.Virsh(ctx, "define", path); err != nil {
		t.Fatal(err)
	}
	if _, err := pair.A.Virsh(ctx, "start", dom); err != nil {
		t.Fatal(err)
	}
	on := pair.A
	t.Cleanup(func() {
		for _, h := range pair.Hosts() {
			_, _ = h.Virsh(context.Background(), "destroy", dom)
			_, _ = h.Virsh(context.Background(), "undefine", dom)
		}
	})
	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	hb, err := serial.WaitHeartbeat(bctx, mark, "heartbeat with the primary enslaved and ua-vf1's netdev", func(h harness.Heartbeat) bool {
		return h.PrimaryEnslaved() && spareNICs(h) == 1
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest up on a: %s", hb.Summary())

	t.Run("definitions", func(t *testing.T) {
		info, err := a.Domain(ctx, dom)
		if err != nil || info.State != virt.StateRunning || info.ID < 1 {
			t.Fatalf("Domain: %+v, %v", info, err)
		}
		live, err := a.LiveXML(ctx, dom)
		if err != nil {
			t.Fatal(err)
		}
		dumped, err := pair.A.Virsh(ctx, "dumpxml", dom)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(live)) != strings.TrimSpace(dumped) {
			t.Errorf("LiveXML differs from virsh dumpxml")
		}
		inactive, err := a.InactiveXML(ctx, dom)
		if err != nil {
			t.Error(err)
		} else if first, _, _ := strings.Cut(string(inactive), "\n"); strings.Contains(first, " id=") {
			t.Errorf("InactiveXML starts %q: the live definition's id", first)
		}
		d, err := virt.LiveDomain(ctx, a, dom)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, itf := range d.Devices.Interfaces {
			model := ""
			if itf.Model != nil {
				model = itf.Model.Type
			}
			got = append(got, itf.Alias.Name+"="+model)
		}
		if want := "ua-sby0=virtio ua-pri0=e1000e ua-vf1=e1000e"; strings.Join(got, " ") != want {
			t.Errorf("typed live definition: interfaces %q, want %q", got, want)
		}
		for _, alias := range []string{"ua-sby0", "ua-pri0", "ua-vf1"} {
			if has, err := virt.HasDevice(live, alias); !has || err != nil {
				t.Errorf("HasDevice(%s) = %v, %v", alias, has, err)
			}
		}
		if _, err := a.Domain(ctx, "no-such-guest"); !errors.Is(err, virt.ErrNoDomain) {
			t.Errorf("a missing domain: %v", err)
		}
		if _, err := a.InterfaceAddresses(ctx, dom); !errors.Is(err, virt.ErrNoAgent) {
			t.Errorf("the guest has no agent, InterfaceAddresses says %v", err)
		} else {
			t.Logf("no agent: %v", err)
		}
	})

	t.Run("metadata", func(t *testing.T) {
		// The pair's own record, as libvirt gives it back.
		rec, found, err := a.Metadata(ctx, dom, policy.NamespaceMetadata, virt.Live)
		if harness.IsStandIn(hook) {
			t.Logf("pair record (stand-in hook, pair by the built binary): found %v", found)
		} else if err != nil || !found || !strings.Contains(string(rec), "<pair ") || !strings.Contains(string(rec), `primary="ua-pri0"`) {
			t.Errorf("the pair's record: found %v, %v:\n%s", found, err, rec)
		}
		if _, found, err := a.Metadata(ctx, dom, e2eNS, virt.Config); found || err != nil {
			t.Fatalf("no e2e record yet: found %v, %v", found, err)
		}
		mine := `<parked reason="migration"><device alias="ua-vf1"/></parked>`
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		changes, err := a.Events(mctx, dom, virt.EventMetadataChange)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.SetMetadata(ctx, dom, e2eNS, "vfoe2e", []byte(mine), virt.Live|virt.Config); err != nil {
			t.Fatal(err)
		}
		// libvirt announces it (virt-failover watch follows parked records by this event).
		select {
		case e := <-changes:
			if e.Namespace != e2eNS {
				t.Errorf("metadata-change event %+v, want namespace %s", e, e2eNS)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("libvirt announced no metadata change within 30s")
		}
		for _, i := range []virt.Impact{virt.Live, virt.Config} {
			got, found, err := a.Metadata(ctx, dom, e2eNS, i)
			if err != nil || !found || !strings.Contains(string(got), `<device alias="ua-vf1"/>`) {
				t.Errorf("%s record: found %v, %v:\n%s", i, found, err, got)
			} else {
				t.Logf("%s record as libvirt gives it: %s", i, strings.Join(strings.Fields(string(got)), " "))
			}
		}
		if out, err := pair.A.Virsh(ctx, "dumpxml", "--inactive", dom); err != nil || !strings.Contains(out, "<vfoe2e:parked") {
			t.Errorf("virsh dumpxml --inactive does not show the record with its prefix: %v", err)
		}
		// The pair's record is untouched.
		if after, _, _ := a.Metadata(ctx, dom, policy.NamespaceMetadata, virt.Live); string(after) != string(rec) {
			t.Errorf("writing %s changed the pair's record", e2eNS)
		}
	})

	t.Run("detach-attach", func(t *testing.T) {
		events, err := a.Events(ctx, dom, virt.EventDeviceRemoved, virt.EventDeviceAdded)
		if err != nil {
			t.Fatal(err)
		}
		mark := serial.Len()
		start := time.Now()
		if err := a.Detach(ctx, dom, "ua-vf1", virt.Live|virt.Config, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		detached := time.Since(start)
		e := <-events
		if e.Kind != virt.EventDeviceRemoved || e.Alias != "ua-vf1" {
			t.Errorf("first event %v %s", e.Kind, e.Alias)
		}
		t.Logf("detach ua-vf1: %v (DEVICE_REMOVED %v after the call)", detached.Round(time.Millisecond), e.Received.Sub(start).Round(time.Millisecond))
		for name, get := range map[string]func(context.Context, string) ([]byte, error){"live": a.LiveXML, "persistent": a.InactiveXML} {
			x, err := get(ctx, dom)
			if has, _ := virt.HasDevice(x, "ua-vf1"); err != nil || has {
				t.Errorf("ua-vf1 still in the %s definition (%v)", name, err)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		hb, err := serial.WaitHeartbeat(wctx, mark, "heartbeat without ua-vf1's netdev", func(h harness.Heartbeat) bool { return spareNICs(h) == 0 })
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the guest without it: %s", hb.Summary())

		err = a.Detach(ctx, dom, "ua-vf1", virt.Live, 10*time.Second)
		var de *virt.DeviceError
		if !errors.As(err, &de) || de.Failure != virt.CallFailed {
			t.Errorf("detaching it again: %v", err)
		} else {
			t.Logf("detaching it again: %v", err)
		}

		mark = serial.Len()
		start = time.Now()
		if err := a.Attach(ctx, dom, []byte(vf1), virt.Live|virt.Config, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		attached := time.Since(start)
		e = <-events
		if e.Kind != virt.EventDeviceAdded || e.Alias != "ua-vf1" {
			t.Errorf("event after the attach: %v %s", e.Kind, e.Alias)
		}
		t.Logf("attach ua-vf1: %v (DEVICE_ADDED %v after the call)", attached.Round(time.Millisecond), e.Received.Sub(start).Round(time.Millisecond))
		wctx, cancel = context.WithTimeout(ctx, time.Minute)
		hb, err = serial.WaitHeartbeat(wctx, mark, "heartbeat with ua-vf1's netdev again", func(h harness.Heartbeat) bool { return spareNICs(h) == 1 })
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the guest sees it again %v after the attach: %s", time.Since(start).Round(100*time.Millisecond), hb.Summary())
		if x, err := a.InactiveXML(ctx, dom); err != nil {
			t.Error(err)
		} else if has, _ := virt.HasDevice(x, "ua-vf1"); !has {
			t.Error("ua-vf1 not back in the persistent definition")
		}
	})

	migrate := func(t *testing.T, to *harness.Host) {
		from := on
		src, dst := conns[from], conns[to]
		dir := from.Name + "->" + to.Name
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		before, err := serial.WaitHeartbeat(wctx, serial.Len(), "heartbeat with probes answered before migrating",
			harness.Answering(harness.Heartbeat.PrimaryEnslaved))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// Both sides' QEMU events, watched before the migration: the destination has no such
		// domain yet.
		ectx, stop := context.WithCancel(ctx)
		defer stop()
		unplug, err := src.QEMUEvents(ectx, dom, "UNPLUG_PRIMARY")
		if err != nil {
			t.Fatal(err)
		}
		negotiated, err := dst.QEMUEvents(ectx, dom, "FAILOVER_NEGOTIATED")
		if err != nil {
			t.Fatal(err)
		}
		arrivals, err := dst.Events(ectx, dom, virt.EventLifecycle)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var lines []string
		res, err := src.Migrate(ctx, dom, to.P2PURI(), virt.MigrateOptions{
			MigrateURI: "tcp://" + to.MigIP, Flags: virt.PersistDest | virt.UndefineSource, Dest: dst,
			Progress: func(p virt.Progress) {
				mu.Lock()
				defer mu.Unlock()
				lines = append(lines, fmt.Sprintf("%-11s elapsed %6v  data %5.1f of %5.1f MiB left (iteration %d)",
					p.Phase, p.Elapsed, float64(p.DataRemaining)/(1<<20), float64(p.DataTotal)/(1<<20), p.Iteration))
			},
		})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		arrived := serial.Len() // from here on the guest runs on the destination
		on = to
		mu.Lock()
		t.Logf("%s: migrated in %v; progress:\n  %s", dir, res.Duration.Round(time.Millisecond), strings.Join(lines, "\n  "))
		if len(lines) == 0 {
			t.Errorf("%s: no progress reported", dir)
		}
		mu.Unlock()
		var phases []string
		for _, p := range res.Phases {
			phases = append(phases, p.Status)
		}
		wu, ok := res.PhaseTime("wait-unplug")
		if !ok || phases[len(phases)-1] != "completed" {
			t.Errorf("%s: QEMU's statuses %q: want wait-unplug and completed", dir, phases)
		}
		t.Logf("%s: statuses %s; wait-unplug %v", dir, strings.Join(phases, " "), wu.Round(time.Millisecond))
		if !res.HaveStats || res.Stats.Type != virt.JobCompleted {
			t.Errorf("%s: no final statistics: %+v", dir, res.Stats)
		} else {
			t.Logf("%s: final stats: total %v, downtime %v, setup %v, %d MiB transferred", dir, res.Stats.Elapsed, res.Stats.Downtime,
				res.Stats.SetupTime, res.Stats.DataProcessed>>20)
		}
		for _, w := range []struct {
			name string
			ch   <-chan virt.QEMUEvent
		}{{from.Name + " UNPLUG_PRIMARY", unplug}, {to.Name + " FAILOVER_NEGOTIATED", negotiated}} {
			select {
			case e := <-w.ch:
				t.Logf("%s: %s %s at %s", dir, w.name, e.Data, e.Time.Format("15:04:05.000"))
			case <-time.After(10 * time.Second):
				t.Errorf("%s: no %s event", dir, w.name)
			}
		}
		select {
		case e := <-arrivals:
			if !e.Lifecycle.Migrated() || e.Lifecycle.Type != virt.Started {
				t.Errorf("%s: first lifecycle event on %s: %v", dir, to.Name, e.Lifecycle)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: no lifecycle event on %s", dir, to.Name)
		}
		if info, err := dst.Domain(ctx, dom); err != nil || info.State != virt.StateRunning {
			t.Errorf("%s: on %s: %+v %v", dir, to.Name, info, err)
		}
		if _, err := src.Domain(ctx, dom); !errors.Is(err, virt.ErrNoDomain) {
			t.Errorf("%s: %s still has the guest (undefine source): %v", dir, from.Name, err)
		}
		for _, i := range []virt.Impact{virt.Live, virt.Config} {
			if _, found, err := dst.Metadata(ctx, dom, e2eNS, i); !found || err != nil {
				t.Errorf("%s: the %s record did not travel: %v", dir, i, err)
			}
		}
		// The guest answers probes on the destination, with its primary back.
		wctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
		after, err := serial.WaitHeartbeat(wctx, arrived, "heartbeat with the primary back and probes answered",
			harness.Answering(func(h harness.Heartbeat) bool { return h.PrimaryEnslaved() && spareNICs(h) == 1 }))
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		t.Logf("%s: the guest answers again; %d of %d probes lost", dir, after.Lost-before.Lost,
			after.Recv+after.Lost-before.Recv-before.Lost)
	}
	t.Run("migrate-a-b", func(t *testing.T) { migrate(t, pair.B) })
	t.Run("migrate-b-a", func(t *testing.T) { migrate(t, pair.A) })

	t.Run("abort-in-wait-unplug", func(t *testing.T) {
		if on != pair.A {
			t.Skip("the guest is not on a")
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		before, err := serial.WaitHeartbeat(wctx, serial.Len(), "heartbeat with probes answered", harness.Answering(harness.Heartbeat.PrimaryEnslaved))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		mctx, abort := context.WithCancelCause(ctx)
		why := errors.New("the test aborts in wait-unplug")
		start := time.Now()
		res, err := a.Migrate(mctx, dom, pair.B.P2PURI(), virt.MigrateOptions{
			MigrateURI: "tcp://" + pair.B.MigIP, Flags: virt.PersistDest | virt.UndefineSource, ProgressInterval: 50 * time.Millisecond,
			Progress: func(p virt.Progress) {
				if p.Phase == "wait-unplug" {
					abort(why)
				}
			},
		})
		abort(nil)
		if err == nil {
			on = pair.B
			t.Fatalf("the migration completed before it could be aborted (statuses %+v)", res.Phases)
		}
		var me *virt.MigrateError
		if !errors.Is(err, virt.ErrAborted) || !errors.As(err, &me) || me.Cause != why {
			t.Fatalf("err = %v", err)
		}
		var phases []string
		for _, p := range res.Phases {
			phases = append(phases, p.Status)
		}
		t.Logf("aborted after %v: %v; statuses %s", time.Since(start).Round(time.Millisecond), err, strings.Join(phases, " "))
		if info, err := a.Domain(ctx, dom); err != nil || info.State != virt.StateRunning {
			t.Errorf("on a after the abort: %+v %v", info, err)
		}
		if _, err := b.Domain(ctx, dom); !errors.Is(err, virt.ErrNoDomain) {
			t.Errorf("b kept the guest of the aborted migration: %v", err)
		}
		wctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
		hb, err := serial.WaitHeartbeat(wctx, before.Index+1, "heartbeat with the primary back after the abort",
			harness.Answering(harness.Heartbeat.PrimaryEnslaved))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("QEMU re-plugged the primary: %s (%v after the start)", hb.Summary(), time.Since(start).Round(100*time.Millisecond))
	})

	t.Run("no-taint", func(t *testing.T) {
		for _, h := range pair.Hosts() {
			b, err := os.ReadFile(h.DomainLogPath(dom))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "custom-monitor") {
				t.Errorf("%s: %s says the domain is tainted by custom-monitor", h.Name, h.DomainLogPath(dom))
			}
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "tainted") {
					t.Logf("%s: %s", h.Name, l)
				}
			}
		}
	})
}

// spareNICs counts the guest's e1000e netdevs outside the failover trio (ua-vf1's).
func spareNICs(h harness.Heartbeat) int {
	n := 0
	for _, d := range h.Netdevs {
		if d.Driver == "e1000e" && d.Master == "-" {
			n++
		}
	}
	return n
}
