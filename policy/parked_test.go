package policy

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// A bonded guest as libvirt shows it: a pair record, other metadata, and the assigned NIC the
// orchestrator parks.
const parkDomain = `<domain type='kvm'>
  <name>web-02</name>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
    <vfo:failover xmlns:vfo="http://virt-failover.org/xmlns/domain/1.0" version="v0.1.0">
      <vfo:pair kind="bond" standby="ua-sby0" primary="ua-pri0" mac="52:54:00:6d:90:02" pool="fabric"/>
      <!-- kept as it is -->
      <vfo:pair kind="detach" primary="ua-gpu0" device="0000:41:00.0"/>
    </vfo:failover>
  </metadata>
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:6d:90:02'/>
      <source bridge='br-fabric'/>
      <model type='virtio'/>
      <alias name='ua-sby0'/>
    </interface>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:6d:90:02'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x03' slot='0x02' function='0x1'/>
      </source>
      <alias name='ua-pri0'/>
      <address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/>
    </interface>
  </devices>
</domain>
`

var parkedAt = time.Date(2026, 5, 1, 10, 0, 0, 0, time.FixedZone("CEST", 2*3600))

// The payload for virDomainSetMetadata: the metadata as it was without virt-failover's prefix,
// plus the record holding the device's definition.
func TestParkMetadata(t *testing.T) {
	d := NewDomain(mustParse(t, []byte(parkDomain)))
	got, err := d.ParkMetadata(Park{Alias: "ua-pri0", Kind: KindBondPair, Reason: ParkedForMigration, Pool: "fabric", Since: parkedAt})
	if err != nil {
		t.Fatal(err)
	}
	want := `<failover version="v0.1.0">
  <pair kind="bond" standby="ua-sby0" primary="ua-pri0" mac="52:54:00:6d:90:02" pool="fabric"/>
  <!-- kept as it is -->
  <pair kind="detach" primary="ua-gpu0" device="0000:41:00.0"/>
  <parked alias="ua-pri0" kind="bond" reason="migration" pool="fabric" since="2026-05-01T08:00:00Z">
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:6d:90:02'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x03' slot='0x02' function='0x1'/>
      </source>
      <alias name='ua-pri0'/>
      <address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/>
    </interface>
  </parked>
</failover>`
	if got != want {
		t.Fatalf("payload:\n%s\nwant:\n%s", got, want)
	}
}

// asLibvirtStores renders a payload as libvirt stores it after virDomainSetMetadata (verified on
// libvirt 9.0, docs/metadata.md#parked): every element of the payload in virt-failover's
// namespace, with the prefix of the key, declared on the top element.
func asLibvirtStores(payload string) string {
	tag := regexp.MustCompile(`<(/?)([A-Za-z])`)
	s := tag.ReplaceAllString(payload, "<${1}vfo:$2")
	return strings.Replace(s, "<vfo:failover", `<vfo:failover xmlns:vfo="`+NamespaceMetadata+`"`, 1)
}

// setMetadata returns the domain with its <vfo:failover> replaced by the payload as libvirt
// stores it, and the device parked removed from <devices>, as the orchestrator leaves it.
func setMetadata(t *testing.T, src, payload, detached string) *Domain {
	t.Helper()
	d := NewDomain(mustParse(t, []byte(src)))
	tr := xmlxform.NewTransform(d.Doc)
	tr.Replace(d.Failover.Span(), asLibvirtStores(payload))
	if detached != "" {
		tr.Remove(d.Aliases[detached][0])
	}
	out, err := tr.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return NewDomain(mustParse(t, out))
}

// A parked device read back from what libvirt stores gives the device's definition as it was, and
// unparking gives back the metadata it had.
func TestParkedRoundTrip(t *testing.T) {
	before := NewDomain(mustParse(t, []byte(parkDomain)))
	payload, err := before.ParkMetadata(Park{Alias: "ua-pri0", Kind: KindBondPair, Reason: ParkedForMigration, Pool: "fabric", Since: parkedAt})
	if err != nil {
		t.Fatal(err)
	}
	d := setMetadata(t, parkDomain, payload, "ua-pri0")
	if len(d.Parked) != 1 || len(d.Records) != 2 {
		t.Fatalf("%d parked, %d records", len(d.Parked), len(d.Records))
	}
	p := d.ParkedFor("ua-pri0")
	if p == nil || p.Kind != "bond" || p.Reason != "migration" || p.Pool != "fabric" || p.Host != "" || p.Device == nil {
		t.Fatalf("parked %+v", p)
	}
	if at, ok := p.SinceTime(); !ok || !at.Equal(parkedAt) {
		t.Errorf("since %q", p.Since)
	}
	if p.Device.Name.Space != NamespaceMetadata || p.Device.Name.Local != "interface" {
		t.Errorf("the device element is %v", p.Device.Name)
	}
	if a := DeviceChild(p.Device, "source", "address"); PCIAddress(a) != "0000:03:02.1" {
		t.Errorf("the device's host address through DeviceChild: %v", a)
	}
	dev, err := d.DeviceXML(p)
	if err != nil {
		t.Fatal(err)
	}
	orig := before.Aliases["ua-pri0"][0]
	wantDev := reindent(string(before.Doc.Src[orig.Start.Start:orig.Span().End]), "    ", "")
	if dev != wantDev {
		t.Errorf("DeviceXML:\n%s\nwant the device as it was:\n%s", dev, wantDev)
	}
	if _, err := d.ParkMetadata(Park{Alias: "ua-pri0", Kind: KindBondPair, Reason: ParkedForMigration, Since: parkedAt}); err == nil {
		t.Error("a device parked already was parked again")
	}
	back, err := d.UnparkMetadata("ua-pri0")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := before.metadataPayload(nil, "")
	if back != first {
		t.Errorf("unparked:\n%s\nwant the metadata as it was:\n%s", back, first)
	}
	if _, err := before.UnparkMetadata("ua-pri0"); err == nil {
		t.Error("a device that is not parked was unparked")
	}
}

