package vfmac

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMAC(t *testing.T) {
	m, err := ParseMAC("52:54:00:6D:90:02")
	if err != nil || m.String() != "52:54:00:6d:90:02" {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"", "52:54:00:6d:90", "52:54:00:6d:90:0g", "525:4:00:6d:90:02"} {
		if _, err := ParseMAC(bad); err == nil {
			t.Errorf("ParseMAC(%q): no error", bad)
		}
	}
}

func TestRequestLayout(t *testing.T) {
	mac, _ := ParseMAC("52:54:00:6d:90:02")
	b := Request(7, "enp3s0f0", 3, mac)
	u16 := func(off int) uint16 { return binary.NativeEndian.Uint16(b[off:]) }
	u32 := func(off int) uint32 { return binary.NativeEndian.Uint32(b[off:]) }
	// nlmsghdr(16) ifinfomsg(16) IFNAME(4 + 9, padded to 16) VFINFO_LIST(4) VF_INFO(4) VF_MAC(4 + 36)
	if want := 16 + 16 + 16 + 4 + 4 + 4 + 36; len(b) != want || int(u32(0)) != want {
		t.Fatalf("length %d (header says %d), want %d", len(b), u32(0), want)
	}
	if u16(4) != unix.RTM_SETLINK || u16(6) != unix.NLM_F_REQUEST|unix.NLM_F_ACK || u32(8) != 7 {
		t.Errorf("header type %d flags %#x seq %d", u16(4), u16(6), u32(8))
	}
	if u32(16+4) != 0 {
		t.Errorf("ifindex %d, want 0 (by name)", u32(20))
	}
	if u16(32) != 13 || u16(34) != unix.IFLA_IFNAME || string(b[36:45]) != "enp3s0f0\x00" {
		t.Errorf("IFLA_IFNAME: len %d type %d %q", u16(32), u16(34), b[36:45])
	}
	for _, a := range []struct {
		off      int
		len, typ uint16
	}{
		{48, 48, unix.IFLA_VFINFO_LIST | unix.NLA_F_NESTED},
		{52, 44, unix.IFLA_VF_INFO | unix.NLA_F_NESTED},
		{56, 40, unix.IFLA_VF_MAC},
	} {
		if u16(a.off) != a.len || u16(a.off+2) != a.typ {
			t.Errorf("attribute at %d: len %d type %#x, want %d %#x", a.off, u16(a.off), u16(a.off+2), a.len, a.typ)
		}
	}
	if u32(60) != 3 || !bytes.Equal(b[64:70], mac[:]) || !bytes.Equal(b[70:96], make([]byte, 26)) {
		t.Errorf("ifla_vf_mac: vf %d mac % x", u32(60), b[64:96])
	}
}

// The kernel answers a real request: the loopback device has no VFs, so it refuses, and the
// error says which command failed. Nothing is changed.
func TestNetlinkRefusalComesBack(t *testing.T) {
	mac, _ := ParseMAC("52:54:00:6d:90:02")
	err := Netlink{}.SetMAC("lo", 0, mac)
	if err == nil {
		t.Fatal("setting a VF MAC on lo succeeded")
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		t.Skipf("no netlink answer here: %v", err)
	}
	t.Logf("kernel: %v", err)
	err = Netlink{}.SetMAC("no-such-if0", 0, mac)
	if !errors.As(err, &errno) || errno != unix.ENODEV {
		t.Errorf("missing PF: %v, want ENODEV", err)
	}
}
