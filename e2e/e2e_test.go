// Package e2e proves virt-failover against real libvirt and QEMU: two private libvirt hosts on
// this machine, the hook installed on both, and a guest with a virtio-net failover pair (an
// emulated e1000e standing in for a VF) migrated live between them.
//
// It runs only as root with VF_E2E=1; see README.md.
package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/guest"
	"github.com/virt-failover/virt-failover/e2e/harness"
)

func enabled() (bool, string) {
	if os.Getenv("VF_E2E") != "1" {
		return false, "end-to-end tests run real libvirt and QEMU; set VF_E2E=1 (as root) to run them"
	}
	if os.Geteuid() != 0 {
		return false, "end-to-end tests need root (namespaces, mounts, libvirtd)"
	}
	return true, ""
}

func TestMain(m *testing.M) {
	flag.Parse()
	if ok, _ := enabled(); ok {
		harness.StopOnSignal(func(sig os.Signal) {
			fmt.Fprintf(os.Stderr, "e2e: %v: stopping the hosts\n", sig)
		})
		// go test -timeout panics without running cleanups: stop the hosts shortly before that.
		if f := flag.Lookup("test.timeout"); f != nil {
			if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
				margin := min(d/10, 45*time.Second)
				time.AfterFunc(d-margin, func() {
					fmt.Fprintln(os.Stderr, "e2e: the test deadline is near: stopping the hosts")
					harness.StopAll()
				})
			}
		}
	}
	os.Exit(m.Run())
}

// suite is the state the scenarios share: one pair of hosts and one guest.
type suite struct {
	t      *testing.T
	ctx    context.Context
	root   string
	run    string // run directory (logs)
	hook   string
	deb    string // the package B installs instead of a copied hook ("" with the stand-in)
	stub   bool   // the hook is the stand-in script (no rewrite or refusal)
	img    *guest.Image
	pair   *harness.Pair
	serial *harness.Serial
	guest  harness.Guest
	on     *harness.Host // where the guest runs
	boots  int

	purgedLog  []harness.HookEntry // B's hook log as the package's purge found it
	migrations []*harness.Migration
	plain      []*harness.Migration // the yardstick: a guest with one plain virtio NIC
	notes      []string
}

func TestFailoverMigration(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	s := setup(t)

	t.Run("boot", s.testBoot)
	if t.Failed() {
		t.FailNow()
	}
	for r := 1; r <= roundTrips(t); r++ {
		t.Run(fmt.Sprintf("round-trip-%d", r), s.testRoundTrip)
	}
	t.Run("rewrite-networks", s.testRewrite)
	t.Run("refuse-incoming", s.testRefuse)
	t.Run("daemon-restart-reconnect", s.testReconnect)
	t.Run("package-remove-purge", s.testPackageRemoval)
	t.Run("plain-virtio-yardstick", s.testPlain)
	s.summary(t)
}

// roundTrips is VF_ROUNDS, the number of A->B->A round trips a test makes of a guest (default 1).
func roundTrips(t *testing.T) int {
	t.Helper()
	v := os.Getenv("VF_ROUNDS")
	if v == "" {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("VF_ROUNDS=%q: want a positive number", v)
	}
	return n
}

