package guest

import (
	"os"
	"path/filepath"
	"slices"
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
	one, err := initramfs(root, kver, []string{"kernel/a.ko"})
	if err != nil {
		t.Fatal(err)
	}
	two, err := initramfs(root, kver, []string{"kernel/a.ko"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(one, two) {
		t.Error("two builds from the same inputs differ")
	}
}
