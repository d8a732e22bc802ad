package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/hooks"
	"github.com/virt-failover/virt-failover/internal/claims"
)

// lockTimeout is B's [state] lock_timeout in this test: short, so that the test is fast.
const lockTimeout = 2 * time.Second

// lockMargin is what a call bounded by lockTimeout may take beyond it on a loaded machine. The lock
// is held for as long as the test wants (a hook without a deadline would wait for all of it), so
// any bound shows the deadline.
const lockMargin = 10 * time.Second

// lockSuite runs the held-lock scenarios on the pool pair: B's claims ledger is locked by another
// process on B (flock(1) on its claims.lock) while a migration comes in and while libvirtd
// restarts with the guest running there.
type lockSuite struct {
	*poolSuite
	figures []string
}

func TestLedgerLockHeld(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	s := &lockSuite{poolSuite: setupPools(t, "lock", "vfo-lock")}
	b := s.pair.B
	s.lockTimeout = map[*harness.Host]string{b: lockTimeout.String()}
	if err := b.WritePolicy(s.policy(b)); err != nil {
		t.Fatal(err)
	}
	if !runSteps(t, []step{
		{"boot-claims-the-primary-network", s.testBoot},
		{"held-lock-refuses-incoming-migration", s.testRefused},
		{"a-to-b-after-the-lock-is-free", s.testRemapAB},
		{"held-lock-daemon-restart-keeps-the-guest", s.testRestartHeld},
		{"b-to-a-after-the-lock-is-free", s.testAfterRestart},
	}) {
		return
	}
	t.Logf("ledger lock held on b (lock_timeout %s):\n%s", lockTimeout, strings.Join(s.figures, "\n"))
}

