package pair

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// fuzzPolicy has a pool network, a pool VF and a storage device, so that fuzzed definitions can
// reach every kind of primary.
func fuzzPolicy(t testing.TB) *policy.Policy {
	p, err := policy.Parse("fuzz.toml", []byte(`
[host]
default_pool = "fabric"

[pools.fabric]
networks = ["sriov-fabric"]
addresses = ["0000:03:02.1"]

[[storage]]
device = "0000:81:00.0"
lun = "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fuzzOptions turns the fuzzer's mode byte into options.
func fuzzOptions(mode uint8) Options {
	o := Options{Version: testVersion}
	if mode&1 != 0 {
		o.EmulatedPrimary = true
	}
	if mode&2 != 0 {
		o.StandbyBridge = "br0"
	}
	if mode&4 != 0 {
		o.NICs = []string{"0000:81:10.2"}
	}
	if mode&8 != 0 {
		o.Pool = "edge"
	}
	if mode&16 != 0 {
		o.Adopt = true
	}
	if mode&32 != 0 {
		o.Bond = true
	}
	if mode&64 != 0 {
		o.Detach = []string{"ua-gpu0"}
	}
	if mode&128 != 0 {
		o.Storage = []policy.Storage{{Device: "ua-hd0", LUN: "/dev/loop7"}}
	}
	return o
}

// FuzzPair: pairing never panics; what it writes is well-formed; pairing its own output changes
// nothing (and does not fail).
func FuzzPair(f *testing.F) {
	ins, err := filepath.Glob(filepath.Join(goldenDir, "*", "*.xml"))
	if err != nil || len(ins) == 0 {
		f.Fatalf("no seeds (%v)", err)
	}
	for _, name := range ins {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, mode := range []uint8{0, 1, 4, 16, 32 | 4, 32 | 1, 64, 128} {
			f.Add(src, mode)
		}
	}
	for _, s := range []string{
		"<domain type='kvm'><devices><interface type='hostdev'/></devices></domain>",
		"<domain type='kvm'><devices><interface type='network'><source network='sriov-fabric'/></interface></devices></domain>",
		"<domain type='kvm'><devices><interface type='network'><model type='virtio'/></interface></devices></domain>",
		"<domain type='qemu'><devices/><metadata/></domain>",
		"<domain type='kvm' xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'><devices><interface type='user'><model type='virtio'/></interface></devices><q:override/></domain>",
		"<domain type='kvm'><devices><hostdev type='pci'><source><address bus='0x81'/></source></hostdev></devices></domain>",
	} {
		f.Add([]byte(s), uint8(1))
	}
	pol := fuzzPolicy(f)
	f.Fuzz(func(t *testing.T, src []byte, mode uint8) {
		doc, err := xmlxform.Parse(src)
		if err != nil {
			return
		}
		opt := fuzzOptions(mode)
		r, err := Plan(doc, pol, opt)
		if err != nil {
			return
		}
		out, err := r.Transform.Bytes()
		if err != nil {
			t.Fatalf("the plan's edits do not apply: %v", err)
		}
		if r.Changed() == bytes.Equal(out, src) {
			t.Fatalf("Changed() = %t but the output equal to the input is %t", r.Changed(), bytes.Equal(out, src))
		}
		doc2, err := xmlxform.Parse(out)
		if err != nil {
			t.Fatalf("the output is not well-formed: %v\n%s", err, out)
		}
		r2, err := Plan(doc2, pol, opt)
		if err != nil {
			t.Fatalf("pairing the output fails: %v\ninput:\n%s\noutput:\n%s", err, src, out)
		}
		if r2.Changed() {
			again, _ := r2.Transform.Bytes()
			t.Fatalf("pairing the output changes it:\ninput:\n%s\noutput:\n%s\nagain:\n%s", src, out, again)
		}
	})
}
