// Package sysfs reads what the host's PCI devices are from sysfs: the VFs of a PF, a device's
// driver binding, a VF's PF and index, network interfaces and their MACs. Everything is read
// under a root directory (the policy's sysfs_root), so tests run it on fake trees.
package sysfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// FS is a sysfs tree.
type FS struct {
	Root string // "/sys" on a real host
}

// PFVFs returns the PCI addresses of the VFs of the PF whose network interface is pf, indexed by
// VF number (its virtfnN links).
func (fs FS) PFVFs(pf string) ([]string, error) {
	netdev := filepath.Join(fs.Root, "class/net", pf)
	if _, err := os.Lstat(netdev); err != nil {
		return nil, fmt.Errorf("no network interface %s (%s does not exist)", pf, netdev)
	}
	dev := filepath.Join(netdev, "device")
	ents, err := os.ReadDir(dev)
	if err != nil {
		return nil, fmt.Errorf("%s is not a PCI device (%s: %v)", pf, dev, unwrapPath(err))
	}
	type vf struct {
		n    int
		addr string
	}
	var vfs []vf
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), "virtfn")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dev, e.Name()))
		if err != nil {
			return nil, err
		}
		vfs = append(vfs, vf{n, filepath.Base(target)})
	}
	if len(vfs) == 0 {
		total := readTrim(filepath.Join(dev, "sriov_totalvfs"))
		if total == "" {
			return nil, fmt.Errorf("%s has no VFs and cannot have any (no sriov_totalvfs: not an SR-IOV PF)", pf)
		}
		return nil, fmt.Errorf("%s has no VFs (sriov_numvfs is %s of %s; write the number wanted to %s)",
			pf, orZero(readTrim(filepath.Join(dev, "sriov_numvfs"))), total, filepath.Join(dev, "sriov_numvfs"))
	}
	slices.SortFunc(vfs, func(a, b vf) int { return a.n - b.n })
	out := make([]string, vfs[len(vfs)-1].n+1)
	for _, v := range vfs {
		out[v.n] = v.addr
	}
	return out, nil
}

// PCIDevice reports whether the PCI device addr exists, and the driver bound to it ("" for none).
func (fs FS) PCIDevice(addr string) (driver string, ok bool) {
	dir := filepath.Join(fs.Root, "bus/pci/devices", addr)
	if _, err := os.Stat(dir); err != nil {
		return "", false
	}
	return fs.Driver(addr), true
}

// Driver returns the driver bound to the PCI device addr, "" if none.
func (fs FS) Driver(addr string) string {
	target, err := os.Readlink(filepath.Join(fs.Root, "bus/pci/devices", addr, "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// VF is a virtual function as its PF sees it.
type VF struct {
	Addr   string
	PF     string // the PF's network interface
	PFAddr string
	Index  int    // the VF number on its PF
	Netdev string // the VF's own network interface, when a network driver is bound
	MAC    string // that interface's address
}

// VFOf finds the PF and VF number of the VF addr, through its physfn link.
func (fs FS) VFOf(addr string) (VF, error) {
	dev := filepath.Join(fs.Root, "bus/pci/devices", addr)
	target, err := os.Readlink(filepath.Join(dev, "physfn"))
	if err != nil {
		return VF{}, fmt.Errorf("%s is not a VF (no physfn link in %s)", addr, dev)
	}
	vf := VF{Addr: addr, PFAddr: filepath.Base(target), Index: -1}
	pfDir := filepath.Join(dev, "physfn")
	if nets, err := os.ReadDir(filepath.Join(pfDir, "net")); err == nil && len(nets) > 0 {
		vf.PF = nets[0].Name()
	}
	ents, err := os.ReadDir(pfDir)
	if err != nil {
		return vf, err
	}
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name(), "virtfn")
		if !ok {
			continue
		}
		if t, err := os.Readlink(filepath.Join(pfDir, e.Name())); err == nil && filepath.Base(t) == addr {
			vf.Index, _ = strconv.Atoi(num)
			break
		}
	}
	if vf.Index < 0 {
		return vf, fmt.Errorf("%s: its PF %s has no virtfn link to it", addr, vf.PFAddr)
	}
	if vf.PF == "" {
		return vf, fmt.Errorf("%s: its PF %s has no network interface (is its driver bound?)", addr, vf.PFAddr)
	}
	if nets, err := os.ReadDir(filepath.Join(dev, "net")); err == nil && len(nets) > 0 {
		vf.Netdev = nets[0].Name()
		vf.MAC = readTrim(filepath.Join(dev, "net", vf.Netdev, "address"))
	}
	return vf, nil
}

// NetdevMAC returns the address of a network interface.
func (fs FS) NetdevMAC(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(fs.Root, "class/net", name, "address"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// IsBridge reports whether the network interface name is a bridge.
func (fs FS) IsBridge(name string) bool {
	_, err := os.Stat(filepath.Join(fs.Root, "class/net", name, "bridge"))
	return err == nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
