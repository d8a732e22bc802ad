package pair

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/virt-failover/virt-failover/policy"
)

// seedOf returns what a domain's stable MACs derive from: its UUID, else its name (libvirt
// would give a definition without <uuid> a random one, and the MAC must not depend on that).
func seedOf(d *policy.Domain) string {
	if d.UUID != "" {
		return "uuid:" + d.UUID
	}
	return "name:" + d.Name
}

// StableMAC derives a MAC from a domain's seed (see docs/pair.md) and a device's host address:
// the first 6 bytes of SHA-256 over both, made a locally administered unicast address (first
// octet with bit 0x02 set and bit 0x01 clear). attempt > 0 gives another address for the same
// device, for when the first one is taken.
func StableMAC(seed, host string, attempt int) string {
	in := "virt-failover mac\x00" + seed + "\x00" + host
	if attempt > 0 {
		in += "\x00" + strconv.Itoa(attempt)
	}
	sum := sha256.Sum256([]byte(in))
	b := sum[:6]
	b[0] = b[0]&^0x01 | 0x02
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(':')
		}
		s.WriteString(hex.EncodeToString([]byte{c}))
	}
	return s.String()
}

// newMAC gives out the stable MAC of the device with host address host, one that no interface of
// the domain has.
func (p *planner) newMAC(host string) string {
	for i := 0; ; i++ {
		m := StableMAC(p.seed, host, i)
		if !p.macs[m] {
			p.macs[m] = true
			return m
		}
	}
}
