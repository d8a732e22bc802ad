package claims

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// reapHost is a ledger with claims of every kind PlanReap tells apart, taken at their times, and a
// status directory where run-01 (by UUID) and named-01 (by name) run.
func reapHost(t *testing.T) (dir string, l *ledger.Ledger) {
	t.Helper()
	dir = t.TempDir()
	status := filepath.Join(dir, "run")
	if err := os.MkdirAll(status, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ name, uuid string }{{"run-01", "uuid-run"}, {"named-01", "uuid-named-in-status"}} {
		doc := "<domstatus state='running'><domain type='kvm'><name>" + d.name + "</name><uuid>" + d.uuid + "</uuid></domain></domstatus>\n"
		if err := os.WriteFile(filepath.Join(status, d.name+".xml"), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := t0
	l = ledger.Open(filepath.Join(dir, "state")) // this boot's: PruneClaims opens the ledger itself
	if l.BootID == "" {
		t.Fatal("no boot id: claims of an earlier boot cannot be told apart")
	}
	l.Now = func() time.Time { return now }
	take := func(at time.Duration, res, uuid, name string, st ledger.State) {
		now = t0.Add(at)
		if err := l.Update(func(tx *ledger.Tx) error {
			_, err := tx.Take("fabric", res, ledger.Owner{UUID: uuid, Domain: name, Alias: "ua-pri0"}, st, 10*time.Minute)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	old := *l
	old.BootID = "an-earlier-boot"
	now = t0
	if err := old.Update(func(tx *ledger.Tx) error {
		_, err := tx.Take("fabric", "0000:03:02.7", ledger.Owner{UUID: "uuid-stale", Domain: "stale-01", Alias: "ua-pri0"}, ledger.Confirmed, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	take(0, "0000:03:02.0", "uuid-run", "run-01", ledger.Confirmed)           // runs, by UUID
	take(0, "0000:03:02.1", "name:named-01", "named-01", ledger.Confirmed)    // runs, by name
	take(0, "0000:03:02.2", "uuid-gone", "gone-01", ledger.Confirmed)         // gone, 20m old
	take(0, "0000:03:02.3", "uuid-self", "self-01", ledger.Confirmed)         // the caller's own
	take(5*time.Minute, "0000:03:02.4", "uuid-exp", "exp-01", ledger.Pending) // expired at 15m
	take(15*time.Minute, "0000:03:02.5", "uuid-young", "young-01", ledger.Confirmed)
	take(19*time.Minute, "0000:03:02.6", "uuid-incoming", "in-01", ledger.Pending)
	now = t0.Add(20 * time.Minute)
	return dir, l
}

// PlanReap frees the claims of domains that do not run here (older than the grace, pending ones
// once expired, stale ones), and keeps those of running domains, of the caller's domain, of an
// incoming migration within its TTL and of a domain that may be starting.
func TestPlanReap(t *testing.T) {
	dir, l := reapHost(t)
	now := t0.Add(20 * time.Minute)
	status := filepath.Join(dir, "run")
	var got []string
	if err := l.View(func(tx *ledger.Tx) error {
		for _, r := range PlanReap(tx, LoadRunning(status), "uuid-self", now, 10*time.Minute) {
			got = append(got, r.String())
		}
		if n := len(PlanReap(tx, LoadRunning(filepath.Join(dir, "absent")), "", now, 10*time.Minute)); n != 0 {
			t.Errorf("a missing status directory reaped %d claims", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	gone := " does not run on this host (no status file in " + status + ")"
	want := []string{
		"fabric: 0000:03:02.7 for stale-01 ua-pri0 (confirmed): stale-01" + gone + " and its claim was taken in an earlier boot",
		"fabric: 0000:03:02.2 for gone-01 ua-pri0 (confirmed): gone-01" + gone + " and no release freed its claim, confirmed 20m ago",
		"fabric: 0000:03:02.4 for exp-01 ua-pri0 (pending): exp-01" + gone + " and its pending claim expired 5m ago",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("reaped (-want +got):\n%s", d)
	}
	// A status file that does not read leaves the view incomplete: nothing is reaped.
	if err := os.WriteFile(filepath.Join(status, "broken.xml"), []byte("<domstatus"), 0o600); err != nil {
		t.Fatal(err)
	}
	rv := LoadRunning(status)
	if rv.Complete() || rv.Err == nil {
		t.Fatalf("a broken status file: view %+v", rv)
	}
	if err := l.View(func(tx *ledger.Tx) error {
		if n := len(PlanReap(tx, rv, "", now, 10*time.Minute)); n != 0 {
			t.Errorf("an incomplete view reaped %d claims", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// claims prune removes what PlanReap frees, stale and expired claims, and says why for each.
func TestPruneClaimsReapsDomainsThatDoNotRun(t *testing.T) {
	dir, l := reapHost(t)
	pol := policy.Default()
	pol.State.Dir = l.Dir
	now := t0.Add(20 * time.Minute)
	gone, err := PruneClaims(pol, LoadRunning(filepath.Join(dir, "run")), now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range gone {
		got = append(got, r.Claim.Domain+": "+r.Why[strings.Index(r.Why, ")")+1:])
	}
	want := []string{
		"stale-01:  and its claim was taken in an earlier boot",
		"gone-01:  and no release freed its claim, confirmed 20m ago",
		"self-01:  and no release freed its claim, confirmed 20m ago",
		"exp-01:  and its pending claim expired 5m ago",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("pruned (-want +got):\n%s", d)
	}
	var left []string
	if err := l.View(func(tx *ledger.Tx) error {
		for _, c := range tx.Claims() {
			left = append(left, c.Domain)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"run-01", "named-01", "young-01", "in-01"}, left); d != "" {
		t.Errorf("left (-want +got):\n%s", d)
	}
}

// prepare starts a new run of the domain: a claim it still holds from an earlier run (its release
// never came) starts its age anew, so that no transaction reaps it while libvirt has not written
// the status file yet. reconnect keeps the age of the run it finds.
func TestPrepareStartsTheClaimsAgeAnew(t *testing.T) {
	th := newTestHost(t, "[pools.fabric]\npf = [\"enp3s0f0\"]\n")
	now := t0
	th.l.Now = func() time.Time { return now }
	dom := []byte(strings.ReplaceAll(twoPrimaries, "bus='0x81' slot='0x10'", "bus='0x03' slot='0x02'"))
	doc, err := xmlxform.Parse(dom)
	if err != nil {
		t.Fatal(err)
	}
	step := func(op string) {
		h, s := Load(th.pol, th.status, policy.NewDomain(doc), "fallback")
		if err := th.l.Update(func(tx *ledger.Tx) error {
			p := PlanPrepare(h, s, tx)
			if op == "reconnect" {
				p = PlanRebuild(h, s, tx)
			}
			if p.Refusal != nil {
				t.Fatalf("%s: %s", op, p.Refusal.Reason)
			}
			_, _, err := Apply(tx, p)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	step("prepare")
	now = t0.Add(time.Hour) // stopped; no release came; started again
	step("prepare")
	for _, c := range th.claims() {
		if !c.Time.Equal(now) {
			t.Errorf("after the second prepare, %s %s: taken %v, want %v", c.Alias, c.Resource, c.Time, now)
		}
	}
	now = t0.Add(2 * time.Hour)
	step("reconnect")
	for _, c := range th.claims() {
		if !c.Time.Equal(t0.Add(time.Hour)) {
			t.Errorf("after reconnect, %s %s: taken %v, want %v", c.Alias, c.Resource, c.Time, t0.Add(time.Hour))
		}
	}
}

// An operator's prune and release give up on a lock another process holds past the policy's
// lock_timeout, with the ledger's lock error, instead of waiting for it without a word.
func TestOperatorCommandsHaveTheLockDeadline(t *testing.T) {
	dir, l := reapHost(t)
	pol := policy.Default()
	pol.State.Dir = l.Dir
	pol.State.LockTimeout = 200 * time.Millisecond
	held, err := os.OpenFile(l.LockPath(), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := PruneClaims(pol, LoadRunning(filepath.Join(dir, "run")), t0); !errors.Is(err, ledger.ErrLockTimeout) {
		t.Errorf("prune with the lock held: %v", err)
	}
	if _, err := ReleaseClaims(pol, filepath.Join(dir, "run"), "gone-01", true); !errors.Is(err, ledger.ErrLockTimeout) {
		t.Errorf("release with the lock held: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// status lists the devices parked in the guests that run here, with their reasons.
func TestHostStatusListsParkedDevices(t *testing.T) {
	dir, l := reapHost(t)
	doc := `<domstatus state='running'><domain type='kvm'><name>bond-01</name><uuid>6d3f5c0e-0a0a-4a1e-9e2e-0000000000b1</uuid>
<metadata><vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0'>
<vfo:pair kind='bond' standby='ua-sby0' primary='ua-pri0' mac='52:54:00:00:00:01' pool='fabric'/>
<vfo:parked alias='ua-pri0' kind='bond' reason='switch' pool='fabric' since='2026-12-04T05:00:00Z'><vfo:interface type='network'><vfo:alias name='ua-pri0'/></vfo:interface></vfo:parked>
</vfo:failover></metadata></domain></domstatus>`
	if err := os.WriteFile(filepath.Join(dir, "run", "bond-01.xml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	pol := policy.Default()
	pol.State.Dir = l.Dir
	st, err := HostStatus(pol, filepath.Join(dir, "run"), t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []ParkedStatus{{Domain: "bond-01", Alias: "ua-pri0", Kind: "bond", Reason: "switch", Pool: "fabric", Since: "2026-12-04T05:00:00Z"}}
	if d := cmp.Diff(want, st.Parked); d != "" {
		t.Errorf("parked (-want +got):\n%s", d)
	}
}
