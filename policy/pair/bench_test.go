package pair

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/virt-failover/virt-failover/internal/golden"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

var benchDomainOut = flag.String("benchdomain", "", "write the benchmarks' 10 KB domain to this file (for the whole-process figure)")

// benchDomain is the virsh dumpxml golden grown to about 10 KB with more disks, as a domain with
// a few volumes looks.
func benchDomain(b *testing.B) []byte {
	src := golden.Read(b, filepath.Join(goldenDir, "virsh-dumpxml", "in.xml"))
	var disks bytes.Buffer
	for i := 0; disks.Len()+len(src) < 10*1024; i++ {
		fmt.Fprintf(&disks, `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/data-%02d.qcow2'/>
      <target dev='vd%c' bus='virtio'/>
    </disk>
`, i, 'b'+i)
	}
	at := bytes.Index(src, []byte("    <controller type='usb'"))
	doc := append(append(append([]byte{}, src[:at]...), disks.Bytes()...), src[at:]...)
	if *benchDomainOut != "" {
		if err := os.WriteFile(*benchDomainOut, doc, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return doc
}

// BenchmarkPair is the whole in-process job of "virt-failover pair": parse, plan, write.
func BenchmarkPair(b *testing.B) {
	src := benchDomain(b)
	pol := policy.Default()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		doc, err := xmlxform.Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		r, err := Plan(doc, pol, Options{Version: testVersion})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Transform.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(src)), "doc-bytes")
}

// BenchmarkPairPaired is the --check of a paired domain: nothing to do.
func BenchmarkPairPaired(b *testing.B) {
	src := benchDomain(b)
	pol := policy.Default()
	doc, _ := xmlxform.Parse(src)
	r, _ := Plan(doc, pol, Options{Version: testVersion})
	src, _ = r.Transform.Bytes()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		doc, err := xmlxform.Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		r, err := Plan(doc, pol, Options{Version: testVersion})
		if err != nil || r.Changed() {
			b.Fatal(err, r.Changed())
		}
	}
}