// hold locks B's claims ledger from another process on B until the lock is released (at the
// latest when the test ends).
func (s *lockSuite) hold(t *testing.T) *harness.Flock {
	t.Helper()
	b := s.pair.B
	lock, err := b.HoldFlock(s.ctx, filepath.Join(b.StateDir(), "claims.lock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Release() })
	t.Logf("b: %s held by flock(1) in b's namespaces", lock.Path)
	return lock
}

// lockMessage is what the hook says when the lock stayed held past the deadline.
func (s *lockSuite) lockMessage() string {
	return fmt.Sprintf("claims: the ledger's lock was not free in time: %s is held by another process for more than %s",
		filepath.Join(s.pair.B.StateDir(), "claims.lock"), lockTimeout)
}

// hookRun is libvirtd's record of the last run of a hook call for the domain from offset on.
func (s *lockSuite) hookRun(t *testing.T, h *harness.Host, offset int64, call string) (harness.HookRun, bool) {
	t.Helper()
	runs, err := h.HookRuns(offset)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Object == s.guest.Name && runs[i].Call() == call {
			return runs[i], true
		}
	}
	return harness.HookRun{}, false
}

// checkWaited checks a hook call that met the held lock: it waited for the whole deadline and not
// much more, and logged the error.
func (s *lockSuite) checkWaited(t *testing.T, h *harness.Host, rec hooks.Record) {
	t.Helper()
	d := time.Duration(rec.DurationMS * float64(time.Millisecond))
	if rec.Decision != hooks.Error || rec.Message != s.lockMessage() {
		t.Errorf("%s: %s %s record: decision %q, message %q; want error %q", h.Name, rec.Op, rec.SubOp, rec.Decision, rec.Message, s.lockMessage())
	}
	if d < lockTimeout || d > lockTimeout+lockMargin {
		t.Errorf("%s: %s %s took %v, want lock_timeout (%v) and at most %v more", h.Name, rec.Op, rec.SubOp, d, lockTimeout, lockMargin)
	}
	if len(rec.Claims) != 0 || len(rec.Releases) != 0 {
		t.Errorf("%s: %s %s changed claims without the lock: %+v", h.Name, rec.Op, rec.SubOp, rec)
	}
}

// testRefused: an A->B migration while B's lock is held is refused by B's hook at migrate begin
// once lock_timeout has passed; the guest never leaves A and keeps its primary.
func (s *lockSuite) testRefused(t *testing.T) {
	a, b := s.pair.A, s.pair.B
	dom := s.guest.Name
	if s.on != a {
		t.Fatalf("the guest runs on %s, want a", s.on.Name)
	}
	lock := s.hold(t)
	defer lock.Release()
	// A hook that waited for the lock would hold the migration until the lock is free: free it
	// well past the bound (MigrateObserved first waits up to a minute for the guest to answer),
	// so that such a hook fails this test instead of hanging it.
	watchdog := time.AfterFunc(lockTimeout+lockMargin+time.Minute, func() { _ = lock.Release() })
	defer watchdog.Stop()

	skip := len(records(t, b))
	logOff := harness.FileSize(b.DaemonLogPath())
	mark := s.serial.Len()
	m, err := harness.MigrateObserved(s.ctx, dom, a, b, s.serial)
	watchdog.Stop()
	if m.Err == nil {
		s.on = b
		t.Fatalf("a->b with b's ledger locked succeeded after %.1fs", m.Duration.Seconds())
	}
	if err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSpace(m.Output)
	t.Logf("a->b refused after %.2fs: %s", m.Duration.Seconds(), out)
	if m.Duration > lockTimeout+lockMargin {
		t.Errorf("a->b took %.1fs to be refused, want at most lock_timeout + %v", m.Duration.Seconds(), lockMargin)
	}
	want := "virt-failover: qemu " + dom + " migrate begin: refused: " + s.lockMessage()
	if !strings.Contains(m.Output, want) {
		t.Errorf("virsh migrate's error does not carry the hook's refusal %q:\n%s", want, m.Output)
	}

	// B's hook: one call, migrate begin, that waited lock_timeout and refused; nothing after it.
	var calls []string
	for _, r := range records(t, b)[skip:] {
		if r.Domain == dom {
			calls = append(calls, r.Op+" "+r.SubOp)
		}
	}
	if !slices.Equal(calls, []string{"migrate begin"}) {
		t.Errorf("b: hook calls %q, want only migrate begin", calls)
	}
	rec, _ := call(records(t, b), skip, dom, "migrate", "begin")
	s.checkWaited(t, b, rec)
	// libvirtd on B saw the hook fail (exit 1): the run the reconnect below must not look like.
	run, ok := s.hookRun(t, b, logOff, "migrate begin")
	if !ok || run.OK() || !strings.Contains(run.Err, want) {
		t.Errorf("b: libvirtd's record of migrate begin %+v, want the hook's failure with %q", run, want)
	}

	// The guest stays on A, with its primary, and answers its probes.
	if st, err := a.DomState(s.ctx, dom); err != nil || st != "running" {
		t.Errorf("after the refusal the guest is %q on a (%v), want running", st, err)
	}
	if st, _ := b.DomState(s.ctx, dom); st != "" {
		t.Errorf("b has the guest (%s)", st)
	}
	s.checkPrimary(t, a)
	if !m.After.PrimaryEnslaved() {
		t.Errorf("after the refusal the primary is not enslaved: %s", m.After.Summary())
	}
	for _, l := range s.serial.Lines(mark) {
		if strings.Contains(l, "unregistered") {
			t.Errorf("the guest lost its primary although the migration never started: %s", l)
		}
	}
	s.answering(t, "after the refusal")

	// Nothing changed in either ledger; status reads B's without the lock.
	s.expectState(t, a, "fabric-a1", claims.StateClaimed, dom)
	s.expectState(t, b, "fabric-b1", claims.StateFree, "")
	s.figures = append(s.figures, fmt.Sprintf("  a->b refused after %.2f s (virsh migrate, start to error); b's hook waited %.0f ms at migrate begin",
		m.Duration.Seconds(), rec.DurationMS))
}

// checkPrimary checks that the guest's live definition on h still has the failover pair: the
// virtio standby (teaming persistent) and the emulated primary ua-pri0.
func (s *lockSuite) checkPrimary(t *testing.T, h *harness.Host) {
	t.Helper()
	itfs, err := h.Interfaces(s.ctx, s.guest.Name)
	if err != nil {
		t.Fatal(err)
	}
	var standby, primary bool
	for _, itf := range itfs {
		standby = standby || (itf.Alias == "ua-sby0" && itf.Teaming == "persistent")
		primary = primary || (itf.Alias == "ua-pri0" && itf.Model == "e1000e")
	}
	if !standby || !primary {
		t.Errorf("%s: the live definition lacks the standby or the primary: %+v", h.Name, itfs)
	}
}

// answering waits for a heartbeat with the primary enslaved and the guest's probes answered.
func (s *lockSuite) answering(t *testing.T, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	if _, err := s.serial.WaitHeartbeat(ctx, s.serial.Len(), "heartbeat with the primary enslaved and probes answered "+when,
		harness.Answering(harness.Heartbeat.PrimaryEnslaved)); err != nil {
		t.Fatal(err)
	}
}

// testRestartHeld: libvirtd on B restarts with the guest running there and B's lock held. The
// hook's reconnect waits lock_timeout, logs that it could not take the lock and exits 0; libvirtd
// comes up and keeps the guest, which goes on answering; B's claim of it stays as it was.
func (s *lockSuite) testRestartHeld(t *testing.T) {
	b := s.pair.B
	dom := s.guest.Name
	if s.on != b {
		t.Fatalf("the guest runs on %s, want b", s.on.Name)
	}
	s.expectState(t, b, "fabric-b1", claims.StateClaimed, dom)
	lock := s.hold(t)
	defer lock.Release()
	last, ok := s.serial.LastHeartbeat(0)
	if !ok {
		t.Fatal("no heartbeat yet")
	}
	skip := len(records(t, b))
	logOff := harness.FileSize(b.DaemonLogPath())
	oldPID := b.LibvirtdPID()

	ctx, cancel := context.WithTimeout(s.ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := b.RestartDaemon(ctx); err != nil {
		t.Fatalf("restarting libvirtd on b with the lock held: %v", err)
	}
	restart := time.Since(start)
	t.Logf("libvirtd on b restarted in %.2fs (pid %d -> %d)", restart.Seconds(), oldPID, b.LibvirtdPID())

	// libvirtd reconnects to the guest in a thread of its own, which runs the hook; wait until
	// libvirtd has its result.
	var run harness.HookRun
	var reconnected time.Duration
	for time.Now().Before(start.Add(time.Minute)) {
		if run, ok = s.hookRun(t, b, logOff, "reconnect begin"); ok && run.Done {
			reconnected = time.Since(start)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !run.Done {
		t.Fatalf("b: libvirtd's reconnect hook had not returned a minute after the restart (%+v)", run)
	}
	rec, ok := call(records(t, b), skip, dom, "reconnect", "begin")
	if !ok {
		t.Fatalf("b: no reconnect begin in the hook log")
	}
	s.checkWaited(t, b, rec)
	// libvirtd saw it exit 0 (a failing reconnect would make it kill the guest), with the error
	// on its stderr.
	wantErr := "virt-failover: qemu " + dom + " reconnect begin: error (ignored: the reconnect operation never fails): " + s.lockMessage()
	if !run.OK() || !strings.Contains(run.Stderr, wantErr) {
		t.Errorf("b: libvirtd's record of reconnect begin %+v\nwant exit 0 with %q on stderr", run, wantErr)
	}

	// libvirtd finished reconnecting to the guest: it holds its QEMU monitor again.
	if out, err := b.Virsh(ctx, "qemu-monitor-command", dom, "--hmp", "info status"); err != nil || !strings.Contains(out, "running") {
		t.Errorf("b: QEMU's monitor after the restart: %q, %v", out, err)
	}
	monitor := time.Since(start)
	if st, err := b.DomState(ctx, dom); err != nil || st != "running" {
		t.Errorf("after the restart the guest is %q on b (%v), want running", st, err)
	}
	s.checkPrimary(t, b)
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	hb, err := s.serial.WaitHeartbeat(wctx, last.Index+1, "heartbeat after the restart", func(hb harness.Heartbeat) bool {
		return hb.Uptime > last.Uptime+2
	})
	if err != nil {
		t.Fatal(err)
	}
	if !hb.PrimaryEnslaved() {
		t.Errorf("after the restart the primary is not enslaved: %s", hb.Summary())
	}
	s.answering(t, "after the restart")
	// The claim the migration took is still there (reconnect could not touch the ledger).
	s.expectState(t, b, "fabric-b1", claims.StateClaimed, dom)
	s.figures = append(s.figures, fmt.Sprintf("  libvirtd restart on b: answering after %.2f s; reconnect begin exit 0 after %.2f s (b's hook waited %.0f ms, libvirtd %.2f s for it); the guest's QEMU monitor answering after %.2f s",
		restart.Seconds(), reconnected.Seconds(), rec.DurationMS, run.Duration().Seconds(), monitor.Seconds()))
}

// testAfterRestart: with the lock free again the guest migrates back to A: B's release frees its
// claim and A claims a network; both ledgers end as the guest's place says.
func (s *lockSuite) testAfterRestart(t *testing.T) {
	s.testRemapBA(t)
	if t.Failed() {
		return
	}
	s.expectState(t, s.pair.B, "fabric-b1", claims.StateFree, "")
	st, text := s.status(s.pair.B)
	for _, p := range st.Pools {
		for _, r := range p.Resources {
			if r.Domain != "" {
				t.Errorf("b: status still shows %s for %s:\n%s", r.Name, r.Domain, text)
			}
		}
	}
	t.Logf("b's status after the guest left:\n%s", text)
	_, text = s.status(s.pair.A)
	t.Logf("a's status:\n%s", text)
}
