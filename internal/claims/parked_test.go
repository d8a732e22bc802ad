package claims

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// parkedArrival is a bonded guest as it arrives from host vf-a: the orchestrator parked its two
// bond primaries for the migration (an <interface type='hostdev'> and a plain <hostdev>, with
// vf-a's VFs), as libvirt's metadata API stores them, and a GPU for a switch.
const parkedArrival = `<domain type='kvm'>
  <name>db-01</name>
  <uuid>7a2d5c1e-3b4f-4a6d-8e9f-0a1b2c3d4e5f</uuid>
  <metadata>
    <vfo:failover xmlns:vfo="http://virt-failover.org/xmlns/domain/1.0" version="v0.1.0">
      <vfo:pair kind="bond" standby="ua-sby0" primary="ua-pri0" mac="52:54:00:00:00:11" pool="fabric"/>
      <vfo:pair kind="bond" standby="ua-sby1" primary="ua-pri1" mac="52:54:00:00:00:12" pool="fabric"/>
      <vfo:pair kind="detach" primary="ua-gpu0" pool="fabric" device="0000:81:00.0"/>
      <vfo:parked alias="ua-pri0" kind="bond" reason="migration" pool="fabric" since="2026-12-01T00:00:00Z" host="vf-a">
        <vfo:interface type="hostdev" managed="yes">
          <vfo:mac address="52:54:00:00:00:11"/>
          <vfo:source>
            <vfo:address type="pci" domain="0x0000" bus="0x81" slot="0x10" function="0x0"/>
          </vfo:source>
          <vfo:alias name="ua-pri0"/>
        </vfo:interface>
      </vfo:parked>
      <vfo:parked alias="ua-pri1" kind="bond" reason="migration" pool="fabric" since="2026-12-01T00:00:00Z">
        <vfo:hostdev mode="subsystem" type="pci" managed="yes">
          <vfo:source>
            <vfo:address domain="0x0000" bus="0x81" slot="0x10" function="0x1"/>
          </vfo:source>
          <vfo:alias name="ua-pri1"/>
        </vfo:hostdev>
      </vfo:parked>
      <vfo:parked alias="ua-gpu0" kind="detach" reason="switch" pool="fabric" since="2026-12-01T00:00:00Z">
        <vfo:hostdev mode="subsystem" type="pci" managed="yes">
          <vfo:source>
            <vfo:address domain="0x0000" bus="0x81" slot="0x00" function="0x0"/>
          </vfo:source>
          <vfo:alias name="ua-gpu0"/>
        </vfo:hostdev>
      </vfo:parked>
    </vfo:failover>
  </metadata>
  <devices>
    <interface type='bridge'><mac address='52:54:00:00:00:11'/><source bridge='br0'/><model type='virtio'/><alias name='ua-sby0'/></interface>
    <interface type='bridge'><mac address='52:54:00:00:00:12'/><source bridge='br0'/><model type='virtio'/><alias name='ua-sby1'/></interface>
  </devices>
</domain>
`

// Devices parked for a migration are claimed on the host the domain arrives on like primaries:
// migrate begin takes a free VF of the pool for each, rewrites its host address inside its record
// (nothing else: the bytes around the edited attributes are the input's) and names this host there;
// a plain <hostdev>'s VF gets the bond's MAC. Prepare confirms the claims, reconnect keeps them,
// release frees them. A device parked for a switch is left alone.
func TestParkedDevicesAreClaimedOnArrival(t *testing.T) {
	th := newTestHost(t, "[pools.fabric]\npf = [\"enp3s0f0\"]\n")
	p := th.decide("migrate", []byte(parkedArrival))
	if p.Refusal != nil || p.Output == nil {
		t.Fatalf("migrate begin: %+v", p)
	}
	want := []string{
		"fabric: 0000:03:02.0 for db-01 ua-pri0 (pending)",
		"fabric: 0000:03:02.1 for db-01 ua-pri1 (pending)",
	}
	if d := cmp.Diff(want, takeLines(p.Takes)); d != "" {
		t.Errorf("takes (-want +got):\n%s", d)
	}
	if len(p.MACs) != 1 || p.MACs[0].String() != "parked hostdev ua-pri1: VF 1 of enp3s0f0 (0000:03:02.1) MAC set to 52:54:00:00:00:12" {
		t.Errorf("MACs %v", p.MACs)
	}
	// Byte for byte: the input with the two addresses and the two host attributes changed.
	wantOut := strings.NewReplacer(
		`bus="0x81" slot="0x10" function="0x0"`, `bus="0x03" slot="0x02" function="0x0"`,
		`bus="0x81" slot="0x10" function="0x1"`, `bus="0x03" slot="0x02" function="0x1"`,
		`host="vf-a"`, `host="vf-b"`,
		`<vfo:parked alias="ua-pri1" kind="bond" reason="migration" pool="fabric" since="2026-12-01T00:00:00Z">`,
		`<vfo:parked alias="ua-pri1" kind="bond" reason="migration" pool="fabric" since="2026-12-01T00:00:00Z" host="vf-b">`,
	).Replace(parkedArrival)
	if string(p.Output) != wantOut {
		t.Errorf("the rewritten definition:\n%s\nwant:\n%s", p.Output, wantOut)
	}
	doc, err := xmlxform.Parse(p.Output)
	if err != nil {
		t.Fatal(err)
	}
	d := policy.NewDomain(doc)
	if pk := d.ParkedFor("ua-gpu0"); pk.Host != "" || policy.PCIAddress(policy.DeviceChild(pk.Device, "source", "address")) != "0000:81:00.0" {
		t.Errorf("the device parked for a switch was claimed: %+v", pk)
	}
	wantChanges := []string{
		"parked interface ua-pri0: source address 0000:81:10.0 -> 0000:03:02.0 (pool fabric)",
		"parked interface ua-pri0: claimed for its re-plug on host vf-b",
		"parked hostdev ua-pri1: source address 0000:81:10.1 -> 0000:03:02.1 (pool fabric)",
		"parked hostdev ua-pri1: claimed for its re-plug on host vf-b",
	}
	if d := cmp.Diff(wantChanges, p.Changes); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}

	if p := th.decide("prepare", p.Output); p.Refusal != nil || len(p.Takes) != 2 || len(p.Releases) != 0 {
		t.Fatalf("prepare: refusal %v, takes %q, releases %+v", p.Refusal, takeLines(p.Takes), p.Releases)
	}
	for _, c := range th.claims() {
		if c.State != ledger.Confirmed {
			t.Errorf("after prepare: %+v", c)
		}
	}
	if p := th.decide("reconnect", p.Output); len(p.Conflicts) != 0 || len(p.Takes) != 2 || len(p.Releases) != 0 {
		t.Fatalf("reconnect: conflicts %q, takes %q, releases %+v", p.Conflicts, takeLines(p.Takes), p.Releases)
	}
	// Arriving again (an aborted migration tried anew): the claims are kept, nothing moves.
	if again := th.decide("migrate", p.Output); again.Refusal != nil || len(again.Takes) != 2 || again.Output != nil {
		t.Fatalf("migrate begin again: refusal %v, takes %q, output %v", again.Refusal, takeLines(again.Takes), again.Output != nil)
	}
	if p := th.decide("release", p.Output); len(p.Releases) != 2 || len(th.claims()) != 0 {
		t.Fatalf("release: %+v, left %+v", p.Releases, th.claims())
	}
}

