package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The device-mapper ioctl interface, as include/uapi/linux/dm-ioctl.h defines it (version 4):
// every command is one struct dm_ioctl header, then its data (target specs with their parameter
// strings, a target message) at data_start; the kernel writes its answer into the same buffer.
const (
	dmHeaderSize = 312 // sizeof(struct dm_ioctl), already a multiple of 8
	dmSpecSize   = 40  // sizeof(struct dm_target_spec)
	dmNameLen    = 128
	dmUUIDLen    = 129

	// Offsets in struct dm_ioctl.
	offDataSize    = 12
	offDataStart   = 16
	offTargetCount = 20
	offFlags       = 28
	offDev         = 40
	offName        = 48
	offUUID        = offName + dmNameLen
)

// Commands (the nr of _IOWR(DM_IOCTL, nr, struct dm_ioctl)).
const (
	cmdDevCreate   = 3
	cmdDevSuspend  = 6 // suspends with flagSuspend, else resumes (swapping in a loaded table)
	cmdTableLoad   = 9
	cmdTableStatus = 12
	cmdTargetMsg   = 14
)

// Flags in struct dm_ioctl.
const (
	flagBufferFull = 1 << 8  // out: the answer did not fit
	flagSkipLockfs = 1 << 10 // no filesystem to freeze
	flagNoflush    = 1 << 11 // suspend without flushing: multipath keeps its queued I/O
)

// ioctlNumber is _IOWR(0xfd, cmd, struct dm_ioctl).
func ioctlNumber(cmd uint) uint {
	const iocReadWrite = 3
	return iocReadWrite<<30 | dmHeaderSize<<16 | 0xfd<<8 | cmd
}

// dmRequest builds a command buffer of size bytes (at least the header and data): version 4.0.0,
// the device name, flags, and data at data_start.
func dmRequest(name string, flags uint32, targets uint32, data []byte, size int) ([]byte, error) {
	if len(name) >= dmNameLen {
		return nil, fmt.Errorf("device-mapper name %q is too long", name)
	}
	size = max(size, dmHeaderSize+len(data))
	b := make([]byte, size)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], 4) // version: major 4, minor 0, patch 0: any 4.x kernel answers
	ne.PutUint32(b[offDataSize:], uint32(size))
	ne.PutUint32(b[offDataStart:], dmHeaderSize)
	ne.PutUint32(b[offTargetCount:], targets)
	ne.PutUint32(b[offFlags:], flags)
	copy(b[offName:offName+dmNameLen], name)
	copy(b[dmHeaderSize:], data)
	return b, nil
}

// targetSpec encodes one struct dm_target_spec and its NUL-terminated parameter string, padded
// to a multiple of 8 bytes.
func targetSpec(start, length uint64, typ, params string) []byte {
	n := dmSpecSize + len(params) + 1
	n = (n + 7) &^ 7
	b := make([]byte, n)
	ne := binary.NativeEndian
	ne.PutUint64(b[0:], start)
	ne.PutUint64(b[8:], length)
	// status (4 bytes) stays 0; next (4 bytes): the offset of the next spec from this one.
	ne.PutUint32(b[20:], uint32(n))
	copy(b[24:40], typ)
	copy(b[dmSpecSize:], params)
	return b
}

// statusString reads the first target's status string from a TABLE_STATUS answer.
func statusString(b []byte) (string, error) {
	ne := binary.NativeEndian
	if len(b) < dmHeaderSize {
		return "", fmt.Errorf("device-mapper answer of %d bytes", len(b))
	}
	if ne.Uint32(b[offFlags:])&flagBufferFull != 0 {
		return "", fmt.Errorf("device-mapper status does not fit in %d bytes", len(b))
	}
	if ne.Uint32(b[offTargetCount:]) == 0 {
		return "", fmt.Errorf("device-mapper device has no table")
	}
	start := int(ne.Uint32(b[offDataStart:])) + dmSpecSize
	if start > len(b) {
		return "", fmt.Errorf("device-mapper answer: data at %d of %d bytes", start, len(b))
	}
	s := b[start:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s), nil
}

// control is /dev/mapper/control.
type control struct{ f *os.File }

func openControl(path string) (*control, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &control{f: f}, nil
}

