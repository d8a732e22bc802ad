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
