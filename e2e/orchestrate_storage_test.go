package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/guest"
	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/internal/orchestrate"
)

// TestOrchestrateGuests runs "virt-failover migrate" on the two real hosts with the guests whose
// devices fail over in different ways, and measures what each costs:
//
//   - storage: the multipath guest, its pvscsi leg recorded by "pair --storage", migrated A->B->A:
//     the leg parked and detached, the writer going on over the virtio-scsi path meanwhile, the leg
//     plugged back on the destination; no I/O error, no bad block, both paths active after each;
//   - teaming: the failover guest, whose primary QEMU unplugs and plugs back itself: the plan
//     says so and parks nothing; the report has QEMU's wait-unplug and its events;
//   - unplug-timeout: a failover guest that never completes the unplug (vfo.noeject=1): migrate
//     --unplug-timeout 5s aborts, exits 1, and the guest stays on A with its primary;
//   - yardstick and bond: the plain-virtio guest and the bonded guest (its primary parked and
//     plugged back by the orchestrator) migrated A->B->A like the teaming guest (VF_ROUNDS round
//     trips each), so that the
//     probes each loses per migration and the time each takes to have its primary back after the
//     migration stand side by side (the figures table at the end).
func TestOrchestrateGuests(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	s := setupMeasured(t)
	t.Run("storage", s.testStorage)
	t.Run("teaming", s.testTeaming)
	t.Run("unplug-timeout", s.testUnplugTimeout)
	t.Run("yardstick", s.testYardstick)
	t.Run("bond", s.testBondFigures)
	s.figures(t)
}

// measuredSuite is what TestOrchestrateGuests's guests share: one pair of hosts and the binary.
type measuredSuite struct {
	ctx  context.Context
	run  string
	bin  string // virt-failover: the hook on both hosts, and the orchestrator the test runs
	img  *guest.Image
	pair *harness.Pair
	rows []measuredRow // every migration, for the figures
}

// measuredRow is one migration of the figures table.
type measuredRow struct {
	kind string // how the guest's primary fails over
	m    *harness.OrchestratedMigration
}

// The kinds of guest the figures compare.
const (
	kindPlain   = "plain virtio"
	kindTeaming = "teaming (QEMU)"
	kindBond    = "bonded (orchestrated)"
	kindStorage = "multipath (orchestrated)"
)

// carryingRE is the kernel line of each kind of guest whose primary carries its traffic again.
var carryingRE = map[string]*regexp.Regexp{kindTeaming: harness.FailoverCarryingRE, kindBond: harness.BondCarryingRE}

