package policy

// NormalMAC reads a MAC address as libvirt reads <mac address=…> (virMacAddrParse) and returns
// it as libvirt writes it: six groups of lowercase hex digits, two each ("52:54:00:01:02:03").
// libvirt takes one or two hex digits per group, in any case, separated by ':', and ignores
// whatever follows the sixth group after a blank or control character; so "52:54:0:1:2:3" and
// "52:54:00:01:02:03" are the same address. ok is false for a value libvirt refuses.
func NormalMAC(s string) (mac string, ok bool) {
	if isNormalMAC(s) {
		return s, true // the common case, without an allocation
	}
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
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 17)
	for g, v := range b {
		if g > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[v>>4], digits[v&15])
	}
	return string(out), true
}

// isNormalMAC reports whether s is already written as libvirt writes a MAC.
func isNormalMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < 17; i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
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
