package policy

import (
	"testing"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// Addresses are read as libvirt reads them: every attribute in C's base 0 (0x-hex, decimal,
// 0-octal), absent ones 0; hostdev-vfio-multidomain.xml of libvirt's test suite writes
// bus='222' slot='31', which is 0021:de:1f.1.
func TestPCIAddress(t *testing.T) {
	for src, want := range map[string]string{
		`<address type='pci' domain='0x0000' bus='0x03' slot='0x07' function='0x1'/>`: "0000:03:07.1",
		`<address bus='3' slot='0x1f'/>`:                                              "0000:03:1f.0",
		`<address domain='0x0021' bus='222' slot='31' function='1'/>`:                 "0021:de:1f.1",
		`<address domain='0X0021' bus='0XDE' slot='0x1F' function='0x1'/>`:            "0021:de:1f.1",
		`<address domain='0' bus='010' slot='0' function='0'/>`:                       "0000:08:00.0", // octal, as strtoul reads it
		`<address domain='65536' bus='1' slot='0' function='0'/>`:                     "10000:01:00.0",
		`<address domain=' +0x10' bus='0' slot='1' function='0'/>`:                    "0010:00:01.0",
		`<address type='drive'/>`:                                                     "",
		`<address bus='256'/>`:                                                        "", // bus above 0xff
		`<address bus='0x3b' slot='32'/>`:                                             "", // slot above 0x1f
		`<address bus='0x3b' function='8'/>`:                                          "", // function above 7
		`<address bus='0x3b' function='-1'/>`:                                         "",
		`<address bus='3b'/>`:                                                         "", // hex without 0x: libvirt refuses it
		`<address bus='0x'/>`:                                                         "",
		`<address bus='09'/>`:                                                         "", // not octal
		`<address bus='1_0'/>`:                                                        "",
		`<address bus='3 '/>`:                                                         "",
		`<address domain='0x100000000' bus='0x3b'/>`:                                  "",
	} {
		doc, err := xmlxform.Parse([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := PCIAddress(doc.Root); got != want {
			t.Errorf("%s: %q, want %q", src, got, want)
		}
		if _, err := ReadPCIAddress(doc.Root); (err == nil) != (want != "") {
			t.Errorf("%s: ReadPCIAddress error %v", src, err)
		}
	}
	if PCIAddress(nil) != "" {
		t.Error("nil gives an address")
	}
}

// What PCIAddress prints, NormalPCIAddress takes back unchanged.
func TestPCIAddressRoundTrip(t *testing.T) {
	for _, a := range []PCIAddr{{0, 0x3b, 2, 1}, {0x21, 0xde, 0x1f, 7}, {0x10000, 1, 0, 0}, {0xffffffff, 0xff, 0x1f, 7}} {
		s := a.String()
		n, ok := NormalPCIAddress(s)
		if !ok || n != s {
			t.Errorf("%+v: %q gives %q, %t", a, s, n, ok)
		}
	}
	for in, want := range map[string]string{"00000021:DE:1F.1": "0021:de:1f.1", "10000:01:00.0": "10000:01:00.0"} {
		if got, ok := NormalPCIAddress(in); !ok || got != want {
			t.Errorf("%s: %q %t, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"000:03:02.1", "000000000:03:02.1", "0000:3:02.1", "0000:03:2.1", "0000:03:02.a", "0000:03:02.1 ", "+000:03:02.1"} {
		if got, ok := NormalPCIAddress(bad); ok {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

func TestParseXMLUint(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "00": 0, "0x0": 0, "255": 255, "0xff": 255, "0XFF": 255, "0377": 255, "+7": 7, "\t 7": 7,
		"4294967295": 4294967295, "4294967296": -1, "": -1, "-0": -1, "0x": -1, "08": -1, "7 ": -1, "0b1": -1, "0o7": -1, "x1": -1, "++1": -1} {
		n, ok := ParseXMLUint(in)
		if want < 0 && ok || want >= 0 && (!ok || int64(n) != want) {
			t.Errorf("ParseXMLUint(%q) = %d, %t; want %d", in, n, ok, want)
		}
	}
}