func (c *control) ioctl(cmd uint, b []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), uintptr(ioctlNumber(cmd)), uintptr(unsafe.Pointer(&b[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

func (c *control) do(what string, cmd uint, name string, flags, targets uint32, data []byte, size int) ([]byte, error) {
	b, err := dmRequest(name, flags, targets, data, size)
	if err != nil {
		return nil, err
	}
	if err := c.ioctl(cmd, b); err != nil {
		return nil, fmt.Errorf("device-mapper %s %s: %w", what, name, err)
	}
	return b, nil
}

// create makes an empty device with a uuid and returns its device number (major:minor).
func (c *control) create(name, uuid string) (string, error) {
	if len(uuid) >= dmUUIDLen {
		return "", fmt.Errorf("device-mapper uuid %q is too long", uuid)
	}
	b, err := dmRequest(name, 0, 0, nil, 0)
	if err != nil {
		return "", err
	}
	copy(b[offUUID:offUUID+dmUUIDLen], uuid)
	if err := c.ioctl(cmdDevCreate, b); err != nil {
		return "", fmt.Errorf("device-mapper create %s: %w", name, err)
	}
	dev := binary.NativeEndian.Uint64(b[offDev:])
	return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)), nil
}

// load loads a one-target table as the device's inactive table.
func (c *control) load(name string, sectors uint64, typ, params string) error {
	_, err := c.do("load", cmdTableLoad, name, 0, 1, targetSpec(0, sectors, typ, params), 0)
	return err
}

// resume makes a loaded table live: the kernel suspends the device (without flushing, so
// multipath requeues what it holds), swaps the tables and resumes.
func (c *control) resume(name string) error {
	_, err := c.do("resume", cmdDevSuspend, name, flagNoflush|flagSkipLockfs, 0, nil, 0)
	return err
}

// status returns the first target's status (STATUSTYPE_INFO).
func (c *control) status(name string) (string, error) {
	b, err := c.do("status", cmdTableStatus, name, 0, 0, nil, 16<<10)
	if err != nil {
		return "", err
	}
	return statusString(b)
}

// message sends a target message ("reinstate_path 8:16") to sector 0.
func (c *control) message(name, msg string) error {
	data := make([]byte, 8+len(msg)+1) // struct dm_target_msg: u64 sector, then the message
	copy(data[8:], msg)
	_, err := c.do("message", cmdTargetMsg, name, 0, 0, data, 0)
	return err
}

// multipathTable is the parameter string of a multipath target (its format is in the kernel's
// drivers/md/dm-mpath.c):
//
//	<#features> <features> <#hw_handler args> <#priority groups> <first group>
//	  per group: <selector> <#selector args> <#paths> <#path args> per path: <dev> <path args>
//
// Each group here uses round-robin with a repeat count of 1; the first group holds the preferred
// paths. queue_if_no_path makes the map hold I/O while no path is left instead of failing it.
func multipathTable(groups [][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "1 queue_if_no_path 0 %d 1", len(groups))
	for _, g := range groups {
		fmt.Fprintf(&b, " round-robin 0 %d 1", len(g))
		for _, dev := range g {
			fmt.Fprintf(&b, " %s 1", dev)
		}
	}
	return b.String()
}

// mapStatus is a multipath target's INFO status.
type mapStatus struct {
	Queueing bool // queue_if_no_path is in force
	Group    int  // the group to use next (or in use), 1-based; 0: none
	Current  int  // the group in use (marked A), 1-based; 0: none yet
	Groups   [][]pathStatus
}

type pathStatus struct {
	Dev      string // major:minor
	Active   bool
	Failures int
}

// parseStatus parses a multipath INFO status:
//
//	<#features> <features> <#hw_handler args> <args> <#groups> <group in use>
//	  per group: <A|E|D> <#selector status args> <args> <#paths> <#selector path args>
//	    per path: <dev> <A|F> <fail count> <selector path args>
func parseStatus(s string) (mapStatus, error) {
	f := strings.Fields(s)
	var st mapStatus
	i := 0
	next := func() (string, error) {
		if i >= len(f) {
			return "", fmt.Errorf("multipath status %q ends early", s)
		}
		i++
		return f[i-1], nil
	}
	num := func() (int, error) {
		t, err := next()
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("multipath status %q: %q at field %d is not a count", s, t, i)
		}
		return n, nil
	}
	skip := func(n int) error {
		if i+n > len(f) {
			return fmt.Errorf("multipath status %q ends early", s)
		}
		i += n
		return nil
	}
	n, err := num()
	if err != nil {
		return st, err
	}
	if n >= 1 && i < len(f) {
		st.Queueing = f[i] == "1" // INFO features: queue_if_no_path in force, pg_init count
	}
	if err := skip(n); err != nil {
		return st, err
	}
	if n, err = num(); err != nil {
		return st, err
	}
	if err := skip(n); err != nil {
		return st, err
	}
	groups, err := num()
	if err != nil {
		return st, err
	}
	if st.Group, err = num(); err != nil {
		return st, err
	}
	for gi := range groups {
		state, err := next() // A (in use), E (enabled) or D (disabled)
		if err != nil {
			return st, err
		}
		if state == "A" {
			st.Current = gi + 1
		}
		if n, err = num(); err != nil {
			return st, err
		}
		if err := skip(n); err != nil {
			return st, err
		}
		paths, err := num()
		if err != nil {
			return st, err
		}
		args, err := num()
		if err != nil {
			return st, err
		}
		var g []pathStatus
		for range paths {
			dev, err := next()
			if err != nil {
				return st, err
			}
			state, err := next()
			if err != nil {
				return st, err
			}
			fails, err := num()
			if err != nil {
				return st, err
			}
			if err := skip(args); err != nil {
				return st, err
			}
			g = append(g, pathStatus{Dev: dev, Active: state == "A", Failures: fails})
		}
		st.Groups = append(st.Groups, g)
	}
	if i != len(f) {
		return st, fmt.Errorf("multipath status %q: %d fields left over", s, len(f)-i)
	}
	return st, nil
}
