package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/internal/virt/virttest"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// pair is two fake hosts, a and b, with connections to both.
type pair struct {
	a, b   *virttest.Host
	ca, cb *virt.Conn
}

func newPair(t *testing.T, fixture, dom string, setup ...func(*pair)) *pair {
	t.Helper()
	cl := virttest.New(t)
	p := &pair{a: cl.Host("a"), b: cl.Host("b")}
	for _, f := range setup {
		f(p)
	}
	def, err := os.ReadFile("testdata/" + fixture)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.a.Add(def, true); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if p.ca, err = virt.Dial(ctx, p.a.URI()); err != nil {
		t.Fatal(err)
	}
	if p.cb, err = virt.Dial(ctx, p.b.URI()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.ca.Close(); p.cb.Close() })
	return p
}

func (p *pair) migrateOptions(dom string) MigrateOptions {
	return MigrateOptions{Domain: dom, Source: p.ca, Dest: p.cb, DestURI: p.b.URI(),
		UnplugTimeout: 2 * time.Second, ReplugTimeout: 2 * time.Second}
}

func view(t *testing.T, xml []byte) *policy.Domain {
	t.Helper()
	if xml == nil {
		t.Fatal("no definition")
	}
	doc, err := xmlxform.Parse(xml)
	if err != nil {
		t.Fatal(err)
	}
	return policy.NewDomain(doc)
}

// hasAll checks that a definition has the devices and no parked record.
func hasAll(t *testing.T, where string, xml []byte, aliases ...string) {
	t.Helper()
	d := view(t, xml)
	for _, a := range aliases {
		if len(d.Aliases[a]) != 1 {
			t.Errorf("%s: %d devices %s, want 1", where, len(d.Aliases[a]), a)
		}
	}
	if len(d.Parked) != 0 {
		t.Errorf("%s: parked records left: %v", where, d.Parked[0].Alias)
	}
}

// A bonded guest: its primary is parked (metadata first), detached live and from the persistent
// definition, migrated, plugged back on the destination from its record, and the record goes.
func TestMigrateParksAndPlugsBackABondPrimary(t *testing.T) {
	p := newPair(t, "bond.xml", "vfo-bond")
	rep, err := Migrate(context.Background(), p.migrateOptions("vfo-bond"))
	if err != nil {
		t.Fatalf("migrate: %v\n%+v", err, rep)
	}
	if rep.Outcome != "migrated" || strings.Join(rep.Parked, ",") != "ua-pri0" || strings.Join(rep.Plugged, ",") != "ua-pri0" {
		t.Errorf("report: %+v", rep)
	}
	if _, ok := p.a.State("vfo-bond"); ok {
		t.Error("the source still has the domain")
	}
	hasAll(t, "b live", p.b.LiveXML("vfo-bond"), "ua-pri0", "ua-sby0")
	hasAll(t, "b config", p.b.InactiveXML("vfo-bond"), "ua-pri0", "ua-sby0")
	for _, ph := range []string{PhasePreflight, PhaseUnplug, PhaseMigration, PhaseDowntime, PhaseReplug, PhaseTotal} {
		if _, ok := rep.Time(ph); !ok {
			t.Errorf("no %s time in %+v", ph, rep.Phases)
		}
	}
	calls := strings.Join(p.a.Calls(), "\n")
	if strings.Index(calls, "set-metadata") > strings.Index(calls, "detach") {
		t.Errorf("the device was detached before it was recorded:\n%s", calls)
	}
}

// The destination's replug worker may plug the device back (and drop its record) before the
// orchestrator's own replug reads the definition: the report still counts it as plugged. A
// device whose record went without it being back is an error, not "every device".
func TestMigrateChecksEveryParkedDeviceIsBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attach bool // the stand-in for the worker attaches the device before it drops the record
	}{{"plugged-by-the-worker-first", true}, {"record-gone-device-missing", false}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, "bond.xml", "vfo-bond")
			p.a.OnMigrate = func(dom string, dest *virttest.Host, phase string) {
				if phase != "completed" {
					return
				}
				ctx := context.Background()
				d := view(t, dest.LiveXML(dom))
				pk := d.ParkedFor("ua-pri0")
				if pk == nil {
					t.Error("no parked record on the destination")
					return
				}
				if tc.attach {
					dev, err := d.DeviceXML(pk)
					if err == nil {
						err = p.cb.Attach(ctx, dom, []byte(dev), virt.Live, time.Second)
					}
					if err != nil {
						t.Error(err)
					}
				}
				payload, err := d.UnparkMetadata("ua-pri0")
				if err == nil {
					err = p.cb.SetMetadata(ctx, dom, policy.NamespaceMetadata, policy.MetadataKey, []byte(payload), virt.Live)
				}
				if err != nil {
					t.Error(err)
				}
			}
			rep, err := Migrate(context.Background(), p.migrateOptions("vfo-bond"))
			if tc.attach {
				if err != nil || strings.Join(rep.Plugged, ",") != "ua-pri0" || rep.Outcome != "migrated" {
					t.Fatalf("want ua-pri0 reported plugged: %v %+v", err, rep)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "ua-pri0 is neither in vfo-bond") || rep.Outcome != "failed" || len(rep.Plugged) != 0 {
				t.Fatalf("want an error for the missing ua-pri0: %v %+v", err, rep)
			}
		})
	}
}

