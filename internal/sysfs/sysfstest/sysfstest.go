// Package sysfstest builds fake sysfs trees with the layout of the real one: PCI devices under
// devices/, bus/pci/devices/ and class/net/ links to them, PFs with virtfnN links, VFs with
// physfn links, driver links and network interfaces with their MACs. Tests, the hook benchmark
// and testdata/sysfs use them; nothing here has SR-IOV.
package sysfstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// PF is a physical function with its VFs.
type PF struct {
	Name   string // network interface, like enp3s0f0
	Addr   string // PCI address
	Driver string
	MAC    string
	Total  int // sriov_totalvfs; 0 means len(VFs), -1 means not an SR-IOV device
	VFs    []VF
}

// VF is a virtual function. Netdev and MAC are set when a network driver is bound.
type VF struct {
	Addr   string
	Driver string // "" for none
	Netdev string
	MAC    string
}

// Device is a PCI device that is neither PF nor VF.
type Device struct {
	Addr   string
	Driver string
}

// Tree is a whole fake sysfs.
type Tree struct {
	PFs     []PF
	Devices []Device
	Bridges []string // network interfaces that are bridges
}

const bridge = "devices/pci0000:00/0000:00:01.0"

// Build writes the tree under root (which may exist).
func Build(root string, t Tree) error {
	b := &builder{root: root}
	for _, pf := range t.PFs {
		b.pf(pf)
	}
	for _, d := range t.Devices {
		b.device(d.Addr, d.Driver)
	}
	for _, name := range t.Bridges {
		dir := "devices/virtual/net/" + name
		b.file(dir+"/bridge/stp_state", "0")
		b.file(dir+"/address", "02:00:00:00:00:01")
		b.link("class/net/"+name, "../../"+dir)
	}
	b.mkdir("bus/pci/drivers")
	return b.err
}

type builder struct {
	root string
	err  error
}

func (b *builder) mkdir(rel string) {
	if b.err == nil {
		b.err = os.MkdirAll(filepath.Join(b.root, rel), 0o755)
	}
}

func (b *builder) file(rel, content string) {
	b.mkdir(filepath.Dir(rel))
	if b.err == nil {
		b.err = os.WriteFile(filepath.Join(b.root, rel), []byte(content+"\n"), 0o644)
	}
}

func (b *builder) link(rel, target string) {
	b.mkdir(filepath.Dir(rel))
	if b.err == nil {
		p := filepath.Join(b.root, rel)
		_ = os.Remove(p)
		b.err = os.Symlink(target, p)
	}
}

// device creates a PCI device directory and its bus and driver links; it returns its path.
func (b *builder) device(addr, driver string) string {
	dir := bridge + "/" + addr
	b.mkdir(dir)
	b.file(dir+"/vendor", "0x8086")
	b.link("bus/pci/devices/"+addr, "../../../"+dir)
	if driver != "" {
		b.mkdir("bus/pci/drivers/" + driver)
		b.link(dir+"/driver", "../../../../bus/pci/drivers/"+driver)
		b.link("bus/pci/drivers/"+driver+"/"+addr, "../../../../"+dir)
	}
	return dir
}

func (b *builder) netdev(devDir, name, mac string) {
	nd := devDir + "/net/" + name
	b.file(nd+"/address", mac)
	b.link(nd+"/device", "../../../"+filepath.Base(devDir))
	b.link("class/net/"+name, "../../"+nd)
}

func (b *builder) pf(pf PF) {
	dir := b.device(pf.Addr, pf.Driver)
	if pf.Name != "" {
		b.netdev(dir, pf.Name, pf.MAC)
	}
	if pf.Total >= 0 {
		total := pf.Total
		if total == 0 {
			total = len(pf.VFs)
		}
		b.file(dir+"/sriov_totalvfs", strconv.Itoa(total))
		b.file(dir+"/sriov_numvfs", strconv.Itoa(len(pf.VFs)))
	}
	for i, vf := range pf.VFs {
		vdir := b.device(vf.Addr, vf.Driver)
		b.link(fmt.Sprintf("%s/virtfn%d", dir, i), "../"+vf.Addr)
		b.link(vdir+"/physfn", "../"+pf.Addr)
		if vf.Netdev != "" {
			b.netdev(vdir, vf.Netdev, vf.MAC)
		}
	}
}

// PFWithVFs makes a PF named name at bus bus (0x00-0xff) with n VFs at functions of slots 2 on,
// bound to driver, with network interfaces when the driver is a network driver (not vfio-pci).
func PFWithVFs(name string, bus, n int, pfDriver, vfDriver string) PF {
	pf := PF{Name: name, Addr: fmt.Sprintf("0000:%02x:00.0", bus), Driver: pfDriver, MAC: fmt.Sprintf("3c:fd:fe:%02x:00:00", bus)}
	for i := range n {
		vf := VF{Addr: fmt.Sprintf("0000:%02x:%02x.%d", bus, 2+i/8, i%8), Driver: vfDriver}
		if vfDriver != "" && vfDriver != "vfio-pci" {
			vf.Netdev = fmt.Sprintf("%sv%d", name, i)
			vf.MAC = fmt.Sprintf("02:00:%02x:00:%02x:%02x", bus, i/256, i%256)
		}
		pf.VFs = append(pf.VFs, vf)
	}
	return pf
}
