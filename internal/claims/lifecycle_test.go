package claims

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/sysfs/sysfstest"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// testHost is a host in a temporary directory: a PF enp3s0f0 with 4 VFs (0000:03:02.0-.3) in a
// fake sysfs, libvirt's status directory and the claims ledger.
type testHost struct {
	t      *testing.T
	pol    *policy.Policy
	status string
	l      *ledger.Ledger
	name   string // the host's name, as parked records name it
}

func newTestHost(t *testing.T, policyBody string) *testHost {
	t.Helper()
	dir := t.TempDir()
	sys := filepath.Join(dir, "sys")
	if err := sysfstest.Build(sys, sysfstest.Tree{PFs: []sysfstest.PF{sysfstest.PFWithVFs("enp3s0f0", 3, 4, "ixgbe", "ixgbevf")}}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse("p.toml", []byte(fmt.Sprintf("[host]\nsysfs_root = %q\n%s[state]\ndir = %q\n", sys, policyBody, filepath.Join(dir, "state"))))
	if err != nil {
		t.Fatal(err)
	}
	th := &testHost{t: t, pol: pol, status: filepath.Join(dir, "run"), l: ledger.Open(pol.State.Dir), name: "vf-b"}
	th.l.Now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	if err := os.MkdirAll(th.status, 0o755); err != nil {
		t.Fatal(err)
	}
	return th
}

// decide plans one hook operation for the domain and applies the plan, in one transaction, as
// the hook does.
func (th *testHost) decide(op string, xml []byte) Plan {
	th.t.Helper()
	doc, err := xmlxform.Parse(xml)
	if err != nil {
		th.t.Fatal(err)
	}
	h, s := Load(th.pol, th.status, policy.NewDomain(doc), "fallback")
	if s == nil {
		th.t.Fatalf("%s: the domain uses no pool", op)
	}
	h.Name = th.name
	var p Plan
	err = th.l.Update(func(tx *ledger.Tx) error {
		switch op {
		case "migrate":
			if p, err = PlanIncoming(h, s, doc, tx); err != nil {
				return err
			}
		case "prepare":
			p = PlanPrepare(h, s, tx)
		case "reconnect":
			p = PlanRebuild(h, s, tx)
		case "release":
			p = PlanRelease(s.UUID, tx)
		}
		_, _, err := Apply(tx, p)
		return err
	})
	if err != nil {
		th.t.Fatalf("%s: %v", op, err)
	}
	return p
}

func (th *testHost) claims() []ledger.Claim {
	th.t.Helper()
	var out []ledger.Claim
	if err := th.l.View(func(tx *ledger.Tx) error { out = tx.Claims(); return nil }); err != nil {
		th.t.Fatal(err)
	}
	return out
}

// unrecordedFixture reads a paired definition without a virt-failover record, its path relative
// to the repository's testdata.
func unrecordedFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("virt-failover.org")) {
		t.Fatalf("%s carries a virt-failover record", name)
	}
	return b
}

// live gives the primaries the aliases libvirt gives devices without one while the domain runs
// (hostdev0, hostdev1): the form reconnect gets and libvirt's status files hold.
func live(xml []byte) []byte {
	n := -1
	re := regexp.MustCompile(`(?m)^(\s*)<teaming type='transient'`)
	return re.ReplaceAllFunc(xml, func(m []byte) []byte {
		n++
		indent := re.FindSubmatch(m)[1]
		return []byte(fmt.Sprintf("%s<alias name='hostdev%d'/>\n%s", indent, n, m))
	})
}

func takeLines(ts []Take) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.String())
	}
	return out
}

// A pair libvirt or a person wrote, with no virt-failover record and no aliases on its primaries
// (libvirt's own test domains, and a pair made by hand as virsh dumpxml shows it), draws from
// default_pool through a guest's whole life: both
// primaries get distinct VFs and a rewrite at migrate begin (plain <hostdev> primaries their
// standbys' MACs), prepare confirms them, reconnect on the live definition, where libvirt has
// named the primaries hostdev0 and hostdev1, finds them the guest's own and keeps them, and release
// frees them.
func TestUnrecordedPairsLiveOnTheDefaultPool(t *testing.T) {
	for _, tc := range []struct {
		file  string
		takes []string
		macs  []string
	}{
		{"lint/libvirt/9.0.0/qemuxml2argvdata/net-virtio-teaming.xml", []string{
			"fabric: 0000:03:02.0 for QEMUGuest1 primary of ua-backup0 (pending)",
			"fabric: 0000:03:02.1 for QEMUGuest1 primary of ua-backup1 (pending)"}, nil},
		{"lint/libvirt/9.0.0/qemuxml2argvdata/net-virtio-teaming-hostdev.xml", []string{
			"fabric: 0000:03:02.0 for QEMUGuest1 primary of ua-backup0 (pending)",
			"fabric: 0000:03:02.1 for QEMUGuest1 primary of ua-backup1 (pending)"}, []string{
			"hostdev (primary of ua-backup0): VF 0 of enp3s0f0 (0000:03:02.0) MAC set to 00:11:22:33:44:55",
			"hostdev (primary of ua-backup1): VF 1 of enp3s0f0 (0000:03:02.1) MAC set to 66:44:33:22:11:00"}},
		// <interface type='hostdev'> on 0000:3b:02.1, a VF of another host: remapped to this one's.
		{"pair/virsh-dumpxml-unrecorded/in.xml", []string{
			"fabric: 0000:03:02.0 for web-07 primary of ua-backup0 (pending)"}, nil},
	} {
		t.Run(filepath.Base(filepath.Dir(tc.file))+"/"+filepath.Base(tc.file), func(t *testing.T) {
			th := newTestHost(t, "default_pool = \"fabric\"\n[pools.fabric]\npf = [\"enp3s0f0\"]\n")
			p := th.decide("migrate", unrecordedFixture(t, tc.file))
			n := len(tc.takes)
			if d := cmp.Diff(tc.takes, takeLines(p.Takes)); d != "" || p.Refusal != nil || p.Output == nil {
				t.Fatalf("migrate begin: refusal %v, takes (-want +got):\n%s", p.Refusal, d)
			}
			var macs []string
			for _, j := range p.MACs {
				macs = append(macs, j.String())
			}
			if d := cmp.Diff(tc.macs, macs); d != "" {
				t.Errorf("MACs (-want +got):\n%s", d)
			}
			if p := th.decide("prepare", p.Output); p.Refusal != nil || len(p.Takes) != n || len(p.Releases) != 0 {
				t.Fatalf("prepare: refusal %v, takes %q, releases %+v", p.Refusal, takeLines(p.Takes), p.Releases)
			}
			if p := th.decide("reconnect", live(p.Output)); len(p.Conflicts) != 0 || len(p.Takes) != n || len(p.Releases) != 0 {
				t.Fatalf("reconnect on the live definition: conflicts %q, takes %q, releases %+v", p.Conflicts, takeLines(p.Takes), p.Releases)
			}
			c := th.claims()
			if len(c) != n {
				t.Fatalf("claims after reconnect %+v", c)
			}
			for _, c := range c {
				if c.State != ledger.Confirmed {
					t.Fatalf("claims after reconnect %+v", c)
				}
			}
			if p := th.decide("release", live(p.Output)); len(p.Releases) != n || len(th.claims()) != 0 {
				t.Fatalf("release: %+v, left %+v", p.Releases, th.claims())
			}
		})
	}
}
