package hooks

import (
	"strings"
	"testing"
)

// A hostdev whose <teaming> names an alias no interface has (VF007): libvirt would start it, the
// guest would never pair it.
var badTeaming = []byte(`<domain type='kvm'>
  <name>web-01</name>
  <devices>
    <interface type='network'>
      <mac address='52:54:00:6d:90:02'/>
      <source network='lan'/>
      <model type='virtio'/>
      <alias name='ua-sby0'/>
      <teaming type='persistent'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='0x03' slot='0x02' function='0x1'/>
      </source>
      <teaming type='transient' persistent='ua-nope'/>
    </hostdev>
  </devices>
</domain>
`)

func TestPrepareEnforcesHookSafeLintRules(t *testing.T) {
	e := newEnv(t, "[host]\nenforce = \"refuse\"")
	r := e.run("prepare", "begin", badTeaming)
	if r.code != 1 {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	first, rest, _ := strings.Cut(r.stderr, "\n")
	if first != "virt-failover: qemu web-01 prepare begin: refused: lint: 1 error(s) in the definition: VF007 (line 15)" {
		t.Errorf("first line %q", first)
	}
	if !strings.Contains(rest, "virt-failover: web-01.xml:15:") || !strings.Contains(rest, "virt-failover: hint: ") {
		t.Errorf("the finding and its hint are not listed:\n%s", rest)
	}
	rec := e.last()
	if rec.Decision != Refuse || len(rec.Lint) != 1 || !strings.HasPrefix(rec.Lint[0], "VF007 teaming-persistent-unknown-alias line 15: ") {
		t.Errorf("record %+v", rec)
	}

	// warn logs the error and lets the start go on; off does not lint.
	e = newEnv(t, "[host]\nenforce = \"warn\"")
	if r := e.run("prepare", "begin", badTeaming); r.code != 0 || r.stderr != "" {
		t.Fatalf("warn: code %d stderr %q", r.code, r.stderr)
	}
	if rec := e.last(); rec.Decision != Pass || len(rec.Lint) != 1 || !strings.Contains(rec.Message, "logged only") {
		t.Errorf("warn: record %+v", rec)
	}
	e = newEnv(t, "[host]\nenforce = \"off\"")
	e.run("prepare", "begin", badTeaming)
	if rec := e.last(); len(rec.Lint) != 0 {
		t.Errorf("off: record %+v", rec)
	}
}
