package main

import (
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
	Sectors uint64
}

// standbyHBA is the driver of the standby path's controller; every other HBA is an assigned leg.
const standbyHBA = "virtio_scsi"

// isHostDir reports whether a sysfs path element is a SCSI host's directory, like host2.
func isHostDir(s string) bool {
	n, ok := strings.CutPrefix(s, "host")
	_, err := strconv.ParseUint(n, 10, 32)
	return ok && err == nil
}

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
		hba := "-"
		if target, err := filepath.EvalSymlinks(filepath.Join(d, "device")); err == nil {
			for _, part := range strings.Split(target, string(filepath.Separator)) {
				if isHostDir(part) {
					if p := readTrim(filepath.Join(sys, "class", "scsi_host", part, "proc_name")); p != "" {
						hba = p
					}
				}
			}
		}
		out = append(out, disk{Name: filepath.Base(d), Dev: dev, WWID: strings.Join(strings.Fields(wwid), "_"),
			HBA: hba, Sectors: size})
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
	Reload    [][]disk // load a table with these groups: the set of paths changed
	Reinstate []string // failed paths whose disk is back and running: reinstate them if a read works
}

// plan compares the LUN's present paths with the map's table. A table whose paths are not the
// present ones is replaced (a path that left the guest is dropped, one that came back or is new
// is added); with no path present, the table stays and the map queues I/O until one returns.
func plan(present []disk, st mapStatus) action {
	inTable := map[string]pathStatus{}
	for _, g := range st.Groups {
		for _, p := range g {
			inTable[p.Dev] = p
		}
	}
	if len(present) == 0 {
		return action{}
	}
	same := len(present) == len(inTable)
	for _, d := range present {
		if _, ok := inTable[d.Dev]; !ok {
			same = false
		}
	}
	if !same {
		return action{Reload: groups(present)}
	}
	var a action
	for _, d := range present {
		if !inTable[d.Dev].Active {
			a.Reinstate = append(a.Reinstate, d.Dev)
		}
	}
	return a
}