func setupMeasured(t *testing.T) *measuredSuite {
	ctx := context.Background()
	root, run := runDir(t, "orchguests")
	s := &measuredSuite{ctx: ctx, run: run, bin: hookUnderTest(t, root, run)}
	if harness.IsStandIn(s.bin) {
		t.Skip("the stand-in hook cannot orchestrate: run with the real binary")
	}
	var err error
	if s.img, err = guest.Build(ctx, guest.DefaultCacheDir(root), t.Logf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if s.pair, err = harness.StartPair(ctx, harness.PairConfig{Dir: run, Hook: s.bin, Logf: t.Logf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.pair.Stop)
	// The bonded guest's primary comes from pool FabricPool, as an operator's would: its networks
	// on both hosts, and each host's policy with the pool (no default pool: the other guests'
	// NICs stay on "lan", outside it).
	for _, h := range s.pair.Hosts() {
		if err := h.DefineFabric(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.WritePolicy(h.OrchestrationPolicy()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("hosts up in %.1fs; logs in %s", time.Since(start).Seconds(), run)
	return s
}

// serial is the serial log of one of the suite's guests.
func (s *measuredSuite) serial(name string) *harness.Serial {
	return harness.NewSerial(filepath.Join(s.run, "serial", name+".log"))
}

// start defines the guest on A from def and starts it, and takes it away from both hosts when
// the test ends.
func (s *measuredSuite) start(t *testing.T, name string, def []byte, serial *harness.Serial, what string, ready func(harness.Heartbeat) bool) harness.Heartbeat {
	t.Helper()
	t.Cleanup(func() {
		for _, h := range s.pair.Hosts() {
			_, _ = h.Virsh(context.Background(), "destroy", name)
			_, _ = h.Virsh(context.Background(), "undefine", name)
		}
	})
	if err := os.MkdirAll(filepath.Dir(serial.Path), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	hb, err := s.pair.A.DefineAndStart(s.ctx, name, def, serial, what, ready)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s booted on a in %.1fs: %s", name, time.Since(start).Seconds(), hb.Summary())
	return hb
}

// migrate runs "virt-failover migrate --json" of dom from one host to the other and logs what it
// did; it fails the test when the harness could not observe it (the guest not ready again after
// it included).
func (s *measuredSuite) migrate(t *testing.T, dom string, from, to *harness.Host, serial *harness.Serial, ready func(harness.Heartbeat) bool, carrying *regexp.Regexp, extra ...string) *harness.OrchestratedMigration {
	t.Helper()
	m, err := harness.MigrateOrchestrated(s.ctx, s.bin, dom, from, to, serial, ready, carrying, extra...)
	if m.Run != nil && m.Run.Exited() {
		t.Logf("%s %s: exit %d after %.2fs; %s", dom, m.Direction(), m.Code, m.Took.Seconds(), phaseLine(m.Report))
	}
	if err != nil {
		if m.Run != nil {
			t.Logf("%s:\n%s", m.Run, m.Run.Output())
		}
		t.Fatalf("%s %s: %v", dom, m.Direction(), err)
	}
	if m.Code != 0 && len(extra) == 0 {
		t.Fatalf("%s %s failed:\n%s", dom, m.Direction(), m.Run.Output())
	}
	t.Logf("%s %s: %s; probes lost %d of %d", dom, m.Direction(), timesLine(m), m.Lost, m.Probes())
	return m
}

// migrations migrates the guest g (running on A) n times between the hosts, A->B first, checks
// each with check and adds it to the figures as kind.
func (s *measuredSuite) migrations(t *testing.T, g harness.Guest, serial *harness.Serial, n int, kind string, check func(*harness.OrchestratedMigration)) {
	t.Helper()
	_, ready := g.Ready()
	from, to := s.pair.A, s.pair.B
	for range n {
		m := s.migrate(t, g.Name, from, to, serial, ready, carryingRE[kind])
		check(m)
		s.rows = append(s.rows, measuredRow{kind, m})
		from, to = to, from
	}
}

// phaseLine is a report's outcome and phases in one line.
func phaseLine(rep *orchestrate.Report) string {
	if rep == nil {
		return "no report"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s:", rep.Outcome)
	for _, p := range rep.Phases {
		fmt.Fprintf(&b, " %s %dms", p.Phase, p.Millis)
	}
	if len(rep.Parked) > 0 {
		fmt.Fprintf(&b, "; parked %v, plugged %v", rep.Parked, rep.Plugged)
	}
	if len(rep.Unplugged)+len(rep.Negotiated) > 0 {
		fmt.Fprintf(&b, "; QEMU unplugged %v, negotiated %v", rep.Unplugged, rep.Negotiated)
	}
	return b.String()
}

// timesLine says when the guest was ready again after the migration, from the destination's
// RESUME and FAILOVER_NEGOTIATED events.
func timesLine(m *harness.OrchestratedMigration) string {
	parts := []string{fmt.Sprintf("ready again %.2fs after the command started", m.BackAt.Sub(m.Run.Started).Seconds())}
	if !m.Resumed.IsZero() {
		parts = append(parts, fmt.Sprintf("%.2fs after it resumed on %s", m.BackAt.Sub(m.Resumed).Seconds(), m.To.Name))
	}
	if !m.Carrying.IsZero() {
		parts = append(parts, fmt.Sprintf("the primary carrying %.2fs after the resume (guest clock)", m.Carrying.Sub(m.Resumed).Seconds()))
	}
	if !m.Negotiated.IsZero() {
		parts = append(parts, fmt.Sprintf("%.2fs after FAILOVER_NEGOTIATED", m.BackAt.Sub(m.Negotiated).Seconds()))
	}
	return strings.Join(parts, ", ")
}

// checkMigrated fails unless the command migrated the guest with the devices parked (and plugged
// back) that want names, and the guest runs on the destination only, with them, and without a
// parked record, live and persistent.
func (s *measuredSuite) checkMigrated(t *testing.T, m *harness.OrchestratedMigration, parked []string, present ...string) {
	t.Helper()
	rep, dir := m.Report, m.Direction()
	if m.Code != 0 || rep == nil || rep.Outcome != "migrated" {
		t.Fatalf("%s: want migrated:\n%s", dir, m.Run.Output())
	}
	if !slices.Equal(rep.Parked, parked) || !slices.Equal(rep.Plugged, parked) {
		t.Errorf("%s: parked %q, plugged %q; want %q both", dir, rep.Parked, rep.Plugged, parked)
	}
	if rep.Where != m.To.URI() {
		t.Errorf("%s: the report says the guest runs on %s", dir, rep.Where)
	}
	for _, p := range []string{orchestrate.PhasePreflight, orchestrate.PhaseUnplug, orchestrate.PhaseMigration, orchestrate.PhaseReplug, orchestrate.PhaseTotal} {
		if _, ok := m.Phase(p); !ok {
			t.Errorf("%s: no phase %s in the report", dir, p)
		}
	}
	if st, err := m.From.DomState(s.ctx, m.Domain); st != "" || err != nil {
		t.Errorf("%s: %s still has the guest (%q, %v)", dir, m.From.Name, st, err)
	}
	for _, args := range [][]string{{"dumpxml", m.Domain}, {"dumpxml", "--inactive", m.Domain}} {
		x, err := m.To.Virsh(s.ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		what := "live"
		if len(args) > 2 {
			what = "persistent"
		}
		if left, err := orchestrate.ParkedAliases([]byte(x)); err != nil || len(left) > 0 {
			t.Errorf("%s: the %s definition on %s still has parked records %q (%v)", dir, what, m.To.Name, left, err)
		}
		for _, alias := range present {
			if !strings.Contains(x, "<alias name='"+alias+"'/>") {
				t.Errorf("%s: the %s definition on %s has no %s", dir, what, m.To.Name, alias)
			}
		}
	}
}

// testStorage is scenario 2: the multipath guest through two migrations by the orchestrator.
func (s *measuredSuite) testStorage(t *testing.T) {
	lun, err := harness.NewLUN(s.ctx, filepath.Join(s.run, "lun.img"), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lun.Close(); err != nil {
			t.Error(err)
		}
	})
	serial := s.serial("storage")
	g := harness.MultipathGuest(s.img.Kernel, s.img.ModesInitrd, serial.Path, lun.Dev)
	g.Bin = s.bin
	def, err := harness.OrchestratedStorageXML(s.bin, g)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(def), "kind='storage' standby='"+harness.LUNStandby+"' primary='"+harness.LUNPrimary+"'") {
		t.Fatalf("pair --storage did not record %s with its path %s:\n%s", harness.LUNPrimary, harness.LUNStandby, def)
	}
	what, ready := g.Ready()
	s.start(t, g.Name, def, serial, what, ready)
	s.migrations(t, g, serial, 2, kindStorage, func(m *harness.OrchestratedMigration) {
		s.checkMigrated(t, m, []string{harness.LUNPrimary}, harness.LUNPrimary, harness.LUNStandby)
		checkWriter(t, m, serial)
	})
}

// The multipath guest's lines: the kernel failing a path of the map and reinstating one (with
// their timestamps), and the helper (e2e/guest/mpath) plugging a path back in by a new table.
var (
	failingRE    = regexp.MustCompile(`\[\s*([0-9.]+)\] device-mapper: multipath: \S+ Failing path`)
	reinstateRE  = regexp.MustCompile(`\[\s*([0-9.]+)\] device-mapper: multipath: \S+ Reinstating path`)
	pathsAgainRE = regexp.MustCompile(`VFO: multipath: paths now `)
)

// checkWriter fails unless the writer went on through the migration without an I/O error or a bad
// block, the map failed its leg (so the writer's I/O went to the virtio-scsi path, the second
// group's only one) and took it back, and the map is whole again after: both paths, I/O on the leg.
// The leg may be out for less than the heartbeat's second: the kernel's and the helper's lines
// tell.
func checkWriter(t *testing.T, m *harness.OrchestratedMigration, serial *harness.Serial) {
	t.Helper()
	dir := m.Direction()
	for _, h := range m.Heartbeats {
		if mp := h.Multipath; mp == nil || mp.IOErrors != 0 || mp.Bad != 0 {
			t.Errorf("%s: a heartbeat without the map, or with errors: %s", dir, h.Raw)
			return
		}
	}
	lines := serial.Lines(m.Before.Index)[:m.After.Index-m.Before.Index]
	failed, back := -1, -1
	var failedAt, backAt string
	for i, l := range lines {
		if mm := failingRE.FindStringSubmatch(l); mm != nil && failed < 0 {
			failed, failedAt = i, mm[1]
		} else if failed >= 0 && back < 0 {
			if mm := reinstateRE.FindStringSubmatch(l); mm != nil {
				back, backAt = i, mm[1]
			} else if pathsAgainRE.MatchString(l) {
				back, backAt = i, "(a new table)"
			}
		}
	}
	if failed < 0 || back < 0 {
		t.Errorf("%s: the map did not fail its leg and take it back (failing line %d, back %d):\n%s", dir, failed, back, strings.Join(lines, "\n"))
	}
	out := 0
	for _, h := range m.Heartbeats {
		if h.Index > m.Before.Index && h.Index < m.Back.Index && !h.MultipathWhole() {
			out++
			if using := h.Multipath.Using(); len(using) == 0 || slices.ContainsFunc(using, func(p harness.Path) bool { return p.HBA != "virtio_scsi" }) {
				t.Errorf("%s: without its leg the map does not use the virtio-scsi path alone: %s", dir, h.Raw)
			}
		}
	}
	t.Logf("%s: the leg failed at %s s and came back at %s s (guest clock), %d heartbeats without it", dir, failedAt, backAt, out)
	progressed(t, m.Before, m.After, dir)
	if !m.After.MultipathWhole() {
		t.Errorf("%s: not both paths active after the re-plug: %s", dir, m.After.Raw)
	}
	t.Logf("%s: %s; I/O on %v", dir, multipathCounts(m.After.Multipath), m.After.Multipath.Using())
}

var (
	qemuPlanRE = regexp.MustCompile(`(?m)^\s+qemu\s+` + regexp.QuoteMeta("ua-pri0") + `\s.*QEMU unplugs it`)
	parkPlanRE = regexp.MustCompile(`(?m)^\s+park\s`)
)

// testTeaming is scenario 3's first half: the failover guest through the orchestrator, which only
// supervises QEMU.
func (s *measuredSuite) testTeaming(t *testing.T) {
	serial := s.serial("teaming")
	g := harness.DefaultGuest(s.img.Kernel, s.img.Initrd, serial.Path)
	g.Bin = s.bin
	def, err := g.XML()
	if err != nil {
		t.Fatal(err)
	}
	what, ready := g.Ready()
	s.start(t, g.Name, def, serial, what, ready)

	// The plan, as --dry-run prints it: QEMU's primary, nothing to park.
	dctx, cancel := context.WithTimeout(s.ctx, 5*time.Minute)
	defer cancel()
	dry, err := harness.RunCommand(dctx, s.bin, harness.MigrateArgs(g.Name, s.pair.A, s.pair.B, "--dry-run")...)
	if err != nil {
		t.Fatal(err)
	}
	code, err := dry.Wait(dctx)
	if err != nil {
		t.Fatal(err)
	}
	plan := dry.Stdout()
	t.Logf("the plan:\n%s", plan)
	if code != 0 || !qemuPlanRE.MatchString(plan) || parkPlanRE.MatchString(plan) || !strings.Contains(plan, "planned") {
		t.Errorf("want a plan with ua-pri0 as QEMU's and nothing to park (exit %d):\n%s", code, dry.Output())
	}
	s.migrations(t, g, serial, 2*roundTrips(t), kindTeaming, func(m *harness.OrchestratedMigration) {
		s.checkMigrated(t, m, nil, "ua-pri0", "ua-sby0")
		rep := m.Report
		if !slices.Equal(rep.Unplugged, []string{"ua-pri0"}) || !slices.Equal(rep.Negotiated, []string{"ua-sby0"}) {
			t.Errorf("%s: QEMU unplugged %q and negotiated %q; want ua-pri0 and ua-sby0", m.Direction(), rep.Unplugged, rep.Negotiated)
		}
		if wu, ok := m.Phase(orchestrate.PhaseWaitUnplug); !ok {
			t.Errorf("%s: no wait-unplug phase in the report", m.Direction())
		} else if e, ok := harness.Event(m.SourceEvents, "UNPLUG_PRIMARY", ""); !ok {
			t.Errorf("%s: %s's QEMU sent no UNPLUG_PRIMARY", m.Direction(), m.From.Name)
		} else {
			t.Logf("%s: wait-unplug %v, UNPLUG_PRIMARY %v", m.Direction(), wu, e.Data)
		}
		if m.Negotiated.IsZero() {
			t.Errorf("%s: %s's QEMU sent no FAILOVER_NEGOTIATED", m.Direction(), m.To.Name)
		}
	})
}

// noEjectRE is the guest's line once it ignores hotplug requests (init.sh, vfo.noeject=1).
var noEjectRE = regexp.MustCompile(`VFO: \S+ enslaved; ACPI GPE 01 \(PCI hotplug\) disabled`)

// testUnplugTimeout is scenario 3's second half: a guest that never releases its primary. QEMU
// waits in wait-unplug; past --unplug-timeout the orchestrator aborts the migration, and the guest
// stays where it was, with its primary.
func (s *measuredSuite) testUnplugTimeout(t *testing.T) {
	serial := s.serial("noeject")
	g := harness.DefaultGuest(s.img.Kernel, s.img.Initrd, serial.Path)
	g.Name, g.Bin = "vfo-noeject", s.bin
	def, err := g.XML()
	if err != nil {
		t.Fatal(err)
	}
	if def, err = harness.WithKernelArgs(def, harness.NoEject); err != nil {
		t.Fatal(err)
	}
	what, ready := g.Ready()
	mark := serial.Len()
	s.start(t, g.Name, def, serial, what, ready)
	wctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	_, line, err := serial.WaitRE(wctx, mark, noEjectRE)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the guest: %s", strings.TrimSpace(line))

	a, b := s.pair.A, s.pair.B
	m := s.migrate(t, g.Name, a, b, serial, ready, nil, "--unplug-timeout", "5s")
	rep := m.Report
	if m.Code != 1 || rep == nil || rep.Outcome != "rolled-back" {
		t.Fatalf("want exit status 1, rolled back:\n%s", m.Run.Output())
	}
	t.Logf("exit %d after %.1fs; error: %s\nstderr:\n%s", m.Code, m.Took.Seconds(), rep.Error, m.Run.Stderr())
	if !strings.Contains(rep.Error, "--unplug-timeout 5s") || !strings.Contains(m.Run.Stderr(), "rolled-back") {
		t.Errorf("the error does not name the timeout, or stderr does not say rolled-back:\n%s", m.Run.Output())
	}
	if rep.Where != a.URI() {
		t.Errorf("the report says the guest runs on %s", rep.Where)
	}
	if wu, ok := m.Phase(orchestrate.PhaseWaitUnplug); !ok || wu < 5*time.Second {
		t.Errorf("wait-unplug %v (in the report: %v); want at least the 5 s timeout", wu, ok)
	}
	var statuses []string
	for _, e := range m.SourceEvents {
		if e.Name == "MIGRATION" {
			statuses = append(statuses, fmt.Sprintf("%s %s", e.Time.Format("15:04:05.000"), e.Status()))
		} else if e.Name == "UNPLUG_PRIMARY" {
			statuses = append(statuses, fmt.Sprintf("%s UNPLUG_PRIMARY", e.Time.Format("15:04:05.000")))
		}
	}
	t.Logf("a's QEMU: %s", strings.Join(statuses, ", "))
	if st, err := a.DomState(s.ctx, g.Name); st != "running" || err != nil {
		t.Errorf("on a the guest is %q (%v)", st, err)
	}
	if has, err := a.HasDevice(s.ctx, g.Name, "ua-pri0"); !has || err != nil {
		t.Errorf("a's live definition has no ua-pri0 (%v)", err)
	}
	if st, err := b.DomState(s.ctx, g.Name); st != "" || err != nil {
		t.Errorf("b has the guest: %q (%v)", st, err)
	}
	for _, h := range m.Heartbeats {
		if !h.PrimaryEnslaved() {
			t.Errorf("the guest lost its primary: %s", h.Raw)
			break
		}
	}
	wctx, cancel = context.WithTimeout(s.ctx, time.Minute)
	hb, err := serial.WaitHeartbeat(wctx, m.After.Index, "heartbeat with the primary and probes answered", harness.Answering(ready))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the guest on a: %s; %d probes lost from the start to %.1f s after the command", hb.Summary(), hb.Lost-m.Before.Lost,
		serial.SeenAt(hb.Index).Sub(m.Run.Ended()).Seconds())
}

// testYardstick migrates the plain-virtio guest (nothing to fail over) through the orchestrator.
func (s *measuredSuite) testYardstick(t *testing.T) {
	serial := s.serial("plain")
	g := harness.YardstickGuest(s.img.Kernel, s.img.Initrd, serial.Path)
	def, err := g.XML()
	if err != nil {
		t.Fatal(err)
	}
	what, ready := g.Ready()
	s.start(t, g.Name, def, serial, what, ready)
	s.migrations(t, g, serial, 2*roundTrips(t), kindPlain, func(m *harness.OrchestratedMigration) {
		s.checkMigrated(t, m, nil)
	})
}

// testBondFigures migrates the bonded guest, whose primary the orchestrator parks and plugs back.
func (s *measuredSuite) testBondFigures(t *testing.T) {
	serial := s.serial("bond")
	g := harness.BondGuest(s.img.Kernel, s.img.ModesInitrd, serial.Path)
	def, err := harness.OrchestratedBondXML(s.bin, g, harness.FabricPool, harness.FabricNetworks[s.pair.A.Name][0])
	if err != nil {
		t.Fatal(err)
	}
	what, ready := g.Ready()
	s.start(t, g.Name, def, serial, what, ready)
	s.migrations(t, g, serial, 2*roundTrips(t), kindBond, func(m *harness.OrchestratedMigration) {
		s.checkMigrated(t, m, []string{harness.BondPrimary}, harness.BondPrimary, harness.BondStandby)
	})
}

// figures logs the table of every migration and the means of each kind against the goals:
// failover loses no more probes than plain virtio; the orchestrator has the primary back within
// QEMU's own time + 1 s. Times after the migration count from the destination QEMU's RESUME:
// "plugged" is when the primary was back in the guest's hardware (QEMU's FAILOVER_NEGOTIATED, or
// the destination's replug worker's attach), "carrying" when the guest's kernel logged the primary
// carrying its traffic again (its time mapped to the host's, to about 0.1 s), "back" when a
// heartbeat (one a second) first showed the guest whole again; "link-up" is the guest's own time
// from the e1000e's probe to its link.
func (s *measuredSuite) figures(t *testing.T) {
	if len(s.rows) == 0 {
		return
	}
	sec := func(d time.Duration, ok bool) string {
		if !ok {
			return "-"
		}
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	var b strings.Builder
	b.WriteString("| guest | migration | `migrate` | wait-unplug | downtime | plugged by | resumed -> plugged | resumed -> carrying | resumed -> back | e1000e link-up | probes lost |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	type sums struct {
		n, nNeg, nCarry    int
		lost, probes       float64
		back, negBack      time.Duration
		carrying, negCarry time.Duration
	}
	by := map[string]*sums{}
	var kinds []string
	for _, r := range s.rows {
		m := r.m
		wu, wok := m.Phase(orchestrate.PhaseWaitUnplug)
		dt, dok := m.Phase(orchestrate.PhaseDowntime)
		by1, plugged := "-", time.Time{}
		switch {
		case !m.Negotiated.IsZero():
			by1, plugged = "QEMU", m.Negotiated
		case !m.WorkerAttached.IsZero():
			by1, plugged = "replug worker", m.WorkerAttached
		case m.Report != nil && len(m.Report.Plugged) > 0:
			by1 = "migrate"
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f s | %s | %s | %s | %s | %s | %s | %s | %d of %d |\n", r.kind, m.Direction(), m.Took.Seconds(),
			sec(wu, wok), sec(dt, dok), by1, sec(plugged.Sub(m.Resumed), !plugged.IsZero()), sec(m.Carrying.Sub(m.Resumed), !m.Carrying.IsZero()),
			sec(m.BackAt.Sub(m.Resumed), true), sec(m.LinkUp, m.LinkUp > 0), m.Lost, m.Probes())
		k := by[r.kind]
		if k == nil {
			k = &sums{}
			by[r.kind] = k
			kinds = append(kinds, r.kind)
		}
		k.n++
		k.lost += float64(m.Lost)
		k.probes += float64(m.Probes())
		k.back += m.BackAt.Sub(m.Resumed)
		if !m.Carrying.IsZero() {
			k.nCarry++
			k.carrying += m.Carrying.Sub(m.Resumed)
		}
		if !m.Negotiated.IsZero() {
			k.nNeg++
			k.negBack += m.BackAt.Sub(m.Negotiated)
			if !m.Carrying.IsZero() {
				k.negCarry += m.Carrying.Sub(m.Negotiated)
			}
		}
	}
	mean := func(d time.Duration, n int) float64 { return (d / time.Duration(n)).Seconds() }
	b.WriteString("\nper migration, mean:\n")
	for _, kind := range kinds {
		k := by[kind]
		fmt.Fprintf(&b, "  %s: %.1f probes lost of %.1f; a heartbeat whole %.2f s after resuming", kind, k.lost/float64(k.n), k.probes/float64(k.n),
			mean(k.back, k.n))
		if k.nNeg > 0 {
			fmt.Fprintf(&b, " (%.2f s after FAILOVER_NEGOTIATED)", mean(k.negBack, k.nNeg))
		}
		if k.nCarry > 0 {
			fmt.Fprintf(&b, "; the primary carrying %.2f s after resuming", mean(k.carrying, k.nCarry))
			if k.nNeg == k.nCarry {
				fmt.Fprintf(&b, " (%.2f s after FAILOVER_NEGOTIATED)", mean(k.negCarry, k.nNeg))
			}
		}
		b.WriteString("\n")
	}
	if plain := by[kindPlain]; plain != nil {
		base := plain.lost / float64(plain.n)
		for _, kind := range []string{kindTeaming, kindBond, kindStorage} {
			if k := by[kind]; k != nil {
				m := k.lost / float64(k.n)
				fmt.Fprintf(&b, "goal: %s loses no more probes than plain virtio: %s (%.1f against %.1f)\n", kind, verdict(m <= base), m, base)
			}
		}
	}
	if q, o := by[kindTeaming], by[kindBond]; q != nil && o != nil && q.nNeg > 0 && q.nNeg == q.nCarry && o.nCarry > 0 {
		qemu, orch := q.negCarry/time.Duration(q.nNeg), o.carrying/time.Duration(o.nCarry)
		fmt.Fprintf(&b, "goal: the orchestrated replug within QEMU's own + 1 s: %s (the bonded guest's primary carrying %.2f s after resuming, the teaming guest's %.2f s after FAILOVER_NEGOTIATED)\n",
			verdict(orch <= qemu+time.Second), orch.Seconds(), qemu.Seconds())
	}
	t.Logf("figures (%s):\n%s", hostKVM(s.pair), b.String())
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

// hostKVM says whether the hosts' libvirt offers KVM (the guests are TCG either way).
func hostKVM(p *harness.Pair) string {
	if p.A.KVM() {
		return "libvirt offers KVM; the guests run under TCG"
	}
	return "no KVM; the guests run under TCG"
}