// A failed migration plugs the parked device back on the source: the guest ends where it
// started, with every device and no record.
func TestMigrateFailureRollsBack(t *testing.T) {
	p := newPair(t, "bond.xml", "vfo-bond")
	p.a.Script(virttest.OpMigrate, "vfo-bond", "", virttest.Outcome{Err: &virt.Error{Code: 1, Message: "internal error: destination refused"}})
	o := p.migrateOptions("vfo-bond")
	var lines []string
	o.Logf = func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	rep, err := Migrate(context.Background(), o)
	if err == nil || rep.Outcome != "rolled-back" || !strings.Contains(rep.State, "with every device") {
		t.Fatalf("want a rollback, got %v, %+v", err, rep)
	}
	// What the rollback does is said before it is done.
	said, plugged := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "roll back: plug ua-pri0 back into vfo-bond on ") }),
		slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "attached ua-pri0") })
	if said < 0 || plugged < said {
		t.Errorf("the rollback is not said before the plug-back:\n%s", strings.Join(lines, "\n"))
	}
	hasAll(t, "a live", p.a.LiveXML("vfo-bond"), "ua-pri0", "ua-sby0")
	hasAll(t, "a config", p.a.InactiveXML("vfo-bond"), "ua-pri0", "ua-sby0")
	if _, ok := rep.Time(PhaseRollback); !ok {
		t.Errorf("no rollback time: %+v", rep.Phases)
	}
}

// A guest that refuses to release the device: the record is taken back, the device stays, no
// migration is tried.
func TestMigrateRefusedUnplugStops(t *testing.T) {
	p := newPair(t, "bond.xml", "vfo-bond")
	p.a.Script(virttest.OpDetach, "vfo-bond", "ua-pri0", virttest.Outcome{Refuse: true})
	rep, err := Migrate(context.Background(), p.migrateOptions("vfo-bond"))
	if !errors.Is(err, virt.ErrRemovalFailed) {
		t.Fatalf("want the removal failure, got %v", err)
	}
	hasAll(t, "a live", p.a.LiveXML("vfo-bond"), "ua-pri0")
	if strings.Contains(strings.Join(p.a.Calls(), "\n"), "migrate") {
		t.Errorf("a migration was tried: %v", p.a.Calls())
	}
	if rep.Outcome != "rolled-back" {
		t.Errorf("outcome %q", rep.Outcome)
	}
}

// A guest that never answers the unplug: the record stays (the device may still go), and the
// error names repair; repair then converges: the device still there, so only the record goes.
func TestUnplugTimeoutLeavesTheRecordForRepair(t *testing.T) {
	p := newPair(t, "bond.xml", "vfo-bond")
	p.a.Script(virttest.OpDetach, "vfo-bond", "ua-pri0", virttest.Outcome{Hang: true})
	o := p.migrateOptions("vfo-bond")
	o.UnplugTimeout = 200 * time.Millisecond
	_, err := Migrate(context.Background(), o)
	if !errors.Is(err, virt.ErrTimeout) || !strings.Contains(err.Error(), "repair vfo-bond") {
		t.Fatalf("want a timeout naming repair, got %v", err)
	}
	if d := view(t, p.a.LiveXML("vfo-bond")); d.ParkedFor("ua-pri0") == nil || len(d.Aliases["ua-pri0"]) != 1 {
		t.Fatalf("want the device present and its record kept:\n%s", p.a.LiveXML("vfo-bond"))
	}
	res, err := Repair(context.Background(), SwitchOptions{Domain: "vfo-bond", Host: p.ca, ReplugTimeout: time.Second})
	if err != nil || strings.Join(res.Dropped, ",") != "ua-pri0" || len(res.Plugged) != 0 {
		t.Fatalf("repair: %v %+v", err, res)
	}
	hasAll(t, "a live", p.a.LiveXML("vfo-bond"), "ua-pri0")
}

