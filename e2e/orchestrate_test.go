package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/guest"
	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/hooks"
	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/policy"
)

// TestOrchestrateBond proves the orchestrator (virt-failover migrate, switch, repair and the
// replug worker the hook starts) on the two real hosts with the bonded guest: no net_failover, an
// e1000e bond primary standing in for a VF (paired by "pair --bond --emulated-primary --pool
// fabric": its kind='bond' record makes the orchestrator unplug it like one) and a virtio NIC,
// bonded active-backup in the guest. The primary draws its network from pool 'fabric' on each host
// (A: fabric-a1, fabric-a2; B: fabric-b1). The steps build on each other:
//
//  1. migrate A->B->A: plan before actions, the primary parked and detached, the guest migrated,
//     the primary plugged back from the destination's pool (claimed by its hook at migrate begin);
//     the bond carries traffic throughout and has both slaves after.
//  2. rollback: B refuses (its pool exhausted, then accept_incoming = false): migrate exits 1, the
//     primary is back on A, live and persistent, and B holds no claim.
//  3. switch --to emulated on A, plain virsh migrate to B: nothing plugs it back; switch --to
//     assigned on B plugs it from B's pool.
//  4. migrate B->A killed -9 as the guest resumes on A: A's replug worker plugs the primary back,
//     and libvirt never waited for it.
//  5. migrate killed -9 after the detach, then repair: the primary back exactly once.
//  6. migrate killed -9 after the detach, then a cold start of the guest: the worker plugs the
//     primary into the fresh boot.
//  7. migrate killed -9 as the migration starts (then also the job aborted), repair on the
//     source at once, then where the guest runs: every device back exactly once, the claims
//     consistent on both hosts.
func TestOrchestrateBond(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	s := setupOrch(t)
	runSteps(t, []step{
		{"boot-on-a", s.testBoot},
		{"migrate-a-b-a", s.testMigrate},
		{"rollback-pool-exhausted", func(t *testing.T) { s.testRollback(t, "pool exhausted") }},
		{"rollback-refuse-incoming", func(t *testing.T) { s.testRollback(t, "accept_incoming = false") }},
		{"switch-emulated-plain-migrate-switch-assigned", s.testSwitch},
		{"killed-after-migration-worker-replugs", s.testKilledAfterMigration},
		{"killed-after-detach-repair", s.testKilledAfterDetach},
		{"killed-after-detach-cold-start-worker-replugs", s.testColdStartWorkerReplugs},
		{"killed-during-migration-repair", func(t *testing.T) { s.testKilledDuringMigration(t, false) }},
		{"back-to-a", s.testBackToA},
		{"killed-during-migration-aborted-repair", func(t *testing.T) { s.testKilledDuringMigration(t, true) }},
		{"watch-metrics", s.testWatchMetrics},
	})
	if c := s.serial.Crash(0); c != nil {
		t.Errorf("%v (the bonded guest)", c)
	}
	t.Logf("figures (the bonded guest, orchestrated):\n  %s", strings.Join(s.figures, "\n  "))
	if err := os.WriteFile(filepath.Join(s.run, "summary.txt"), []byte(strings.Join(s.figures, "\n")+"\n"), 0o644); err != nil {
		t.Error(err)
	}
}

// orchSuite is the state the orchestrator's steps share: the hosts, the guest and where it runs.
type orchSuite struct {
	ctx     context.Context
	run     string
	bin     string
	pair    *harness.Pair
	serial  *harness.Serial
	dom     string
	def     []byte
	conns   map[*harness.Host]*virt.Conn
	logs    []*eventLog
	on      *harness.Host
	figures []string
	// kernel and initrd are the default guest's (the bonded guest boots the modes initramfs).
	kernel, initrd string
	watches        map[*harness.Host]*harness.Watch
}

// orchTimeout bounds each command and wait: the machine is slow and shared, and TCG.
const orchTimeout = 5 * time.Minute

func setupOrch(t *testing.T) *orchSuite { return setupOrchIn(t, "orch-bond") }

// setupOrchIn starts the pair and makes the bonded guest's definition, the run directory named
// after prefix.
func setupOrchIn(t *testing.T, prefix string) *orchSuite {
	ctx := context.Background()
	root, run := runDir(t, prefix)
	s := &orchSuite{ctx: ctx, run: run, conns: map[*harness.Host]*virt.Conn{}}
	t.Cleanup(func() { s.pair.Stop() })
	s.bin = hookUnderTest(t, root, run)
	if harness.IsStandIn(s.bin) {
		t.Skip("the orchestrator is the binary under test, not the stand-in hook")
	}
	img, err := guest.Build(ctx, guest.DefaultCacheDir(root), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.pair, err = harness.StartPair(ctx, harness.PairConfig{Dir: run, Hook: s.bin, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range s.pair.Hosts() {
		if err := h.DefineFabric(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.WritePolicy(h.OrchestrationPolicy(`default_pool = "fabric"`)); err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		c, err := virt.Dial(dctx, h.URI())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.conns[h].Close() }) // the last one, made again after a restart
		s.conns[h] = c
	}
	s.startWatches(t)
	t.Logf("hosts up in %.1fs; logs in %s", time.Since(start).Seconds(), run)
	s.serial = harness.NewSerial(filepath.Join(run, "serial", "bond.log"))
	if err := os.MkdirAll(filepath.Dir(s.serial.Path), 0o755); err != nil {
		t.Fatal(err)
	}
	s.kernel, s.initrd = img.Kernel, img.Initrd
	g := harness.BondGuest(img.Kernel, img.ModesInitrd, s.serial.Path)
	s.dom = g.Name
	if s.def, err = harness.OrchestratedBondXML(s.bin, g, harness.FabricPool, "fabric-a1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range s.pair.Hosts() {
			_, _ = h.Virsh(context.Background(), "destroy", s.dom)
			_, _ = h.Virsh(context.Background(), "undefine", s.dom)
		}
	})
	return s
}

func (s *orchSuite) figure(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	s.figures = append(s.figures, line)
}

