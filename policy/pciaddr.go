package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// A host PCI address has one canonical spelling everywhere virt-failover compares or prints one:
// DDDD:BB:SS.F in lowercase hex, the domain at least four digits — what "lspci -D" and libvirt's
// own messages write (0000:3b:02.1). Domain XML may spell the same address in other ways, and
// reads are done as libvirt does them, so that what we print is what libvirt means.

// PCIAddr is a PCI address: domain, bus, slot and function.
type PCIAddr struct {
	Domain, Bus, Slot, Function uint32
}

// String writes the address canonically: "0000:3b:02.1".
func (a PCIAddr) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", a.Domain, a.Bus, a.Slot, a.Function)
}

// Valid reports whether the parts are in range (libvirt's virPCIDeviceAddressIsValid, without
// its all-zero rule): bus at most 0xff, slot at most 0x1f, function at most 7. The domain is
// 32 bits.
func (a PCIAddr) Valid() bool {
	return a.Bus <= 0xff && a.Slot <= 0x1f && a.Function <= 7
}

// ReadPCIAddress reads an <address domain= bus= slot= function=/> element as libvirt does
// (virPCIDeviceAddressParseXML): each attribute is an unsigned number in C's base 0 — "0x3b" is
// hex, "59" decimal, "073" octal —, an absent one is 0, and the parts must be in range. An element
// with a type other than 'pci' is an error too.
func ReadPCIAddress(e *xmlxform.Element) (PCIAddr, error) {
	var a PCIAddr
	if e == nil {
		return a, fmt.Errorf("no <address>")
	}
	if t, ok := e.Attr("type"); ok && t != "pci" {
		return a, fmt.Errorf("<address type='%s'> is not a PCI address", t)
	}
	for _, f := range []struct {
		name string
		to   *uint32
	}{{"domain", &a.Domain}, {"bus", &a.Bus}, {"slot", &a.Slot}, {"function", &a.Function}} {
		v, ok := e.Attr(f.name)
		if !ok {
			continue
		}
		n, ok := ParseXMLUint(v)
		if !ok {
			return a, fmt.Errorf("%s='%s' is not a number libvirt reads (decimal, 0x-hex or 0-octal)", f.name, v)
		}
		*f.to = n
	}
	if !a.Valid() {
		return a, fmt.Errorf("bus='0x%x' slot='0x%x' function='0x%x' is out of range (bus at most 0xff, slot 0x1f, function 7)",
			a.Bus, a.Slot, a.Function)
	}
	return a, nil
}

// PCIAddress returns the canonical spelling of an <address> element read as libvirt reads it
// (see [ReadPCIAddress]), "" when e is nil, not a PCI address, or not one libvirt takes.
func PCIAddress(e *xmlxform.Element) string {
	a, err := ReadPCIAddress(e)
	if err != nil {
		return ""
	}
	return a.String()
}

// ParseXMLUint parses an unsigned attribute value as libvirt does (virXMLPropUInt with base 0,
// that is virStrToLong_uip: strtoul's syntax, no sign but an optional '+', the whole value): after
// leading blanks, "0x" or "0X" and hex digits, "0" and octal digits, or decimal digits; at most
// 2^32-1.
func ParseXMLUint(s string) (uint32, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	s = strings.TrimPrefix(s, "+")
	base := 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, base = s[2:], 16
	case len(s) > 1 && s[0] == '0':
		s, base = s[1:], 8
	}
	if s == "" || s[0] == '+' || s[0] == '-' || strings.ContainsRune(s, '_') {
		return 0, false
	}
	n, err := strconv.ParseUint(s, base, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// ParsePCIAddress parses a host PCI address as "lspci -D" writes it, DOMAIN:BB:SS.F in hex (the
// domain 4 to 8 digits, bus and slot 2, function 1; any case).
func ParsePCIAddress(s string) (PCIAddr, bool) {
	var a PCIAddr
	dom, rest, ok := strings.Cut(s, ":")
	if !ok || len(dom) < 4 || len(dom) > 8 {
		return a, false
	}
	bus, rest, ok := strings.Cut(rest, ":")
	if !ok || len(bus) != 2 {
		return a, false
	}
	slot, fn, ok := strings.Cut(rest, ".")
	if !ok || len(slot) != 2 || len(fn) != 1 {
		return a, false
	}
	for _, f := range []struct {
		s  string
		to *uint32
	}{{dom, &a.Domain}, {bus, &a.Bus}, {slot, &a.Slot}, {fn, &a.Function}} {
		for i := 0; i < len(f.s); i++ {
			if !isHexDigit(f.s[i]) {
				return a, false
			}
		}
		n, err := strconv.ParseUint(f.s, 16, 32)
		if err != nil {
			return a, false
		}
		*f.to = uint32(n)
	}
	return a, a.Valid()
}

// NormalPCIAddress parses a full host PCI address DDDD:BB:SS.F (see [ParsePCIAddress]) and
// returns its canonical spelling.
func NormalPCIAddress(s string) (string, bool) {
	a, ok := ParsePCIAddress(s)
	if !ok {
		return "", false
	}
	return a.String(), true
}

func isHexDigit(b byte) bool {
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F')
}
