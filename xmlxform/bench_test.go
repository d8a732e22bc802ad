package xmlxform

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func benchDomain(b *testing.B) []byte {
	b.Helper()
	src, err := os.ReadFile(filepath.Join(goldenDir, "domain.xml"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	return src
}

// BenchmarkParse parses a 10 KB libvirt domain XML as virsh dumpxml writes
// it.
func BenchmarkParse(b *testing.B) {
	src := benchDomain(b)
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseParallel parses on every core at once, as the linter does:
// 1e9/(ns/op) is documents per second for the whole machine.
func BenchmarkParseParallel(b *testing.B) {
	src := benchDomain(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Parse(src); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRewrite is what the hook does per call: parse, change a teaming
// attribute, swap an interface for another, and splice.
func BenchmarkRewrite(b *testing.B) {
	src := benchDomain(b)
	const frag = "<interface type='hostdev' managed='yes'>\n  <source>\n    <address type='pci' domain='0x0000' bus='0x5e' slot='0x01' function='0x6'/>\n  </source>\n  <teaming type='transient' persistent='ua-net1'/>\n</interface>"
	for b.Loop() {
		d, err := Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		t := NewTransform(d)
		t.SetAttr(d.Find("/domain/devices/interface[2]/teaming"), "persistent", "ua-sby0")
		old := d.Find("/domain/devices/interface[4]")
		t.Remove(old)
		if err := t.InsertBefore(old, frag); err != nil {
			b.Fatal(err)
		}
		if _, err := t.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeStd is the baseline: reading the same document's tokens
// with encoding/xml, which Parse does not use.
func BenchmarkDecodeStd(b *testing.B) {
	src := benchDomain(b)
	for b.Loop() {
		dec := xml.NewDecoder(bytes.NewReader(src))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkParseShapes parses each shape at two sizes, both within the
// limits for every shape: the libvirt domain, and the hostile shapes to
// compare with it per byte (MB/s, and B/op over the size).
func BenchmarkParseShapes(b *testing.B) {
	for _, size := range []int{64 << 10, 256 << 10} {
		for _, sh := range shapes {
			src := sh.make(size)
			b.Run(fmt.Sprintf("%s/%dKiB", sh.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(src)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Parse(src); (err != nil) != sh.bad {
						b.Fatalf("Parse: %v", err)
					}
				}
			})
		}
	}
}
