package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/hooks"
	"github.com/virt-failover/virt-failover/internal/virt"
)

// TestDrain proves "virt-failover drain" and "uncordon" on the two real hosts, with two guests on
// A: the bonded guest paired for the orchestrator (its e1000e primary parked, claimed from pool
// 'fabric' on the destination and plugged back there) and a plain-virtio guest. The steps build
// on each other:
//
//  1. drain A --to BAD,B (BAD cannot be reached), two at a time: A's policy gets [host]
//     accept_incoming = false and nothing else changes in it; both guests run on B, the bond with
//     its primary on B's network; an A-bound migration is refused by A's hook; the table lists both.
//  2. uncordon A gives A's policy back byte for byte; drain B --to A brings both guests back (a
//     migration to A succeeds again), and uncordon B.
//  3. B's pool exhausted: drain A --to BAD,B --json moves the plain guest; B's hook refuses the
//     bonded guest, which drain lists as not moved, with B's refusal, and which still runs on A with
//     its primary; exit 1.
//  4. uncordon A; the plain guest migrates back to A.
func TestDrain(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	s := setupOrchIn(t, "drain")
	d := &drainSuite{orchSuite: s, plain: harness.NewSerial(filepath.Join(s.run, "serial", "plain.log")),
		bad: "qemu+unix:///system?socket=" + filepath.Join(s.run, "nohost", "libvirt-sock")}
	d.plainGuest = harness.YardstickGuest(s.kernel, s.initrd, d.plain.Path)
	t.Cleanup(func() {
		for _, h := range s.pair.Hosts() {
			_, _ = h.Virsh(context.Background(), "destroy", d.plainGuest.Name)
			_, _ = h.Virsh(context.Background(), "undefine", d.plainGuest.Name)
		}
	})
	start := time.Now()
	runSteps(t, []step{
		{"boot-both-on-a", d.testBoot},
		{"drain-a-past-an-unreachable-host-to-b", d.testDrainAll},
		{"uncordon-a-drain-b-back-to-a", d.testBack},
		{"drain-a-one-guest-refused-by-b", d.testOneStays},
		{"uncordon-a-migrate-back", d.testUncordon},
	})
	s.figure(t, "TestDrain: %.0fs in all", time.Since(start).Seconds())
	t.Logf("figures (drain):\n  %s", strings.Join(s.figures, "\n  "))
	if err := os.WriteFile(filepath.Join(s.run, "summary.txt"), []byte(strings.Join(s.figures, "\n")+"\n"), 0o644); err != nil {
		t.Error(err)
	}
}

// drainSuite is the orchestrator's suite (the bonded guest, s.dom) with the plain-virtio guest
// beside it.
type drainSuite struct {
	*orchSuite
	plainGuest harness.Guest
	plain      *harness.Serial
	plainOn    *harness.Host
	bad        string // a destination that cannot be reached
}

// drainReport is drain --json's report, as far as the test reads it.
type drainReport struct {
	Policy   string `json:"policy"`
	Cordon   string `json:"cordon"`
	Moved    int    `json:"moved"`
	NotMoved int    `json:"not_moved"`
	Guests   []struct {
		Domain      string `json:"domain"`
		Destination string `json:"destination"`
		Outcome     string `json:"outcome"`
		Why         string `json:"why"`
		State       string `json:"state"`
		MS          int64  `json:"ms"`
		Attempts    []struct {
			Destination, Outcome, Why string
		} `json:"attempts"`
	} `json:"guests"`
}

func (d *drainSuite) testBoot(t *testing.T) {
	d.orchSuite.testBoot(t)
	what, ready := d.plainGuest.Ready()
	def, err := d.plainGuest.XML()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pair.A.DefineAndStart(d.ctx, d.plainGuest.Name, def, d.plain, what, ready); err != nil {
		t.Fatal(err)
	}
	d.plainOn = d.pair.A
}

