package sysfs

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/internal/sysfs/sysfstest"
)

var update = flag.Bool("update", false, "rewrite testdata/sysfs from the trees' specs")

// Trees are the fake sysfs trees under testdata/sysfs, which the command-line scripts copy.
var Trees = map[string]sysfstest.Tree{
	// host-a: an Intel PF with 4 VFs (one bound to vfio-pci), a Mellanox PF with 2 VFs bound to
	// nothing, a PF with SR-IOV off, a NIC without SR-IOV, a non-network device and a bridge.
	"host-a": {
		PFs: []sysfstest.PF{
			{Name: "enp3s0f0", Addr: "0000:03:00.0", Driver: "ixgbe", MAC: "3c:fd:fe:03:00:00", Total: 63, VFs: []sysfstest.VF{
				{Addr: "0000:03:10.0", Driver: "vfio-pci"},
				{Addr: "0000:03:10.2", Driver: "ixgbevf", Netdev: "enp3s0f0v1", MAC: "02:00:03:00:00:01"},
				{Addr: "0000:03:10.4", Driver: "ixgbevf", Netdev: "enp3s0f0v2", MAC: "02:00:03:00:00:02"},
				{Addr: "0000:03:10.6", Driver: "ixgbevf", Netdev: "enp3s0f0v3", MAC: "02:00:03:00:00:03"},
			}},
			{Name: "enp4s0f0np0", Addr: "0000:04:00.0", Driver: "mlx5_core", MAC: "b8:ce:f6:04:00:00", VFs: []sysfstest.VF{
				{Addr: "0000:04:00.2"},
				{Addr: "0000:04:00.3"},
			}},
			{Name: "enp5s0f0", Addr: "0000:05:00.0", Driver: "ixgbe", MAC: "3c:fd:fe:05:00:00", Total: 63},
			{Name: "eno1", Addr: "0000:00:19.0", Driver: "e1000e", MAC: "54:ee:75:00:19:00", Total: -1},
		},
		Devices: []sysfstest.Device{{Addr: "0000:06:00.0", Driver: "nvme"}},
		Bridges: []string{"br-fabric"},
	},
}

func TestTestdataTrees(t *testing.T) {
	for name, tree := range Trees {
		dir := filepath.Join("..", "..", "testdata", "sysfs", name)
		if *update {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := sysfstest.Build(dir, tree); err != nil {
				t.Fatal(err)
			}
			continue
		}
		fresh := t.TempDir()
		if err := sysfstest.Build(fresh, tree); err != nil {
			t.Fatal(err)
		}
		if a, b := listing(t, dir), listing(t, fresh); !slices.Equal(a, b) {
			t.Errorf("testdata/sysfs/%s is not what its spec builds; run go test ./internal/sysfs -update\n got %q\nwant %q", name, a, b)
		}
	}
}

// listing renders a tree as "path -> link" and "path = content" lines.
func listing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case d.Type().IsRegular():
			b, _ := os.ReadFile(p)
			out = append(out, rel+" = "+strings.TrimSpace(string(b)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hostA(t *testing.T) FS {
	t.Helper()
	return FS{Root: filepath.Join("..", "..", "testdata", "sysfs", "host-a")}
}

func TestPFVFs(t *testing.T) {
	s := hostA(t)
	vfs, err := s.PFVFs("enp3s0f0")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0000:03:10.0", "0000:03:10.2", "0000:03:10.4", "0000:03:10.6"}; !slices.Equal(vfs, want) {
		t.Errorf("VFs %q, want %q", vfs, want)
	}
	for pf, want := range map[string]string{
		"enp9s0":    "no network interface enp9s0",
		"enp5s0f0":  "enp5s0f0 has no VFs (sriov_numvfs is 0 of 63; write the number wanted to ",
		"eno1":      "eno1 has no VFs and cannot have any (no sriov_totalvfs: not an SR-IOV PF)",
		"br-fabric": "br-fabric is not a PCI device",
	} {
		if _, err := s.PFVFs(pf); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PFVFs(%s): %v, want %q", pf, err, want)
		}
	}
}

func TestPCIDeviceAndVFOf(t *testing.T) {
	s := hostA(t)
	if drv, ok := s.PCIDevice("0000:03:10.0"); !ok || drv != "vfio-pci" {
		t.Errorf("03:10.0: %q %t", drv, ok)
	}
	if drv, ok := s.PCIDevice("0000:04:00.2"); !ok || drv != "" {
		t.Errorf("04:00.2: %q %t", drv, ok)
	}
	if _, ok := s.PCIDevice("0000:03:10.1"); ok {
		t.Error("03:10.1 exists")
	}
	vf, err := s.VFOf("0000:03:10.4")
	if err != nil {
		t.Fatal(err)
	}
	if vf != (VF{Addr: "0000:03:10.4", PF: "enp3s0f0", PFAddr: "0000:03:00.0", Index: 2, Netdev: "enp3s0f0v2", MAC: "02:00:03:00:00:02"}) {
		t.Errorf("VFOf: %+v", vf)
	}
	if _, err := s.VFOf("0000:06:00.0"); err == nil || !strings.Contains(err.Error(), "is not a VF") {
		t.Errorf("VFOf(nvme): %v", err)
	}
	if mac, err := s.NetdevMAC("enp3s0f0"); err != nil || mac != "3c:fd:fe:03:00:00" {
		t.Errorf("PF MAC %q %v", mac, err)
	}
	if !s.IsBridge("br-fabric") || s.IsBridge("enp3s0f0") {
		t.Error("IsBridge")
	}
}

func TestManyVFs(t *testing.T) {
	root := t.TempDir()
	if err := sysfstest.Build(root, sysfstest.Tree{PFs: []sysfstest.PF{sysfstest.PFWithVFs("ens1f0", 0x81, 64, "ice", "iavf")}}); err != nil {
		t.Fatal(err)
	}
	vfs, err := FS{Root: root}.PFVFs("ens1f0")
	if err != nil || len(vfs) != 64 || vfs[63] != "0000:81:09.7" {
		t.Fatalf("%d VFs, last %q, %v", len(vfs), vfs[len(vfs)-1], err)
	}
	vf, err := FS{Root: root}.VFOf("0000:81:09.7")
	if err != nil || vf.Index != 63 || vf.PF != "ens1f0" {
		t.Fatalf("%+v %v", vf, err)
	}
}
