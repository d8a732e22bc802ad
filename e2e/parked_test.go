package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// parkedGuest is a guest that boots no OS (QEMU sits in its firmware): enough to hold a live
// definition. ua-pri0 stands in for the device the orchestrator parks.
const parkedGuest = `<domain type='qemu'>
  <name>vfo-parked</name>
  <uuid>6d3f5c0e-0a0a-4a1e-9e2e-0000000000a1</uuid>
  <metadata>
    <vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0' version='v0.1.0'>
      <vfo:pair kind='bond' standby='ua-sby0' primary='ua-pri0' mac='52:54:00:5f:00:21' emulated='yes'/>
    </vfo:failover>
  </metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <interface type='user'>
      <mac address='52:54:00:5f:00:21'/>
      <model type='virtio'/>
      <alias name='ua-sby0'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:5f:00:21'/>
      <model type='e1000e'/>
      <rom enabled='no'/>
      <!-- the stand-in for the VF -->
      <alias name='ua-pri0'/>
    </interface>
    <memballoon model='none'/>
  </devices>
</domain>
`

// TestParkedMetadata proves docs/metadata.md#parked against libvirt: the payload
// policy.ParkMetadata makes, set with virsh metadata (virDomainSetMetadata) on the live domain and
// on its persistent definition, is kept whole; libvirt puts the device's elements into
// virt-failover's namespace, and the device definition read back (policy.DeviceXML) is the one the
// domain had, which virsh attach-device takes again. A definition holding a parked record survives
// define/dumpxml, and UnparkMetadata gives back the metadata as it was.
func TestParkedMetadata(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	ctx := context.Background()
	_, run := runDir(t, "parked")
	h, err := harness.NewHost(ctx, harness.HostConfig{Name: "k", Dir: filepath.Join(run, "k"),
		UUID: "6d3f5c0e-0a0a-4a1e-9e2e-00000000000d", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	def := filepath.Join(run, "parked.xml")
	if err := os.WriteFile(def, []byte(parkedGuest), 0o644); err != nil {
		t.Fatal(err)
	}
	virsh := func(args ...string) string {
		t.Helper()
		out, err := h.Virsh(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	virsh("define", def)
	virsh("start", "vfo-parked")
	t.Cleanup(func() { _, _ = h.Virsh(context.Background(), "destroy", "vfo-parked") })
	read := func(args ...string) *policy.Domain {
		t.Helper()
		return policy.NewDomain(mustParseXML(t, virsh(append([]string{"dumpxml"}, args...)...)))
	}

	live := read("vfo-parked")
	dev := live.Aliases["ua-pri0"]
	if len(dev) != 1 {
		t.Fatalf("the live definition has %d devices ua-pri0", len(dev))
	}
	wantDev := string(live.Doc.Src[dev[0].Start.Start:dev[0].Span().End])
	payload, err := live.ParkMetadata(policy.Park{Alias: "ua-pri0", Kind: policy.KindBondPair, Reason: policy.ParkedForMigration,
		Pool: "lan", Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("payload:\n%s", payload)
	for _, where := range []string{"--live", "--config"} {
		virsh("metadata", "vfo-parked", where, "--uri", policy.NamespaceMetadata, "--key", policy.MetadataKey, "--set", payload)
	}

	check := func(what string, d *policy.Domain, want string) {
		t.Helper()
		p := d.ParkedFor("ua-pri0")
		if p == nil || p.Kind != "bond" || p.Reason != "migration" || p.Pool != "lan" || p.Device == nil || len(d.Records) != 1 {
			t.Fatalf("%s: parked %+v, %d records", what, p, len(d.Records))
		}
		if p.Device.Name.Space != policy.NamespaceMetadata {
			t.Errorf("%s: the device element is %v; libvirt's metadata API puts it in virt-failover's namespace", what, p.Device.Name)
		}
		got, err := d.DeviceXML(p)
		if err != nil {
			t.Fatal(err)
		}
		if canon(t, got) != canon(t, want) {
			t.Errorf("%s: the parked device:\n%s\nwant the device as it was:\n%s", what, got, want)
		}
	}
	check("live", read("vfo-parked"), wantDev)
	check("migratable", read("--migratable", "vfo-parked"), wantDev)
	inactive := read("--inactive", "vfo-parked")
	check("inactive", inactive, wantDev)
	// What virDomainGetMetadata returns: the element without a namespace, the device as it was.
	got := virsh("metadata", "vfo-parked", "--config", "--uri", policy.NamespaceMetadata)
	if gm, err := xmlxform.Parse([]byte(got)); err != nil {
		t.Errorf("virsh metadata: %v", err)
	} else if pk := gm.Root.Child("parked"); pk == nil || len(pk.Children) != 1 ||
		canon(t, string(gm.Src[pk.Children[0].Start.Start:pk.Children[0].Span().End])) != canon(t, wantDev) {
		t.Errorf("virsh metadata (virDomainGetMetadata) does not show the device as it was, in no namespace:\n%s", got)
	}

	// The metadata is outside libvirt's ABI check: a saved image's definition may change anything
	// in it (here the parked device's guest address, and a host claiming it), while a change of a
	// device the guest sees (the standby's MAC) is refused.
	img := filepath.Join(run, "vfo-parked.save")
	virsh("save", "vfo-parked", img)
	saved, err := xmlxform.Parse([]byte(virsh("save-image-dumpxml", img)))
	if err != nil {
		t.Fatal(err)
	}
	sd := policy.NewDomain(saved)
	sp := sd.ParkedFor("ua-pri0")
	if sp == nil || sp.Device == nil {
		t.Fatalf("the saved image's definition has no parked ua-pri0")
	}
	edit := func(name string, f func(*xmlxform.Transform)) string {
		t.Helper()
		tr := xmlxform.NewTransform(saved)
		f(tr)
		b, err := tr.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(run, name)
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	inMeta := edit("save-metadata.xml", func(tr *xmlxform.Transform) {
		tr.SetAttr(policy.DeviceChild(sp.Device, "address"), "bus", "0x05")
		tr.SetAttr(sp.El, "host", "host-b")
	})
	if _, err := h.Virsh(ctx, "save-image-define", img, inMeta); err != nil {
		t.Errorf("libvirt refused a change of the metadata alone: %v", err)
	} else if d := policy.NewDomain(mustParseXML(t, virsh("save-image-dumpxml", img))); d.ParkedFor("ua-pri0").Host != "host-b" {
		t.Error("save-image-define did not keep the changed metadata")
	}
	guestABI := edit("save-mac.xml", func(tr *xmlxform.Transform) {
		tr.SetAttr(sd.NICByAlias("ua-sby0").El.Child("mac"), "address", "52:54:00:5f:00:22")
	})
	if _, err := h.Virsh(ctx, "save-image-define", img, guestABI); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("libvirt took a changed MAC into a saved image (%v): the ABI check did not run", err)
	} else {
		t.Logf("the control: %v", err)
	}

	// The persistent definition without the device, then defined again from its own dumpxml.
	virsh("detach-device-alias", "vfo-parked", "ua-pri0", "--config")
	again := filepath.Join(run, "parked-again.xml")
	if err := os.WriteFile(again, []byte(virsh("dumpxml", "--inactive", "vfo-parked")), 0o644); err != nil {
		t.Fatal(err)
	}
	virsh("define", again)
	redefined := read("--inactive", "vfo-parked")
	if len(redefined.Aliases["ua-pri0"]) != 0 {
		t.Error("the detached device is still in the persistent definition")
	}
	check("defined again", redefined, wantDev)

	// Plugged back from its record, and the record cleared: the definition is what it was.
	p := redefined.ParkedFor("ua-pri0")
	devXML, _ := redefined.DeviceXML(p)
	devFile := filepath.Join(run, "device.xml")
	if err := os.WriteFile(devFile, []byte(devXML), 0o644); err != nil {
		t.Fatal(err)
	}
	virsh("attach-device", "vfo-parked", devFile, "--config")
	unpark, err := redefined.UnparkMetadata("ua-pri0")
	if err != nil {
		t.Fatal(err)
	}
	virsh("metadata", "vfo-parked", "--config", "--uri", policy.NamespaceMetadata, "--key", policy.MetadataKey, "--set", unpark)
	final := read("--inactive", "vfo-parked")
	if len(final.Parked) != 0 || len(final.Records) != 1 || final.Records[0].Kind != "bond" {
		t.Errorf("after unparking: %d parked, records %+v", len(final.Parked), final.Records)
	}
	back := final.Aliases["ua-pri0"]
	if len(back) != 1 {
		t.Fatalf("after attach-device: %d devices ua-pri0", len(back))
	}
	got = string(final.Doc.Src[back[0].Start.Start:back[0].Span().End])
	if canon(t, got) != canon(t, wantDev) {
		t.Errorf("the device plugged back:\n%s\nwant:\n%s", got, wantDev)
	}
}

// canon renders an element for comparison as libvirt's rewriting leaves it: local names,
// attributes in order, trimmed text; not quotes, indentation or namespaces.
func canon(t *testing.T, s string) string {
	t.Helper()
	doc, err := xmlxform.Parse([]byte(s))
	if err != nil {
		t.Fatalf("%v:\n%s", err, s)
	}
	var b strings.Builder
	var walk func(e *xmlxform.Element, depth int)
	walk = func(e *xmlxform.Element, depth int) {
		b.WriteString(strings.Repeat(" ", depth) + e.Name.Local)
		for _, a := range e.Attrs {
			if a.Name.Space != xmlxform.NamespaceXMLNS {
				b.WriteString(" " + a.Name.Local + "=" + a.Value)
			}
		}
		if txt := strings.TrimSpace(e.Text(doc)); txt != "" {
			b.WriteString(" text=" + txt)
		}
		b.WriteString("\n")
		for _, c := range e.Children {
			walk(c, depth+1)
		}
	}
	walk(doc.Root, 0)
	return b.String()
}

func mustParseXML(t *testing.T, s string) *xmlxform.Doc {
	t.Helper()
	doc, err := xmlxform.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