// drainArgs are drain's arguments from one host to the destinations, as an operator runs it
// outside the hosts: --to each destination's P2P URI (this command connects to it by the same
// URI), --migrate-uri the migration link (BAD's goes nowhere), --connect, --root and --policy the
// drained host's.
func (d *drainSuite) drainArgs(from *harness.Host, to []string, migrate []string, extra ...string) []string {
	args := []string{"drain", "--to", strings.Join(to, ","), "--migrate-uri", strings.Join(migrate, ","), "--connect", from.URI()}
	return append(append(args, from.HostArgs()...), extra...)
}

// plainAnswers waits from mark on for the plain guest's heartbeat with its NIC up and probes
// answered.
func (d *drainSuite) plainAnswers(t *testing.T, mark int, where string) {
	t.Helper()
	_, ready := d.plainGuest.Ready()
	if _, err := wait(d.ctx, d.plain, mark, "the plain guest answering on "+where, harness.Answering(ready)); err != nil {
		t.Fatal(err)
	}
}

// runsOn fails unless the domain runs on h and not on the other host.
func (d *drainSuite) runsOn(t *testing.T, dom string, h *harness.Host) {
	t.Helper()
	for _, x := range d.pair.Hosts() {
		st, err := x.DomState(d.ctx, dom)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: "running", false: ""}[x == h]; st != want {
			t.Errorf("%s on %s is %q, want %q", dom, x.Name, st, want)
		}
	}
}

func (d *drainSuite) testDrainAll(t *testing.T) {
	a, b := d.pair.A, d.pair.B
	before, err := os.ReadFile(a.PolicyPath())
	if err != nil {
		t.Fatal(err)
	}
	bondMark, plainMark := d.serial.Len(), d.plain.Len()
	skipA := len(records(t, a))
	c := d.vf(t, d.drainArgs(a, []string{d.bad, b.P2PURI()}, []string{"tcp://192.0.2.9", "tcp://" + b.MigIP}, "--parallel", "2")...)
	code, _ := c.Wait(d.ctx)
	took := time.Since(c.Started)
	t.Logf("%s: exit %d after %.1fs:\n%s", c, code, took.Seconds(), c.Output())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	d.on, d.plainOn = b, b
	out := c.Stdout()
	for _, want := range []string{
		"  destination " + d.bad + " cannot be reached: ",
		"  1  " + d.dom + "   running  -> " + b.P2PURI() + "  unplug " + harness.BondPrimary + " (bond)\n",
		"  2  " + d.plainGuest.Name + "  running  -> " + b.P2PURI() + "  no assigned device to unplug\n",
		"cordon: added accept_incoming = false to [host] in " + a.PolicyPath() + "\n",
		"drained: 2 of 2 guests moved; ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("drain's output lacks %q", want)
		}
	}
	for _, g := range []string{d.dom, d.plainGuest.Name} {
		if lineIndex(c.Lines(), `^`+g+` +`+regexp.QuoteMeta(b.P2PURI())+` +migrated +[0-9.]+s +[0-9.]+s`) < 0 {
			t.Errorf("the table has no row of %s migrated to b", g)
		}
	}
	plan, cordon, first := lineIndex(c.Lines(), `-> `), lineIndex(c.Lines(), `^cordon: `), lineIndex(c.Lines(), `^\[ *[0-9.]+s\] `)
	if plan < 0 || plan > cordon || cordon > first {
		t.Errorf("want the plan (line %d), the cordon (line %d), then the moves (line %d)", plan, cordon, first)
	}

	// The cordon: one line added under [host], the rest of A's policy as it was.
	after, _ := os.ReadFile(a.PolicyPath())
	want := strings.Replace(string(before), "[host]\n", "[host]\naccept_incoming = false # added by \"virt-failover drain\"; \"virt-failover uncordon\" removes it\n", 1)
	if string(after) != want {
		t.Errorf("A's policy after the cordon:\n%s\nwant:\n%s", after, want)
	}

	// Every guest on B with its devices: the bond's primary on B's network, claimed there, and
	// whole in the guest; the plain guest answering.
	d.runsOn(t, d.dom, b)
	d.runsOn(t, d.plainGuest.Name, b)
	d.checkDefinitions(t, b, "fabric-b1")
	d.waitRelease(t, a, skipA)
	d.expectClaims(t, b, claimLine(d.dom, "fabric-b1", "confirmed"))
	d.expectClaims(t, a)
	back := d.whole(t, bondMark, "the bond whole on b")
	d.plainAnswers(t, plainMark, "b")

	// A is cordoned: its hook refuses an incoming migration.
	skipA = len(records(t, a))
	mstart := time.Now()
	mout, merr := b.Migrate(d.ctx, d.plainGuest.Name, a)
	if merr == nil || !strings.Contains(mout, "virt-failover: qemu "+d.plainGuest.Name+" migrate begin: refused: this host does not accept incoming migrations") {
		t.Errorf("a migration to the cordoned A: %v\n%s", merr, mout)
	}
	if rec, _ := call(records(t, a), skipA, d.plainGuest.Name, "migrate", "begin"); rec.Decision != hooks.Refuse {
		t.Errorf("A's migrate begin record %+v, want a refusal", rec)
	}
	d.runsOn(t, d.plainGuest.Name, b)
	d.figure(t, "drain a -> bad, b (2 at a time): %.1fs in all; the bond whole on b %.1fs after it began; a migration to the cordoned a refused after %.2fs",
		took.Seconds(), d.serial.SeenAt(back.Index).Sub(c.Started).Seconds(), time.Since(mstart).Seconds())
}

