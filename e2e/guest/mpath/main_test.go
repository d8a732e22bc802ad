package main

import "testing"

// TestStatusLine is the heartbeat's multipath part; e2e/harness parses the same line
// (TestParseMultipath).
func TestStatusLine(t *testing.T) {
	m := &mpath{c: config{name: "mpath0"}, known: map[string]disk{}}
	if got, want := m.line(), "mpath mpath0 dev=- wwid=- group=0 paths=- written=0 verified=0 ioerr=0 bad=0"; got != want {
		t.Errorf("before the map:\ngot  %s\nwant %s", got, want)
	}
	m.node, m.wwid = "dm-0", "naa.5001405000e2e001"
	m.known["8:0"] = disk{Name: "sda", Dev: "8:0", HBA: "vmw_pvscsi"}
	m.known["8:16"] = disk{Name: "sdb", Dev: "8:16", HBA: "virtio_scsi"}
	m.status = mapStatus{Group: 2, Current: 2, Groups: [][]pathStatus{{{Dev: "8:0"}}, {{Dev: "8:16", Active: true}}, {{Dev: "8:48", Active: true}}}}
	m.cnt.Written.Store(120)
	m.cnt.Verified.Store(238)
	want := "mpath mpath0 dev=dm-0 wwid=naa.5001405000e2e001 group=2 paths=sda:vmw_pvscsi:F:1,sdb:virtio_scsi:A:2,8.48:-:A:3 written=120 verified=238 ioerr=0 bad=0"
	if got := m.line(); got != want {
		t.Errorf("\ngot  %s\nwant %s", got, want)
	}
}
