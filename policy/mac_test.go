package policy

import "testing"

// TestNormalMAC: every spelling libvirt's virMacAddrParse takes gives the one libvirt writes;
// what it refuses is refused.
func TestNormalMAC(t *testing.T) {
	for in, want := range map[string]string{
		"52:54:00:6d:90:02":        "52:54:00:6d:90:02",
		"52:54:00:6D:90:02":        "52:54:00:6d:90:02",
		"52:54:0:1:2:3":            "52:54:00:01:02:03",
		"0:0:0:0:0:0":              "00:00:00:00:00:00",
		"52:54:00:6d:90:02 ":       "52:54:00:6d:90:02",
		"52:54:00:6d:90:02\tx":     "52:54:00:6d:90:02",
		"":                         "",
		" 52:54:00:6d:90:02":       "",
		"52:54:00:6d:90":           "",
		"52:54:00:6d:90:02:03":     "",
		"52:54:00:6d:90:002":       "",
		"52-54-00-6d-90-02":        "",
		"52:54:00:6d:90:0g":        "",
		"52:54::6d:90:02":          "",
		"0x52:54:00:6d:90:02":      "",
		"52:54:00:6d:90:02x":       "",
		"+52:54:00:6d:90:02":       "",
		"525400:6d:90:02:00:00:00": "",
	} {
		got, ok := NormalMAC(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalMAC(%q) = %q, %t; want %q", in, got, ok, want)
		}
	}
}

// TestNICMACIsNormal: the read model holds the MAC libvirt means, so rules and the hook compare
// spellings of one address as equal.
func TestNICMACIsNormal(t *testing.T) {
	d := NewDomain(mustParse(t, []byte(`<domain><devices>
<interface type='bridge'><mac address='52:54:0:A:b:C'/></interface>
<interface type='bridge'><mac address='not a mac'/></interface>
</devices></domain>`)))
	if d.NICs[0].MAC != "52:54:00:0a:0b:0c" || d.NICs[1].MAC != "not a mac" {
		t.Errorf("MACs %q, %q", d.NICs[0].MAC, d.NICs[1].MAC)
	}
}
