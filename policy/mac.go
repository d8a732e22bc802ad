package policy

import "fmt"

// NormalMAC reads a MAC address as libvirt reads <mac address=…> (virMacAddrParse) and returns
// it as libvirt writes it: six groups of lowercase hex digits, two each ("52:54:00:01:02:03").
// libvirt takes one or two hex digits per group, in any case, separated by ':', and ignores
// whatever follows the sixth group after a blank or control character; so "52:54:0:1:2:3" and
// "52:54:00:01:02:03" are the same address. ok is false for a value libvirt refuses.
func NormalMAC(s string) (mac string, ok bool) {
	var b [6]byte
	i := 0
	for g := range b {
		n, v := 0, 0
		for n < 2 && i+n < len(s) && hexVal(s[i+n]) >= 0 {
			v = v<<4 | hexVal(s[i+n])
			n++
		}
		if n == 0 || i+n < len(s) && hexVal(s[i+n]) >= 0 {
			return "", false // no digit, or a third one
		}
		b[g] = byte(v)
		i += n
		switch {
		case g == 5:
			if i < len(s) && s[i] > ' ' {
				return "", false
			}
		case i < len(s) && s[i] == ':':
			i++
		default:
			return "", false
		}
	}
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]), true
}

// hexVal is the value of a hex digit, -1 for any other byte.
func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