// vf runs the binary under test to its end, as an operator does, outside the hosts' namespaces.
func (s *orchSuite) vf(t *testing.T, args ...string) *harness.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, orchTimeout)
	defer cancel()
	c, err := harness.RunCommand(ctx, s.bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// vfStdin runs the binary under test with stdin, and returns its combined output.
func (s *orchSuite) vfStdin(stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, orchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *orchSuite) migrateArgs(from, to *harness.Host, extra ...string) []string {
	return harness.MigrateArgs(s.dom, from, to, extra...)
}

// status is a host's "virt-failover status --json", and the claims of the guest in it.
func (s *orchSuite) status(t *testing.T, h *harness.Host) ([]string, string) {
	t.Helper()
	st, text, err := h.Status(s.ctx, s.bin)
	if err != nil {
		t.Fatal(err)
	}
	return harness.ClaimsOf(st, s.dom), text
}

// expectClaims fails unless the host's ledger holds exactly the guest's claims want.
func (s *orchSuite) expectClaims(t *testing.T, h *harness.Host, want ...string) {
	t.Helper()
	got, text := s.status(t, h)
	if !slices.Equal(got, want) {
		t.Errorf("%s: the guest's claims are %q, want %q:\n%s", h.Name, got, want, text)
	}
}

func claimLine(dom, network, state string) string {
	return fmt.Sprintf("fabric: %s for %s %s (%s)", network, dom, harness.BondPrimary, state)
}

// whole waits from mark on for a heartbeat with both NICs under the bond, the primary active and
// probes answered.
func (s *orchSuite) whole(t *testing.T, mark int, what string) harness.Heartbeat {
	t.Helper()
	hb, err := wait(s.ctx, s.serial, mark, what, harness.Answering(harness.Heartbeat.BondWhole))
	if err != nil {
		t.Fatal(err)
	}
	return hb
}

// backAfterStandby waits from before on for the bond on the virtio NIC alone (the primary out),
// then for the bond whole again with probes answered, and returns that heartbeat. It fails unless
// the bond carried traffic on the virtio NIC meanwhile: probes answered between two heartbeats
// that both show it the active slave (alone, or beside a primary plugged back but without link
// yet).
func (s *orchSuite) backAfterStandby(t *testing.T, before harness.Heartbeat, where string) harness.Heartbeat {
	t.Helper()
	standby, err := wait(s.ctx, s.serial, before.Index+1, "the bond on the virtio NIC alone", harness.Heartbeat.BondOnStandby)
	if err != nil {
		t.Fatal(err)
	}
	back := s.whole(t, standby.Index+1, "the bond whole again on "+where)
	answered := 0
	var prev *harness.Heartbeat
	for i, l := range s.serial.Lines(standby.Index)[:back.Index-standby.Index] {
		hb, ok := harness.ParseHeartbeat(l)
		if !ok {
			continue
		}
		if prev != nil && onVirtio(*prev) && onVirtio(hb) && hb.Recv > prev.Recv {
			answered += hb.Recv - prev.Recv
		}
		hb.Index = standby.Index + i
		prev = &hb
	}
	if answered == 0 {
		t.Errorf("no probe answered while the bond was on the virtio NIC alone (%s)", where)
	}
	return back
}

// onVirtio reports a bond up whose active slave is the virtio NIC.
func onVirtio(h harness.Heartbeat) bool {
	b, ok := h.Bond()
	v, okv := h.BondStandby()
	return ok && okv && b.State == "up" && b.Active == v.Name
}

// settled waits from hb on for a heartbeat 3 s later in the same state (the probes in flight at
// hb have ended): the one to count lost probes at.
func (s *orchSuite) settled(t *testing.T, hb harness.Heartbeat, ok func(harness.Heartbeat) bool) harness.Heartbeat {
	t.Helper()
	after, err := wait(s.ctx, s.serial, hb.Index, "heartbeat 3 s later", func(h harness.Heartbeat) bool {
		return h.Uptime >= hb.Uptime+harness.SettleTime && ok(h)
	})
	if err != nil {
		t.Fatal(err)
	}
	return after
}

func probes(before, after harness.Heartbeat) (lost, done int) {
	return after.Lost - before.Lost, (after.Recv + after.Lost) - (before.Recv + before.Lost)
}

// checkDefinitions fails unless the guest on h has the primary exactly once in its live and its
// persistent definitions, on network, and no parked record in either.
func (s *orchSuite) checkDefinitions(t *testing.T, h *harness.Host, network string) {
	t.Helper()
	for _, inactive := range []bool{false, true} {
		which := "live"
		if inactive {
			which = "persistent"
		}
		parked, def, err := h.Parked(s.ctx, s.dom, inactive)
		if err != nil {
			t.Fatal(err)
		}
		if len(parked) != 0 {
			t.Errorf("%s: the %s definition keeps %d parked record(s) (%s)", h.Name, which, len(parked), parked[0].Alias)
		}
		if n, err := harness.CountDevices(def, harness.BondPrimary); err != nil || n != 1 {
			t.Errorf("%s: the %s definition has %d devices %s (%v)", h.Name, which, n, harness.BondPrimary, err)
		} else if got := primaryNetwork(t, def); got != network {
			t.Errorf("%s: the %s definition has the primary on %q, want %s", h.Name, which, got, network)
		}
	}
}

// primaryNetwork is the network of the primary in a domain definition.
func primaryNetwork(t *testing.T, def []byte) string {
	t.Helper()
	n := policy.NewDomain(mustParseXML(t, string(def))).NICByAlias(harness.BondPrimary)
	if n == nil || n.El.Child("source") == nil {
		return ""
	}
	net, _ := n.El.Child("source").Attr("network")
	return net
}

// checkParked fails unless the guest on h has no primary in its live and persistent definitions
// and a parked record of it with reason in both.
func (s *orchSuite) checkParked(t *testing.T, h *harness.Host, reason string) {
	t.Helper()
	for _, inactive := range []bool{false, true} {
		parked, def, err := h.Parked(s.ctx, s.dom, inactive)
		if err != nil {
			t.Fatal(err)
		}
		if len(parked) != 1 || parked[0].Alias != harness.BondPrimary || parked[0].Reason != reason {
			t.Errorf("%s (inactive %v): parked records %+v, want %s parked for %s", h.Name, inactive, parked, harness.BondPrimary, reason)
		}
		if n, _ := harness.CountDevices(def, harness.BondPrimary); n != 0 {
			t.Errorf("%s (inactive %v): %s is still in the definition", h.Name, inactive, harness.BondPrimary)
		}
	}
}

// expectStatusParked fails unless the host's status lists the primary parked for reason.
func (s *orchSuite) expectStatusParked(t *testing.T, h *harness.Host, reason string) {
	t.Helper()
	st, text, err := h.Status(s.ctx, s.bin)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Parked, func(p claims.ParkedStatus) bool {
		return p.Domain == s.dom && p.Alias == harness.BondPrimary && p.Reason == reason
	}) {
		t.Errorf("%s: status does not list %s parked for the %s:\n%s", h.Name, harness.BondPrimary, reason, text)
	}
}

// eventLog records a host's libvirt events of the guest from the moment it is made.
type eventLog struct {
	h       *harness.Host
	kinds   []virt.EventKind
	ctx     context.Context
	mu      sync.Mutex
	events  []virt.Event
	changed chan struct{}
}

func (s *orchSuite) watch(t *testing.T, h *harness.Host, kinds ...virt.EventKind) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(s.ctx)
	t.Cleanup(cancel)
	l := &eventLog{h: h, kinds: kinds, ctx: ctx, changed: make(chan struct{})}
	if err := l.subscribe(s.conns[h], s.dom); err != nil {
		t.Fatal(err)
	}
	s.logs = append(s.logs, l)
	return l
}

