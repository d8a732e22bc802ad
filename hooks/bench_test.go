package hooks

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
