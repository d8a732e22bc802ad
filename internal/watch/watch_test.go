package watch

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/virt-failover/virt-failover/internal/orchestrate"
	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/internal/virt/virttest"
)

// watched is a Watcher running against a fake host, served over HTTP.
type watched struct {
	w      *Watcher
	m      *Metrics
	srv    *httptest.Server
	offset atomic.Int64 // added to the clock
	dials  atomic.Int32
}

func watchHost(t *testing.T, h *virttest.Host, failDials int32) *watched {
	t.Helper()
	wt := &watched{}
	now := func() time.Time { return time.Now().Add(time.Duration(wt.offset.Load())) }
	wt.m = NewMetrics(nil, "", now)
	wt.w = New(Config{
		Dial: func(ctx context.Context) (Source, error) {
			if wt.dials.Add(1) <= failDials {
				return nil, errors.New("connect to the host: connection refused")
			}
			return virt.Dial(ctx, h.URI())
		},
		DegradedAfter: 10 * time.Minute,
		Backoff:       [2]time.Duration{10 * time.Millisecond, 50 * time.Millisecond},
		Now:           now,
		Logf:          t.Logf,
	}, wt.m)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = wt.w.Run(ctx)
	}()
	wt.srv = httptest.NewServer(Handler(wt.w, wt.m))
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		wt.srv.Close()
	})
	return wt
}