// subscribe records the events of conn, a connection to the log's host (again, after its
// libvirtd was restarted).
func (l *eventLog) subscribe(conn *virt.Conn, dom string) error {
	ch, err := conn.Events(l.ctx, dom, l.kinds...)
	if err != nil {
		return err
	}
	go func() {
		for e := range ch {
			l.mu.Lock()
			l.events = append(l.events, e)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	return nil
}

// reconnect makes the suite's connection to h anew, and the event logs of h subscribe on it: h's
// libvirtd was restarted.
func (s *orchSuite) reconnect(t *testing.T, h *harness.Host) {
	t.Helper()
	s.conns[h].Close()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	c, err := virt.Dial(ctx, h.URI())
	if err != nil {
		t.Fatal(err)
	}
	s.conns[h] = c
	for _, l := range s.logs {
		if l.h == h && l.ctx.Err() == nil {
			if err := l.subscribe(c, s.dom); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// daemonsAfterKill checks that both hosts' libvirtd outlived the orchestrator killed -9 a moment
// ago. A daemon must outlive any client, yet libvirt 9.0's libvirtd has been seen to crash
// (SIGSEGV in its event loop thread) as such a client's connection closed. That is libvirt's
// defect, but the guest and the orchestration must come through it: QEMU does not end with
// libvirtd, the daemon is started again as systemd would (it reconnects to the guest), and the
// step goes on, so that what follows (repair, the replug worker) converges after a daemon restart.
// The figure says so.
func (s *orchSuite) daemonsAfterKill(t *testing.T) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	for _, h := range s.pair.Hosts() {
		ended, err := h.ReviveLibvirtd(s.ctx)
		if err != nil {
			t.Fatalf("%s: libvirtd ended (%s) as the killed orchestrator's connection closed, and did not start again: %v", h.Name, ended, err)
		}
		if ended == "" {
			continue
		}
		s.figure(t, "libvirtd on %s ended (%s) as the killed orchestrator's connection closed (libvirt's defect; kernel: %s); started again, the guest still %s there",
			h.Name, ended, harness.KernelSegfault("libvirtd"), s.domState(h))
		s.reconnect(t, h)
	}
}

func (s *orchSuite) domState(h *harness.Host) string {
	st, err := h.DomState(s.ctx, s.dom)
	switch {
	case err != nil:
		return err.Error()
	case st == "":
		return "absent"
	}
	return st
}

// waitFor waits for an event that satisfies ok and returns it.
func (l *eventLog) waitFor(ctx context.Context, what string, ok func(virt.Event) bool) (virt.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, orchTimeout)
	defer cancel()
	for from := 0; ; {
		l.mu.Lock()
		evs, changed := l.events, l.changed
		l.mu.Unlock()
		for _, e := range evs[from:] {
			if ok(e) {
				return e, nil
			}
		}
		from = len(evs)
		select {
		case <-changed:
		case <-ctx.Done():
			return virt.Event{}, fmt.Errorf("%s: no %s event: %w", l.h.Name, what, ctx.Err())
		}
	}
}

// device counts the device events of a kind for the primary so far.
func (l *eventLog) device(kind virt.EventKind) (n int, first time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Kind == kind && e.Alias == harness.BondPrimary {
			if n == 0 {
				first = e.Received
			}
			n++
		}
	}
	return n, first
}

func resumedByMigration(e virt.Event) bool {
	return e.Kind == virt.EventLifecycle && e.Lifecycle.Type == virt.Resumed && e.Lifecycle.Migrated()
}

func primaryEvent(kind virt.EventKind) func(virt.Event) bool {
	return func(e virt.Event) bool { return e.Kind == kind && e.Alias == harness.BondPrimary }
}

// expectDeviceEvents waits for the primary's device events of kind on l and fails unless there are
// exactly want of them, counted after a quiet second.
func expectDeviceEvents(t *testing.T, ctx context.Context, l *eventLog, kind virt.EventKind, want int) time.Time {
	t.Helper()
	if want > 0 {
		if _, err := l.waitFor(ctx, kind.String(), primaryEvent(kind)); err != nil {
			t.Error(err)
		}
	}
	time.Sleep(time.Second)
	n, first := l.device(kind)
	if n != want {
		t.Errorf("%s: %d %s events for %s, want %d", l.h.Name, n, kind, harness.BondPrimary, want)
	}
	return first
}

// report is migrate --json's report, as far as the test reads it.
type report struct {
	Outcome string `json:"outcome"`
	RunsOn  string `json:"runs_on"`
	State   string `json:"state"`
	Phases  []struct {
		Phase string `json:"phase"`
		MS    int64  `json:"ms"`
	} `json:"phases"`
	Parked  []string `json:"parked"`
	Plugged []string `json:"plugged"`
	Checks  []struct {
		Check, Status, Detail string
	} `json:"preflight"`
}

func (r report) ms(phase string) (int64, bool) {
	for _, p := range r.Phases {
		if p.Phase == phase {
			return p.MS, true
		}
	}
	return 0, false
}

func (r report) table() string {
	var parts []string
	for _, p := range r.Phases {
		parts = append(parts, fmt.Sprintf("%s %.2fs", p.Phase, float64(p.MS)/1000))
	}
	return strings.Join(parts, ", ")
}

// lineIndex is the index of the first output line matching re, -1 if none.
func lineIndex(lines []harness.OutputLine, re string) int {
	r := regexp.MustCompile(re)
	for i, l := range lines {
		if r.MatchString(l.Text) {
			return i
		}
	}
	return -1
}

var (
	unplugLine   = regexp.MustCompile(`^\[ *[0-9.]+s\] unplug ` + harness.BondPrimary + ` \(bond\)`)
	detachedLine = regexp.MustCompile(`^\[ *[0-9.]+s\] detached ` + harness.BondPrimary + ` \(bond\)`)
	migratingRE  = regexp.MustCompile(`^\[ *[0-9.]+s\] migrating: `)
)

// checkPlanFirst fails unless the command printed its plan (the primary to park) before its
// first action (the unplug).
func checkPlanFirst(t *testing.T, c *harness.Command) {
	t.Helper()
	lines := c.Lines()
	plan := lineIndex(lines, `^  park +`+harness.BondPrimary+` +bond, standby `+harness.BondStandby+`, pool fabric$`)
	act := lineIndex(lines, unplugLine.String())
	if plan < 0 || act < 0 || plan > act {
		t.Errorf("the plan (line %d) does not come before the first action (line %d):\n%s", plan, act, c.Output())
	}
}

func (s *orchSuite) testBoot(t *testing.T) {
	a := s.pair.A
	start := time.Now()
	what, _ := harness.BondGuest("", "", "").Ready()
	hb, err := a.DefineAndStart(s.ctx, s.dom, s.def, s.serial, what, harness.Heartbeat.BondWhole)
	if err != nil {
		t.Fatal(err)
	}
	s.on = a
	t.Logf("%s booted on a in %.1fs: %s", s.dom, time.Since(start).Seconds(), hb.Summary())
	s.whole(t, hb.Index, "the bond whole with probes answered")
	s.checkDefinitions(t, a, "fabric-a1")
	s.expectClaims(t, a, claimLine(s.dom, "fabric-a1", "confirmed"))
	parked, def, _ := a.Parked(s.ctx, s.dom, true)
	if len(parked) != 0 || !bytes.Contains(def, []byte(`kind="bond"`)) || !bytes.Contains(def, []byte(`emulated="yes"`)) || !bytes.Contains(def, []byte(`pool="fabric"`)) {
		t.Errorf("the persistent definition lacks the bond record (kind bond, emulated, pool fabric):\n%s", def)
	}
}

func (s *orchSuite) testMigrate(t *testing.T) {
	for _, to := range []*harness.Host{s.pair.B, s.pair.A} {
		net := map[string]string{"a": "fabric-a1", "b": "fabric-b1"}[to.Name]
		if !t.Run(s.on.Name+"-to-"+to.Name, func(t *testing.T) { s.orchestratedMigration(t, to, net) }) {
			t.FailNow()
		}
	}
}

// orchestratedMigration runs virt-failover migrate --json of the guest to the other host and
// checks every side of it.
func (s *orchSuite) orchestratedMigration(t *testing.T, to *harness.Host, network string) {
	from := s.on
	dir := from.Name + "->" + to.Name
	before := s.whole(t, s.serial.Len(), "the bond whole with probes answered before migrating")
	fromSkip, toSkip := len(records(t, from)), len(records(t, to))
	removed := s.watch(t, from, virt.EventDeviceRemoved)
	arrived := s.watch(t, to, virt.EventLifecycle, virt.EventDeviceAdded)

	c := s.vf(t, s.migrateArgs(from, to, "--json")...)
	if code, _ := c.Wait(s.ctx); code != 0 {
		t.Fatalf("%s: %s exited %d:\n%s", dir, c, code, c.Output())
	}
	s.on = to
	took := time.Since(c.Started)
	var rep report
	if err := json.Unmarshal([]byte(c.Stdout()), &rep); err != nil {
		t.Fatalf("%s: stdout is not the JSON report: %v\n%s", dir, err, c.Stdout())
	}
	t.Logf("%s: stderr (plan and progress):\n%s", dir, c.Stderr())
	checkPlanFirst(t, c)
	for _, re := range []*regexp.Regexp{detachedLine, migratingRE} {
		if lineIndex(c.Lines(), re.String()) < 0 {
			t.Errorf("%s: no progress line matching %q", dir, re)
		}
	}
	if rep.Outcome != "migrated" || rep.RunsOn != to.URI() || !slices.Equal(rep.Parked, []string{harness.BondPrimary}) ||
		!slices.Equal(rep.Plugged, []string{harness.BondPrimary}) {
		t.Errorf("%s: report %+v", dir, rep)
	}
	for _, p := range []string{"preflight", "unplug", "migration", "downtime", "replug", "total"} {
		if _, ok := rep.ms(p); !ok {
			t.Errorf("%s: the report has no %s phase: %s", dir, p, rep.table())
		}
	}

	// The guest: on its standby while the primary was out, then whole again on the destination.
	back := s.backAfterStandby(t, before, to.Name)
	after := s.settled(t, back, harness.Heartbeat.BondWhole)
	lost, done := probes(before, after)

	// libvirt's side: one removal on the source, the guest resumed on the destination, one
	// addition there.
	expectDeviceEvents(t, s.ctx, removed, virt.EventDeviceRemoved, 1)
	resumed, err := arrived.waitFor(s.ctx, "resumed (migrated)", resumedByMigration)
	if err != nil {
		t.Fatal(err)
	}
	added := expectDeviceEvents(t, s.ctx, arrived, virt.EventDeviceAdded, 1)

	// The destination's hook claimed the network for the parked primary at migrate begin and wrote
	// it into the record, naming itself; prepare confirmed the claim.
	toRecs := records(t, to)
	mig, _ := call(toRecs, toSkip, s.dom, "migrate", "begin")
	if mig.Decision != hooks.Rewrite || !slices.Equal(mig.Claims, []string{claimLine(s.dom, network, "pending")}) ||
		!slices.ContainsFunc(mig.Changes, func(c string) bool { return strings.Contains(c, "claimed for its re-plug on host vf-"+to.Name) }) {
		t.Errorf("%s: %s's migrate begin record %+v\nwant a rewrite claiming %s for the parked primary, the record naming host vf-%s", dir, to.Name, mig, network, to.Name)
	}
	if prep, _ := call(toRecs, toSkip, s.dom, "prepare", "begin"); !slices.Equal(prep.Claims, []string{claimLine(s.dom, network, "confirmed")}) {
		t.Errorf("%s: %s's prepare begin record %+v, want %s confirmed", dir, to.Name, prep, network)
	}
	who := "the orchestrator"
	if lineIndex(c.Lines(), `\] attached `+harness.BondPrimary) < 0 {
		who = "the replug worker"
	}
	s.checkDefinitions(t, to, network)
	s.waitRelease(t, from, fromSkip)
	s.expectClaims(t, to, claimLine(s.dom, network, "confirmed"))
	s.expectClaims(t, from)

	s.figure(t, "migrate %s: %.1fs (%s); primary attached %.1fs and the bond whole %.1fs after the guest resumed on %s (by %s); %d of %d probes lost",
		dir, took.Seconds(), rep.table(), added.Sub(resumed.Received).Seconds(), s.serial.SeenAt(back.Index).Sub(resumed.Received).Seconds(),
		to.Name, who, lost, done)
}

// waitRelease waits for the source's release end after skip (its claims are freed then).
func (s *orchSuite) waitRelease(t *testing.T, h *harness.Host, skip int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, ok := call(records(t, h), skip, s.dom, "release", "end"); ok {
			return
		}
	}
	t.Errorf("%s: no release end in its hook log", h.Name)
}

// holderDomain is a guest the hook is run for by hand, as for an incoming migration of it, so
// that it claims B's only network of the pool.
const holderDomain = "holder"

func (s *orchSuite) testRollback(t *testing.T, how string) {
	a, b := s.pair.A, s.pair.B
	if s.on != a {
		t.Fatalf("the guest runs on %s, want a", s.on.Name)
	}
	switch how {
	case "pool exhausted":
		out, err := s.vfStdin(holderXML("fabric-b1"), append(append([]string{"hook"}, b.HostArgs()...), "qemu", holderDomain, "migrate", "begin", "-")...)
		if err != nil {
			t.Fatalf("claiming fabric-b1 for %s: %v\n%s", holderDomain, err, out)
		}
		t.Cleanup(func() {
			if out, err := s.vfStdin(nil, append([]string{"claims", "release", holderDomain}, b.HostArgs()...)...); err != nil {
				t.Errorf("claims release %s: %v\n%s", holderDomain, err, out)
			}
		})
	default:
		if err := b.WritePolicy(b.OrchestrationPolicy(`default_pool = "fabric"`, "accept_incoming = false")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := b.WritePolicy(b.OrchestrationPolicy(`default_pool = "fabric"`)); err != nil {
				t.Error(err)
			}
		})
	}
	before := s.whole(t, s.serial.Len(), "the bond whole with probes answered before migrating")
	skip := len(records(t, b))
	devices := s.watch(t, a, virt.EventDeviceRemoved, virt.EventDeviceAdded)

	c := s.vf(t, s.migrateArgs(a, b)...)
	code, _ := c.Wait(s.ctx)
	took := time.Since(c.Started)
	ended := s.serial.Len()
	t.Logf("%s: exit %d after %.1fs:\n%s", c, code, took.Seconds(), c.Output())
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	checkPlanFirst(t, c)
	errLines := strings.Split(strings.TrimSpace(c.Stderr()), "\n")
	if want := "virt-failover: migrate " + s.dom + ": rolled-back: runs on " + a.URI() + " with every device"; errLines[0] != want {
		t.Errorf("its error line is %q, want %q", errLines[0], want)
	}
	refusal := map[string]string{
		"pool exhausted":          "no free network in pool 'fabric' on this host",
		"accept_incoming = false": "does not accept incoming migrations",
	}[how]
	if !strings.Contains(c.Stderr(), refusal) {
		t.Errorf("its error does not carry B's refusal %q", refusal)
	}
	rollback := lineIndex(c.Lines(), `^rollback +[0-9]`)
	if rollback < 0 {
		t.Errorf("no rollback phase in its table:\n%s", c.Stdout())
	}
	if rec, _ := call(records(t, b), skip, s.dom, "migrate", "begin"); rec.Decision != hooks.Refuse || len(rec.Claims) != 0 {
		t.Errorf("b: migrate begin record %+v, want a refusal without claims", rec)
	}

	// The primary went and came back on A; the guest never left.
	expectDeviceEvents(t, s.ctx, devices, virt.EventDeviceRemoved, 1)
	expectDeviceEvents(t, s.ctx, devices, virt.EventDeviceAdded, 1)
	if st, err := a.DomState(s.ctx, s.dom); err != nil || st != "running" {
		t.Errorf("a: the guest is %q (%v), want running", st, err)
	}
	if st, _ := b.DomState(s.ctx, s.dom); st != "" {
		t.Errorf("b has the guest (%s)", st)
	}
	s.checkDefinitions(t, a, "fabric-a1")
	// The primary was out for a fraction of a second: a heartbeat may never have shown it gone.
	back := s.whole(t, ended, "the bond whole again on a")
	after := s.settled(t, back, harness.Heartbeat.BondWhole)
	lost, done := probes(before, after)
	s.expectClaims(t, a, claimLine(s.dom, "fabric-a1", "confirmed"))
	s.expectClaims(t, b)
	s.figure(t, "rollback (%s): exit %d after %.1fs; the bond whole again %.1fs after the command began; %d of %d probes lost",
		how, code, took.Seconds(), s.serial.SeenAt(back.Index).Sub(c.Started).Seconds(), lost, done)
}