// The claims of parked devices belong to the host the record names: on another host (the record
// names vf-b) prepare and reconnect neither claim nor keep them, and a start is never refused for
// a parked device, whatever its address.
func TestParkedDevicesClaimedElsewhere(t *testing.T) {
	th := newTestHost(t, "[pools.fabric]\npf = [\"enp3s0f0\"]\n")
	p := th.decide("migrate", []byte(parkedArrival))
	th.name = "vf-c"
	if p := th.decide("prepare", p.Output); p.Refusal != nil || len(p.Takes) != 0 || len(p.Releases) != 2 {
		t.Fatalf("prepare on another host: refusal %v, takes %q, releases %+v", p.Refusal, takeLines(p.Takes), p.Releases)
	}
	// A definition whose parked devices name VFs this host does not have starts all the same.
	if p := th.decide("prepare", []byte(parkedArrival)); p.Refusal != nil || len(p.Takes) != 0 {
		t.Fatalf("prepare with foreign parked VFs: refusal %v, takes %q", p.Refusal, takeLines(p.Takes))
	}
	if p := th.decide("reconnect", []byte(parkedArrival)); len(p.Conflicts) != 0 || len(p.Takes) != 0 {
		t.Fatalf("reconnect: conflicts %q, takes %q", p.Conflicts, takeLines(p.Takes))
	}
}

// No free VF for a parked device refuses the incoming migration, as for a primary: the
// orchestrator then plugs it back on the source.
func TestParkedDeviceWithoutAFreeVFRefuses(t *testing.T) {
	th := newTestHost(t, "[pools.fabric]\naddresses = [\"0000:03:02.0\"]\n")
	p := th.decide("migrate", []byte(parkedArrival))
	if p.Refusal == nil || !strings.Contains(p.Refusal.Reason, "no free VF in pool 'fabric' on this host for parked hostdev ua-pri1") || len(th.claims()) != 0 {
		t.Fatalf("plan %+v, claims %+v", p, th.claims())
	}
}

// A bond's primary, plugged in, draws from the pool its record names like a teaming primary: a
// start confirms its VF, and a plain <hostdev> one gets the bond's MAC through its PF.
func TestBondPrimaryDrawsFromItsPool(t *testing.T) {
	th := newTestHost(t, "[pools.fabric]\npf = [\"enp3s0f0\"]\n")
	p := th.decide("prepare", []byte(`<domain type='kvm'>
  <name>db-01</name>
  <uuid>7a2d5c1e-3b4f-4a6d-8e9f-0a1b2c3d4e5f</uuid>
  <metadata>
    <vfo:failover xmlns:vfo="http://virt-failover.org/xmlns/domain/1.0">
      <vfo:pair kind="bond" standby="ua-sby1" primary="ua-pri1" mac="52:54:00:00:00:12" pool="fabric"/>
    </vfo:failover>
  </metadata>
  <devices>
    <interface type='bridge'><mac address='52:54:00:00:00:12'/><source bridge='br0'/><model type='virtio'/><alias name='ua-sby1'/></interface>
    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x03' slot='0x02' function='0x2'/></source><alias name='ua-pri1'/></hostdev>
  </devices>
</domain>`))
	if p.Refusal != nil || len(p.Takes) != 1 || p.Takes[0].String() != "fabric: 0000:03:02.2 for db-01 ua-pri1 (confirmed)" {
		t.Fatalf("prepare: refusal %v, takes %q", p.Refusal, takeLines(p.Takes))
	}
	if len(p.MACs) != 1 || p.MACs[0].String() != "hostdev ua-pri1: VF 2 of enp3s0f0 (0000:03:02.2) MAC set to 52:54:00:00:00:12" {
		t.Errorf("MACs %v", p.MACs)
	}
}
