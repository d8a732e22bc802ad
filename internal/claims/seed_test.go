package claims

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// install's seeding plans every running guest in one snapshot, as it then applies them in one
// transaction: its dry run shows the same claims and conflicts the real run has. Two guests that
// name the same VF: the first claims it, the second is a conflict, both times.
func TestSeedDryRunIsTheRealRun(t *testing.T) {
	th := newTestHost(t, "[pools.fabric]\npf = [\"enp3s0f0\"]\n")
	for _, g := range []struct{ name, uuid string }{{"db-01", "9d0c2d5e-1111-4a7e-8b6f-000000000001"}, {"db-02", "9d0c2d5e-1111-4a7e-8b6f-000000000002"}} {
		st := `<domstatus state='running'><domain type='kvm' id='7'><name>` + g.name + `</name><uuid>` + g.uuid + `</uuid><devices>
<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x03' slot='0x02' function='0x3'/></source><alias name='hostdev0'/></hostdev>
</devices></domain></domstatus>`
		if err := os.WriteFile(filepath.Join(th.status, g.name+".xml"), []byte(st), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	dryTaken, dryProblems, err := Seed(th.pol, th.status, now, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(th.pol.State.Dir); !os.IsNotExist(err) {
		t.Errorf("the dry run made the state directory: %v", err)
	}
	taken, problems, err := Seed(th.pol, th.status, now, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fabric: 0000:03:02.3 for db-01 hostdev0 (confirmed)"}
	wantProblems := []string{"db-02: claims: hostdev hostdev0 uses VF 0000:03:02.3, but resource held by another claim: db-01 hostdev0 holds 0000:03:02.3"}
	for _, run := range []struct {
		name            string
		taken, problems []string
	}{{"dry run", dryTaken, dryProblems}, {"real run", taken, problems}} {
		if d := cmp.Diff(want, run.taken); d != "" {
			t.Errorf("%s: taken (-want +got):\n%s", run.name, d)
		}
		if d := cmp.Diff(wantProblems, run.problems); d != "" {
			t.Errorf("%s: problems (-want +got):\n%s", run.name, d)
		}
	}
	if c := th.claims(); len(c) != 1 || c[0].Domain != "db-01" {
		t.Errorf("claims %+v", c)
	}
}