func (s *orchSuite) testSwitch(t *testing.T) {
	a, b := s.pair.A, s.pair.B
	if s.on != a {
		t.Fatalf("the guest runs on %s, want a", s.on.Name)
	}
	before := s.whole(t, s.serial.Len(), "the bond whole with probes answered")

	// To emulated on A: the primary parked for the switch.
	c := s.vf(t, append([]string{"switch", s.dom, "--to", "emulated", "--connect", a.URI()}, a.HostArgs()...)...)
	if code, _ := c.Wait(s.ctx); code != 0 || !strings.Contains(c.Stdout(), "unplugged "+harness.BondPrimary) ||
		!strings.Contains(c.Stdout(), "parked: "+harness.BondPrimary+" (switch)") {
		t.Fatalf("%s: exit %d:\n%s", c, code, c.Output())
	}
	toEmulated := time.Since(c.Started)
	t.Logf("%s:\n%s", c, c.Output())
	checkPlanFirst(t, c)
	s.checkParked(t, a, policy.ParkedForSwitch)
	onStandby, err := wait(s.ctx, s.serial, before.Index+1, "the bond on the virtio NIC alone, probes answered", harness.Answering(harness.Heartbeat.BondOnStandby))
	if err != nil {
		t.Fatal(err)
	}
	s.expectStatusParked(t, a, policy.ParkedForSwitch)

	// A plain virsh migrate to B: nothing plugs the primary back there.
	skipA, skipB := len(records(t, a)), len(records(t, b))
	mstart := time.Now()
	if out, err := a.MigrateWith(s.ctx, s.dom, b, "--persistent", "--undefinesource"); err != nil {
		t.Fatalf("virsh migrate: %v\n%s", err, out)
	}
	s.on = b
	migrated := time.Since(mstart)
	mark := s.serial.Len()
	first, err := wait(s.ctx, s.serial, mark, "a heartbeat on b", nil)
	if err != nil {
		t.Fatal(err)
	}
	later, err := wait(s.ctx, s.serial, first.Index, "a heartbeat 5 s later on b", func(h harness.Heartbeat) bool { return h.Uptime >= first.Uptime+5 })
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range s.serial.Lines(mark)[:later.Index-mark+1] {
		if hb, ok := harness.ParseHeartbeat(l); ok && !hb.BondOnStandby() {
			t.Errorf("on b, a heartbeat not on the standby alone: %s", l)
		}
	}
	s.checkParked(t, b, policy.ParkedForSwitch)
	recs := records(t, b)
	if st, ok := call(recs, skipB, s.dom, "started", "begin"); !ok || st.WorkerPID != 0 {
		t.Errorf("b: started begin record %+v, want one that starts no worker", st)
	}
	for _, r := range recs[skipB:] {
		if r.Domain == s.dom && r.Op == "replug" {
			t.Errorf("b: a replug worker ran for a switched device: %+v", r)
		}
	}
	s.waitRelease(t, a, skipA)
	s.expectClaims(t, a)
	s.expectClaims(t, b)
	lostMig, doneMig := probes(onStandby, later)

	// To assigned on B: claimed from B's pool and plugged.
	c = s.vf(t, append([]string{"switch", s.dom, "--to", "assigned", "--connect", b.URI()}, b.HostArgs()...)...)
	if code, _ := c.Wait(s.ctx); code != 0 || !strings.Contains(c.Stdout(), "plugged   "+harness.BondPrimary) ||
		!strings.Contains(c.Stdout(), "claimed "+claimLine(s.dom, "fabric-b1", "confirmed")) {
		t.Fatalf("%s: exit %d:\n%s", c, code, c.Output())
	}
	toAssigned := time.Since(c.Started)
	t.Logf("%s:\n%s", c, c.Output())
	s.checkDefinitions(t, b, "fabric-b1")
	s.expectClaims(t, b, claimLine(s.dom, "fabric-b1", "confirmed"))
	back := s.whole(t, later.Index+1, "the bond whole again on b")
	after := s.settled(t, back, harness.Heartbeat.BondWhole)
	lost, done := probes(later, after)
	lostOut, doneOut := probes(before, onStandby)
	s.figure(t, "switch --to emulated on a: %.1fs, %d of %d probes lost; plain virsh migrate a->b on the standby %.1fs, %d of %d lost, nothing plugged back on b; switch --to assigned on b: %.1fs, the bond whole %.1fs after it began, %d of %d lost",
		toEmulated.Seconds(), lostOut, doneOut, migrated.Seconds(), lostMig, doneMig, toAssigned.Seconds(),
		s.serial.SeenAt(back.Index).Sub(c.Started).Seconds(), lost, done)
}

