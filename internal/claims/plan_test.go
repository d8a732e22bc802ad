package claims

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/sysfs/sysfstest"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// twoPrimaries is a domain with two recorded VF pairs whose VFs this host does not have.
const twoPrimaries = `<domain type='kvm'>
  <name>web-01</name>
  <uuid>5F1C2C8E-2B0A-4F4E-9A57-1D0E6F0C9A11</uuid>
  <metadata>
    <vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0' version='v0.1.0'>
      <vfo:pair kind='net' standby='ua-sby0' primary='ua-pri0' mac='52:54:00:00:00:01' pool='fabric'/>
      <vfo:pair kind='net' standby='ua-sby1' primary='ua-pri1' mac='52:54:00:00:00:02' pool='fabric'/>
    </vfo:failover>
  </metadata>
  <devices>
    <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/><model type='virtio'/><alias name='ua-sby0'/><teaming type='persistent'/></interface>
    <interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:01'/><source><address type='pci' domain='0x0000' bus='0x81' slot='0x10' function='0x0'/></source><alias name='ua-pri0'/><teaming type='transient' persistent='ua-sby0'/></interface>
    <interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/><model type='virtio'/><alias name='ua-sby1'/><teaming type='persistent'/></interface>
    <interface type='hostdev' managed='yes'><mac address='52:54:00:00:00:02'/><source><address type='pci' domain='0x0000' bus='0x81' slot='0x10' function='0x1'/></source><alias name='ua-pri1'/><teaming type='transient' persistent='ua-sby1'/></interface>
  </devices>
</domain>
`

func load(t *testing.T, vfs int) (*Host, *Subject, *xmlxform.Doc, *ledger.Ledger) {
	t.Helper()
	dir := t.TempDir()
	sys := filepath.Join(dir, "sys")
	if err := sysfstest.Build(sys, sysfstest.Tree{PFs: []sysfstest.PF{sysfstest.PFWithVFs("enp3s0f0", 3, vfs, "ixgbe", "ixgbevf")}}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse("p.toml", []byte("[host]\nsysfs_root = \""+sys+"\"\n[pools.fabric]\npf = [\"enp3s0f0\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := xmlxform.Parse([]byte(twoPrimaries))
	if err != nil {
		t.Fatal(err)
	}
	h, s := Load(pol, filepath.Join(dir, "run"), policy.NewDomain(doc), "fallback")
	if s == nil {
		t.Fatal("the domain's primaries use no pool")
	}
	l := ledger.Open(filepath.Join(dir, "state"))
	l.Now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	return h, s, doc, l
}

// Planning reads the snapshot and writes nothing; two devices get two resources; Apply takes
// exactly what the plan says.
func TestPlanIncomingIsPureAndApplyCarriesItOut(t *testing.T) {
	h, s, doc, l := load(t, 4)
	if s.UUID != "5f1c2c8e-2b0a-4f4e-9a57-1d0e6f0c9a11" || s.Name != "web-01" {
		t.Errorf("identity %q %q", s.UUID, s.Name)
	}
	var p Plan
	if err := l.View(func(tx *ledger.Tx) error {
		var err error
		p, err = PlanIncoming(h, s, doc, tx)
		if len(tx.Claims()) != 0 {
			t.Errorf("planning changed the snapshot: %+v", tx.Claims())
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if p.Refusal != nil || len(p.Takes) != 2 || p.Takes[0].Resource == p.Takes[1].Resource || p.Output == nil || len(p.Changes) != 2 {
		t.Fatalf("plan %+v", p)
	}
	if len(l.Path()) == 0 {
		t.Fatal("no ledger path")
	}
	var taken []ledger.Claim
	if err := l.Update(func(tx *ledger.Tx) error {
		var err error
		taken, _, err = Apply(tx, p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(taken) != 2 || taken[0].State != ledger.Pending || taken[1].Resource != p.Takes[1].Resource {
		t.Fatalf("taken %+v", taken)
	}
	// The same domain again: it keeps what it holds, and the plan is the same.
	var again Plan
	_ = l.View(func(tx *ledger.Tx) error { again, _ = PlanIncoming(h, s, doc, tx); return nil })
	if len(again.Takes) != 2 || again.Takes[0].Resource != p.Takes[0].Resource || again.Takes[1].Resource != p.Takes[1].Resource {
		t.Errorf("replanned %+v, first %+v", again.Takes, p.Takes)
	}
}

// One VF for two primaries: a refusal naming the pool, and Apply of it changes nothing.
func TestPlanIncomingRefusesAndApplyDoesNothing(t *testing.T) {
	h, s, doc, l := load(t, 1)
	var p Plan
	_ = l.View(func(tx *ledger.Tx) error { p, _ = PlanIncoming(h, s, doc, tx); return nil })
	if p.Refusal == nil || !strings.Contains(p.Refusal.Reason, "no free VF in pool 'fabric' on this host for interface ua-pri1") || len(p.Takes) != 0 {
		t.Fatalf("plan %+v", p)
	}
	if err := l.Update(func(tx *ledger.Tx) error {
		taken, released, err := Apply(tx, p)
		if len(taken)+len(released) != 0 || len(tx.Claims()) != 0 {
			t.Errorf("a refusal took %+v and released %+v", taken, released)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
