// Package vfmac sets the MAC address a PF gives one of its VFs, the way "ip link set PF vf N mac
// MAC" does: an RTM_SETLINK netlink request on the PF with IFLA_VFINFO_LIST / IFLA_VF_INFO /
// IFLA_VF_MAC. libvirt does this itself for <interface type='hostdev'> but not for a plain
// <hostdev>, and Linux net_failover pairs a VF with its virtio standby only when their MACs are
// equal (docs/failover.md#mac-addresses).
package vfmac

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// MAC is an Ethernet address.
type MAC [6]byte

// ParseMAC reads "52:54:00:6d:90:02".
func ParseMAC(s string) (MAC, error) {
	var m MAC
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return m, fmt.Errorf("%q is not an Ethernet MAC", s)
	}
	for i, p := range parts {
		b, err := hex.DecodeString(p)
		if err != nil || len(b) != 1 {
			return m, fmt.Errorf("%q is not an Ethernet MAC", s)
		}
		m[i] = b[0]
	}
	return m, nil
}

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// Setter programs VF MACs. The hook uses Netlink; tests use a fake.
type Setter interface {
	SetMAC(pf string, vf int, mac MAC) error
}

// Netlink programs VF MACs through the kernel's rtnetlink.
type Netlink struct{}

var seq atomic.Uint32

// SetMAC sets the MAC of VF number vf of the PF network interface pf. The request names the PF
// by name (IFLA_IFNAME); the kernel resolves it.
func (Netlink) SetMAC(pf string, vf int, mac MAC) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("vf mac: netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("vf mac: netlink bind: %w", err)
	}
	n := seq.Add(1) + uint32(os.Getpid())<<8
	msg := Request(n, pf, uint32(vf), mac)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("vf mac: netlink send: %w", err)
	}
	buf := make([]byte, 8192)
	for {
		k, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("vf mac: netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:k])
		if err != nil {
			return fmt.Errorf("vf mac: netlink reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != n || m.Header.Type != syscall.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return fmt.Errorf("vf mac: short netlink reply")
			}
			if errno := int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
				return fmt.Errorf("vf mac: ip link set %s vf %d mac %s: %w", pf, vf, mac, unix.Errno(-errno))
			}
			return nil
		}
	}
}

// Request builds the RTM_SETLINK message that sets VF vf's MAC on the interface named pf.
func Request(seq uint32, pf string, vf uint32, mac MAC) []byte {
	// struct ifla_vf_mac { __u32 vf; __u8 mac[32]; }
	vfMac := make([]byte, 4+32)
	binary.NativeEndian.PutUint32(vfMac, vf)
	copy(vfMac[4:], mac[:])
	info := attr(unix.IFLA_VF_INFO|unix.NLA_F_NESTED, attr(unix.IFLA_VF_MAC, vfMac))
	list := attr(unix.IFLA_VFINFO_LIST|unix.NLA_F_NESTED, info)
	name := attr(unix.IFLA_IFNAME, append([]byte(pf), 0))

	ifm := make([]byte, unix.SizeofIfInfomsg) // ifi_index 0: the kernel finds the link by IFLA_IFNAME
	ifm[0] = unix.AF_UNSPEC

	body := append(append(ifm, name...), list...)
	hdr := make([]byte, unix.SizeofNlMsghdr)
	binary.NativeEndian.PutUint32(hdr[0:4], uint32(len(hdr)+len(body)))
	binary.NativeEndian.PutUint16(hdr[4:6], unix.RTM_SETLINK)
	binary.NativeEndian.PutUint16(hdr[6:8], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(hdr[8:12], seq)
	return append(hdr, body...)
}

// attr encodes one netlink attribute, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:2], uint16(l))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	copy(b[4:], data)
	return b
}
