package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// disk is one SCSI disk the guest sees: one path to a LUN.
type disk struct {
	Name    string // sda
	Dev     string // major:minor
	WWID    string // the LUN's identifier as the kernel reads it (device/wwid), like naa.5001405000e2e001
	HBA     string // the driver of its SCSI host (proc_name): vmw_pvscsi, virtio_scsi
	Slot    slot   // where it sits
	Sectors uint64
}

// slot is a SCSI address: host, channel, target, LUN (the name of the device's sysfs directory,
// like 0:0:1:0).
type slot struct {
	Host                 int
	Channel, Target, LUN string
}

func parseSlot(s string) (slot, bool) {
	f := strings.Split(s, ":")
	if len(f) != 4 {
		return slot{}, false
	}
	h, err := strconv.Atoi(f[0])
	return slot{h, f[1], f[2], f[3]}, err == nil
}

// rescan asks the SCSI host to probe the slot again (the sysfs scan file takes "channel target
// LUN"). An HBA that tells the guest about hot-plugged disks makes this unneeded; one whose
// notice went missing (pvscsi after a migration: QEMU does not migrate its message ring) needs it.
func (s slot) rescan(sys string) error {
	return os.WriteFile(filepath.Join(sys, "class", "scsi_host", fmt.Sprintf("host%d", s.Host), "scan"),
		[]byte(s.Channel+" "+s.Target+" "+s.LUN), 0)
}

// remove deletes the disk from the guest's SCSI layer, as a hot-unplug would have.
func (d disk) remove(sys string) error {
	return os.WriteFile(filepath.Join(sys, "block", d.Name, "device", "delete"), []byte("1"), 0)
}

// standbyHBA is the driver of the standby path's controller; every other HBA is an assigned leg.
const standbyHBA = "virtio_scsi"

// scanDisks lists the running SCSI disks under the sysfs tree sys, by name.
func scanDisks(sys string) []disk {
	dirs, _ := filepath.Glob(filepath.Join(sys, "block", "sd*"))
	var out []disk
	for _, d := range dirs {
		dev := readTrim(filepath.Join(d, "dev"))
		wwid := readTrim(filepath.Join(d, "device", "wwid"))
		state := readTrim(filepath.Join(d, "device", "state"))
		size, err := strconv.ParseUint(readTrim(filepath.Join(d, "size")), 10, 64)
		if dev == "" || wwid == "" || state != "running" || err != nil || size == 0 {
			continue
		}
		target, err := filepath.EvalSymlinks(filepath.Join(d, "device"))
		if err != nil {
			continue
		}
		sl, ok := parseSlot(filepath.Base(target))
		if !ok {
			continue
		}
		hba := readTrim(filepath.Join(sys, "class", "scsi_host", fmt.Sprintf("host%d", sl.Host), "proc_name"))
		out = append(out, disk{Name: filepath.Base(d), Dev: dev, WWID: strings.Join(strings.Fields(wwid), "_"),
			HBA: cmp.Or(hba, "-"), Slot: sl, Sectors: size})
	}
	slices.SortFunc(out, func(a, b disk) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pickLUN returns the paths of the LUN with the most paths (ties: the first by name).
func pickLUN(disks []disk) []disk {
	by := map[string][]disk{}
	var best string
	for _, d := range disks {
		by[d.WWID] = append(by[d.WWID], d)
		if best == "" || len(by[d.WWID]) > len(by[best]) {
			best = d.WWID
		}
	}
	return by[best]
}

// groups orders the paths of one LUN into priority groups: first the assigned legs (any HBA but
// virtio-scsi), then the virtio-scsi paths. Empty groups are left out.
func groups(paths []disk) [][]disk {
	var assigned, standby []disk
	for _, p := range paths {
		if p.HBA == standbyHBA {
			standby = append(standby, p)
		} else {
			assigned = append(assigned, p)
		}
	}
	var out [][]disk
	for _, g := range [][]disk{assigned, standby} {
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

func devs(groups [][]disk) [][]string {
	out := make([][]string, len(groups))
	for i, g := range groups {
		for _, d := range g {
			out[i] = append(out[i], d.Dev)
		}
	}
	return out
}

// action is what the path checker does next.
type action struct {
	Reload [][]disk     // load a table with these groups: the set of paths changed
	Probe  []pathStatus // paths of the table whose disk is there: probed (reinstated, failed, removed)
	Rescan []slot       // slots that held a path and hold no disk now
}

// plan compares the LUN's present paths with the map's table. A table whose paths are not the
// present ones is replaced (a path that left the guest is dropped, one that came back or is new
// is added); with no path present, the table stays and the map queues I/O until one returns.
//
// Every slot that held a path when the map was made (slots) and holds no disk now is rescanned.
func plan(present []disk, st mapStatus, slots []slot) action {
	var a action
	for _, sl := range slots {
		if !slices.ContainsFunc(present, func(d disk) bool { return d.Slot == sl }) {
			a.Rescan = append(a.Rescan, sl)
		}
	}
	inTable := map[string]pathStatus{}
	for _, g := range st.Groups {
		for _, p := range g {
			inTable[p.Dev] = p
		}
	}
	if len(present) == 0 {
		return a
	}
	same := len(present) == len(inTable)
	for _, d := range present {
		if _, ok := inTable[d.Dev]; !ok {
			same = false
		}
	}
	if !same {
		a.Reload = groups(present)
		return a
	}
	for _, d := range present {
		a.Probe = append(a.Probe, inTable[d.Dev])
	}
	return a
}
