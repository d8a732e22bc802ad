package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeDisk adds a SCSI disk to a fake sysfs tree laid out as the kernel's: /sys/block/NAME with
// dev and size, its device link into the SCSI host's tree, the host's proc_name.
func fakeDisk(t *testing.T, sys, name, dev string, host int, hba, wwid, state string) {
	t.Helper()
	h := fmt.Sprintf("host%d", host)
	sdev := filepath.Join(sys, "devices", "pci0000:00", h, fmt.Sprintf("target%d:0:0", host), fmt.Sprintf("%d:0:0:0", host))
	block := filepath.Join(sys, "block", name)
	for path, content := range map[string]string{
		filepath.Join(sdev, "wwid"):                              wwid + "\n",
		filepath.Join(sdev, "state"):                             state + "\n",
		filepath.Join(block, "dev"):                              dev + "\n",
		filepath.Join(block, "size"):                             "131072\n",
		filepath.Join(sys, "class", "scsi_host", h, "proc_name"): hba + "\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(sdev, filepath.Join(block, "device")); err != nil {
		t.Fatal(err)
	}
}

func TestScanDisks(t *testing.T) {
	sys := t.TempDir()
	fakeDisk(t, sys, "sdb", "8:16", 1, "virtio_scsi", "naa.5001405000e2e001", "running")
	fakeDisk(t, sys, "sda", "8:0", 2, "vmw_pvscsi", "naa.5001405000e2e001", "running")
	fakeDisk(t, sys, "sdc", "8:32", 3, "virtio_scsi", "naa.5001405000e2e002", "running")
	fakeDisk(t, sys, "sdd", "8:48", 4, "vmw_pvscsi", "naa.5001405000e2e002", "offline")
	got := scanDisks(sys)
	want := []disk{
		{"sda", "8:0", "naa.5001405000e2e001", "vmw_pvscsi", slot{2, "0", "0", "0"}, 131072},
		{"sdb", "8:16", "naa.5001405000e2e001", "virtio_scsi", slot{1, "0", "0", "0"}, 131072},
		{"sdc", "8:32", "naa.5001405000e2e002", "virtio_scsi", slot{3, "0", "0", "0"}, 131072},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got)\n%s", d)
	}
	lun := pickLUN(got)
	if len(lun) != 2 || lun[0].Name != "sda" || lun[1].Name != "sdb" {
		t.Fatalf("LUN %v", lun)
	}
	// The assigned leg leads, whatever the names.
	gs := groups([]disk{lun[1], lun[0]})
	if d := cmp.Diff([][]string{{"8:0"}, {"8:16"}}, devs(gs)); d != "" {
		t.Errorf("groups (-want +got)\n%s", d)
	}

	// What a rescan and a removal write.
	if err := lun[0].Slot.rescan(sys); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(filepath.Join(sys, "class", "scsi_host", "host2", "scan")); got != "0 0 0" {
		t.Errorf("scan got %q", got)
	}
	if err := lun[0].remove(sys); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(filepath.Join(sys, "devices", "pci0000:00", "host2", "target2:0:0", "2:0:0:0", "delete")); got != "1" {
		t.Errorf("delete got %q", got)
	}
}

func TestPlan(t *testing.T) {
	priSlot, sbySlot := slot{0, "0", "0", "0"}, slot{1, "0", "0", "0"}
	slots := []slot{priSlot, sbySlot}
	pri := disk{Name: "sda", Dev: "8:0", HBA: "vmw_pvscsi", Slot: priSlot}
	sby := disk{Name: "sdb", Dev: "8:16", HBA: "virtio_scsi", Slot: sbySlot}
	back := disk{Name: "sdc", Dev: "8:32", HBA: "vmw_pvscsi", Slot: priSlot}
	both := mapStatus{Groups: [][]pathStatus{{{Dev: "8:0", Active: true}}, {{Dev: "8:16", Active: true}}}}
	failed := mapStatus{Groups: [][]pathStatus{{{Dev: "8:0"}}, {{Dev: "8:16", Active: true}}}}
	standbyOnly := mapStatus{Groups: [][]pathStatus{{{Dev: "8:16", Active: true}}}}
	for _, tc := range []struct {
		name    string
		present []disk
		st      mapStatus
		want    action
	}{
		{"whole-paths-probed", []disk{pri, sby}, both, action{Probe: []pathStatus{{Dev: "8:0", Active: true}, {Dev: "8:16", Active: true}}}},
		{"assigned-leg-unplugged-is-dropped-and-its-slot-rescanned", []disk{sby}, failed,
			action{Reload: [][]disk{{sby}}, Rescan: []slot{priSlot}}},
		{"empty-slot-rescanned-while-on-standby", []disk{sby}, standbyOnly,
			action{Probe: []pathStatus{{Dev: "8:16", Active: true}}, Rescan: []slot{priSlot}}},
		{"assigned-leg-back-under-a-new-name-leads", []disk{sby, back}, standbyOnly, action{Reload: [][]disk{{back}, {sby}}}},
		{"failed-but-present-is-probed", []disk{pri, sby}, failed, action{Probe: []pathStatus{{Dev: "8:0"}, {Dev: "8:16", Active: true}}}},
		{"no-path-left-keeps-the-table", nil, failed, action{Rescan: slots}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, plan(tc.present, tc.st, slots)); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}
