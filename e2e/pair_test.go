package e2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/e2e/harness"
)

// TestPairDefine proves what "virt-failover pair" writes against a real libvirtd: every golden
// output of testdata/pair passes virt-xml-validate, "virsh define" takes it, "virsh dumpxml"
// shows the pairs its metadata records (teaming on both sides, aliases, one MAC, the LUN disk),
// and pairing libvirt's own rendering of the definition changes nothing.
func TestPairDefine(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	if _, err := exec.LookPath("virt-xml-validate"); err != nil {
		t.Fatal("virt-xml-validate is not installed (Debian: libvirt-clients, with libxml2-utils)")
	}
	ctx := context.Background()
	root, run := runDir(t, "pair")
	bin := hookUnderTest(t, root, run)
	if harness.IsStandIn(bin) {
		bin = buildBinary(t, root, run)
	}
	h, err := harness.NewHost(ctx, harness.HostConfig{Name: "p", Dir: filepath.Join(run, "p"),
		UUID: "6d3f5c0e-0a0a-4a1e-9e2e-00000000000c", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// On a host without KVM libvirt refuses <domain type='kvm'>: define a type='qemu' copy of each
	// such output there (the pairing does not depend on the accelerator), and say so.
	kvm := h.KVM()
	if kvm {
		t.Logf("libvirt offers KVM on this machine: every output is defined as it is")
	} else {
		t.Logf("libvirt offers no KVM on this machine: outputs of <domain type='kvm'> are defined as type='qemu' copies")
	}

	cases, err := filepath.Glob(filepath.Join(root, "testdata", "pair", "*", "in.xml"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases (%v)", err)
	}
	for _, in := range cases {
		dir := filepath.Dir(in)
		if _, err := os.Stat(filepath.Join(dir, "error.txt")); err == nil {
			continue // a refusal has no output
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out := filepath.Join(dir, "out.xml")
			if _, err := os.Stat(out); err != nil {
				out = in // already paired: the output is the input
			}
			if b, err := exec.Command("virt-xml-validate", out, "domain").CombinedOutput(); err != nil {
				t.Errorf("virt-xml-validate: %v\n%s", err, b)
			}
			def, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var d domainXML
			if err := xml.Unmarshal(def, &d); err != nil {
				t.Fatal(err)
			}
			toDefine := out
			if q, changed := harness.AsQEMU(def); !kvm && changed {
				toDefine = filepath.Join(run, filepath.Base(dir)+".qemu.xml")
				if err := os.WriteFile(toDefine, q, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("no KVM: defining a type='qemu' copy of %s", out)
			}
			if _, err := h.Virsh(ctx, "define", toDefine); err != nil {
				t.Fatalf("virsh define: %v", err)
			}
			defer h.Virsh(ctx, "undefine", d.Name)
			dump, err := h.Virsh(ctx, "dumpxml", "--inactive", d.Name)
			if err != nil {
				t.Fatal(err)
			}
			_ = os.WriteFile(filepath.Join(run, filepath.Base(dir)+".dumpxml.xml"), []byte(dump), 0o644)
			checkPairs(t, d, dump)

			// libvirt's rendering (addresses, root ports, its own spelling of the metadata) is
			// paired already: pair --check finds nothing to do.
			args := []string{"pair", "--check", "-q", "--policy", "/dev/null"}
			if _, err := os.Stat(filepath.Join(dir, "policy.toml")); err == nil {
				args[len(args)-1] = filepath.Join(dir, "policy.toml")
			}
			if b, err := os.ReadFile(filepath.Join(dir, "args")); err == nil {
				args = append(args, strings.Fields(string(b))...)
			}
			cmd := exec.Command(bin, append(args, "-")...)
			cmd.Stdin = strings.NewReader(dump)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("pair --check of virsh dumpxml: %v\n%s", err, b)
			}
		})
	}
}

// domainXML is what the check reads of a definition: its name, metadata records and devices.
type domainXML struct {
	Name     string `xml:"name"`
	Metadata struct {
		Pairs []struct {
			Kind     string `xml:"kind,attr"`
			Standby  string `xml:"standby,attr"`
			Primary  string `xml:"primary,attr"`
			MAC      string `xml:"mac,attr"`
			LUN      string `xml:"lun,attr"`
			Emulated string `xml:"emulated,attr"`
		} `xml:"http://virt-failover.org/xmlns/domain/1.0 failover>pair"`
		Parked []struct {
			Alias string `xml:"alias,attr"`
		} `xml:"http://virt-failover.org/xmlns/domain/1.0 failover>parked"`
	} `xml:"metadata"`
	Interfaces []device `xml:"devices>interface"`
	Hostdevs   []device `xml:"devices>hostdev"`
	Disks      []device `xml:"devices>disk"`
	Overrides  []struct {
		Alias    string `xml:"alias,attr"`
		Property struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"http://libvirt.org/schemas/domain/qemu/1.0 frontend>property"`
	} `xml:"http://libvirt.org/schemas/domain/qemu/1.0 override>device"`
}

type device struct {
	Type   string `xml:"type,attr"`
	Device string `xml:"device,attr"`
	MAC    struct {
		Address string `xml:"address,attr"`
	} `xml:"mac"`
	Model struct {
		Type string `xml:"type,attr"`
	} `xml:"model"`
	Source struct {
		Dev string `xml:"dev,attr"`
	} `xml:"source"`
	Alias struct {
		Name string `xml:"name,attr"`
	} `xml:"alias"`
	Teaming *struct {
		Type       string `xml:"type,attr"`
		Persistent string `xml:"persistent,attr"`
	} `xml:"teaming"`
}

// checkPairs checks that libvirt's dumpxml shows every pair the definition's metadata records.
func checkPairs(t *testing.T, def domainXML, dump string) {
	t.Helper()
	var got domainXML
	if err := xml.Unmarshal([]byte(dump), &got); err != nil {
		t.Fatalf("dumpxml: %v", err)
	}
	if len(def.Metadata.Pairs) == 0 {
		// A pair QEMU fails over as it stands, without a record (pair leaves it alone unless
		// --adopt): libvirt keeps every <teaming> of the definition.
		teamings := func(d domainXML) (n int) {
			for _, dev := range append(append([]device{}, d.Interfaces...), d.Hostdevs...) {
				if dev.Teaming != nil {
					n++
				}
			}
			return n
		}
		if n := teamings(def); n == 0 || teamings(got) != n {
			t.Fatalf("the definition records no pairs and has %d <teaming> elements; dumpxml has %d", n, teamings(got))
		}
		return
	}
	if len(got.Metadata.Pairs) != len(def.Metadata.Pairs) {
		t.Errorf("dumpxml keeps %d metadata records, the definition has %d", len(got.Metadata.Pairs), len(def.Metadata.Pairs))
	}
	find := func(devs []device, alias string) *device {
		for i := range devs {
			if devs[i].Alias.Name == alias {
				return &devs[i]
			}
		}
		return nil
	}
	parked := map[string]bool{}
	for _, pk := range def.Metadata.Parked {
		parked[pk.Alias] = true
	}
	for _, p := range def.Metadata.Pairs {
		if parked[p.Primary] {
			continue // the orchestrator has the primary unplugged: it is in the metadata, not in <devices>
		}
		switch p.Kind {
		case "net":
			sby := find(got.Interfaces, p.Standby)
			if sby == nil || sby.Teaming == nil || sby.Teaming.Type != "persistent" || sby.Model.Type != "virtio" || sby.MAC.Address != p.MAC {
				t.Errorf("pair %s/%s: dumpxml has no virtio standby %s with MAC %s and persistent teaming: %+v", p.Primary, p.Standby, p.Standby, p.MAC, sby)
			}
			if pri := find(got.Interfaces, p.Primary); pri != nil && pri.Type != "hostdev" && pri.Teaming == nil {
				ok := false // the emulated primary: failover_pair_id through <qemu:override>
				for _, o := range got.Overrides {
					ok = ok || o.Alias == p.Primary && o.Property.Name == "failover_pair_id" && o.Property.Value == p.Standby
				}
				if !ok || pri.MAC.Address != p.MAC {
					t.Errorf("pair %s/%s: dumpxml has no emulated primary with MAC %s and failover_pair_id %s", p.Primary, p.Standby, p.MAC, p.Standby)
				}
				continue
			}
			pri := find(got.Interfaces, p.Primary)
			if pri == nil {
				pri = find(got.Hostdevs, p.Primary)
			}
			if pri == nil || pri.Teaming == nil || pri.Teaming.Type != "transient" || pri.Teaming.Persistent != p.Standby {
				t.Errorf("pair %s/%s: dumpxml has no primary %s with <teaming type='transient' persistent='%s'/>: %+v", p.Primary, p.Standby, p.Primary, p.Standby, pri)
			} else if pri.Type == "hostdev" && pri.MAC.Address != p.MAC {
				t.Errorf("pair %s/%s: the primary's MAC is %q, want %s", p.Primary, p.Standby, pri.MAC.Address, p.MAC)
			}
		case "bond":
			// No <teaming> on either: the guest bonds the two itself.
			sby := find(got.Interfaces, p.Standby)
			if sby == nil || sby.Teaming != nil || sby.Model.Type != "virtio" || sby.MAC.Address != p.MAC {
				t.Errorf("bond %s/%s: dumpxml has no virtio standby %s with MAC %s and without teaming: %+v", p.Primary, p.Standby, p.Standby, p.MAC, sby)
			}
			pri := find(got.Interfaces, p.Primary)
			if pri == nil {
				pri = find(got.Hostdevs, p.Primary)
			}
			if pri == nil || pri.Teaming != nil || pri.Type != "pci" && pri.MAC.Address != p.MAC {
				t.Errorf("bond %s/%s: dumpxml has no primary %s with MAC %s and without teaming: %+v", p.Primary, p.Standby, p.Primary, p.MAC, pri)
			}
		case "detach":
			if find(got.Hostdevs, p.Primary) == nil && find(got.Interfaces, p.Primary) == nil && find(got.Disks, p.Primary) == nil {
				t.Errorf("detach %s: dumpxml has no device %s", p.Primary, p.Primary)
			}
		case "storage":
			disk := find(got.Disks, p.Standby)
			if p.Emulated == "yes" {
				// A stand-in: an emulated disk and a virtio-scsi path with its WWN (scsi-hd).
				if disk == nil || disk.Device != "disk" || disk.Source.Dev != p.LUN || find(got.Disks, p.Primary) == nil {
					t.Errorf("stand-in %s/%s: dumpxml has no path disk %s on %s or no stand-in disk: %+v", p.Primary, p.Standby, p.Standby, p.LUN, disk)
				}
				continue
			}
			if disk == nil || disk.Device != "lun" || disk.Source.Dev != p.LUN {
				t.Errorf("pair %s/%s: dumpxml has no LUN disk %s on %s: %+v", p.Primary, p.Standby, p.Standby, p.LUN, disk)
			}
			if find(got.Hostdevs, p.Primary) == nil {
				t.Errorf("pair %s/%s: dumpxml has no hostdev %s", p.Primary, p.Standby, p.Primary)
			}
		default:
			t.Errorf("a metadata record of kind %q", p.Kind)
		}
	}
	if !bytes.Contains([]byte(dump), []byte("virt-failover.org/xmlns/domain/1.0")) {
		t.Error("dumpxml lost the virt-failover metadata")
	}
}
