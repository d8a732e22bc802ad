package lint

import "testing"

// TestParseUint: numbers as libvirt's virStrToLong_uip reads them, in the two bases libvirt uses
// for the attributes the rules read (0 for PCI addresses, 10 for indexes).
func TestParseUint(t *testing.T) {
	for _, c := range []struct {
		in   string
		base int
		want int
		ok   bool
	}{
		{"0x1f", 0, 31, true}, {"0X1F", 0, 31, true}, {"31", 0, 31, true}, {"037", 0, 31, true},
		{"0", 0, 0, true}, {" \t+8", 0, 8, true}, {"010", 0, 8, true}, {"010", 10, 10, true},
		{"08", 0, 0, false}, {"0x", 0, 0, false}, {"0x10", 10, 0, false}, {"-1", 0, 0, false},
		{"", 0, 0, false}, {"1 ", 0, 0, false}, {"++1", 0, 0, false}, {"1_0", 10, 0, false},
		{"0x10", 16, 16, true}, {"10", 16, 16, true},
	} {
		got, ok := parseUint(c.in, c.base)
		if got != c.want || ok != c.ok {
			t.Errorf("parseUint(%q, %d) = %d, %t; want %d, %t", c.in, c.base, got, ok, c.want, c.ok)
		}
	}
}