func (d *drainSuite) testBack(t *testing.T) {
	a, b := d.pair.A, d.pair.B
	d.uncordon(t, a)
	bondMark, plainMark := d.serial.Len(), d.plain.Len()
	c := d.vf(t, d.drainArgs(b, []string{a.P2PURI()}, []string{"tcp://" + a.MigIP}, "--parallel", "2")...)
	code, _ := c.Wait(d.ctx)
	t.Logf("%s: exit %d after %.1fs:\n%s", c, code, time.Since(c.Started).Seconds(), c.Output())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	d.on, d.plainOn = a, a
	d.figure(t, "drain b -> a after uncordon a: %.1fs", time.Since(c.Started).Seconds())
	d.runsOn(t, d.dom, a)
	d.runsOn(t, d.plainGuest.Name, a)
	d.checkDefinitions(t, a, "fabric-a1")
	d.whole(t, bondMark, "the bond whole on a")
	d.plainAnswers(t, plainMark, "a")
	d.uncordon(t, b)
}

// uncordon runs uncordon on h and checks that h's policy is as the suite wrote it.
func (d *drainSuite) uncordon(t *testing.T, h *harness.Host) {
	t.Helper()
	c := d.vf(t, append([]string{"uncordon"}, h.HostArgs()...)...)
	if code, _ := c.Wait(d.ctx); code != 0 || !strings.Contains(c.Stdout(), "removed the accept_incoming = false that drain added") {
		t.Fatalf("%s: exit %d:\n%s", c, code, c.Output())
	}
	got, _ := os.ReadFile(h.PolicyPath())
	if want := h.OrchestrationPolicy(`default_pool = "fabric"`); string(got) != want {
		t.Errorf("%s's policy after uncordon:\n%s\nwant, as before the drain:\n%s", h.Name, got, want)
	}
}

