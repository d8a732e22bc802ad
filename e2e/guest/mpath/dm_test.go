package main

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIoctlNumbers: the numbers libdevmapper uses (_IOWR(0xfd, nr, struct dm_ioctl) with the
// 312-byte header).
func TestIoctlNumbers(t *testing.T) {
	for cmd, want := range map[uint]uint{
		cmdDevCreate:   0xc138fd03,
		cmdDevSuspend:  0xc138fd06,
		cmdTableLoad:   0xc138fd09,
		cmdTableStatus: 0xc138fd0c,
		cmdTargetMsg:   0xc138fd0e,
	} {
		if got := ioctlNumber(cmd); got != want {
			t.Errorf("command %d: %#x, want %#x", cmd, got, want)
		}
	}
}

func TestRequestLayout(t *testing.T) {
	spec := targetSpec(0, 131072, "multipath", "1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:0 1")
	if len(spec)%8 != 0 {
		t.Errorf("spec of %d bytes is not 8-aligned", len(spec))
	}
	b, err := dmRequest("mpath0", flagNoflush, 1, spec, 0)
	if err != nil {
		t.Fatal(err)
	}
	ne := binary.NativeEndian
	for _, f := range []struct {
		name      string
		got, want uint32
	}{
		{"version major", ne.Uint32(b[0:]), 4},
		{"data_size", ne.Uint32(b[offDataSize:]), uint32(len(b))},
		{"data_start", ne.Uint32(b[offDataStart:]), dmHeaderSize},
		{"target_count", ne.Uint32(b[offTargetCount:]), 1},
		{"flags", ne.Uint32(b[offFlags:]), flagNoflush},
		{"spec next", ne.Uint32(b[dmHeaderSize+20:]), uint32(len(spec))},
	} {
		if f.got != f.want {
			t.Errorf("%s = %d, want %d", f.name, f.got, f.want)
		}
	}
	if got := ne.Uint64(b[dmHeaderSize+8:]); got != 131072 {
		t.Errorf("length %d", got)
	}
	if name := strings.TrimRight(string(b[offName:offName+dmNameLen]), "\x00"); name != "mpath0" {
		t.Errorf("name %q", name)
	}
	if typ := strings.TrimRight(string(b[dmHeaderSize+24:dmHeaderSize+40]), "\x00"); typ != "multipath" {
		t.Errorf("target type %q", typ)
	}
	params := b[dmHeaderSize+dmSpecSize:]
	if i := strings.IndexByte(string(params), 0); i < 0 || string(params[:i]) != "1 queue_if_no_path 0 1 1 round-robin 0 1 1 8:0 1" {
		t.Errorf("params %q", params)
	}
	if _, err := dmRequest(strings.Repeat("x", dmNameLen), 0, 0, nil, 0); err == nil {
		t.Error("a name of 128 bytes fits")
	}
}

// TestStatusString reads an answer laid out as the kernel's retrieve_status writes it.
func TestStatusString(t *testing.T) {
	status := "2 1 0 0 1 1 A 0 1 0 8:0 A 0"
	b, _ := dmRequest("mpath0", 0, 0, nil, 1024)
	binary.NativeEndian.PutUint32(b[offTargetCount:], 1)
	copy(b[dmHeaderSize:], targetSpec(0, 8, "multipath", status))
	got, err := statusString(b)
	if err != nil || got != status {
		t.Errorf("%q, %v", got, err)
	}
	binary.NativeEndian.PutUint32(b[offFlags:], flagBufferFull)
	if _, err := statusString(b); err == nil {
		t.Error("a full buffer is not an error")
	}
	empty, _ := dmRequest("mpath0", 0, 0, nil, 1024)
	if _, err := statusString(empty); err == nil {
		t.Error("no target is not an error")
	}
}

func TestMultipathTable(t *testing.T) {
	got := multipathTable([][]string{{"8:0"}, {"8:16", "8:32"}})
	want := "1 queue_if_no_path 0 2 1 round-robin 0 1 1 8:0 1 round-robin 0 2 1 8:16 1 8:32 1"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     mapStatus
	}{
		{"both-paths-first-group-in-use", "2 1 0 0 2 1 A 0 1 0 8:0 A 0 E 0 1 0 8:16 A 0",
			mapStatus{Queueing: true, Group: 1, Current: 1, Groups: [][]pathStatus{{{"8:0", true, 0}}, {{"8:16", true, 0}}}}},
		{"assigned-leg-failed-standby-in-use", "2 1 0 0 2 2 E 0 1 0 8:0 F 3 A 0 1 0 8:16 A 0",
			mapStatus{Queueing: true, Group: 2, Current: 2, Groups: [][]pathStatus{{{"8:0", false, 3}}, {{"8:16", true, 0}}}}},
		{"fresh-table-no-io-yet", "2 0 0 0 1 1 E 0 2 0 8:0 A 0 8:16 A 0",
			mapStatus{Group: 1, Groups: [][]pathStatus{{{"8:0", true, 0}, {"8:16", true, 0}}}}},
		{"selector-status-args", "2 1 0 1 x 1 1 A 1 y 1 2 8:0 A 0 p q",
			mapStatus{Queueing: true, Group: 1, Current: 1, Groups: [][]pathStatus{{{"8:0", true, 0}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatus(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
	for _, bad := range []string{"", "2 1 0 0 2 1 A 0 1 0 8:0 A 0", "2 1 0 0 1 1 A 0 1 0 8:0 A 0 extra", "2 1 0 0 1 1 A 0 x"} {
		if st, err := parseStatus(bad); err == nil {
			t.Errorf("%q parses: %+v", bad, st)
		}
	}
}

// TestFailbackGroup: a map left on the standby group while the assigned leg is active again goes
// back to the first group; one on the best group it has, or without an active path in a better
// one, stays.
func TestFailbackGroup(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         int
	}{
		{"leg-reinstated-standby-in-use", "2 1 0 0 2 2 E 0 1 0 8:0 A 0 A 0 1 0 8:16 A 0", 1},
		{"leg-reinstated-switch-pending", "2 1 0 0 2 1 E 0 1 0 8:0 A 0 A 0 1 0 8:16 A 0", 0},
		{"leg-failed-standby-in-use", "2 1 0 0 2 2 E 0 1 0 8:0 F 3 A 0 1 0 8:16 A 0", 0},
		{"both-paths-first-group-in-use", "2 1 0 0 2 1 A 0 1 0 8:0 A 0 E 0 1 0 8:16 A 0", 0},
		{"no-active-path", "2 1 0 0 2 2 E 0 1 0 8:0 F 1 A 0 1 0 8:16 F 1", 0},
	} {
		st, err := parseStatus(tc.status)
		if err != nil {
			t.Fatal(err)
		}
		if got := failbackGroup(st); got != tc.want {
			t.Errorf("%s: failbackGroup = %d, want %d", tc.name, got, tc.want)
		}
	}
}
