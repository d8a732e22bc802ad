package guest

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

func TestModuleOrder(t *testing.T) {
	dep := filepath.Join(t.TempDir(), "modules.dep")
	// The shape of Debian 6.1's modules.dep for the guest's modules.
	content := `kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
`
	if err := os.WriteFile(dep, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	order, err := moduleOrder(dep, Modules)
	if err != nil {
		t.Fatal(err)
	}
	names := baseNames(order)
	if len(names) != 9 {
		t.Fatalf("order %v", names)
	}
	before := func(a, b string) {
		if slices.Index(names, a) > slices.Index(names, b) {
			t.Errorf("%s after %s in %v", a, b, names)
		}
	}
	before("virtio_ring", "virtio")
	before("virtio", "virtio_pci")
	before("failover", "net_failover")
	before("net_failover", "virtio_net")
	before("virtio_pci", "virtio_net")
	if _, err := moduleOrder(dep, []string{"mlx5_core"}); err == nil {
		t.Error("a missing module is not an error")
	}
}

func TestInitramfsIsReproducible(t *testing.T) {
	root := t.TempDir()
	kver := "6.1.0-test"
	for p, b := range map[string]string{
		"bin/busybox":                          "busybox",
		"lib/modules/" + kver + "/kernel/a.ko": "a",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	one, err := initramfs(root, kver, defaultContents([]string{"kernel/a.ko"}))
	if err != nil {
		t.Fatal(err)
	}
	two, err := initramfs(root, kver, defaultContents([]string{"kernel/a.ko"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(one, two) {
		t.Error("two builds from the same inputs differ")
	}
}

// TestModesInitramfs: the default initramfs holds only the default guest's modules; the modes
// initramfs adds each mode's modules (loaded from its own list, without the default ones) and
// the multipath helper.
func TestModesInitramfs(t *testing.T) {
	root := t.TempDir()
	kver := "6.1.0-test"
	files := map[string]string{
		"bin/busybox": "busybox",
		"lib/modules/" + kver + "/modules.dep": `kernel/drivers/virtio/virtio.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio.ko
kernel/drivers/net/bonding/bonding.ko:
kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/scsi/virtio_scsi.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko kernel/drivers/virtio/virtio.ko
`,
	}
	for _, m := range []string{"drivers/virtio/virtio.ko", "drivers/net/virtio_net.ko", "drivers/net/bonding/bonding.ko",
		"drivers/scsi/scsi_common.ko", "drivers/scsi/scsi_mod.ko", "drivers/scsi/virtio_scsi.ko"} {
		files["lib/modules/"+kver+"/kernel/"+m] = m
	}
	for p, b := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dep := filepath.Join(root, "lib/modules", kver, "modules.dep")
	order, err := moduleOrder(dep, []string{"virtio_net"})
	if err != nil {
		t.Fatal(err)
	}
	saved := Modes
	t.Cleanup(func() { Modes = saved })
	Modes = []Mode{{Name: "bond", Modules: []string{"bonding"}}, {Name: "mpath", Modules: []string{"virtio_scsi"}}}
	modes, err := modeOrders(dep, order)
	if err != nil {
		t.Fatal(err)
	}
	if got := baseNames(modes["mpath"]); !slices.Equal(got, []string{"scsi_common", "scsi_mod", "virtio_scsi"}) {
		t.Errorf("mpath modules %v (virtio is the default guest's)", got)
	}
	def, err := initramfs(root, kver, defaultContents(order))
	if err != nil {
		t.Fatal(err)
	}
	full, err := initramfs(root, kver, modesContents(order, modes, []byte("helper")))
	if err != nil {
		t.Fatal(err)
	}
	d, f := cpioFiles(t, def), cpioFiles(t, full)
	if d["modules.order"] != "virtio.ko\nvirtio_net.ko\n" || f["modules.order"] != d["modules.order"] {
		t.Errorf("modules.order %q, modes %q", d["modules.order"], f["modules.order"])
	}
	for _, name := range []string{"modules.bond", "modules.mpath", "bin/vfo-mpath", "lib/modules/bonding.ko"} {
		if _, ok := d[name]; ok {
			t.Errorf("the default initramfs has %s", name)
		}
	}
	if f["modules.bond"] != "bonding.ko\n" || f["modules.mpath"] != "scsi_common.ko\nscsi_mod.ko\nvirtio_scsi.ko\n" ||
		f["bin/vfo-mpath"] != "helper" || f["lib/modules/scsi_mod.ko"] != "drivers/scsi/scsi_mod.ko" || f["init"] != string(initScript) {
		t.Errorf("modes initramfs: %q", f)
	}
}

// cpioFiles reads a gzip-compressed newc archive into its regular files.
func cpioFiles(t *testing.T, gz []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	pad := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; off+110 <= len(b); {
		hdr := string(b[off : off+110])
		field := func(i int) int {
			n, err := strconv.ParseUint(hdr[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("cpio header %q: %v", hdr, err)
			}
			return int(n)
		}
		mode, size, namesize := field(1), field(6), field(11)
		name := string(b[off+110 : off+110+namesize-1])
		data := pad(off + 110 + namesize)
		if name == "TRAILER!!!" {
			break
		}
		if mode&0o170000 == 0o100000 {
			files[name] = string(b[data : data+size])
		}
		off = pad(data + size)
	}
	return files
}