func (d *drainSuite) testOneStays(t *testing.T) {
	a, b := d.pair.A, d.pair.B
	// B's one network of the pool claimed for another guest: its hook refuses the bonded guest.
	out, err := d.vfStdin(holderXML("fabric-b1"), append(append([]string{"hook"}, b.HostArgs()...), "qemu", holderDomain, "migrate", "begin", "-")...)
	if err != nil {
		t.Fatalf("claiming fabric-b1 for %s: %v\n%s", holderDomain, err, out)
	}
	t.Cleanup(func() {
		if out, err := d.vfStdin(nil, append([]string{"claims", "release", holderDomain}, b.HostArgs()...)...); err != nil {
			t.Errorf("claims release %s: %v\n%s", holderDomain, err, out)
		}
	})
	skipB := len(records(t, b))
	bondMark, plainMark := d.serial.Len(), d.plain.Len()
	devices := d.watch(t, a, virt.EventDeviceRemoved, virt.EventDeviceAdded)
	c := d.vf(t, d.drainArgs(a, []string{d.bad, b.P2PURI()}, []string{"tcp://192.0.2.9", "tcp://" + b.MigIP}, "--json")...)
	code, _ := c.Wait(d.ctx)
	took := time.Since(c.Started)
	t.Logf("%s: exit %d after %.1fs:\n%s", c, code, took.Seconds(), c.Output())
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	d.plainOn = b
	var rep drainReport
	if err := json.Unmarshal([]byte(c.Stdout()), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, c.Stdout())
	}
	if rep.Moved != 1 || rep.NotMoved != 1 || len(rep.Guests) != 2 {
		t.Fatalf("report %+v", rep)
	}
	bond, plain := rep.Guests[0], rep.Guests[1]
	var tried []string
	for _, at := range bond.Attempts {
		tried = append(tried, at.Destination+" "+at.Outcome)
	}
	refusal := "no free network in pool 'fabric' on this host"
	if bond.Domain != d.dom || bond.Outcome != "stayed" || !slices.Equal(tried, []string{d.bad + " unreachable", b.P2PURI() + " refused"}) ||
		!strings.Contains(bond.Attempts[1].Why, refusal) || bond.State != "runs on "+a.URI()+" with every device" {
		t.Errorf("the bonded guest's row: %+v", bond)
	}
	if plain.Domain != d.plainGuest.Name || plain.Outcome != "migrated" || plain.Destination != b.P2PURI() {
		t.Errorf("the plain guest's row: %+v", plain)
	}
	if !strings.Contains(rep.Cordon, "added accept_incoming = false") {
		t.Errorf("cordon: %q", rep.Cordon)
	}
	stderr := c.Stderr()
	for _, want := range []string{
		"\nnot moved: " + d.dom + ": no destination took it: " + d.bad + " unreachable; " + b.P2PURI() + " refused (" + refusal,
		"; runs on " + a.URI() + " with every device\n",
		"\nvirt-failover: drain: 1 of 2 guests did not move: " + d.dom + " (",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if rec, _ := call(records(t, b), skipB, d.dom, "migrate", "begin"); rec.Decision != hooks.Refuse || len(rec.Claims) != 0 {
		t.Errorf("B's migrate begin record %+v, want a refusal without claims", rec)
	}

	// The bonded guest still runs on A with its primary: it went for the migration and came back.
	d.runsOn(t, d.dom, a)
	d.runsOn(t, d.plainGuest.Name, b)
	d.checkDefinitions(t, a, "fabric-a1")
	expectDeviceEvents(t, d.ctx, devices, virt.EventDeviceRemoved, 1)
	expectDeviceEvents(t, d.ctx, devices, virt.EventDeviceAdded, 1)
	back := d.whole(t, bondMark, "the bond whole again on a")
	d.expectClaims(t, a, claimLine(d.dom, "fabric-a1", "confirmed"))
	d.plainAnswers(t, plainMark, "b")
	d.figure(t, "drain a -> bad, b with b's pool exhausted: exit %d after %.1fs; the bonded guest rolled back on a (%.1fs), the bond whole %.1fs after the drain began; the plain guest moved (%.1fs)",
		code, took.Seconds(), float64(bond.MS)/1000, d.serial.SeenAt(back.Index).Sub(c.Started).Seconds(), float64(plain.MS)/1000)
}

func (d *drainSuite) testUncordon(t *testing.T) {
	a, b := d.pair.A, d.pair.B
	d.uncordon(t, a)
	mark := d.plain.Len()
	c := d.vf(t, harness.MigrateArgs(d.plainGuest.Name, b, a)...)
	if code, _ := c.Wait(d.ctx); code != 0 {
		t.Fatalf("%s: exit %d:\n%s", c, code, c.Output())
	}
	d.plainOn = a
	d.runsOn(t, d.plainGuest.Name, a)
	d.plainAnswers(t, mark, "a")
	d.figure(t, "uncordon a, then migrate %s b -> a: %.1fs", d.plainGuest.Name, time.Since(c.Started).Seconds())
}
