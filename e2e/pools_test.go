package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/guest"
	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/hooks"
	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// poolSuite runs the pool scenarios: the guest's emulated primary draws a network from pool
// 'fabric', whose networks differ per host (A: fabric-a1, fabric-a2; B: fabric-b1), all on the
// guests' bridge.
type poolSuite struct {
	t      *testing.T
	ctx    context.Context
	run    string
	bin    string
	pair   *harness.Pair
	serial *harness.Serial
	guest  harness.Guest
	xml    []byte
	on     *harness.Host
	// lockTimeout, if set, is the hosts' [state] lock_timeout (policy's syntax, like "2s").
	lockTimeout map[*harness.Host]string
}

var poolNetworks = map[string][]string{"a": {"fabric-a1", "fabric-a2"}, "b": {"fabric-b1"}}

func TestPools(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	s := setupPools(t, "pools", "vfo-pool")
	runSteps(t, []step{
		{"boot-claims-the-primary-network", s.testBoot},
		{"a-to-b-claims-and-remaps", s.testRemapAB},
		{"b-to-a-claims-and-remaps", s.testRemapBA},
		{"exhausted-pool-refuses", s.testExhausted},
		{"daemon-restart-rebuilds-claims", s.testRestart},
		{"persistent-definition-cold-boot", s.testPersistentColdBoot},
	})
}

// step is one subtest of a suite whose steps build on each other.
type step struct {
	name string
	f    func(t *testing.T)
}

// runSteps runs the steps in order and stops at the first that fails. It reports whether all passed.
func runSteps(t *testing.T, steps []step) bool {
	for _, st := range steps {
		if !t.Run(st.name, st.f) {
			t.Logf("%s failed; the later steps depend on it", st.name)
			return false
		}
	}
	return true
}