// A record written whole (virsh define of a definition) holds the device in no namespace; it reads
// the same, and a payload made from it keeps the device unprefixed for libvirt to place.
func TestParkedInNoNamespace(t *testing.T) {
	d := NewDomain(mustParse(t, []byte(`<domain type='kvm'>
  <name>n</name>
  <metadata>
    <x:failover xmlns:x='http://virt-failover.org/xmlns/domain/1.0'>
      <x:parked alias='ua-hd0' kind='storage' reason='switch' since='2026-05-01T08:00:00Z' host='host-b'>
        <hostdev mode='subsystem' type='pci' managed='yes'>
          <source>
            <address domain='0x0000' bus='0x81' slot='0x00' function='0x0'/>
          </source>
          <alias name='ua-hd0'/>
        </hostdev>
      </x:parked>
      <x:parked alias='ua-gone' kind='detach' reason='migration'/>
    </x:failover>
  </metadata>
  <devices/>
</domain>`)))
	if len(d.Parked) != 2 {
		t.Fatalf("%d parked", len(d.Parked))
	}
	p := d.Parked[0]
	if p.Alias != "ua-hd0" || p.Reason != ParkedForSwitch || p.Host != "host-b" || p.Device == nil || p.Device.Name.Space != "" {
		t.Fatalf("parked %+v", p)
	}
	if PCIAddress(DeviceChild(p.Device, "source", "address")) != "0000:81:00.0" {
		t.Error("the device's address")
	}
	if d.Parked[1].Device != nil {
		t.Error("a record without a device has one")
	}
	if _, err := d.DeviceXML(d.Parked[1]); err == nil {
		t.Error("DeviceXML of a record without a device")
	}
	got, err := d.UnparkMetadata("ua-gone")
	if err != nil {
		t.Fatal(err)
	}
	want := `<failover>
  <parked alias='ua-hd0' kind='storage' reason='switch' since='2026-05-01T08:00:00Z' host='host-b'>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='0x81' slot='0x00' function='0x0'/>
      </source>
      <alias name='ua-hd0'/>
    </hostdev>
  </parked>
</failover>`
	if got != want {
		t.Errorf("payload:\n%s\nwant:\n%s", got, want)
	}
	// The last record gone: an empty element.
	d2 := setMetadata(t, string(d.Doc.Src), got, "")
	if got, _ := d2.UnparkMetadata("ua-hd0"); got != "<failover></failover>" {
		t.Errorf("payload without records: %q", got)
	}
}

// A domain without virt-failover metadata (a pair made by hand, parked by a switch) gets a new
// element.
func TestParkWithoutMetadata(t *testing.T) {
	d := NewDomain(mustParse(t, []byte(`<domain type='kvm'>
  <name>n</name>
  <devices>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x81' slot='0x00' function='0x0'/></source>
      <alias name='ua-hd0'/>
    </hostdev>
  </devices>
</domain>`)))
	got, err := d.ParkMetadata(Park{Alias: "ua-hd0", Kind: KindDetachPair, Reason: ParkedForSwitch, Since: parkedAt})
	if err != nil {
		t.Fatal(err)
	}
	want := `<failover>
  <parked alias="ua-hd0" kind="detach" reason="switch" since="2026-05-01T08:00:00Z">
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x81' slot='0x00' function='0x0'/></source>
      <alias name='ua-hd0'/>
    </hostdev>
  </parked>
</failover>`
	if got != want {
		t.Errorf("payload:\n%s\nwant:\n%s", got, want)
	}
	d2 := NewDomain(mustParse(t, []byte(strings.Replace(string(d.Doc.Src), "<name>n</name>", "<name>n</name>\n  <metadata>"+asLibvirtStores(got)+"</metadata>", 1))))
	if p := d2.ParkedFor("ua-hd0"); p == nil || p.Device == nil || p.Kind != "detach" {
		t.Fatalf("parked %+v", p)
	}
}

func TestParkRefuses(t *testing.T) {
	d := NewDomain(mustParse(t, []byte(parkDomain)))
	for _, tc := range []struct {
		park Park
		want string
	}{
		{Park{Alias: "hostdev0", Reason: ParkedForMigration}, "user alias"},
		{Park{Alias: "ua-pri0", Reason: "later"}, `the reason is "later"`},
		{Park{Alias: "ua-nope", Reason: ParkedForMigration}, "0 devices"},
	} {
		if _, err := d.ParkMetadata(tc.park); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParkMetadata(%+v) = %v, want an error with %q", tc.park, err, tc.want)
		}
	}
	// A prefix the metadata uses but declares outside it cannot stand alone.
	d = NewDomain(mustParse(t, []byte(`<domain xmlns:y='urn:y'><metadata><vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0'><y:z/></vfo:failover></metadata><devices><disk><alias name='ua-d'/></disk></devices></domain>`)))
	if _, err := d.ParkMetadata(Park{Alias: "ua-d", Reason: ParkedForSwitch}); err == nil || !strings.Contains(err.Error(), "does not stand alone") {
		t.Errorf("a payload with an undeclared prefix: %v", err)
	}
}