func (wt *watched) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(wt.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// eventually waits until ok holds (10 s at most).
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func guestOf(r Report, name string) (Guest, bool) {
	for _, g := range r.Guests {
		if g.Name == name {
			return g, true
		}
	}
	return Guest{}, false
}

func cluster(t *testing.T, fixture string) (a, b *virttest.Host, ca, cb *virt.Conn) {
	t.Helper()
	cl := virttest.New(t)
	a, b = cl.Host("a"), cl.Host("b")
	a.MigrateTime, b.MigrateTime = 200*time.Millisecond, 200*time.Millisecond
	def, err := os.ReadFile("testdata/" + fixture)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(def, true); err != nil {
		t.Fatal(err)
	}
	return a, b, dial(t, a), dial(t, b)
}

func dial(t *testing.T, h *virttest.Host) *virt.Conn {
	t.Helper()
	c, err := virt.Dial(context.Background(), h.URI())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func connected(t *testing.T, wts ...*watched) {
	t.Helper()
	for _, wt := range wts {
		eventually(t, "connected", func() bool { return wt.w.Health() == nil })
	}
}

// metric says whether the exposition has the line.
func hasMetric(t *testing.T, wt *watched, line string) bool {
	t.Helper()
	_, body := wt.get(t, "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// An orchestrated migration of a bonded guest: the source sees its primary parked and unplugged
// and the guest leave, the destination sees it arrive and its primary plugged back.
func TestWatchFollowsAnOrchestratedMigration(t *testing.T) {
	a, b, ca, cb := cluster(t, "bond.xml")
	wa, wb := watchHost(t, a, 0), watchHost(t, b, 0)
	connected(t, wa, wb)
	if g, ok := guestOf(wa.w.Report(), "vfo-bond"); !ok || g.State != StateRunning {
		t.Fatalf("a before: %+v", wa.w.Report())
	}
	rep, err := orchestrate.Migrate(context.Background(), orchestrate.MigrateOptions{Domain: "vfo-bond", Source: ca, Dest: cb,
		DestURI: b.URI(), UnplugTimeout: 5 * time.Second, ReplugTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("migrate: %v %+v", err, rep)
	}
	eventually(t, "the arrival's replug", func() bool {
		r := wb.w.Report()
		return len(r.Migrations) == 1 && r.Migrations[0].Replug != nil && r.Migrations[0].Downtime != nil
	})
	in := wb.w.Report().Migrations[0]
	if in.Direction != "in" || in.Outcome != "completed" || in.Migration == nil || in.Downtime == nil || *in.Downtime != 0.007 {
		t.Errorf("b saw %+v", in)
	}
	eventually(t, "the departure", func() bool { return len(wa.w.Report().Migrations) == 1 })
	out := wa.w.Report().Migrations[0]
	if out.Direction != "out" || out.Outcome != "completed" || out.Unplug == nil || out.Migration == nil || *out.Migration <= 0 {
		t.Errorf("a saw %+v", out)
	}
	if _, ok := guestOf(wa.w.Report(), "vfo-bond"); ok {
		t.Errorf("a still has the guest: %+v", wa.w.Report())
	}
	if g, ok := guestOf(wb.w.Report(), "vfo-bond"); !ok || g.State != StateRunning || len(g.Parked) != 0 || g.Migration == nil {
		t.Errorf("b's guest: %+v", g)
	}
	for _, line := range []string{
		`virt_failover_migrations_total{direction="out",outcome="completed"} 1`,
		`virt_failover_unplug_duration_seconds_count 1`,
		`virt_failover_migration_duration_seconds_count{direction="out"} 1`,
		`virt_failover_libvirt_up 1`,
	} {
		if !hasMetric(t, wa, line) {
			t.Errorf("a's /metrics has no %s", line)
		}
	}
	for _, line := range []string{
		`virt_failover_migrations_total{direction="in",outcome="completed"} 1`,
		`virt_failover_replug_duration_seconds_count 1`,
		`virt_failover_migration_downtime_seconds_count 1`,
		`virt_failover_guests{state="running"} 1`,
		`virt_failover_guest_degraded{domain="vfo-bond"} 0`,
	} {
		if !hasMetric(t, wb, line) {
			t.Errorf("b's /metrics has no %s", line)
		}
	}
}

// A migration that fails after the unplug is rolled back: the devices come back on the source,
// which counts a failed migration.
func TestWatchCountsARollbackAsFailed(t *testing.T) {
	a, b, ca, cb := cluster(t, "bond.xml")
	a.Script(virttest.OpMigrate, "vfo-bond", "", virttest.Outcome{Err: &virt.Error{Code: 1, Message: "internal error: hook script refused"}})
	wa := watchHost(t, a, 0)
	connected(t, wa)
	if _, err := orchestrate.Migrate(context.Background(), orchestrate.MigrateOptions{Domain: "vfo-bond", Source: ca, Dest: cb,
		DestURI: b.URI(), UnplugTimeout: 5 * time.Second, ReplugTimeout: 5 * time.Second}); err == nil {
		t.Fatal("the migration went through")
	}
	eventually(t, "the failed migration", func() bool {
		return hasMetric(t, wa, `virt_failover_migrations_total{direction="out",outcome="failed"} 1`)
	})
	g, ok := guestOf(wa.w.Report(), "vfo-bond")
	if !ok || g.State != StateRunning || g.Migration == nil || g.Migration.Outcome != "failed" || g.Migration.Unplug == nil {
		t.Errorf("a's guest: %+v %+v", g, g.Migration)
	}
}

// QEMU's own failover: UNPLUG_PRIMARY on the source as the migration sets up, FAILOVER_NEGOTIATED
// on the destination as it loads the device state.
func TestWatchFollowsQEMUFailover(t *testing.T) {
	a, b, ca, cb := cluster(t, "team.xml")
	var gate sync.WaitGroup
	gate.Add(1)
	a.OnMigrate = func(dom string, dest *virttest.Host, phase string) {
		switch phase {
		case "setup":
			a.EmitQEMU(dom, "UNPLUG_PRIMARY", `{"device-id":"ua-pri0"}`)
			gate.Wait()
		case "completed":
			dest.EmitQEMU(dom, "FAILOVER_NEGOTIATED", `{"device-id":"ua-sby0"}`)
		}
	}
	wa, wb := watchHost(t, a, 0), watchHost(t, b, 0)
	connected(t, wa, wb)
	done := make(chan error, 1)
	go func() {
		_, err := orchestrate.Migrate(context.Background(), orchestrate.MigrateOptions{Domain: "vfo-team", Source: ca, Dest: cb,
			DestURI: b.URI(), Detach: []string{"ua-gpu0"}, UnplugTimeout: 5 * time.Second, ReplugTimeout: 5 * time.Second})
		done <- err
	}()
	eventually(t, "the primary unplugged", func() bool {
		g, _ := guestOf(wa.w.Report(), "vfo-team")
		return len(g.Unplugged) == 1 && g.Unplugged[0] == "ua-pri0"
	})
	// Parked (ua-gpu0) outranks the unplugged primary; an hour later both are degraded.
	if g, _ := guestOf(wa.w.Report(), "vfo-team"); g.State != StateParked || g.EmulatedSince == nil {
		t.Errorf("a mid-migration: %+v", g)
	}
	wa.offset.Store(int64(time.Hour))
	if g, _ := guestOf(wa.w.Report(), "vfo-team"); g.State != StateDegraded {
		t.Errorf("a mid-migration an hour on: %+v", g)
	}
	if !hasMetric(t, wa, `virt_failover_guest_degraded{domain="vfo-team"} 1`) || !hasMetric(t, wa, `virt_failover_guests{state="degraded"} 1`) ||
		!hasMetric(t, wa, `virt_failover_parked_devices{kind="detach",reason="migration"} 1`) {
		t.Error("a's /metrics does not show the degraded guest")
	}
	wa.offset.Store(0)
	gate.Done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	eventually(t, "the arrival", func() bool {
		r := wb.w.Report()
		return len(r.Migrations) == 1
	})
	g, _ := guestOf(wb.w.Report(), "vfo-team")
	if g.State != StateNegotiated || len(g.Negotiated) != 1 || g.Negotiated[0] != "ua-sby0" {
		t.Errorf("b after: %+v", g)
	}
	eventually(t, "the departure", func() bool { return len(wa.w.Report().Migrations) == 1 })
	if out := wa.w.Report().Migrations[0]; out.Outcome != "completed" || out.Unplug == nil {
		t.Errorf("a saw %+v", out)
	}
}

// A lost connection is unhealthy until watch is back, which resyncs from the live definitions
// and follows the events again.
func TestWatchReconnectsAndResyncs(t *testing.T) {
	a, _, _, _ := cluster(t, "bond.xml")
	wa := watchHost(t, a, 2)
	connected(t, wa)
	if wa.dials.Load() != 3 {
		t.Errorf("%d dials, want 3 (two refused)", wa.dials.Load())
	}
	if code, body := wa.get(t, "/healthz"); code != http.StatusOK || !strings.HasPrefix(body, "ok: connected to qemu:///system?socket=") {
		t.Errorf("/healthz: %d %q", code, body)
	}
	// Down, with the reason, while the host refuses connections.
	a.Disconnect()
	wa.dials.Store(0)
	eventually(t, "the lost connection", func() bool { return wa.w.Health() != nil })
	connected(t, wa)
	if !hasMetric(t, wa, "virt_failover_libvirt_reconnects_total 1") {
		t.Error("the reconnect is not counted")
	}
	// It follows the events again. (The disconnect dropped every client, ca too.)
	if _, err := orchestrate.SwitchToEmulated(context.Background(), orchestrate.SwitchOptions{Domain: "vfo-bond", Host: dial(t, a),
		UnplugTimeout: 5 * time.Second, ReplugTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the switch seen", func() bool {
		g, _ := guestOf(wa.w.Report(), "vfo-bond")
		return g.State == StateParked && len(g.Parked) == 1 && g.Parked[0].Reason == "switch"
	})
	// While it is away the guest changes: it reads the definitions again.
	wa.dials.Store(-1 << 20) // refused until allowed
	a.Disconnect()
	eventually(t, "the lost connection", func() bool { return testutil.ToFloat64(wa.m.reconnects) == 2 })
	if _, err := orchestrate.SwitchToAssigned(context.Background(), orchestrate.SwitchOptions{Domain: "vfo-bond", Host: dial(t, a),
		UnplugTimeout: 5 * time.Second, ReplugTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if g, _ := guestOf(wa.w.Report(), "vfo-bond"); g.State != StateParked || wa.w.Health() == nil {
		t.Errorf("while away: %+v, %v", g, wa.w.Health())
	}
	wa.dials.Store(1 << 20)
	connected(t, wa)
	if g, _ := guestOf(wa.w.Report(), "vfo-bond"); g.State != StateRunning || len(g.Parked) != 0 {
		t.Errorf("after the resync: %+v\n%s", g, a.LiveXML("vfo-bond"))
	}
}

// Before the first connection /healthz says why it is down.
func TestHealthzSaysWhy(t *testing.T) {
	cl := virttest.New(t)
	wt := watchHost(t, cl.Host("a"), 1<<30)
	eventually(t, "a refused dial", func() bool { return wt.dials.Load() > 1 })
	code, body := wt.get(t, "/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if !hasMetric(t, wt, "virt_failover_libvirt_up 0") {
		t.Error("/metrics does not say libvirt is down")
	}
}

// A device unplugged for a migration that is back while watch was away (a repair after a killed
// migrate, with libvirtd restarted meanwhile): at the resync the migration is over, failed, with
// its unplug time; a later unplug is another migration.
func TestResyncEndsAMigrationRolledBackMeanwhile(t *testing.T) {
	m := NewMetrics(nil, "", nil)
	w := New(Config{}, m)
	t0 := time.Now().Add(-time.Minute)
	w.mu.Lock()
	g := w.guestLocked("vm1")
	g.out = &Migration{Domain: "vm1", Direction: "out", Outcome: "in progress", Started: t0, unplugStart: t0, unplugEnd: t0.Add(300 * time.Millisecond)}
	// The resync read the definition: nothing parked any more.
	w.settleLocked(g)
	w.mu.Unlock()
	r := w.Report()
	if len(r.Migrations) != 1 || r.Migrations[0].Outcome != "failed" || r.Migrations[0].Unplug == nil || *r.Migrations[0].Unplug != 0.3 {
		t.Fatalf("migrations: %+v", r.Migrations)
	}
	if g.out != nil || testutil.ToFloat64(m.migrations.WithLabelValues("out", "failed")) != 1 {
		t.Errorf("still under way: %+v", g.out)
	}
}