func setup(t *testing.T) *suite {
	ctx := context.Background()
	root, run := runDir(t, "test")
	s := &suite{t: t, ctx: ctx, root: root, run: run}
	t.Cleanup(func() { s.pair.Stop() })
	s.hook = hookUnderTest(t, root, run)
	s.stub = harness.IsStandIn(s.hook)
	t.Logf("hook under test: %s", s.hook)
	s.deb = debUnderTest(t, root, s.hook)
	if s.deb != "" {
		t.Logf("package B installs: %s", s.deb)
	}

	var err error
	s.img, err = guest.Build(ctx, guest.DefaultCacheDir(root), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.pair, err = harness.StartPair(ctx, harness.PairConfig{Dir: run, Hook: s.hook, DebB: s.deb, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if s.deb != "" {
		s.checkPackagedHook(t)
	}
	t.Logf("hosts up in %.1fs; logs in %s", time.Since(start).Seconds(), run)
	s.serial = harness.NewSerial(filepath.Join(run, "serial", "guest.log"))
	s.guest = harness.DefaultGuest(s.img.Kernel, s.img.Initrd, s.serial.Path)
	return s
}

// boot starts a fresh guest on A (destroying any other instance first). It returns the hook log
// entries of the start.
func (s *suite) boot(ctx context.Context) ([]harness.HookEntry, error) {
	for _, h := range s.pair.Hosts() {
		if st, _ := h.DomState(ctx, s.guest.Name); st != "" {
			_, _ = h.Virsh(ctx, "destroy", s.guest.Name)
		}
	}
	before, _ := s.pair.A.HookLog()
	s.boots++
	start := time.Now()
	hb, err := s.pair.A.Boot(ctx, s.guest, s.serial)
	if err != nil {
		return nil, err
	}
	s.on = s.pair.A
	s.t.Logf("guest booted on a in %.1fs (boot #%d): %s", time.Since(start).Seconds(), s.boots, hb.Summary())
	after, err := s.pair.A.HookLog()
	return after[min(len(before), len(after)):], err
}

// ensureGuest makes sure the guest runs healthy somewhere before a scenario; if not, it boots a
// fresh one on A.
func (s *suite) ensureGuest(t *testing.T) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if s.on != nil {
		if st, _ := s.on.DomState(ctx, s.guest.Name); st == "running" {
			if _, err := s.serial.WaitHeartbeat(ctx, s.serial.Len(), "healthy heartbeat", harness.Heartbeat.PrimaryEnslaved); err == nil {
				return
			}
		}
		t.Logf("the guest is not healthy on %s any more: booting a fresh one", s.on.Name)
	}
	if _, err := s.boot(s.ctx); err != nil {
		t.Fatalf("booting the guest: %v", err)
	}
}

// check gathers assertion failures so that a guest kernel crash can be told apart from them.
type check struct {
	errs []string
}

func (c *check) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// scenario runs body; if the guest kernel crashed meanwhile, it says so (a crash is not a failover
// failure) and runs body once more from a fresh guest boot.
func (s *suite) scenario(t *testing.T, body func(ctx context.Context, c *check) error) {
	for attempt := 1; ; attempt++ {
		s.ensureGuest(t)
		mark := s.serial.Len()
		c := &check{}
		err := body(s.ctx, c)
		var crash *harness.GuestCrash
		if !errors.As(err, &crash) {
			crash = s.serial.Crash(mark)
		}
		if crash != nil {
			if attempt == 1 {
				t.Logf("guest kernel crashed: %s (not a failover failure); retrying from a fresh guest boot", crash.Line)
				s.notes = append(s.notes, fmt.Sprintf("%s: guest kernel crashed once (%s), retried", t.Name(), crash.Line))
				s.on = nil
				continue
			}
			t.Errorf("guest kernel crashed again on the retry: %s", crash.Line)
			return
		}
		for _, e := range c.errs {
			t.Error(e)
		}
		if err != nil {
			t.Error(err)
		}
		return
	}
}

// expect is what a successful migration must show besides the failover itself.
type expect struct {
	decision string // of the destination's migrate begin
	network  string // of both interfaces on the destination
	tainted  bool   // destination domain log: "tainted: hook-script"
}

// migrate runs one observed migration from where the guest is to the other host and checks it.
func (s *suite) migrate(ctx context.Context, c *check, want expect) error {
	from := s.on
	to := s.pair.Other(from)
	m, err := harness.MigrateObserved(ctx, s.guest.Name, from, to, s.serial)
	if m.Err == nil {
		s.on = to
	}
	if err != nil {
		return fmt.Errorf("%s: %w", m.Direction(), err)
	}
	s.migrations = append(s.migrations, m)
	s.t.Logf("%s: virsh migrate %.1fs, primary back after %.1fs, %d probes lost (%d sent)",
		m.Direction(), m.Duration.Seconds(), m.Back.Seconds(), m.Lost, m.Probes())
	s.checkMigration(ctx, c, m, want)
	return nil
}

func (s *suite) checkMigration(ctx context.Context, c *check, m *harness.Migration, want expect) {
	dir := m.Direction()
	dom := m.Domain
	if m.Err != nil {
		c.Errorf("%s: virsh migrate: %v\n%s", dir, m.Err, m.Output)
		return
	}
	// Where the guest runs now.
	if st, err := m.To.DomState(ctx, dom); err != nil || st != "running" {
		c.Errorf("%s: on %s the guest is %q (%v), want running", dir, m.To.Name, st, err)
	}
	if st, err := m.From.DomState(ctx, dom); err != nil || st == "running" || st == "paused" {
		c.Errorf("%s: on the source %s the guest is %q (%v), want it gone", dir, m.From.Name, st, err)
	}

	// QEMU did the failover: the source unplugged the primary and waited for the guest.
	if e, ok := harness.Event(m.SourceEvents, "UNPLUG_PRIMARY", ""); !ok {
		c.Errorf("%s: no UNPLUG_PRIMARY from the source QEMU; its events: %v", dir, m.SourceEvents)
	} else if id, _ := e.Data["device-id"].(string); id != "ua-pri0" {
		c.Errorf("%s: UNPLUG_PRIMARY for %q, want ua-pri0", dir, id)
	}
	if _, ok := harness.Event(m.SourceEvents, "MIGRATION", "wait-unplug"); !ok {
		c.Errorf("%s: the source migration never was in state wait-unplug; its events: %v", dir, m.SourceEvents)
	}
	if _, ok := harness.Event(m.DestEvents, "FAILOVER_NEGOTIATED", ""); !ok {
		c.Errorf("%s: no FAILOVER_NEGOTIATED from the destination QEMU; its events: %v", dir, m.DestEvents)
	}
	// The guest saw it: primary unregistered, registered again, enslaved under the master.
	master, _ := m.Before.Master()
	if p, ok := m.Enslaved.Primary(); !ok || p.Master != master.Name || p.State != "up" {
		c.Errorf("%s: after the migration the primary is not enslaved to %s: %s", dir, master.Name, m.Enslaved.Summary())
	}
	if !m.After.PrimaryEnslaved() {
		c.Errorf("%s: %.0f s later the primary is not enslaved any more: %s", dir, harness.SettleTime, m.After.Summary())
	}

	// The hooks saw every operation, in libvirt's order, each with its duration; the source only
	// after the guest had left (its stopped end follows the destination's started begin).
	s.checkCalls(c, dir+": destination "+m.To.Name, m.DestHook,
		[]string{"migrate begin", "prepare begin", "start begin", "started begin"})
	s.checkCalls(c, dir+": source "+m.From.Name, m.SourceHook, []string{"stopped end", "release end"})
	if len(m.DestHook) == 4 && len(m.SourceHook) == 2 {
		started, err1 := time.Parse(time.RFC3339Nano, m.DestHook[3].Time)
		stopped, err2 := time.Parse(time.RFC3339Nano, m.SourceHook[0].Time)
		if err := errors.Join(err1, err2); err != nil {
			c.Errorf("%s: hook log time: %v", dir, err)
		} else if stopped.Before(started) {
			c.Errorf("%s: the source's stopped end (%s) came before the destination's started begin (%s)",
				dir, m.SourceHook[0].Time, m.DestHook[3].Time)
		}
	}
	for _, e := range append(append([]harness.HookEntry(nil), m.DestHook...), m.SourceHook...) {
		if e.DurationMS == nil || *e.DurationMS < 0 {
			c.Errorf("%s: hook log line %s has no duration_ms", dir, e.Call())
		}
		if e.Decision == "error" || e.Decision == "refuse" {
			c.Errorf("%s: hook decided %s at %s: %s", dir, e.Decision, e.Call(), e.Message)
		}
	}
	if s.stub {
		return
	}
	if e, ok := m.HookDecision(); ok {
		if e.Decision != want.decision {
			c.Errorf("%s: migrate begin decision %q, want %q (changes %v)", dir, e.Decision, want.decision, e.Changes)
		}
		if want.decision == "rewrite" && len(e.Changes) == 0 {
			c.Errorf("%s: rewrite without changes in the hook log", dir)
		}
	}
	// The rewrite reached libvirt: the live definition and the taint.
	if nets, err := m.To.InterfaceNetworks(ctx, dom); err != nil {
		c.Errorf("%s: %v", dir, err)
	} else {
		for i, n := range nets {
			if n != want.network {
				c.Errorf("%s: on %s interface %d uses network %q, want %q", dir, m.To.Name, i, n, want.network)
			}
		}
	}
	// The linter finds no error in what libvirt made of the pair: the live definition and the
	// migratable form the next destination's hook receives.
	for _, args := range [][]string{{"dumpxml", dom}, {"dumpxml", "--migratable", dom}} {
		s.checkLint(ctx, c, dir+": "+m.To.Name+" "+strings.Join(args[:len(args)-1], " "), m.To, args...)
	}
	tainted := strings.Contains(m.DestDomainLog, "is tainted: hook-script")
	if tainted != want.tainted {
		c.Errorf("%s: %s says tainted by hook-script: %v, want %v", dir, m.To.DomainLogPath(dom), tainted, want.tainted)
	}
}

// checkLint runs `virt-failover lint` over virsh's output and expects no error finding.
func (s *suite) checkLint(ctx context.Context, c *check, what string, h *harness.Host, virshArgs ...string) {
	xml, err := h.Virsh(ctx, virshArgs...)
	if err != nil {
		c.Errorf("%s: %v", what, err)
		return
	}
	cmd := exec.CommandContext(ctx, s.hook, "lint", "--fail-on", "error", "-")
	cmd.Stdin = strings.NewReader(xml)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.Errorf("%s: lint: %v\n%s", what, err, out)
	}
}

// checkCalls checks that the hook log entries are exactly these calls, in this order.
func (s *suite) checkCalls(c *check, what string, entries []harness.HookEntry, calls []string) {
	var got []string
	for _, e := range entries {
		got = append(got, e.Call())
	}
	if !slices.Equal(got, calls) {
		c.Errorf("%s: hook calls %q, want %q", what, got, calls)
	}
}

func (s *suite) testBoot(t *testing.T) {
	ctx := s.ctx
	calls, err := s.boot(ctx)
	var crash *harness.GuestCrash
	if errors.As(err, &crash) {
		t.Logf("guest kernel crashed while booting: %s (not a failover failure); booting once more", crash.Line)
		s.notes = append(s.notes, "boot: guest kernel crashed once ("+crash.Line+"), retried")
		calls, err = s.boot(ctx)
	}
	if err != nil {
		t.Fatalf("booting the guest: %v", err)
	}
	c := &check{}
	s.checkCalls(c, "start on a", calls, []string{"prepare begin", "start begin", "started begin"})
	for _, e := range c.errs {
		t.Error(e)
	}
	for _, l := range s.serial.Lines(0) {
		if strings.Contains(l, "failover master:") || strings.Contains(l, "slave:") || strings.HasPrefix(l, "VFO: ") {
			t.Log("guest: " + strings.TrimSpace(l))
		}
	}
}

func (s *suite) testRoundTrip(t *testing.T) {
	s.scenario(t, func(ctx context.Context, c *check) error {
		for range 2 {
			if err := s.migrate(ctx, c, expect{decision: "pass", network: "lan"}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *suite) testRewrite(t *testing.T) {
	if s.stub {
		t.Skip("the stand-in hook does not rewrite")
	}
	a, b := s.pair.A, s.pair.B
	write := func(h *harness.Host, policy string) {
		if err := h.WritePolicy(policy); err != nil {
			t.Fatal(err)
		}
	}
	write(b, "[rewrite.networks]\n\"lan\" = \"lan-b\"\n")
	write(a, "[rewrite.networks]\n\"lan-b\" = \"lan\"\n")
	defer write(a, "")
	defer write(b, "")
	s.scenario(t, func(ctx context.Context, c *check) error {
		for range 2 {
			// Whichever way: B names the guest network lan-b, A names it lan.
			want := expect{decision: "rewrite", network: "lan-b", tainted: true}
			if s.on == b {
				want.network = "lan"
			}
			if err := s.migrate(ctx, c, want); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *suite) testRefuse(t *testing.T) {
	if s.stub {
		t.Skip("the stand-in hook does not refuse")
	}
	s.scenario(t, func(ctx context.Context, c *check) error {
		from := s.on
		to := s.pair.Other(from)
		if err := to.WritePolicy("[host]\naccept_incoming = false\n"); err != nil {
			return err
		}
		defer to.WritePolicy("")
		mark := s.serial.Len()
		m, err := harness.MigrateObserved(ctx, s.guest.Name, from, to, s.serial)
		if err != nil {
			return err
		}
		dir := m.Direction()
		t.Logf("%s refused after %.1fs: %s", dir, m.Duration.Seconds(), strings.TrimSpace(m.Output))
		if m.Err == nil {
			s.on = to
			c.Errorf("%s: migration to a host with accept_incoming = false succeeded", dir)
			return nil
		}
		want := "virt-failover: qemu " + s.guest.Name + " migrate begin: refused:"
		if !strings.Contains(m.Output, want) {
			c.Errorf("%s: virsh output does not carry the hook's first stderr line %q:\n%s", dir, want, m.Output)
		}
		if e, ok := m.HookDecision(); !ok || e.Decision != "refuse" || e.Message == "" {
			c.Errorf("%s: %s's hook log has no refusal with a message: %+v", dir, to.Name, m.DestHook)
		}
		if len(m.DestHook) > 0 && m.DestHook[0].Call() != "migrate begin" {
			c.Errorf("%s: %s's first hook call is %s, want migrate begin", dir, to.Name, m.DestHook[0].Call())
		}
		for _, e := range m.DestHook {
			if e.Call() == "prepare begin" {
				c.Errorf("%s: %s prepared the refused guest", dir, to.Name)
			}
		}
		if st, err := from.DomState(ctx, s.guest.Name); err != nil || st != "running" {
			c.Errorf("%s: on %s the guest is %q (%v), want running", dir, from.Name, st, err)
		}
		if st, _ := to.DomState(ctx, s.guest.Name); st != "" {
			c.Errorf("%s: %s has the guest (%s)", dir, to.Name, st)
		}
		if !m.After.PrimaryEnslaved() {
			c.Errorf("%s: after the refusal the primary is not enslaved: %s", dir, m.After.Summary())
		}
		for _, l := range s.serial.Lines(mark) {
			if strings.Contains(l, "unregistered") {
				c.Errorf("%s: the guest lost its primary although the migration never started: %s", dir, l)
			}
		}
		return nil
	})
}

func (s *suite) testReconnect(t *testing.T) {
	s.scenario(t, func(ctx context.Context, c *check) error {
		h := s.on
		before, _ := h.HookLog()
		last, ok := s.serial.LastHeartbeat(0)
		if !ok {
			return errors.New("no heartbeat yet")
		}
		oldPID := h.LibvirtdPID()
		if err := h.RestartDaemon(ctx); err != nil {
			return err
		}
		t.Logf("libvirtd on %s restarted: pid %d -> %d", h.Name, oldPID, h.LibvirtdPID())
		var reconnect *harness.HookEntry
		deadline := time.Now().Add(time.Minute)
		for reconnect == nil && time.Now().Before(deadline) {
			after, _ := h.HookLog()
			for i := len(before); i < len(after); i++ {
				if after[i].Domain == s.guest.Name && after[i].Call() == "reconnect begin" {
					reconnect = &after[i]
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if reconnect == nil {
			c.Errorf("%s: no reconnect begin in the hook log after restarting libvirtd", h.Name)
		} else if reconnect.Decision != "pass" {
			c.Errorf("%s: reconnect begin decision %q (%s), want pass", h.Name, reconnect.Decision, reconnect.Message)
		}
		if st, err := h.DomState(ctx, s.guest.Name); err != nil || st != "running" {
			c.Errorf("%s: after the restart the guest is %q (%v), want running", h.Name, st, err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		hb, err := s.serial.WaitHeartbeat(wctx, last.Index+1, "heartbeat after the restart", func(hb harness.Heartbeat) bool {
			return hb.Uptime > last.Uptime+2
		})
		if err != nil {
			return err
		}
		if !hb.PrimaryEnslaved() {
			c.Errorf("%s: after the restart the primary is not enslaved: %s", h.Name, hb.Summary())
		}
		return nil
	})
}

// testPlain migrates a guest without failover (one plain virtio NIC) A -> B -> A with the same
// probes: the yardstick the failover rows are read against. It asserts what must hold for any
// guest (the migration succeeds, the network works on the far side); the probe counts are
// figures, reported beside the failover ones.
func (s *suite) testPlain(t *testing.T) {
	for _, h := range s.pair.Hosts() {
		if st, _ := h.DomState(s.ctx, s.guest.Name); st != "" {
			_, _ = h.Virsh(s.ctx, "destroy", s.guest.Name)
		}
	}
	serial := harness.NewSerial(filepath.Join(s.run, "serial", "plain.log"))
	g := harness.YardstickGuest(s.img.Kernel, s.img.Initrd, serial.Path)
	if _, err := s.pair.A.Boot(s.ctx, g, serial); err != nil {
		t.Fatal(err)
	}
	defer s.pair.A.Virsh(s.ctx, "destroy", g.Name)
	for _, hop := range [][2]*harness.Host{{s.pair.A, s.pair.B}, {s.pair.B, s.pair.A}} {
		m, err := harness.MigratePlain(s.ctx, g.Name, hop[0], hop[1], serial)
		if err != nil {
			t.Fatalf("%s: %v", m.Direction(), err)
		}
		if m.Err != nil {
			t.Fatalf("%s: virsh migrate: %v\n%s", m.Direction(), m.Err, m.Output)
		}
		// The network works on the far side: of the probes sent in the SettleTime after the
		// guest's first heartbeat there, some were answered.
		if m.After.Recv <= m.Enslaved.Recv {
			t.Errorf("%s: no probe answered on %s in the %.0f s after the guest's first heartbeat there: %d sent, %d answered in all",
				m.Direction(), m.To.Name, harness.SettleTime, m.After.Sent-m.Enslaved.Sent, m.After.Recv)
		}
		t.Logf("%s: virsh migrate %.1fs, first heartbeat on %s after %.1fs, %d of %d probes lost",
			m.Direction(), m.Duration.Seconds(), m.To.Name, m.Back.Seconds(), m.Lost, m.Probes())
		s.plain = append(s.plain, m)
	}
}

// summary logs the figures of the run and writes them to the run directory.
func (s *suite) summary(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "%-4s %-8s %-7s %9s %11s %10s %6s %-8s\n", "#", "guest", "dir", "migrate", "wait-unplug", "back", "lost", "decision")
	row := func(n, guest string, m *harness.Migration, wu, dec string) {
		fmt.Fprintf(&b, "%-4s %-8s %-7s %8.1fs %11s %9.1fs %2d/%-3d %-8s\n", n, guest, m.Direction(), m.Duration.Seconds(), wu,
			m.Back.Seconds(), m.Lost, m.Probes(), dec)
	}
	for i, m := range s.plain {
		row(fmt.Sprintf("p%d", i+1), "plain", m, "-", "-")
	}
	for i, m := range s.migrations {
		wu := "-"
		if d, ok := m.WaitUnplug(); ok {
			wu = fmt.Sprintf("%.0fms", float64(d.Microseconds())/1000)
		}
		dec := "-"
		if e, ok := m.HookDecision(); ok {
			dec = e.Decision
		}
		row(strconv.Itoa(i+1), "failover", m, wu, dec)
	}
	b.WriteString("(back: the primary enslaved again; plain: the guest's first heartbeat on the destination)\n")
	fl, fs := harness.LostPerMigration(s.migrations)
	pl, ps := harness.LostPerMigration(s.plain)
	fmt.Fprintf(&b, "probes lost per migration: failover %.1f of %.1f (%d migrations), plain virtio %.1f of %.1f (%d)\n",
		fl, fs, len(s.migrations), pl, ps, len(s.plain))
	b.WriteString("\nhook latency per call (both hosts, whole run):\n")
	lat := map[string][]float64{}
	for _, h := range s.pair.Hosts() {
		entries, _ := h.HookLog()
		if h == s.pair.B {
			entries = append(s.purgedLog, entries...)
		}
		for _, e := range entries {
			if e.DurationMS != nil {
				lat[e.Call()] = append(lat[e.Call()], *e.DurationMS)
			}
		}
	}
	calls := make([]string, 0, len(lat))
	for k := range lat {
		calls = append(calls, k)
	}
	sort.Strings(calls)
	for _, k := range calls {
		v := lat[k]
		sort.Float64s(v)
		fmt.Fprintf(&b, "  %-16s n=%-3d median %6.2f ms  max %6.2f ms\n", k, len(v), v[len(v)/2], v[len(v)-1])
	}
	for _, n := range s.notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	t.Logf("summary:\n%s", b.String())
	_ = os.WriteFile(filepath.Join(s.run, "summary.txt"), []byte(b.String()), 0o644)
}