// Teaming primaries are QEMU's: not detached; a migration stuck in wait-unplug past the unplug
// timeout is aborted and the guest stays on the source with all its devices. Assigned devices
// nothing fails over block the migration unless --detach names them.
func TestTeamingIsSupervisedAndBlockersNeedDetach(t *testing.T) {
	// QEMU's failover events, as QEMU sends them: UNPLUG_PRIMARY on the source as the migration
	// sets up, FAILOVER_NEGOTIATED on the destination as the device state loads.
	p := newPair(t, "team.xml", "vfo-team", func(p *pair) {
		p.a.OnMigrate = func(dom string, dest *virttest.Host, phase string) {
			switch phase {
			case "setup":
				p.a.EmitQEMU(dom, "UNPLUG_PRIMARY", `{"device-id":"ua-pri0"}`)
			case "completed":
				dest.EmitQEMU(dom, "FAILOVER_NEGOTIATED", `{"device-id":"ua-sby0"}`)
			}
		}
	})
	o := p.migrateOptions("vfo-team")
	if _, err := Migrate(context.Background(), o); err == nil || !strings.Contains(err.Error(), "ua-gpu0") {
		t.Fatalf("want the GPU named as a blocker, got %v", err)
	}
	o.Detach = []string{"ua-gpu0"}
	o.UnplugTimeout = 300 * time.Millisecond
	p.a.Script(virttest.OpMigrate, "vfo-team", "", virttest.Outcome{Phases: []string{"setup", "wait-unplug"}, Hang: true})
	rep, err := Migrate(context.Background(), o)
	if !errors.Is(err, virt.ErrAborted) || !strings.Contains(err.Error(), "unplug-timeout") {
		t.Fatalf("want an abort for the unplug timeout, got %v", err)
	}
	if rep.Outcome != "rolled-back" {
		t.Errorf("outcome %q", rep.Outcome)
	}
	hasAll(t, "a live", p.a.LiveXML("vfo-team"), "ua-pri0", "ua-sby0", "ua-gpu0")
	if strings.Contains(strings.Join(p.a.Calls(), "\n"), "detach vfo-team ua-pri0") {
		t.Errorf("the teaming primary was detached: %v", p.a.Calls())
	}

	// Now let it through: QEMU's events are followed on both sides.
	rep, err = Migrate(context.Background(), o)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if strings.Join(rep.Unplugged, ",") != "ua-pri0" || strings.Join(rep.Negotiated, ",") != "ua-sby0" || !strings.HasSuffix(rep.State, "with every device") {
		t.Errorf("QEMU's failover not followed: %+v", rep)
	}
	hasAll(t, "b live", p.b.LiveXML("vfo-team"), "ua-pri0", "ua-sby0", "ua-gpu0")
	if strings.Join(rep.Parked, ",") != "ua-gpu0" {
		t.Errorf("parked %v", rep.Parked)
	}
}

// switch --to emulated parks every primary, teaming ones too, with reason switch; a plain
// migration carries the records and nothing plugs them back (repair leaves them); switch --to
// assigned on the destination plugs them back.
func TestSwitchSurvivesAPlainMigration(t *testing.T) {
	p := newPair(t, "team.xml", "vfo-team")
	ctx := context.Background()
	res, err := SwitchToEmulated(ctx, SwitchOptions{Domain: "vfo-team", Host: p.ca, Detach: []string{"ua-gpu0"}, UnplugTimeout: time.Second, ReplugTimeout: time.Second})
	if err != nil || strings.Join(res.Parked, ",") != "ua-pri0,ua-gpu0" {
		t.Fatalf("switch: %v %+v", err, res)
	}
	d := view(t, p.a.LiveXML("vfo-team"))
	if len(d.Parked) != 2 || d.Parked[0].Reason != policy.ParkedForSwitch || len(d.Aliases["ua-pri0"]) != 0 {
		t.Fatalf("after the switch:\n%s", p.a.LiveXML("vfo-team"))
	}
	if _, err := p.ca.Migrate(ctx, "vfo-team", p.b.URI(), virt.MigrateOptions{Flags: virt.PersistDest | virt.UndefineSource}); err != nil {
		t.Fatal(err)
	}
	res, err = Repair(ctx, SwitchOptions{Domain: "vfo-team", Host: p.cb, ReplugTimeout: time.Second})
	if err != nil || len(res.Plugged) != 0 || len(res.Left) != 2 {
		t.Fatalf("repair after a switch: %v %+v", err, res)
	}
	res, err = SwitchToAssigned(ctx, SwitchOptions{Domain: "vfo-team", Host: p.cb, ReplugTimeout: time.Second})
	if err != nil || len(res.Plugged) != 2 {
		t.Fatalf("switch back: %v %+v", err, res)
	}
	hasAll(t, "b live", p.b.LiveXML("vfo-team"), "ua-pri0", "ua-gpu0")
	hasAll(t, "b config", p.b.InactiveXML("vfo-team"), "ua-pri0", "ua-gpu0")
}