// setupPools starts the pair with the pool networks and policies, its logs in e2e/out/PREFIX-TIME,
// and makes the pool guest's definition (named dom): its primary on fabric-a1.
func setupPools(t *testing.T, prefix, dom string) *poolSuite {
	ctx := context.Background()
	root, run := runDir(t, prefix)
	s := &poolSuite{t: t, ctx: ctx, run: run}
	t.Cleanup(func() { s.pair.Stop() })
	s.bin = hookUnderTest(t, root, run)
	if harness.IsStandIn(s.bin) {
		t.Skip("pools need the real hook, not the stand-in")
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
		for _, n := range poolNetworks[h.Name] {
			if err := h.DefineNetwork(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.WritePolicy(s.policy(h)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("hosts up in %.1fs; logs in %s", time.Since(start).Seconds(), run)
	s.serial = harness.NewSerial(filepath.Join(run, "serial", "guest.log"))
	if err := os.MkdirAll(filepath.Dir(s.serial.Path), 0o755); err != nil {
		t.Fatal(err)
	}
	s.guest = harness.DefaultGuest(img.Kernel, img.Initrd, s.serial.Path)
	s.guest.Name = dom
	s.guest.Bin = s.bin
	s.xml, err = s.poolGuestXML("fabric-a1")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// policy is a host's policy: its networks in pool 'fabric', the default pool of primaries; the
// claims and the log at the host's real paths, so that commands run outside its namespaces
// (virt-failover status, claims) see what its hook sees inside.
func (s *poolSuite) policy(h *harness.Host) string {
	var q []string
	for _, n := range poolNetworks[h.Name] {
		q = append(q, fmt.Sprintf("%q", n))
	}
	state := fmt.Sprintf("dir = %q\n", h.StateDir())
	if lt := s.lockTimeout[h]; lt != "" {
		state += fmt.Sprintf("lock_timeout = %q\n", lt)
	}
	return fmt.Sprintf("[host]\ndefault_pool = \"fabric\"\n[pools.fabric]\nnetworks = [%s]\n[state]\n%s[log]\nfile = %q\n",
		strings.Join(q, ", "), state, h.HookLogPath())
}

// poolGuestXML pairs the test guest (virt-failover pair --emulated-primary --pool fabric) and puts
// its primary on network: the standby stays on 'lan', which both hosts have.
func (s *poolSuite) poolGuestXML(network string) ([]byte, error) {
	plain, err := s.guest.PlainXML()
	if err != nil {
		return nil, err
	}
	paired, err := harness.RunPair(s.bin, plain, "--emulated-primary", "--pool", "fabric")
	if err != nil {
		return nil, err
	}
	doc, err := xmlxform.Parse(paired)
	if err != nil {
		return nil, err
	}
	dom := policy.NewDomain(doc)
	tr := xmlxform.NewTransform(doc)
	done := false
	for alias := range dom.PairIDs {
		if n := dom.NICByAlias(alias); n != nil {
			tr.SetAttr(n.El.Child("source"), "network", network)
			done = true
		}
	}
	if !done {
		return nil, fmt.Errorf("pair --emulated-primary made no emulated primary:\n%s", paired)
	}
	return tr.Bytes()
}

// vf runs the binary under test as the operator does, outside the hosts' namespaces.
func (s *poolSuite) vf(stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(s.ctx, s.bin, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (s *poolSuite) hostArgs(h *harness.Host) []string {
	return []string{"--root", h.Dir, "--policy", h.PolicyPath()}
}

// status is "virt-failover status --json" of a host.
func (s *poolSuite) status(h *harness.Host) (*claims.Status, string) {
	s.t.Helper()
	out, err := s.vf(nil, append([]string{"status", "--json"}, s.hostArgs(h)...)...)
	if err != nil {
		s.t.Fatalf("status on %s: %v\n%s", h.Name, err, out)
	}
	var st claims.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		s.t.Fatalf("status --json on %s: %v\n%s", h.Name, err, out)
	}
	text, _ := s.vf(nil, append([]string{"status"}, s.hostArgs(h)...)...)
	return &st, text
}

// resourceState is one network's state and holder in a host's status.
func (s *poolSuite) resourceState(h *harness.Host, network string) (state, domain string, text string) {
	st, text := s.status(h)
	for _, p := range st.Pools {
		for _, r := range p.Resources {
			if r.Name == network {
				return r.State, r.Domain, text
			}
		}
	}
	s.t.Fatalf("status on %s has no %s:\n%s", h.Name, network, text)
	return "", "", ""
}

func (s *poolSuite) expectState(t *testing.T, h *harness.Host, network, state, domain string) {
	t.Helper()
	got, dom, text := s.resourceState(h, network)
	if got != state || dom != domain {
		t.Errorf("%s: status shows %s %s (%s), want %s (%s):\n%s", h.Name, network, got, dom, state, domain, text)
	}
}

// records reads a host's decision log as the hook writes it.
func records(t *testing.T, h *harness.Host) []hooks.Record {
	t.Helper()
	f, err := os.Open(h.HookLogPath())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []hooks.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r hooks.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", h.HookLogPath(), err)
		}
		out = append(out, r)
	}
	return out
}

// call finds the last record of a call for the domain after skip records.
func call(recs []hooks.Record, skip int, dom, op, subop string) (hooks.Record, bool) {
	for i := len(recs) - 1; i >= skip && i >= 0; i-- {
		if r := recs[i]; r.Domain == dom && r.Op == op && r.SubOp == subop {
			return r, true
		}
	}
	return hooks.Record{}, false
}

func claimOf(dom, network, state string) string {
	return fmt.Sprintf("fabric: %s for %s ua-pri0 (%s)", network, dom, state)
}

func (s *poolSuite) testBoot(t *testing.T) {
	a := s.pair.A
	skip := len(records(t, a))
	hb, err := a.BootXML(s.ctx, s.guest.Name, s.xml, s.serial)
	if err != nil {
		t.Fatal(err)
	}
	s.on = a
	t.Logf("guest booted on a: %s", hb.Summary())
	rec, ok := call(records(t, a), skip, s.guest.Name, "prepare", "begin")
	if !ok || rec.Decision != "pass" || !slices.Equal(rec.Claims, []string{claimOf(s.guest.Name, "fabric-a1", "confirmed")}) {
		t.Errorf("a: prepare begin record %+v, want the claim of fabric-a1 confirmed", rec)
	}
	s.expectState(t, a, "fabric-a1", claims.StateClaimed, s.guest.Name)
	s.expectState(t, a, "fabric-a2", claims.StateFree, "")
}

// migrate moves the guest to the other host and checks the remap: the destination picked a free
// network of its pool, claimed it (pending at migrate, confirmed at prepare), rewrote the primary's
// source and nothing else, the guest kept failover, and the source released its claim.
func (s *poolSuite) migrate(t *testing.T, wantFrom, wantTo string) {
	from, to := s.on, s.pair.Other(s.on)
	dom := s.guest.Name
	fromSkip, toSkip := len(records(t, from)), len(records(t, to))
	m, err := harness.MigrateObserved(s.ctx, dom, from, to, s.serial)
	if m.Err == nil {
		s.on = to
	}
	if err != nil {
		t.Fatalf("%s: %v", m.Direction(), err)
	}
	if m.Err != nil {
		t.Fatalf("%s: virsh migrate: %v\n%s", m.Direction(), m.Err, m.Output)
	}
	t.Logf("%s: virsh migrate %.1fs, primary back after %.1fs, %d probes lost", m.Direction(), m.Duration.Seconds(), m.Back.Seconds(), m.Lost)
	toRecs := records(t, to)
	mig, _ := call(toRecs, toSkip, dom, "migrate", "begin")
	wantChange := fmt.Sprintf("interface ua-pri0: source network '%s' -> '%s' (pool fabric)", wantFrom, wantTo)
	if mig.Decision != "rewrite" || !slices.Equal(mig.Changes, []string{wantChange}) ||
		!slices.Equal(mig.Claims, []string{claimOf(dom, wantTo, "pending")}) {
		t.Errorf("%s: migrate begin record %+v\nwant a rewrite %q and the pending claim of %s", m.Direction(), mig, wantChange, wantTo)
	}
	if prep, _ := call(toRecs, toSkip, dom, "prepare", "begin"); !slices.Equal(prep.Claims, []string{claimOf(dom, wantTo, "confirmed")}) {
		t.Errorf("%s: prepare begin record %+v, want %s confirmed", m.Direction(), prep, wantTo)
	}
	if rel, _ := call(records(t, from), fromSkip, dom, "release", "end"); !slices.Equal(rel.Releases, []string{claimOf(dom, wantFrom, "confirmed")}) {
		t.Errorf("%s: the source's release end record %+v, want the release of %s", m.Direction(), rel, wantFrom)
	}
	if _, ok := harness.Event(m.DestEvents, "FAILOVER_NEGOTIATED", ""); !ok {
		t.Errorf("%s: no FAILOVER_NEGOTIATED from the destination QEMU; its events: %v", m.Direction(), m.DestEvents)
	}
	if !m.After.PrimaryEnslaved() {
		t.Errorf("%s: after the migration the primary is not enslaved: %s", m.Direction(), m.After.Summary())
	}
	if nets, err := to.InterfaceNetworks(s.ctx, dom); err != nil || !slices.Equal(nets, []string{"lan", wantTo}) {
		t.Errorf("%s: live interfaces on %s use %q (%v), want the standby on lan and the primary on %s", m.Direction(), to.Name, nets, err, wantTo)
	}
	s.expectState(t, to, wantTo, claims.StateClaimed, dom)
	s.expectState(t, from, wantFrom, claims.StateFree, "")
}

func (s *poolSuite) testRemapAB(t *testing.T) { s.migrate(t, "fabric-a1", "fabric-b1") }
func (s *poolSuite) testRemapBA(t *testing.T) { s.migrate(t, "fabric-b1", "fabric-a1") }

// holderXML is another guest whose primary is on network: the hook run by hand claims it for
// that guest, as an incoming migration of it would.
func holderXML(network string) []byte {
	return []byte(`<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>holder</name>
  <uuid>0b0b0b0b-0000-4000-8000-00000000000b</uuid>
  <devices>
    <interface type='network'><source network='lan'/><mac address='52:54:00:5f:00:99'/><model type='virtio'/><teaming type='persistent'/><alias name='ua-sby0'/></interface>
    <interface type='network'><source network='` + network + `'/><mac address='52:54:00:5f:00:99'/><model type='e1000e'/><rom enabled='no'/><alias name='ua-pri0'/></interface>
  </devices>
  <qemu:override><qemu:device alias='ua-pri0'><qemu:frontend><qemu:property name='failover_pair_id' type='string' value='ua-sby0'/></qemu:frontend></qemu:device></qemu:override>
</domain>
`)
}

func (s *poolSuite) testExhausted(t *testing.T) {
	a, b := s.pair.A, s.pair.B
	if s.on != a {
		t.Fatalf("the guest runs on %s, want a", s.on.Name)
	}
	// B's only network is taken by another incoming guest (its migration is under way: pending).
	out, err := s.vf(holderXML("fabric-b1"), append([]string{"hook"}, append(s.hostArgs(b), "qemu", "holder", "migrate", "begin", "-")...)...)
	if err != nil {
		t.Fatalf("claiming fabric-b1 for holder: %v\n%s", err, out)
	}
	s.expectState(t, b, "fabric-b1", claims.StatePending, "holder")

	skip := len(records(t, b))
	m, err := harness.MigrateObserved(s.ctx, s.guest.Name, a, b, s.serial)
	if m.Err == nil {
		s.on = b
		t.Fatalf("a->b with b's pool exhausted succeeded")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a->b refused after %.1fs: %s", m.Duration.Seconds(), strings.TrimSpace(m.Output))
	want := "virt-failover: qemu vfo-pool migrate begin: refused: no free network in pool 'fabric' on this host for interface ua-pri0 (1 of 1 taken: 1 pending)"
	if !strings.Contains(m.Output, want) {
		t.Errorf("virsh migrate's error does not carry the refusal %q:\n%s", want, m.Output)
	}
	if rec, _ := call(records(t, b), skip, s.guest.Name, "migrate", "begin"); rec.Decision != "refuse" || len(rec.Claims) != 0 {
		t.Errorf("b: migrate begin record %+v, want a refusal without claims", rec)
	}
	if st, err := a.DomState(s.ctx, s.guest.Name); err != nil || st != "running" {
		t.Errorf("after the refusal the guest is %q on a (%v), want running", st, err)
	}
	if st, _ := b.DomState(s.ctx, s.guest.Name); st != "" {
		t.Errorf("b has the guest (%s)", st)
	}
	if !m.After.PrimaryEnslaved() {
		t.Errorf("after the refusal the primary is not enslaved: %s", m.After.Summary())
	}
	s.expectState(t, a, "fabric-a1", claims.StateClaimed, s.guest.Name)

	out, err = s.vf(nil, append([]string{"claims", "release", "holder"}, s.hostArgs(b)...)...)
	if err != nil || !strings.Contains(out, "released fabric: fabric-b1 for holder ua-pri0 (pending") {
		t.Errorf("claims release holder: %v\n%s", err, out)
	}
	s.expectState(t, b, "fabric-b1", claims.StateFree, "")
}

func (s *poolSuite) testRestart(t *testing.T) {
	h := s.on
	dom := s.guest.Name
	args := append([]string{"claims", "release", dom}, s.hostArgs(h)...)
	// The repair tool keeps a running guest's claims unless forced.
	if out, err := s.vf(nil, args...); err == nil || !strings.Contains(out, "the domain is running") {
		t.Errorf("claims release of a running guest: %v\n%s", err, out)
	}
	if out, err := s.vf(nil, append(args, "--force")...); err != nil {
		t.Fatalf("claims release --force: %v\n%s", err, out)
	}
	net := "fabric-a1"
	if h == s.pair.B {
		net = "fabric-b1"
	}
	s.expectState(t, h, net, claims.StateInUse, dom)

	skip := len(records(t, h))
	if err := h.RestartDaemon(s.ctx); err != nil {
		t.Fatal(err)
	}
	var rec hooks.Record
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var ok bool
		if rec, ok = call(records(t, h), skip, dom, "reconnect", "begin"); ok {
			break
		}
	}
	if rec.Decision != "pass" || !slices.Equal(rec.Claims, []string{claimOf(dom, net, "confirmed")}) {
		t.Errorf("%s: reconnect begin record %+v, want the claim of %s rebuilt", h.Name, rec, net)
	}
	s.expectState(t, h, net, claims.StateClaimed, dom)
	if st, err := h.DomState(s.ctx, dom); err != nil || st != "running" {
		t.Errorf("after the restart the guest is %q (%v)", st, err)
	}
}

func (s *poolSuite) testPersistentColdBoot(t *testing.T) {
	a, b := s.pair.A, s.pair.B
	dom := s.guest.Name
	if s.on != a {
		t.Fatalf("the guest runs on %s, want a", s.on.Name)
	}
	skipA := len(records(t, a))
	out, err := a.MigrateWith(s.ctx, dom, b, "--persistent")
	if err != nil {
		t.Fatalf("virsh migrate --persistent: %v\n%s", err, out)
	}
	s.on = b
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, ok := call(records(t, a), skipA, dom, "release", "end"); ok {
			break
		}
	}
	inactive, err := b.Virsh(s.ctx, "dumpxml", "--inactive", dom)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(inactive, "<source network='fabric-a1'/>") {
		t.Fatalf("b's persistent definition does not keep a's network; the scenario needs it:\n%s", inactive)
	}
	t.Logf("b's persistent definition, copied from a, names a's network fabric-a1 (the live one %s)", "fabric-b1")
	if _, err := b.Virsh(s.ctx, "destroy", dom); err != nil {
		t.Fatal(err)
	}
	s.on = nil
	s.expectState(t, b, "fabric-b1", claims.StateFree, "")

	// A cold boot of that definition: refused at prepare, with the network to use and the command.
	_, err = b.Virsh(s.ctx, "start", dom)
	if err == nil {
		t.Fatal("b started a definition naming a network of a")
	}
	msg := err.Error()
	t.Logf("virsh start: %s", msg)
	for _, want := range []string{
		"virt-failover: qemu vfo-pool prepare begin: refused: interface ua-pri0 uses network 'fabric-a1', which is not in pool 'fabric' on this host",
		`network 'fabric-b1' is free in pool 'fabric': run "virsh edit vfo-pool" and set <source network='fabric-b1'/> in interface ua-pri0`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("virsh start's error lacks %q", want)
		}
	}
	if strings.Contains(msg, "Network not found") {
		t.Errorf("libvirt's own error came first: %s", msg)
	}

	// The fix the hint names (non-interactively): then it starts and claims fabric-b1.
	fixed := strings.Replace(inactive, "<source network='fabric-a1'/>", "<source network='fabric-b1'/>", 1)
	path := filepath.Join(b.Dir, dom+"-fixed.xml")
	if err := os.WriteFile(path, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Virsh(s.ctx, "define", path); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Virsh(s.ctx, "start", dom); err != nil {
		t.Fatalf("the fixed definition does not start: %v", err)
	}
	s.expectState(t, b, "fabric-b1", claims.StateClaimed, dom)
	_, _ = b.Virsh(s.ctx, "destroy", dom)
	_, _ = b.Virsh(s.ctx, "undefine", dom)
	s.expectState(t, b, "fabric-b1", claims.StateFree, "")
}
