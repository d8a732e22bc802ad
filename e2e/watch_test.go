package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/internal/watch"
)

// startWatches starts "virt-failover watch" inside each host's namespaces, as the packaged unit
// runs it there, before the first step: it sees every migration, refusal and libvirtd restart of
// TestOrchestrateBond.
func (s *orchSuite) startWatches(t *testing.T) {
	t.Helper()
	s.watches = map[*harness.Host]*harness.Watch{}
	for _, h := range s.pair.Hosts() {
		w, err := h.StartWatch(s.ctx, s.bin)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		s.watches[h] = w
	}
}

// testWatchMetrics reads each host's /metrics from inside its network namespace and checks what
// watch saw: the migrations with their durations, the pools as status shows them, the refused
// incoming migration, and the libvirtd restarts it came through.
func (s *orchSuite) testWatchMetrics(t *testing.T) {
	a, b := s.pair.A, s.pair.B
	m := map[*harness.Host]map[string]float64{}
	for _, h := range s.pair.Hosts() {
		w := s.watches[h]
		if ended := w.Ended(); ended != "" {
			t.Fatalf("%s: watch ended (%s); see %s", h.Name, ended, w.Out)
		}
		// Connected again after the restarts (A's libvirtd was restarted, any may have been revived).
		deadline := time.Now().Add(time.Minute)
		for {
			code, body, err := w.Get(s.ctx, "/healthz")
			if err == nil && code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /healthz %d %q %v", h.Name, code, body, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		code, body, err := w.Get(s.ctx, "/metrics")
		if err != nil || code != 200 {
			t.Fatalf("%s: /metrics %d %v\n%s", h.Name, code, err, body)
		}
		m[h] = harness.ParseMetrics(body)
		if m[h]["virt_failover_libvirt_up"] != 1 {
			t.Errorf("%s: virt_failover_libvirt_up %v", h.Name, m[h]["virt_failover_libvirt_up"])
		}
	}
	atLeast := func(h *harness.Host, series string, n float64) {
		t.Helper()
		if v := m[h][series]; v < n {
			t.Errorf("%s: %s = %v, want at least %v", h.Name, series, v, n)
		}
	}
	migrations := func(dir, outcome string) string {
		return fmt.Sprintf(`virt_failover_migrations_total{direction=%q,outcome=%q}`, dir, outcome)
	}
	// A->B and B->A at least, each seen from both sides; the rollbacks on A.
	for _, h := range []*harness.Host{a, b} {
		atLeast(h, migrations("out", "completed"), 1)
		atLeast(h, migrations("in", "completed"), 1)
		atLeast(h, `virt_failover_migration_duration_seconds_count{direction="out"}`, 1)
		atLeast(h, `virt_failover_migration_duration_seconds_count{direction="in"}`, 1)
		atLeast(h, "virt_failover_unplug_duration_seconds_count", 1)
		atLeast(h, "virt_failover_replug_duration_seconds_count", 1)
		for _, sum := range []string{"virt_failover_unplug_duration_seconds_sum", "virt_failover_replug_duration_seconds_sum",
			`virt_failover_migration_duration_seconds_sum{direction="in"}`} {
			atLeast(h, sum, 0.001)
		}
	}
	atLeast(a, migrations("out", "failed"), 2) // the two rollbacks
	atLeast(a, "virt_failover_migration_downtime_seconds_count", 1)
	// B refused the incoming migration (accept_incoming = false, and a pool exhausted).
	atLeast(b, `virt_failover_hook_decisions_total{decision="refuse",op="migrate"}`, 1)
	atLeast(a, `virt_failover_hook_decisions_total{decision="rewrite",op="migrate"}`, 1)
	// A's libvirtd was restarted; watch came back.
	atLeast(a, "virt_failover_libvirt_reconnects_total", 1)

	// The pools as "virt-failover status" counts them, and the guest running on its assigned NIC.
	for _, h := range s.pair.Hosts() {
		st, _, err := h.Status(s.ctx, s.bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Pools {
			for _, state := range []string{claims.StateFree, claims.StateClaimed, claims.StatePending, claims.StateInUse} {
				series := fmt.Sprintf(`virt_failover_pool_resources{pool=%q,state=%q}`, p.Name, state)
				if got, ok := m[h][series]; !ok || got != float64(p.Counts[state]) {
					t.Errorf("%s: %s = %v (exported: %v), status counts %d", h.Name, series, got, ok, p.Counts[state])
				}
			}
		}
	}
	held := m[s.on][`virt_failover_pool_resources{pool="fabric",state="in use"}`] + m[s.on][`virt_failover_pool_resources{pool="fabric",state="claimed"}`]
	if held < 1 {
		t.Errorf("%s: the guest's fabric resource is neither claimed nor in use in /metrics", s.on.Name)
	}
	_, body, err := s.watches[s.on].Get(s.ctx, watch.GuestsPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep watch.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("%s%s: %v\n%s", s.on.Name, watch.GuestsPath, err, body)
	}
	var g *watch.Guest
	for i := range rep.Guests {
		if rep.Guests[i].Name == s.dom {
			g = &rep.Guests[i]
		}
	}
	if g == nil || g.State != watch.StateRunning || len(g.Parked) != 0 {
		t.Errorf("%s: the guest in %s: %+v", s.on.Name, watch.GuestsPath, g)
	}
	var lines []string
	for _, mg := range rep.Migrations {
		lines = append(lines, fmt.Sprintf("%s %s %s: %s", mg.Domain, mg.Direction, mg.Outcome, mg.Phases()))
	}
	t.Logf("%s's watch saw:\n  %s", s.on.Name, strings.Join(lines, "\n  "))
	for _, h := range s.pair.Hosts() {
		mean := func(name string) float64 {
			if n := m[h][name+"_count"]; n > 0 {
				return m[h][name+"_sum"] / n
			}
			return 0
		}
		s.figure(t, "watch on %s: migrations out %v completed, %v failed; in %v completed; mean unplug %.2f s, re-plug %.2f s, downtime %.3f s; hook refusals at migrate %v; libvirtd reconnects %v",
			h.Name, m[h][migrations("out", "completed")], m[h][migrations("out", "failed")], m[h][migrations("in", "completed")],
			mean("virt_failover_unplug_duration_seconds"), mean("virt_failover_replug_duration_seconds"), mean("virt_failover_migration_downtime_seconds"),
			m[h][`virt_failover_hook_decisions_total{decision="refuse",op="migrate"}`], m[h]["virt_failover_libvirt_reconnects_total"])
	}
}
