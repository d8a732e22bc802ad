package hooks

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/internal/hostpaths"
	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/sysfs/sysfstest"
	"github.com/virt-failover/virt-failover/internal/vfmac/vfmactest"
)

// benchDomain pads the test domain to about 10 KB with disks, the size the hook goal speaks of.
func benchDomain(b *testing.B) []byte {
	src, err := os.ReadFile("../testdata/hooks/web-01.xml")
	if err != nil {
		b.Fatal(err)
	}
	var disks strings.Builder
	for i := 0; len(src)+disks.Len() < 10<<10; i++ {
		disks.WriteString("    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='/var/lib/libvirt/images/d" +
			string(rune('a'+i%26)) + ".qcow2'/>\n      <target dev='vd" + string(rune('a'+i%26)) + "' bus='virtio'/>\n    </disk>\n")
	}
	return bytes.Replace(src, []byte("    <interface type='network'>"), []byte(disks.String()+"    <interface type='network'>"), 1)
}

func benchRun(b *testing.B, op, policyBody string) {
	dom := benchDomain(b)
	dir := b.TempDir()
	pol := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(pol, []byte(policyBody), 0o644); err != nil {
		b.Fatal(err)
	}
	opts := Options{PolicyPath: pol, LogFile: filepath.Join(dir, "hook.log"), Stdout: io.Discard, Stderr: io.Discard}
	b.SetBytes(int64(len(dom)))
	b.ReportAllocs()
	for b.Loop() {
		opts.Stdin = bytes.NewReader(dom)
		if code := Run(Invocation{"qemu", "web-01", op, "begin", "-"}, opts); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}

func BenchmarkRunStarted(b *testing.B)     { benchRun(b, "started", "") }
func BenchmarkRunMigratePass(b *testing.B) { benchRun(b, "migrate", "") }
func BenchmarkRunMigrateRewrite(b *testing.B) {
	benchRun(b, "migrate", "[rewrite.networks]\n\"lan\" = \"lan-b\"\n")
}

// benchPool runs op on a domain whose primary draws from a pool of 64 VFs, the ledger reset
// before every run (not timed) to hold others' claims on the first others VFs.
func benchPool(b *testing.B, op string, others int) {
	dir := b.TempDir()
	sys := filepath.Join(dir, "sys")
	pf := sysfstest.PFWithVFs("ens1f0", 0x81, 64, "ice", "iavf")
	if err := sysfstest.Build(sys, sysfstest.Tree{PFs: []sysfstest.PF{pf}}); err != nil {
		b.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	pol := filepath.Join(dir, "policy.toml")
	body := fmt.Sprintf("[host]\nsysfs_root = %q\n[pools.fabric]\npf = [\"ens1f0\"]\n[state]\ndir = %q\n", sys, state)
	if err := os.WriteFile(pol, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	dom := vfDomain("web-01", uuidWeb, "0000:03:07.1", "interface")
	if op == "prepare" {
		dom = vfDomain("web-01", uuidWeb, pf.VFs[63].Addr, "interface")
	}
	reset := func() {
		os.RemoveAll(state)
		l := ledger.Open(state)
		err := l.Update(func(tx *ledger.Tx) error {
			for i := range others {
				o := ledger.Owner{UUID: fmt.Sprintf("u%d", i), Domain: fmt.Sprintf("g%d", i), Alias: "ua-pri0"}
				if _, err := tx.Take("fabric", pf.VFs[i].Addr, o, ledger.Confirmed, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	opts := Options{PolicyPath: pol, LogFile: filepath.Join(dir, "hook.log"), Stdout: io.Discard, Stderr: io.Discard,
		Paths: hostpaths.Paths{Root: dir}, VFMAC: &vfmactest.Fake{}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		reset()
		opts.Stdin = bytes.NewReader(dom)
		b.StartTimer()
		if code := Run(Invocation{"qemu", "web-01", op, "begin", "-"}, opts); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}

func BenchmarkRunMigrate64VFPool(b *testing.B)          { benchPool(b, "migrate", 0) }
func BenchmarkRunMigrate64VFPool63Claimed(b *testing.B) { benchPool(b, "migrate", 63) }
func BenchmarkRunPrepare64VFPool63Claimed(b *testing.B) { benchPool(b, "prepare", 63) }
