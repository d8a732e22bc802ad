package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestStatusLine is the heartbeat's multipath part; e2e/harness parses the same line
// (TestParseMultipath).
func TestStatusLine(t *testing.T) {
	m := newMpath(config{name: "mpath0"})
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

// TestCheckPath: the path checker's decisions for one path through a run of probes.
func TestCheckPath(t *testing.T) {
	sys := t.TempDir()
	fakeDisk(t, sys, "sda", "8:0", 0, "vmw_pvscsi", "naa.5001405000e2e001", "running")
	m := newMpath(config{name: "mpath0", sys: sys, dev: "/dev"})
	m.known["8:0"] = scanDisks(sys)[0]
	answers := true
	m.probe = func(path string) error {
		if path != "/dev/sda" {
			t.Errorf("probed %s", path)
		}
		if answers {
			return nil
		}
		return errors.New("input/output error")
	}
	var sent []string
	m.message = func(msg string) error {
		sent = append(sent, msg)
		return nil
	}
	deleted := filepath.Join(sys, "devices", "pci0000:00", "host0", "target0:0:0", "0:0:0:0", "delete")
	for i, step := range []struct {
		active, answers bool
		changed         bool
		sent            []string
		removed         bool
	}{
		{active: true, answers: true},
		{active: false, answers: true, changed: true, sent: []string{"reinstate_path 8:0"}},
		{active: true, answers: false, changed: true, sent: []string{"fail_path 8:0"}},
		{active: false, answers: false},
		{active: false, answers: false, removed: true}, // the third failure in a row
	} {
		sent, answers = nil, step.answers
		changed := m.checkPath(pathStatus{Dev: "8:0", Active: step.active})
		_, err := os.Stat(deleted)
		if changed != step.changed || !slices.Equal(sent, step.sent) || (err == nil) != step.removed {
			t.Errorf("step %d: changed %v, sent %q, removed %v", i, changed, sent, err == nil)
		}
	}
}