func (s *orchSuite) testKilledAfterMigration(t *testing.T) {
	from, to := s.pair.B, s.pair.A // A's replug worker does the work
	if s.on != from {
		t.Fatalf("the guest runs on %s, want %s", s.on.Name, from.Name)
	}
	before := s.whole(t, s.serial.Len(), "the bond whole with probes answered before migrating")
	skip, skipFrom := len(records(t, to)), len(records(t, from))
	daemonLog := harness.FileSize(to.DaemonLogPath())
	arrived := s.watch(t, to, virt.EventLifecycle, virt.EventDeviceAdded)

	ctx, cancel := context.WithTimeout(s.ctx, orchTimeout)
	defer cancel()
	c, err := harness.StartCommand(ctx, s.bin, s.migrateArgs(from, to)...)
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := arrived.waitFor(ctx, "resumed (migrated)", resumedByMigration)
	if err != nil {
		_ = c.Kill()
		t.Fatalf("%v\n%s", err, c.Output())
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	s.on = to
	s.daemonsAfterKill(t)
	t.Logf("%s killed -9 %.1fs after it started, %.0f ms after the guest resumed on %s:\n%s", c, killed.Sub(c.Started).Seconds(),
		float64(killed.Sub(resumed.Received).Microseconds())/1000, to.Name, c.Output())
	if lineIndex(c.Lines(), `\] attached `+harness.BondPrimary) >= 0 || lineIndex(c.Lines(), `^replug `) >= 0 {
		t.Fatalf("the orchestrator got to its re-plug before it was killed: the scenario needs it killed first")
	}

	// The replug worker, started by the destination's hook at started, plugs the primary back.
	added := expectDeviceEvents(t, s.ctx, arrived, virt.EventDeviceAdded, 1)
	back := s.backAfterStandby(t, before, to.Name)
	after := s.settled(t, back, harness.Heartbeat.BondWhole)
	lost, done := probes(before, after)
	s.checkDefinitions(t, to, "fabric-a1")

	worker, started := s.workerRecords(t, to, skip)
	waited := s.startedHookWait(t, to, daemonLog, worker)
	workerMS := worker[len(worker)-1].DurationMS
	s.waitRelease(t, from, skipFrom)
	s.expectClaims(t, to, claimLine(s.dom, "fabric-a1", "confirmed"))
	s.expectClaims(t, from)
	s.figure(t, "migrate %s->%s killed -9 %.0f ms after the guest resumed on %s: %s's replug worker (started in a %.1f ms hook, libvirtd waited %.1f ms) attached the primary %.1fs after the resume, the bond whole %.1fs after; worker done in %.1fs; %d of %d probes lost",
		from.Name, to.Name, float64(killed.Sub(resumed.Received).Microseconds())/1000, to.Name, to.Name, started.DurationMS,
		float64(waited.Microseconds())/1000, added.Sub(resumed.Received).Seconds(), s.serial.SeenAt(back.Index).Sub(resumed.Received).Seconds(),
		workerMS/1000, lost, done)
}

// workerRecords waits for the replug worker the host's hook started after skip (its started
// begin record names it) to log that it is done, and fails unless it attached the primary, once.
// It returns the worker's records and the hook's started record.
func (s *orchSuite) workerRecords(t *testing.T, h *harness.Host, skip int) ([]hooks.Record, hooks.Record) {
	t.Helper()
	var started hooks.Record
	var worker []hooks.Record
	for deadline := time.Now().Add(orchTimeout); ; time.Sleep(200 * time.Millisecond) {
		recs := records(t, h)
		started, _ = call(recs, skip, s.dom, "started", "begin")
		worker = worker[:0]
		for _, r := range recs[skip:] {
			if r.Domain == s.dom && r.Op == "replug" {
				worker = append(worker, r)
			}
		}
		if n := len(worker); n > 0 && strings.HasPrefix(worker[n-1].Message, "done: ") || time.Now().After(deadline) {
			break
		}
	}
	if started.WorkerPID == 0 {
		t.Fatalf("%s: started begin record %+v, want one that started the replug worker", h.Name, started)
	}
	if started.DurationMS > 1000 {
		t.Errorf("%s: the started hook took %.1f ms starting the worker", h.Name, started.DurationMS)
	}
	var lines []string
	for _, r := range worker {
		lines = append(lines, fmt.Sprintf("%s %s %.0f ms: %s", r.Time, r.Decision, r.DurationMS, r.Message))
		if r.PID != started.WorkerPID {
			t.Errorf("%s: a replug record of pid %d, the hook started pid %d", h.Name, r.PID, started.WorkerPID)
		}
	}
	t.Logf("%s's replug worker (pid %d) logged:\n  %s", h.Name, started.WorkerPID, strings.Join(lines, "\n  "))
	if len(worker) == 0 {
		t.Fatalf("%s: no record of the replug worker", h.Name)
	}
	if last := worker[len(worker)-1]; last.Decision != hooks.Pass || !strings.HasPrefix(last.Message, "done: plugged 1,") ||
		!slices.ContainsFunc(worker, func(r hooks.Record) bool { return strings.HasPrefix(r.Message, "attached "+harness.BondPrimary) }) {
		t.Errorf("%s: the worker's records do not say it attached %s and was done", h.Name, harness.BondPrimary)
	}
	return worker, started
}

// startedHookWait is how long libvirtd waited for the host's started hook of the guest, from its
// log after offset; it fails unless the hook returned at once, long before the worker it started
// was done: libvirt never waits for the worker.
func (s *orchSuite) startedHookWait(t *testing.T, h *harness.Host, offset int64, worker []hooks.Record) time.Duration {
	t.Helper()
	runs, err := h.HookRuns(offset)
	if err != nil {
		t.Fatal(err)
	}
	var waited time.Duration
	found := false
	for _, r := range runs {
		if r.Object == s.dom && r.Call() == "started begin" {
			waited, found = r.Duration(), true
			if !r.OK() {
				t.Errorf("%s: libvirtd recorded the started hook as failed: %s", h.Name, r.Err)
			}
		}
	}
	workerMS := worker[len(worker)-1].DurationMS
	if !found || waited > 2*time.Second || waited.Seconds()*1000 >= workerMS {
		t.Errorf("%s: libvirtd waited %v for the started hook (found %v), the worker took %.0f ms: it must not wait for the worker",
			h.Name, waited, found, workerMS)
	}
	return waited
}

// killAfterDetach runs migrate a->b and kills it -9 after it detached the primary, before the
// migration starts: the guest stays on a, on its standby, the primary parked for the migration.
// It returns the command and when it was killed; devices has the removal.
func (s *orchSuite) killAfterDetach(t *testing.T, devices *eventLog) (c *harness.Command, killed time.Time, before, standby harness.Heartbeat) {
	t.Helper()
	a, b := s.pair.A, s.pair.B
	if s.on != a {
		t.Fatalf("the guest runs on %s, want a", s.on.Name)
	}
	before = s.whole(t, s.serial.Len(), "the bond whole with probes answered before migrating")
	ctx, cancel := context.WithTimeout(s.ctx, orchTimeout)
	defer cancel()
	c, err := harness.StartCommand(ctx, s.bin, s.migrateArgs(a, b)...)
	if err != nil {
		t.Fatal(err)
	}
	// Past its preflight the command talks to B again only to start the migration: B's libvirtd
	// frozen from the unplug on holds it there, so the kill lands after the detach and before the
	// migration, whatever the machine's load.
	if _, _, err := c.WaitLine(ctx, unplugLine); err != nil {
		t.Fatal(err)
	}
	if err := b.FreezeLibvirtd(); err != nil {
		t.Fatal(err)
	}
	thaw := sync.OnceFunc(func() {
		if err := b.ThawLibvirtd(); err != nil {
			t.Error(err)
		}
	})
	defer thaw()
	_, _, err = c.WaitLine(ctx, detachedLine)
	if kerr := c.Kill(); kerr != nil {
		t.Fatal(kerr)
	}
	killed = time.Now()
	thaw()
	if err != nil {
		t.Fatal(err)
	}
	s.daemonsAfterKill(t)
	t.Logf("%s killed -9 after the detach:\n%s", c, c.Output())
	if lineIndex(c.Lines(), migratingRE.String()) >= 0 {
		t.Fatal("the migration had started")
	}
	if st, err := a.DomState(s.ctx, s.dom); err != nil || st != "running" {
		t.Fatalf("a: the guest is %q (%v), want running", st, err)
	}
	if st, _ := b.DomState(s.ctx, s.dom); st != "" {
		t.Fatalf("b has the guest (%s)", st)
	}
	s.checkParked(t, a, policy.ParkedForMigration)
	s.expectStatusParked(t, a, policy.ParkedForMigration)
	standby, err = wait(s.ctx, s.serial, before.Index+1, "the bond on the virtio NIC alone, probes answered", harness.Answering(harness.Heartbeat.BondOnStandby))
	if err != nil {
		t.Fatal(err)
	}
	expectDeviceEvents(t, s.ctx, devices, virt.EventDeviceRemoved, 1)
	return c, killed, before, standby
}

func (s *orchSuite) testKilledAfterDetach(t *testing.T) {
	a, b := s.pair.A, s.pair.B
	devices := s.watch(t, a, virt.EventDeviceRemoved, virt.EventDeviceAdded)
	c, killed, before, standby := s.killAfterDetach(t, devices)

	// A's daemon restarts before the repair, as after its crash or an upgrade: the record in the
	// guest's definition is all repair needs, and libvirt keeps it across the restart.
	restart := time.Now()
	if err := a.RestartDaemon(s.ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Since(restart)
	s.reconnect(t, a)
	s.checkParked(t, a, policy.ParkedForMigration)

	r := s.vf(t, append([]string{"repair", s.dom, "--connect", a.URI()}, a.HostArgs()...)...)
	if code, _ := r.Wait(s.ctx); code != 0 || !strings.Contains(r.Stdout(), "plugged   "+harness.BondPrimary) {
		t.Fatalf("%s: exit %d:\n%s", r, code, r.Output())
	}
	repaired := time.Since(r.Started)
	t.Logf("%s:\n%s", r, r.Output())
	expectDeviceEvents(t, s.ctx, devices, virt.EventDeviceAdded, 1)
	s.checkDefinitions(t, a, "fabric-a1")
	back := s.whole(t, standby.Index+1, "the bond whole again on a")
	after := s.settled(t, back, harness.Heartbeat.BondWhole)
	lost, done := probes(before, after)

	// A second repair finds nothing to do and attaches nothing.
	again := s.vf(t, append([]string{"repair", s.dom, "--connect", a.URI()}, a.HostArgs()...)...)
	if code, _ := again.Wait(s.ctx); code != 0 || strings.Contains(again.Stdout(), "plugged") {
		t.Errorf("%s again: exit %d:\n%s", again, code, again.Output())
	}
	expectDeviceEvents(t, s.ctx, devices, virt.EventDeviceAdded, 1)
	s.expectClaims(t, a, claimLine(s.dom, "fabric-a1", "confirmed"))
	s.expectClaims(t, b)
	s.figure(t, "migrate a->b killed -9 after the detach (%.1fs in): the guest stayed on a on its standby, parked for the migration; a's libvirtd restarted (%.1fs); repair %.1fs, the bond whole %.1fs after it began; a second repair attached nothing; %d of %d probes lost",
		killed.Sub(c.Started).Seconds(), restarted.Seconds(), repaired.Seconds(), s.serial.SeenAt(back.Index).Sub(r.Started).Seconds(), lost, done)
}

// testColdStartWorkerReplugs kills migrate after the detach again, then stops the guest and
// starts it from its persistent definition, which keeps the primary parked for the migration: the
// hook's started call starts the replug worker and returns, and the worker plugs the primary into
// the fresh boot. virsh start never waits for it.
func (s *orchSuite) testColdStartWorkerReplugs(t *testing.T) {
	a, b := s.pair.A, s.pair.B
	devices := s.watch(t, a, virt.EventDeviceRemoved, virt.EventDeviceAdded)
	s.killAfterDetach(t, devices)
	if _, err := a.Virsh(s.ctx, "destroy", s.dom); err != nil {
		t.Fatal(err)
	}
	s.checkParkedConfig(t, a)
	skip := len(records(t, a))
	daemonLog := harness.FileSize(a.DaemonLogPath())
	mark := s.serial.Len()
	start := time.Now()
	if _, err := a.Virsh(s.ctx, "start", s.dom); err != nil {
		t.Fatal(err)
	}
	started := time.Since(start)
	worker, startedRec := s.workerRecords(t, a, skip)
	waited := s.startedHookWait(t, a, daemonLog, worker)
	expectDeviceEvents(t, s.ctx, devices, virt.EventDeviceAdded, 1)
	_, added := devices.device(virt.EventDeviceAdded)
	hb := s.whole(t, mark, "the bond whole after the cold start")
	s.checkDefinitions(t, a, "fabric-a1")
	s.expectClaims(t, a, claimLine(s.dom, "fabric-a1", "confirmed"))
	s.expectClaims(t, b)
	s.figure(t, "virsh start of the guest parked for a migration: %.1fs (its started hook %.1f ms, libvirtd waited %.1f ms); the worker attached the primary %.1fs after the start began, the bond whole %.1fs after it",
		started.Seconds(), startedRec.DurationMS, float64(waited.Microseconds())/1000, added.Sub(start).Seconds(), s.serial.SeenAt(hb.Index).Sub(start).Seconds())
}

// checkParkedConfig fails unless the persistent definition lacks the primary and keeps its record,
// parked for the migration.
func (s *orchSuite) checkParkedConfig(t *testing.T, h *harness.Host) {
	t.Helper()
	parked, def, err := h.Parked(s.ctx, s.dom, true)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := harness.CountDevices(def, harness.BondPrimary); n != 0 || len(parked) != 1 || parked[0].Reason != policy.ParkedForMigration {
		t.Fatalf("%s: the persistent definition has %d %s and parked records %+v; want it parked for the migration", h.Name, n, harness.BondPrimary, parked)
	}
}

// testKilledDuringMigration kills migrate -9 at its first progress line, the migration under way;
// with abort, the job is also aborted on the source (as an operator's virsh domjobabort would), so
// that libvirt's migration fails. Right after the kill, repair on the source waits for the job to
// end; then repair where the guest runs converges it.
func (s *orchSuite) testKilledDuringMigration(t *testing.T, abort bool) {
	a, b := s.pair.A, s.pair.B
	if s.on != a {
		t.Fatalf("the guest runs on %s, want a", s.on.Name)
	}
	before := s.whole(t, s.serial.Len(), "the bond whole with probes answered before migrating")
	skip := map[*harness.Host]int{a: len(records(t, a)), b: len(records(t, b))}
	events := map[*harness.Host]*eventLog{
		a: s.watch(t, a, virt.EventDeviceRemoved, virt.EventDeviceAdded),
		b: s.watch(t, b, virt.EventDeviceRemoved, virt.EventDeviceAdded),
	}
	ctx, cancel := context.WithTimeout(s.ctx, orchTimeout)
	defer cancel()
	c, err := harness.StartCommand(ctx, s.bin, s.migrateArgs(a, b)...)
	if err != nil {
		t.Fatal(err)
	}
	_, line, err := c.WaitLine(ctx, migratingRE)
	if kerr := c.Kill(); kerr != nil {
		t.Fatal(kerr)
	}
	killed := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s killed -9 at %q:\n%s", c, line.Text, c.Output())
	if abort {
		if _, err := a.Virsh(s.ctx, "domjobabort", s.dom); err != nil {
			t.Logf("domjobabort: %v (the migration had got past its QEMU part)", err)
		}
	}
	s.daemonsAfterKill(t)

	// libvirt's migration goes on without the command (peer to peer, the source's daemon drives
	// it), or fails. repair on the source at once waits for the job to end, then plugs back there
	// or says the guest left.
	first := s.vf(t, append([]string{"repair", s.dom, "--connect", a.URI()}, a.HostArgs()...)...)
	firstCode, _ := first.Wait(s.ctx)
	t.Logf("%s: exit %d:\n%s", first, firstCode, first.Output())
	on, err := s.settledHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.on = on
	outcome := "completed"
	if on == a {
		outcome = "failed"
	}
	t.Logf("the migration %s: the guest runs on %s", outcome, on.Name)
	switch {
	case on == a && firstCode != 0:
		t.Errorf("repair on a, where the guest stayed, exited %d", firstCode)
	case on == b && (firstCode != 1 || !strings.Contains(first.Stderr(), s.dom+" is not on "+a.URI())):
		t.Errorf("repair on a, which the guest left, exited %d; want 1 and the line saying it is not there", firstCode)
	}

	r := s.vf(t, append([]string{"repair", s.dom, "--connect", on.URI()}, on.HostArgs()...)...)
	if code, _ := r.Wait(s.ctx); code != 0 {
		t.Fatalf("%s: exit %d:\n%s", r, code, r.Output())
	}
	t.Logf("%s:\n%s", r, r.Output())
	net := map[*harness.Host]string{a: "fabric-a1", b: "fabric-b1"}[on]
	s.checkDefinitions(t, on, net)
	expectDeviceEvents(t, s.ctx, events[a], virt.EventDeviceRemoved, 1)
	expectDeviceEvents(t, s.ctx, events[on], virt.EventDeviceAdded, 1)
	expectDeviceEvents(t, s.ctx, events[s.pair.Other(on)], virt.EventDeviceAdded, 0)
	who := "the replug worker"
	for _, out := range []string{first.Stdout(), r.Stdout()} {
		if strings.Contains(out, "plugged   "+harness.BondPrimary) {
			who = "repair"
		}
	}
	back := s.backAfterStandby(t, before, on.Name)
	after := s.settled(t, back, harness.Heartbeat.BondWhole)
	lost, done := probes(before, after)
	s.waitRelease(t, s.pair.Other(on), skip[s.pair.Other(on)])
	s.expectClaims(t, on, claimLine(s.dom, net, "confirmed"))
	s.expectClaims(t, s.pair.Other(on))
	how := "killed -9 at its first progress line"
	if abort {
		how += " and the job aborted"
	}
	s.figure(t, "migrate a->b %s (%.1fs in): the migration %s, the guest on %s; repair on a at once: exit %d after %.1fs; the primary plugged back once (by %s); the bond whole %.1fs after the kill; %d of %d probes lost",
		how, killed.Sub(c.Started).Seconds(), outcome, on.Name, firstCode, first.Ended().Sub(first.Started).Seconds(), who,
		s.serial.SeenAt(back.Index).Sub(killed).Seconds(), lost, done)
}

// testBackToA migrates the guest back to A if it is on B.
func (s *orchSuite) testBackToA(t *testing.T) {
	if s.on == s.pair.A {
		t.Skip("the guest is on a")
	}
	s.orchestratedMigration(t, s.pair.A, "fabric-a1")
}

// settledHost waits until the guest runs on exactly one host with no job, and returns it.
func (s *orchSuite) settledHost(ctx context.Context) (*harness.Host, error) {
	for {
		var running []*harness.Host
		busy := false
		for _, h := range s.pair.Hosts() {
			info, err := s.conns[h].Domain(ctx, s.dom)
			if errors.Is(err, virt.ErrNoDomain) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if info.State == virt.StateRunning {
				running = append(running, h)
			} else {
				busy = true
			}
			if st, err := s.conns[h].JobStats(ctx, s.dom); err == nil && st.Type != virt.JobNone {
				busy = true
			}
		}
		if len(running) == 1 && !busy {
			return running[0], nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the guest does not settle on one host: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
