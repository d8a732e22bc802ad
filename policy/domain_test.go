package policy

import (
	"os"
	"testing"
)

func TestNewDomain(t *testing.T) {
	src, err := os.ReadFile("../testdata/hooks/web-01.xml")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDomain(mustParse(t, src))
	if !d.IsQ35() || len(d.NICs) != 3 || len(d.Hostdevs) != 0 {
		t.Fatalf("machine %q, %d NICs, %d hostdevs", d.Machine, len(d.NICs), len(d.Hostdevs))
	}
	sby := d.NICByAlias("ua-sby0")
	if sby == nil || sby.Model != "virtio" || sby.TeamType != "persistent" || sby.MAC != "52:54:00:6d:90:02" {
		t.Fatalf("standby %+v", sby)
	}
	if p := d.PairIDs["ua-pri0"]; p == nil || AttrOf(p, "value") != "ua-sby0" {
		t.Fatalf("pair ids %v", d.PairIDs)
	}
	if len(d.Aliases["ua-pri0"]) != 1 {
		t.Errorf("aliases %v", d.Aliases)
	}
}

func TestIsUserAlias(t *testing.T) {
	for name, want := range map[string]bool{"ua-sby0": true, "ua-a_b-C": true, "ua-": false, "net0": false, "ua-x.y": false, "UA-x": false} {
		if IsUserAlias(name) != want {
			t.Errorf("IsUserAlias(%q) != %t", name, want)
		}
	}
}

// The view carries the domain's identity and virt-failover's records, read in one place.
func TestDomainIdentityAndRecords(t *testing.T) {
	d := NewDomain(mustParse(t, []byte(`<domain type='kvm'>
  <name> web-01 </name>
  <uuid>5F1C2C8E-2B0A-4F4E-9A57-1D0E6F0C9A11</uuid>
  <metadata>
    <other xmlns='urn:x'/>
    <vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0' version='v1'>
      <vfo:pair kind='net' standby='ua-sby0' primary='ua-pri0' mac='52:54:00:6D:90:02' pool='fabric'/>
      <vfo:other/>
    </vfo:failover>
    <vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0'>
      <vfo:pair kind='net' standby='ua-sby0' primary='ua-pri0' pool='second'/>
      <vfo:pair kind='storage' standby='ua-disk0' primary='ua-nvme0' device='0000:05:00.0' lun='/dev/disk/by-id/x'/>
    </vfo:failover>
  </metadata>
</domain>`)))
	if d.Name != "web-01" || d.UUID != "5f1c2c8e-2b0a-4f4e-9a57-1d0e6f0c9a11" {
		t.Errorf("name %q uuid %q", d.Name, d.UUID)
	}
	if d.Metadata == nil || d.Failover == nil || AttrOf(d.Failover, "version") != "v1" || len(d.Records) != 3 {
		t.Fatalf("metadata %v failover %v, %d records", d.Metadata, d.Failover, len(d.Records))
	}
	if r := d.RecordFor("ua-pri0"); r == nil || r.Pool != "fabric" || r.MAC != "52:54:00:6d:90:02" || r.Kind != "net" {
		t.Errorf("the first record of a primary counts, its MAC as libvirt reads it: %+v", r)
	}
	if r := d.RecordFor("ua-nvme0"); r == nil || r.Device != "0000:05:00.0" || r.LUN != "/dev/disk/by-id/x" {
		t.Errorf("storage record %+v", r)
	}
	if d.RecordFor("") != nil || d.RecordFor("ua-none") != nil {
		t.Error("a record for nothing")
	}
	// The <domain> of a status file, inside <domstatus>.
	doc := mustParse(t, []byte(`<domstatus><domain><name>db-01</name><devices><interface type='network'/></devices></domain></domstatus>`))
	if d := NewDomainAt(doc, doc.Root.Child("domain")); d.Name != "db-01" || d.UUID != "" || len(d.NICs) != 1 || d.Records != nil {
		t.Errorf("NewDomainAt: %+v", d)
	}
}