// Repair after an orchestrator died between the detach and the end of the migration: the
// device parked for the migration is plugged back exactly once, by whichever of repair and the
// replug worker comes first.
func TestRepairAndReplugNeverAttachTwice(t *testing.T) {
	p := newPair(t, "bond.xml", "vfo-bond")
	ctx := context.Background()
	g := &guest{h: p.ca, name: "vfo-bond", logf: t.Logf, now: time.Now}
	if err := g.park(ctx, Device{Alias: "ua-pri0", Kind: policy.KindBondPair, Pool: "fabric"}, policy.ParkedForMigration, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ca.Migrate(ctx, "vfo-bond", p.b.URI(), virt.MigrateOptions{Flags: virt.PersistDest | virt.UndefineSource}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := Replug(ctx, SwitchOptions{Domain: "vfo-bond", Host: p.cb, ReplugTimeout: time.Second})
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	hasAll(t, "b live", p.b.LiveXML("vfo-bond"), "ua-pri0")
	hasAll(t, "b config", p.b.InactiveXML("vfo-bond"), "ua-pri0")
	attaches := strings.Count(strings.Join(p.b.Calls(), "\n"), "attach vfo-bond ua-pri0")
	if attaches < 1 {
		t.Errorf("no attach: %v", p.b.Calls())
	}
	res, err := Repair(ctx, SwitchOptions{Domain: "vfo-bond", Host: p.cb, ReplugTimeout: time.Second})
	if err != nil || len(res.Plugged)+len(res.Dropped) != 0 {
		t.Errorf("repair of a converged guest did something: %v %+v", err, res)
	}
}

// The replug worker of a migration that failed finds no domain and ends quietly.
func TestReplugOfAGoneDomainEnds(t *testing.T) {
	p := newPair(t, "bond.xml", "vfo-bond")
	res, err := Replug(context.Background(), SwitchOptions{Domain: "vfo-bond", Host: p.cb, ReplugTimeout: time.Second})
	if err != nil || len(res.Plugged) != 0 {
		t.Fatalf("%v %+v", err, res)
	}
}

// A record left for a device that is back in the guest (another plug-back's metadata update,
// built from a read made before this one's unpark, wrote it again) is dropped by the sweep every
// plug-back ends with; records of devices still out stay.
func TestSweepDropsRecordsOfDevicesInTheGuest(t *testing.T) {
	p := newPair(t, "team.xml", "vfo-team")
	ctx := context.Background()
	g := &guest{h: p.ca, name: "vfo-team", logf: t.Logf, now: time.Now}
	for _, d := range []Device{{Alias: "ua-pri0", Kind: policy.KindNetPair}, {Alias: "ua-gpu0", Kind: policy.KindDetachPair}} {
		if err := g.park(ctx, d, policy.ParkedForMigration, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// ua-gpu0 comes back without its record going: the state a lost metadata update leaves.
	dom := view(t, p.a.LiveXML("vfo-team"))
	xml, err := dom.DeviceXML(dom.ParkedFor("ua-gpu0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ca.Attach(ctx, "vfo-team", []byte(xml), virt.Live, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := g.sweep(ctx); err != nil {
		t.Fatal(err)
	}
	d := view(t, p.a.LiveXML("vfo-team"))
	if d.ParkedFor("ua-gpu0") != nil || d.ParkedFor("ua-pri0") == nil || len(d.Parked) != 1 {
		t.Errorf("after the sweep: %d records, ua-gpu0 %v, ua-pri0 %v", len(d.Parked), d.ParkedFor("ua-gpu0") != nil, d.ParkedFor("ua-pri0") != nil)
	}
}

// Every phase QEMU's migration goes through gets its progress line at once, however fast they
// follow each other, and without the figures of a reading taken before it; the readings of the
// job's statistics get a line a second (each phase lasts 2 s: a reading half a second apart falls
// in its second second even on a loaded machine).
func TestMigrateShowsEveryPhase(t *testing.T) {
	p := newPair(t, "bond.xml", "vfo-bond")
	p.a.Script(virttest.OpMigrate, "vfo-bond", "", virttest.Outcome{Delay: 8 * time.Second, Phases: []string{"setup", "active", "device"}})
	var mu sync.Mutex
	var lines []string
	o := p.migrateOptions("vfo-bond")
	o.Logf = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}
	if _, err := Migrate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(lines, "\n")
	for _, phase := range []string{"setup", "active", "device"} {
		if !slices.Contains(lines, "migrating: phase "+phase) {
			t.Errorf("no progress line for phase %s alone:\n%s", phase, all)
		}
	}
	if !strings.Contains(all, " left, ") {
		t.Errorf("no line with the job's figures:\n%s", all)
	}
}
