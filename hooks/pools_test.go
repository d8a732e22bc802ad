package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/hostpaths"
	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/racegate"
	"github.com/virt-failover/virt-failover/internal/shell/shelltest"
	"github.com/virt-failover/virt-failover/internal/sysfs/sysfstest"
	"github.com/virt-failover/virt-failover/internal/vfmac"
	"github.com/virt-failover/virt-failover/internal/vfmac/vfmactest"
)

// poolEnv is a host with a fake sysfs (PF enp3s0f0 with VFs 0000:03:10.0-.3, the first bound to
// vfio-pci), a status directory and a claims ledger, all in a temporary directory.
type poolEnv struct {
	*env
	root               string // the host's tree: libvirt's status files are root/run/libvirt/qemu
	sys, status, state string
	mac                *vfmactest.Fake
	now                time.Time
}

const pfTree = "enp3s0f0"

func newPoolEnv(t *testing.T, policyBody string) *poolEnv {
	t.Helper()
	dir := t.TempDir()
	pe := &poolEnv{root: dir, sys: filepath.Join(dir, "sys"), status: filepath.Join(dir, "run", "libvirt", "qemu"), state: filepath.Join(dir, "state"),
		mac: &vfmactest.Fake{}, now: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	pf := sysfstest.PFWithVFs(pfTree, 3, 4, "ixgbe", "ixgbevf")
	pf.VFs[0].Driver, pf.VFs[0].Netdev = "vfio-pci", ""
	if err := sysfstest.Build(pe.sys, sysfstest.Tree{PFs: []sysfstest.PF{pf}}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(pe.status, 0o755); err != nil {
		t.Fatal(err)
	}
	pe.env = newEnv(t, fmt.Sprintf("[host]\nsysfs_root = %q\n[state]\ndir = %q\n%s", pe.sys, pe.state, policyBody))
	return pe
}

func (pe *poolEnv) hook(dom, op, subop string, stdin []byte, dry bool) result {
	pe.t.Helper()
	var out, errb bytes.Buffer
	code := Run(Invocation{"qemu", dom, op, subop, "-"}, Options{
		PolicyPath: pe.policy, LogFile: pe.log, Stdin: bytes.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Timeout: 30 * time.Second, Paths: hostpaths.Paths{Root: pe.root}, VFMAC: pe.mac, DryRun: dry,
		Now: func() time.Time { return pe.now },
	})
	return result{code, out.String(), errb.String()}
}

func (pe *poolEnv) claims() []ledger.Claim {
	pe.t.Helper()
	var out []ledger.Claim
	l := ledger.Open(pe.state)
	l.Now = func() time.Time { return pe.now }
	if err := l.View(func(tx *ledger.Tx) error { out = tx.Claims(); return nil }); err != nil {
		pe.t.Fatal(err)
	}
	return out
}

// running writes a status file for a domain libvirt runs.
func (pe *poolEnv) running(name, uuid, devices string) {
	pe.t.Helper()
	doc := fmt.Sprintf("<domstatus state='running' reason='booted' pid='42'>\n  <domain type='kvm' id='3'>\n    <name>%s</name>\n    <uuid>%s</uuid>\n    <devices>\n%s    </devices>\n  </domain>\n</domstatus>\n", name, uuid, devices)
	if err := os.WriteFile(filepath.Join(pe.status, name+".xml"), []byte(doc), 0o600); err != nil {
		pe.t.Fatal(err)
	}
}

// vfDomain is a domain with a hostdev-interface primary on VF addr, paired with a virtio standby.
func vfDomain(name, uuid, addr, primary string) []byte {
	var dom, bus, slot, fn string
	fmt.Sscanf(strings.NewReplacer(":", " ", ".", " ").Replace(addr), "%s %s %s %s", &dom, &bus, &slot, &fn)
	src := fmt.Sprintf("<address type='pci' domain='0x%s' bus='0x%s' slot='0x%s' function='0x%s'/>", dom, bus, slot, fn)
	var prim string
	switch primary {
	case "interface":
		prim = `    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:6d:90:02'/>
      <source>
        ` + src + `
      </source>
      <alias name='ua-pri0'/>
      <teaming type='transient' persistent='ua-sby0'/>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </interface>
`
	case "hostdev":
		prim = `    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        ` + src + `
      </source>
      <alias name='ua-pri0'/>
      <teaming type='transient' persistent='ua-sby0'/>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </hostdev>
`
	}
	return []byte(`<domain type='kvm'>
  <name>` + name + `</name>
  <uuid>` + uuid + `</uuid>
  <memory unit='KiB'>393216</memory>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <metadata>
    <vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0' version='v0.1.0'>
      <vfo:pair kind='net' standby='ua-sby0' primary='ua-pri0' mac='52:54:00:6d:90:02' pool='fabric'/>
    </vfo:failover>
  </metadata>
  <devices>
    <interface type='network'>
      <mac address='52:54:00:6d:90:02'/>
      <source network='lan'/>
      <model type='virtio'/>
      <alias name='ua-sby0'/>
      <teaming type='persistent'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
` + prim + `  </devices>
</domain>
`)
}

const (
	uuidWeb = "5f1c2c8e-2b0a-4f4e-9a57-1d0e6f0c9a11"
	uuidDB  = "5f1c2c8e-2b0a-4f4e-9a57-1d0e6f0c9a22"
)

const fabricPF = "[pools.fabric]\npf = [\"enp3s0f0\"]\n"

func TestMigrateRemapsToAFreeVF(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	in := vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface") // the source's VF
	r := pe.hook("web-01", "migrate", "begin", in, false)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	// 03:02.0 is bound to vfio-pci with no guest (managed='yes' would rebind it): 03:02.1 it is.
	want := strings.Replace(string(in), "<address type='pci' domain='0x0000' bus='0x81' slot='0x10' function='0x0'/>",
		"<address type='pci' domain='0x0000' bus='0x03' slot='0x02' function='0x1'/>", 1)
	if r.stdout != want {
		t.Fatalf("output is not the input with only the host address changed:\n%s", r.stdout)
	}
	rec := pe.last()
	if rec.Decision != Rewrite || len(rec.Changes) != 1 || rec.Changes[0] != "interface ua-pri0: source address 0000:81:10.0 -> 0000:03:02.1 (pool fabric)" {
		t.Errorf("record changes %q", rec.Changes)
	}
	if len(rec.Claims) != 1 || rec.Claims[0] != "fabric: 0000:03:02.1 for web-01 ua-pri0 (pending)" {
		t.Errorf("record claims %q", rec.Claims)
	}
	c := pe.claims()
	if len(c) != 1 || c[0].State != ledger.Pending || c[0].UUID != uuidWeb || !c[0].Expires.Equal(pe.now.Add(10*time.Minute)) {
		t.Fatalf("claims %+v", c)
	}
	if len(pe.mac.Set) != 0 {
		t.Errorf("libvirt programs an <interface type='hostdev'>'s MAC itself; the hook set %v", pe.mac.Set)
	}

	// prepare confirms it; release frees it.
	r = pe.hook("web-01", "prepare", "begin", []byte(r.stdout), false)
	if r.code != 0 {
		t.Fatalf("prepare: %d %s", r.code, r.stderr)
	}
	if c := pe.claims(); len(c) != 1 || c[0].State != ledger.Confirmed || c[0].Resource != "0000:03:02.1" {
		t.Fatalf("after prepare: %+v", c)
	}
	if rec := pe.last(); len(rec.Claims) != 1 || !strings.HasSuffix(rec.Claims[0], "(confirmed)") {
		t.Errorf("prepare record %+v", rec)
	}
	r = pe.hook("web-01", "release", "end", []byte(want), false)
	if r.code != 0 || len(pe.claims()) != 0 {
		t.Fatalf("release: %d %q, claims %+v", r.code, r.stderr, pe.claims())
	}
	if rec := pe.last(); len(rec.Releases) != 1 || rec.Releases[0] != "fabric: 0000:03:02.1 for web-01 ua-pri0 (confirmed)" {
		t.Errorf("release record %+v", rec.Releases)
	}
}

func TestMigrateKeepsAFreeIncomingVF(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	r := pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:03:02.3", "interface"), false)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("code %d stdout %q stderr %q: a free VF of the pool stays, and nothing is printed", r.code, r.stdout, r.stderr)
	}
	if rec := pe.last(); rec.Decision != Pass || len(rec.Claims) != 1 || !strings.Contains(rec.Claims[0], "0000:03:02.3") {
		t.Errorf("record %+v", rec)
	}
}

func TestMigrateRefusesWhenThePoolIsExhausted(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	// 03:02.0 is bound to vfio-pci with no guest; a running guest holds 03:02.1 without a claim;
	// db-01 has 03:02.2 confirmed and app-01 03:02.3 pending.
	pe.running("other", "uuid-other", "      <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x03' slot='0x02' function='0x1'/></source></hostdev>\n")
	if r := pe.hook("db-01", "prepare", "begin", vfDomain("db-01", uuidDB, "0000:03:02.2", "interface"), false); r.code != 0 {
		t.Fatalf("db-01 prepare: %s", r.stderr)
	}
	pe.running("db-01", uuidDB, "") // it started: its claim is never reaped
	if r := pe.hook("app-01", "migrate", "begin", vfDomain("app-01", "uuid-app", "0000:81:10.0", "interface"), false); r.code != 0 {
		t.Fatalf("app-01 migrate: %s", r.stderr)
	}
	before := pe.claims()
	r := pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface"), false)
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("code %d stdout %q", r.code, r.stdout)
	}
	first, rest, _ := strings.Cut(r.stderr, "\n")
	want := "virt-failover: qemu web-01 migrate begin: refused: no free VF in pool 'fabric' on this host for interface ua-pri0 (4 of 4 taken: 1 claimed, 1 pending, 2 in use)"
	if first != want {
		t.Errorf("first line\n got %q\nwant %q", first, want)
	}
	if !strings.HasPrefix(rest, `virt-failover: hint: "virt-failover status" lists the claims`) {
		t.Errorf("hint %q", rest)
	}
	if after := pe.claims(); len(after) != len(before) {
		t.Errorf("a refusal changed the claims: %+v", after)
	}
	if rec := pe.last(); rec.Decision != Refuse || len(rec.Claims) != 0 {
		t.Errorf("record %+v", rec)
	}
	// Once app-01's pending claim expires, its VF is free again.
	pe.now = pe.now.Add(11 * time.Minute)
	if r := pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface"), false); r.code != 0 ||
		!strings.Contains(r.stdout, "bus='0x03' slot='0x02' function='0x3'") {
		t.Fatalf("after expiry: %d %q", r.code, r.stderr)
	}
}

func TestPlainHostdevGetsTheStandbyMAC(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	r := pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "hostdev"), false)
	if r.code != 0 {
		t.Fatalf("code %d: %s", r.code, r.stderr)
	}
	if got := pe.mac.Set["enp3s0f0/1"]; got != "52:54:00:6d:90:02" || len(pe.mac.Set) != 1 {
		t.Errorf("MACs set %v, want VF 1 of enp3s0f0 = 52:54:00:6d:90:02", pe.mac.Set)
	}
	if rec := pe.last(); len(rec.Actions) != 1 || rec.Actions[0] != "hostdev ua-pri0: VF 1 of enp3s0f0 (0000:03:02.1) MAC set to 52:54:00:6d:90:02" {
		t.Errorf("actions %q", rec.Actions)
	}
	pe.hook("web-01", "release", "end", vfDomain("web-01", uuidWeb, "0000:03:02.1", "hostdev"), false)

	// A MAC the PF refuses refuses the migration, and takes no claim.
	pe.mac.Fail = errors.New("operation not supported")
	r = pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "hostdev"), false)
	if r.code != 1 || !strings.Contains(r.stderr, "refused: hostdev ua-pri0: setting the MAC of VF 1 of enp3s0f0 (0000:03:02.1) to 52:54:00:6d:90:02 failed: operation not supported; the guest would never pair it") {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	if c := pe.claims(); len(c) != 0 {
		t.Errorf("claims after the refusal: %+v", c)
	}
}

func TestPrepareRefusesAResourceThisHostDoesNotHave(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	// The persistent definition copied from the source by virsh migrate --persistent.
	r := pe.hook("web-01", "prepare", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface"), false)
	if r.code != 1 {
		t.Fatalf("code %d", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if lines[0] != "virt-failover: qemu web-01 prepare begin: refused: interface ua-pri0 uses VF 0000:81:10.0, which is not in pool 'fabric' on this host" {
		t.Errorf("first line %q", lines[0])
	}
	want := `virt-failover: hint: VF 0000:03:02.1 is free in pool 'fabric': run "virsh edit web-01" and set <address type='pci' domain='0x0000' bus='0x03' slot='0x02' function='0x1'/> in the <source> of interface ua-pri0`
	if len(lines) < 2 || lines[1] != want {
		t.Errorf("hint\n got %q\nwant %q", lines[1:], want)
	}
	if len(pe.claims()) != 0 {
		t.Error("a refused prepare claimed")
	}
	// Claimed by another domain: refused too, naming the holder.
	pe.hook("db-01", "prepare", "begin", vfDomain("db-01", uuidDB, "0000:03:02.1", "interface"), false)
	r = pe.hook("web-01", "prepare", "begin", vfDomain("web-01", uuidWeb, "0000:03:02.1", "interface"), false)
	if r.code != 1 || !strings.Contains(r.stderr, "refused: interface ua-pri0 uses VF 0000:03:02.1 of pool 'fabric', which is claimed by db-01 (ua-pri0)\n") ||
		!strings.Contains(r.stderr, "VF 0000:03:02.2 is free") {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
}

// The virsh edit hint passes the domain's name to virsh as one word: a pasted hint never runs what
// a name holds.
func TestPrepareHintQuotesTheDomain(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	for _, name := range shelltest.HostileNames {
		dom := bytes.Replace(vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface"), []byte("<name>web-01</name>"),
			[]byte("<name>"+strings.ReplaceAll(name, "'", "&apos;")+"</name>"), 1)
		r := pe.hook(name, "prepare", "begin", dom, false)
		m := regexp.MustCompile(`(?m)^virt-failover: hint: .*: run "(virsh edit .*)" and set `).FindStringSubmatch(r.stderr)
		if r.code != 1 || m == nil {
			t.Fatalf("%q: code %d stderr %q", name, r.code, r.stderr)
		}
		if got := shelltest.Paste(t, pe.root, m[1], "virsh"); len(got) != 2 || got[0] != "edit" || got[1] != name {
			t.Errorf("%q: the hint's %s runs virsh with %q", name, m[1], got)
		}
	}
	if _, err := os.Stat(filepath.Join(pe.root, "ran")); err == nil {
		t.Error("a pasted hint ran the command inside a name")
	}
}

func TestReconnectRebuildsClaimsAndNeverFails(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	dom := vfDomain("web-01", uuidWeb, "0000:03:02.0", "interface") // bound to vfio-pci: it runs
	pe.running("web-01", uuidWeb, "")
	r := pe.hook("web-01", "reconnect", "begin", dom, false)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	if c := pe.claims(); len(c) != 1 || c[0].Resource != "0000:03:02.0" || c[0].State != ledger.Confirmed {
		t.Fatalf("claims %+v", c)
	}
	// A resource another live claim holds: reported, still exit 0.
	r = pe.hook("db-01", "reconnect", "begin", vfDomain("db-01", uuidDB, "0000:03:02.0", "interface"), false)
	if r.code != 0 || !strings.Contains(r.stderr, "error (ignored: the reconnect operation never fails): claims: interface ua-pri0 uses VF 0000:03:02.0, but resource held by another claim: web-01 ua-pri0 holds 0000:03:02.0") {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	// A broken ledger: still exit 0.
	if err := os.WriteFile(filepath.Join(pe.state, ledger.FileName), []byte("{"), 0o640); err != nil {
		t.Fatal(err)
	}
	if r := pe.hook("web-01", "reconnect", "begin", dom, false); r.code != 0 {
		t.Fatalf("reconnect with a broken ledger exited %d", r.code)
	}
}

func TestDryRunTakesNoClaim(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	r := pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "hostdev"), true)
	if r.code != 0 {
		t.Fatalf("code %d %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"-        <address type='pci' domain='0x0000' bus='0x81' slot='0x10' function='0x0'/>",
		"+        <address type='pci' domain='0x0000' bus='0x03' slot='0x02' function='0x1'/>",
		"dry run: would claim fabric: 0000:03:02.1 for web-01 ua-pri0 (pending)",
		"dry run: hostdev ua-pri0: would set the MAC of VF 1 of enp3s0f0 (0000:03:02.1) to 52:54:00:6d:90:02",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, r.stdout)
		}
	}
	if len(pe.claims()) != 0 || len(pe.mac.Set) != 0 {
		t.Errorf("dry run claimed %+v or set MACs %v", pe.claims(), pe.mac.Set)
	}
	if _, err := os.Stat(pe.state); !os.IsNotExist(err) {
		t.Errorf("dry run created the state directory")
	}
	// A dry release says what it would free and frees nothing.
	pe.hook("web-01", "prepare", "begin", vfDomain("web-01", uuidWeb, "0000:03:02.1", "interface"), false)
	r = pe.hook("web-01", "release", "end", vfDomain("web-01", uuidWeb, "0000:03:02.1", "interface"), true)
	if !strings.Contains(r.stdout, "dry run: would release fabric: 0000:03:02.1 for web-01 ua-pri0 (confirmed)") || len(pe.claims()) != 1 {
		t.Errorf("dry release: %q, claims %+v", r.stdout, pe.claims())
	}
	// A dry run creates nothing, not even the lock, and shows the MAC a prepare would program.
	if err := os.Remove(filepath.Join(pe.state, "claims.lock")); err != nil {
		t.Fatal(err)
	}
	r = pe.hook("web-01", "prepare", "begin", vfDomain("web-01", uuidWeb, "0000:03:02.1", "hostdev"), true)
	if !strings.Contains(r.stdout, "dry run: hostdev ua-pri0: would set the MAC of VF 1 of enp3s0f0 (0000:03:02.1) to 52:54:00:6d:90:02") {
		t.Errorf("dry prepare: %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(pe.state, "claims.lock")); !os.IsNotExist(err) || len(pe.mac.Set) != 0 {
		t.Errorf("dry prepare created the lock (%v) or set MACs %v", err, pe.mac.Set)
	}
}

// emulatedDomain is the e2e guest's shape: an e1000e primary on a pool network, paired through
// <qemu:override>, its pool named by the pair metadata.
func emulatedDomain(name, uuid, network string) []byte {
	return []byte(`<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>` + name + `</name>
  <uuid>` + uuid + `</uuid>
  <metadata>
    <vfo:failover xmlns:vfo="http://virt-failover.org/xmlns/domain/1.0" version="v0.1.0">
      <vfo:pair kind="net" standby="ua-sby0" primary="ua-pri0" mac="52:54:00:5f:00:10" pool="fabric"/>
    </vfo:failover>
  </metadata>
  <devices>
    <interface type='network'>
      <source network='lan'/>
      <mac address='52:54:00:5f:00:10'/>
      <model type='virtio'/>
      <teaming type='persistent'/>
      <alias name='ua-sby0'/>
    </interface>
    <interface type='network'>
      <source network='` + network + `'/>
      <mac address='52:54:00:5f:00:10'/>
      <model type='e1000e'/>
      <rom enabled='no'/>
      <alias name='ua-pri0'/>
    </interface>
  </devices>
  <qemu:override>
    <qemu:device alias='ua-pri0'>
      <qemu:frontend>
        <qemu:property name='failover_pair_id' type='string' value='ua-sby0'/>
      </qemu:frontend>
    </qemu:device>
  </qemu:override>
</domain>
`)
}

func TestNetworkPoolRemapsTheEmulatedPrimaryOnly(t *testing.T) {
	// [rewrite.networks] maps lan for the standby; the pool remaps the primary.
	pe := newPoolEnv(t, "[pools.fabric]\nnetworks = [\"fabric-b1\", \"fabric-b2\"]\n[rewrite.networks]\n\"lan\" = \"lan-b\"\n\"fabric-a1\" = \"elsewhere\"\n")
	in := emulatedDomain("vfo-guest", uuidWeb, "fabric-a1")
	r := pe.hook("vfo-guest", "migrate", "begin", in, false)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	want := strings.Replace(strings.Replace(string(in), "<source network='lan'/>", "<source network='lan-b'/>", 1),
		"<source network='fabric-a1'/>", "<source network='fabric-b1'/>", 1)
	if r.stdout != want {
		t.Fatalf("output:\n%s", r.stdout)
	}
	rec := pe.last()
	if strings.Join(rec.Changes, "\n") != "interface ua-sby0: source network 'lan' -> 'lan-b'\ninterface ua-pri0: source network 'fabric-a1' -> 'fabric-b1' (pool fabric)" {
		t.Errorf("changes %q", rec.Changes)
	}
	// The second guest gets the second network, the third none.
	if r := pe.hook("g2", "migrate", "begin", emulatedDomain("g2", uuidDB, "fabric-a1"), false); !strings.Contains(r.stdout, "network='fabric-b2'") {
		t.Fatalf("g2: %d %q", r.code, r.stderr)
	}
	r = pe.hook("g3", "migrate", "begin", emulatedDomain("g3", "uuid-g3", "fabric-a1"), false)
	if r.code != 1 || !strings.Contains(r.stderr, "refused: no free network in pool 'fabric' on this host for interface ua-pri0 (2 of 2 taken: 2 pending)") {
		t.Fatalf("g3: %d %q", r.code, r.stderr)
	}
}

func TestHostdevNetworkPrimaryIsLeftAlone(t *testing.T) {
	pe2 := newPoolEnv(t, fabricPF)
	dom := []byte(`<domain type='kvm'><name>web-01</name><uuid>` + uuidWeb + `</uuid><metadata><vfo:failover xmlns:vfo='http://virt-failover.org/xmlns/domain/1.0'><vfo:pair kind='net' standby='ua-sby0' primary='ua-pri0' pool='fabric'/></vfo:failover></metadata><devices>
<interface type='network'><mac address='52:54:00:6d:90:02'/><source network='lan'/><model type='virtio'/><alias name='ua-sby0'/><teaming type='persistent'/></interface>
<interface type='network'><mac address='52:54:00:6d:90:02'/><source network='sriov-pool'/><alias name='ua-pri0'/><teaming type='transient' persistent='ua-sby0'/></interface>
</devices></domain>`)
	r := pe2.hook("web-01", "migrate", "begin", dom, false)
	if r.code != 0 || r.stdout != "" || len(pe2.claims()) != 0 {
		t.Fatalf("code %d stdout %q claims %+v", r.code, r.stdout, pe2.claims())
	}
}

// TestFiftyHookProcessesRaceForFour runs 50 hook processes (this test binary re-executed, each
// running hooks.Run for migrate begin of its own guest) against a pool of 4 VFs.
func TestFiftyHookProcessesRaceForFour(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 50 processes")
	}
	pe := newPoolEnv(t, "[pools.fabric]\naddresses = [\"0000:03:02.0\", \"0000:03:02.1\", \"0000:03:02.2\", \"0000:03:02.3\"]\n")
	// All four VFs free: none bound to vfio-pci.
	if err := sysfstest.Build(pe.sys, sysfstest.Tree{PFs: []sysfstest.PF{sysfstest.PFWithVFs(pfTree, 3, 4, "ixgbe", "ixgbevf")}}); err != nil {
		t.Fatal(err)
	}
	gate := filepath.Join(t.TempDir(), "gate")
	if err := os.Mkdir(gate, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 50
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range n {
		name := "g" + strconv.Itoa(i)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "HOOKS_TEST_WORKER=race", "HOOKS_GATE="+gate, "HOOKS_POLICY="+pe.policy,
			"HOOKS_LOG="+pe.log, "HOOKS_ROOT="+pe.root, "HOOKS_DOMAIN="+name)
		cmd.Stdin = bytes.NewReader(vfDomain(name, fmt.Sprintf("00000000-0000-0000-0000-%012d", i), "0000:81:10.0", "interface"))
		outs[i] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		cmds[i] = cmd
	}
	start, err := racegate.Start(gate, cmds, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	won, refused := map[string]int{}, 0
	for i, cmd := range cmds {
		err := cmd.Wait()
		out := outs[i].String()
		var ee *exec.ExitError
		switch {
		case err == nil && strings.Contains(out, "<domain"):
			for _, f := range []string{"0x0", "0x1", "0x2", "0x3"} {
				if strings.Contains(out, "bus='0x03' slot='0x02' function='"+f+"'") {
					won[f]++
				}
			}
		case errors.As(err, &ee) && ee.ExitCode() == 1 &&
			strings.HasPrefix(out, "virt-failover: qemu g"+strconv.Itoa(i)+" migrate begin: refused: no free VF in pool 'fabric' on this host for interface ua-pri0 (4 of 4 taken: 4 pending)\n"):
			refused++
		default:
			t.Errorf("hook %d: %v: %s", i, err, out)
		}
	}
	elapsed := time.Since(start)
	if len(won) != 4 || refused != n-4 {
		t.Fatalf("won %v, refused %d", won, refused)
	}
	for f, k := range won {
		if k != 1 {
			t.Errorf("function %s given %d times", f, k)
		}
	}
	if c := pe.claims(); len(c) != 4 {
		t.Fatalf("%d claims: %+v", len(c), c)
	}
	if recs := pe.records(); len(recs) != n {
		t.Errorf("%d log lines for %d hooks", len(recs), n)
	}
	t.Logf("50 hook processes, pool of 4 VFs: 4 rewrote to distinct VFs, %d refused cleanly; all done %.0f ms after the gate opened",
		refused, float64(elapsed.Microseconds())/1000)
}

func raceHookWorker() int {
	name := os.Getenv("HOOKS_DOMAIN")
	if racegate.Wait(os.Getenv("HOOKS_GATE"), name, 30*time.Second) != nil {
		return 3
	}
	return Run(Invocation{"qemu", name, "migrate", "begin", "-"}, Options{
		PolicyPath: os.Getenv("HOOKS_POLICY"), LogFile: os.Getenv("HOOKS_LOG"), Paths: hostpaths.Paths{Root: os.Getenv("HOOKS_ROOT")},
		VFMAC: &vfmactest.Fake{},
	})
}

func TestMain(m *testing.M) {
	if os.Getenv("HOOKS_TEST_WORKER") == "race" {
		os.Exit(raceHookWorker())
	}
	os.Exit(m.Run())
}

// A running domain's live XML (reconnect) shows an interface on a network in forward mode bridge
// as type='bridge', the network still named in <source network>.
func TestReconnectReadsTheLiveXML(t *testing.T) {
	pe := newPoolEnv(t, "[pools.fabric]\nnetworks = [\"fabric-b1\"]\n")
	live := strings.Replace(string(emulatedDomain("vfo-guest", uuidWeb, "fabric-b1")),
		"<interface type='network'>\n      <source network='fabric-b1'/>",
		"<interface type='bridge'>\n      <source network='fabric-b1' portid='0c5e9a4e-0d2b-4d33-9d55-6f1d8d0c6b11' bridge='vfbr0'/>", 1)
	r := pe.hook("vfo-guest", "reconnect", "begin", []byte(live), false)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	if rec := pe.last(); rec.Decision != Pass || len(rec.Claims) != 1 || rec.Claims[0] != "fabric: fabric-b1 for vfo-guest ua-pri0 (confirmed)" {
		t.Errorf("record %+v", rec)
	}
	// And another guest's status file with that shape makes the network in use.
	pe.running("vfo-guest", uuidWeb, "      <interface type='bridge'><source network='fabric-b1' bridge='vfbr0'/></interface>\n")
	pe.hook("vfo-guest", "release", "end", []byte(live), false)
	r = pe.hook("g2", "migrate", "begin", emulatedDomain("g2", uuidDB, "fabric-a1"), false)
	if r.code != 1 || !strings.Contains(r.stderr, "(1 of 1 taken: 1 in use)") {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
}

// A pair libvirt or a person wrote, with no virt-failover record, is QEMU's to fail over as it
// stands: its primaries take their VFs from default_pool, claimed, remapped and released like
// recorded ones.
func TestUnrecordedPairUsesTheDefaultPool(t *testing.T) {
	in, err := os.ReadFile("../testdata/lint/libvirt/9.0.0/qemuxml2argvdata/net-virtio-teaming-hostdev.xml")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(in, []byte("virt-failover.org")) {
		t.Fatal("the fixture carries a virt-failover record")
	}
	pe := newPoolEnv(t, fabricPF)
	// default_pool is a [host] key: put it with the others.
	body, err := os.ReadFile(pe.policy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pe.policy, bytes.Replace(body, []byte("[host]\n"), []byte("[host]\ndefault_pool = \"fabric\"\n"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	r := pe.hook("QEMUGuest1", "migrate", "begin", in, false)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	c := pe.claims()
	if len(c) != 2 || c[0].Pool != "fabric" || c[1].Pool != "fabric" || c[0].Resource == c[1].Resource {
		t.Fatalf("claims %+v", c)
	}
	for _, cl := range c {
		addr := strings.Split(cl.Resource, ":")
		if !strings.Contains(r.stdout, "bus='0x"+addr[1]+"'") {
			t.Errorf("the rewritten definition does not use %s:\n%s", cl.Resource, r.stdout)
		}
	}
	if r := pe.hook("QEMUGuest1", "release", "end", []byte(r.stdout), false); r.code != 0 || len(pe.claims()) != 0 {
		t.Fatalf("release: %d %q, claims %+v", r.code, r.stderr, pe.claims())
	}
}

// setKey adds a key to a table of the policy newPoolEnv wrote ([host] or [state]).
func (pe *poolEnv) setKey(table, line string) {
	pe.t.Helper()
	body, err := os.ReadFile(pe.policy)
	if err != nil {
		pe.t.Fatal(err)
	}
	head := []byte("[" + table + "]\n")
	if !bytes.Contains(body, head) {
		pe.t.Fatalf("the policy has no %s", head)
	}
	if err := os.WriteFile(pe.policy, bytes.Replace(body, head, append(head, line+"\n"...), 1), 0o644); err != nil {
		pe.t.Fatal(err)
	}
}

// A ledger lock held by a stuck process bounds the hook's wait by [state] lock_timeout: an incoming
// migration is refused (on_error), a reconnect logs it and exits 0, so libvirtd is never held.
func TestHeldLedgerLockHasADeadline(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	pe.setKey("state", `lock_timeout = "300ms"`)
	defer pe.holdLock()()
	start := time.Now()
	r := pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface"), false)
	if waited := time.Since(start); r.code != 1 || !strings.Contains(r.stderr, "held by another process for more than 300ms") || waited > 5*time.Second {
		t.Fatalf("migrate begin: code %d after %v, stderr %q", r.code, waited, r.stderr)
	}
	pe.running("web-01", uuidWeb, "")
	if r := pe.hook("web-01", "reconnect", "begin", vfDomain("web-01", uuidWeb, "0000:03:02.0", "interface"), false); r.code != 0 ||
		!strings.Contains(r.stderr, "ignored: the reconnect operation never fails") {
		t.Fatalf("reconnect: code %d stderr %q", r.code, r.stderr)
	}
	if r := pe.hook("web-01", "release", "end", vfDomain("web-01", uuidWeb, "0000:03:02.0", "interface"), false); r.code != 0 {
		t.Fatalf("release: code %d stderr %q", r.code, r.stderr)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// When the rewritten definition cannot reach libvirt, the migration fails: the pending claim taken
// for it is released at once, and the log says refuse, not rewrite.
func TestUnwritableRewriteReleasesItsClaim(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	var errb bytes.Buffer
	code := Run(Invocation{"qemu", "web-01", "migrate", "begin", "-"}, Options{
		PolicyPath: pe.policy, LogFile: pe.log, Stdin: bytes.NewReader(vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface")),
		Stdout: failingWriter{}, Stderr: &errb, Timeout: 30 * time.Second, Paths: hostpaths.Paths{Root: pe.root}, VFMAC: pe.mac,
		Now: func() time.Time { return pe.now },
	})
	if code != 1 || !strings.Contains(errb.String(), "refused: writing the rewritten definition: no space left on device") {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
	if c := pe.claims(); len(c) != 0 {
		t.Errorf("claims left: %+v", c)
	}
	if rec := pe.last(); rec.Decision != Refuse || len(rec.Releases) != 1 {
		t.Errorf("log record %+v", rec)
	}
}

// holdLock takes the ledger's lock as another process would, until the returned function runs.
func (pe *poolEnv) holdLock() func() {
	pe.t.Helper()
	if err := os.MkdirAll(pe.state, 0o750); err != nil {
		pe.t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(pe.state, "claims.lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		pe.t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		pe.t.Fatal(err)
	}
	return func() { f.Close() }
}

// A release that could not take the ledger's lock exits 0 and leaves its claim behind. The next
// transaction reaps it once its domain no longer runs here and the claim is older than claim_ttl
// (a younger one may be a domain starting: libvirt writes its status file after prepare), keeps an
// incoming migration's pending claim within its TTL, and the log says which claim, whose and why.
func TestLeftClaimIsReapedAtTheNextTransaction(t *testing.T) {
	pe := newPoolEnv(t, fabricPF)
	pe.setKey("state", `lock_timeout = "200ms"`)
	t0 := pe.now
	// 03:02.0 is bound to vfio-pci with no guest. db-01 starts on 03:02.1 and runs.
	if r := pe.hook("db-01", "prepare", "begin", vfDomain("db-01", uuidDB, "0000:03:02.1", "interface"), false); r.code != 0 {
		t.Fatalf("db-01 prepare: %s", r.stderr)
	}
	pe.running("db-01", uuidDB, "")
	// 11 minutes on, app-01 migrates in (pending on 03:02.2) and db-02 starts on 03:02.3, its status
	// file not written yet.
	pe.now = t0.Add(11 * time.Minute)
	if r := pe.hook("app-01", "migrate", "begin", vfDomain("app-01", "uuid-app", "0000:81:10.0", "interface"), false); r.code != 0 ||
		!strings.Contains(r.stdout, "function='0x2'") {
		t.Fatalf("app-01 migrate: %d %s", r.code, r.stderr)
	}
	if r := pe.hook("db-02", "prepare", "begin", vfDomain("db-02", "uuid-db-02", "0000:03:02.3", "interface"), false); r.code != 0 {
		t.Fatalf("db-02 prepare: %s", r.stderr)
	}
	// db-01 stops: libvirt removes its status file, and its release cannot take the lock.
	if err := os.Remove(filepath.Join(pe.status, "db-01.xml")); err != nil {
		t.Fatal(err)
	}
	unlock := pe.holdLock()
	r := pe.hook("db-01", "release", "end", vfDomain("db-01", uuidDB, "0000:03:02.1", "interface"), false)
	unlock()
	if r.code != 0 || !strings.Contains(r.stderr, "ignored: the release operation never fails") || len(pe.claims()) != 3 {
		t.Fatalf("release under a held lock: code %d stderr %q claims %+v", r.code, r.stderr, pe.claims())
	}
	// The next transaction, web-01's incoming migration, reaps db-01's claim and gets its VF; its
	// dry run says so first, and changes nothing.
	pe.now = t0.Add(12 * time.Minute)
	wantReaped := "fabric: 0000:03:02.1 for db-01 ua-pri0 (confirmed): db-01 does not run on this host (no status file in " + pe.status +
		") and no release freed its claim, confirmed 12m ago"
	r = pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface"), true)
	if r.code != 0 || !strings.Contains(r.stdout, "\ndry run: would reap "+wantReaped+"\n") || len(pe.claims()) != 3 {
		t.Fatalf("dry run: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface"), false)
	if r.code != 0 || !strings.Contains(r.stdout, "bus='0x03' slot='0x02' function='0x1'") {
		t.Fatalf("web-01 migrate: code %d stderr %q", r.code, r.stderr)
	}
	var got []string
	for _, c := range pe.claims() {
		got = append(got, fmt.Sprintf("%s %s %s", c.Domain, c.Resource, c.State))
	}
	want := []string{"app-01 0000:03:02.2 pending", "db-02 0000:03:02.3 confirmed", "web-01 0000:03:02.1 pending"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("claims %q, want %q", got, want)
	}
	if reaped := pe.last().Reaped; len(reaped) != 1 || reaped[0] != wantReaped {
		t.Errorf("log reaped %q, want [%q]", reaped, wantReaped)
	}
}

// stuckMAC is a PF that never answers (a netlink call that hangs) until release is closed.
type stuckMAC struct{ release, returned chan struct{} }

func (s stuckMAC) SetMAC(string, int, vfmac.MAC) error {
	<-s.release
	close(s.returned)
	return nil
}

// hookWithin runs the hook with a whole-call deadline, failing the test if the call outlives it
// by far.
func (pe *poolEnv) hookWithin(timeout time.Duration, mac vfmac.Setter, dom, op string, stdin []byte) (result, time.Duration) {
	pe.t.Helper()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() {
		done <- Run(Invocation{"qemu", dom, op, "begin", "-"}, Options{
			PolicyPath: pe.policy, LogFile: pe.log, Stdin: bytes.NewReader(stdin), Stdout: &out, Stderr: &errb,
			Timeout: timeout, Paths: hostpaths.Paths{Root: pe.root}, VFMAC: mac, Now: func() time.Time { return pe.now },
		})
	}()
	select {
	case code := <-done:
		return result{code, out.String(), errb.String()}, time.Since(start)
	case <-time.After(timeout + 10*time.Second):
		pe.t.Fatalf("%s %s: still running %v after its %v deadline", dom, op, time.Since(start)-timeout, timeout)
	}
	return result{}, 0
}

// The whole call has one deadline: reading, parsing, planning and the ledger. Past it the hook
// follows on_error at migrate, restore and prepare and exits 0 at reconnect and release, and logs
// why; a transaction still running then writes nothing. The ledger's lock_timeout fits inside it.
func TestWholeCallHasADeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	for _, tc := range []struct {
		name, policy string
		code         int
		verb         string
	}{
		{"on-error-refuse", "refuse", 1, "refused"},
		{"on-error-pass", "pass", 0, `error (ignored: [host] on_error = "pass")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pe := newPoolEnv(t, fabricPF)
			pe.setKey("host", "on_error = \""+tc.policy+"\"")
			mac := stuckMAC{make(chan struct{}), make(chan struct{})}
			r, took := pe.hookWithin(deadline, mac, "web-01", "migrate", vfDomain("web-01", uuidWeb, "0000:81:10.0", "hostdev"))
			close(mac.release)
			first, _, _ := strings.Cut(r.stderr, "\n")
			want := "virt-failover: qemu web-01 migrate begin: " + tc.verb + ": deadline: the hook did not finish within 300ms (it was programming VF MACs)"
			if r.code != tc.code || r.stdout != "" || first != want {
				t.Fatalf("code %d after %v, stdout %q, first stderr line\n got %q\nwant %q", r.code, took, r.stdout, first, want)
			}
			if rec := pe.last(); rec.Decision != Error || !strings.HasPrefix(rec.Message, "deadline: ") {
				t.Errorf("log record %+v", rec)
			}
			// The transaction the stuck PF held goes on once it answers, and writes nothing.
			<-mac.returned
			time.Sleep(100 * time.Millisecond)
			if c := pe.claims(); len(c) != 0 {
				t.Errorf("claims written after the deadline: %+v", c)
			}
		})
	}
	t.Run("lock-timeout-inside-the-deadline", func(t *testing.T) {
		pe := newPoolEnv(t, fabricPF)
		pe.setKey("state", "lock_timeout = \"30s\"")
		defer pe.holdLock()()
		for _, tc := range []struct {
			op   string
			code int
			verb string
		}{
			{"migrate", 1, "refused"},
			{"reconnect", 0, "error (ignored: the reconnect operation never fails)"},
			{"release", 0, "error (ignored: the release operation never fails)"},
		} {
			if tc.op == "release" {
				if err := os.WriteFile(filepath.Join(pe.state, "claims.json"), []byte(`{"version": 1, "claims": []}`), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			r, took := pe.hookWithin(deadline, pe.mac, "web-01", tc.op, vfDomain("web-01", uuidWeb, "0000:03:02.1", "interface"))
			first, _, _ := strings.Cut(r.stderr, "\n")
			want := "virt-failover: qemu web-01 " + tc.op + " begin: " + tc.verb + ": deadline: the hook did not finish within 300ms (it was waiting for the claims ledger's lock " +
				filepath.Join(pe.state, "claims.lock") + ")"
			if r.code != tc.code || first != want || took > 5*time.Second {
				t.Errorf("%s: code %d after %v, first stderr line\n got %q\nwant %q", tc.op, r.code, took, first, want)
			}
			if rec := pe.last(); rec.Op != tc.op || rec.Decision != Error || !strings.HasPrefix(rec.Message, "deadline: ") {
				t.Errorf("%s: log record %+v", tc.op, rec)
			}
		}
	})
}

// A claims ledger others can change is not read: the state directory, or the directory it is to be
// made in, must be changed by root alone (the owner only when the hook runs as root).
func TestUntrustedStateDirIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		asRoot bool
		spoil  func(pe *poolEnv) error
		why    string
		hint   string
	}{
		{"world-writable", false, func(pe *poolEnv) error { return os.Chmod(pe.state, 0o777) },
			"{state}: writable by anyone (mode 0777)", "chmod o-w {state}"},
		{"not-yet-made-in-a-world-writable-directory", false, func(pe *poolEnv) error {
			body, err := os.ReadFile(pe.policy)
			if err != nil {
				return err
			}
			body = bytes.Replace(body, []byte(strconv.Quote(pe.state)), []byte(strconv.Quote(filepath.Join(pe.root, "open", "state"))), 1)
			if err := os.WriteFile(pe.policy, body, 0o644); err != nil {
				return err
			}
			pe.state = filepath.Join(pe.root, "open", "state")
			if err := os.Mkdir(filepath.Join(pe.root, "open"), 0o700); err != nil {
				return err
			}
			return os.Chmod(filepath.Join(pe.root, "open"), 0o777) // past the umask
		}, "{root}/open: writable by anyone (mode 0777), and it holds {root}/open/state", "chmod o-w {root}/open"},
		{"not-owned-by-root", true, func(pe *poolEnv) error { return os.Chown(pe.state, nobody, nobody) },
			"{state}: owned by uid 65534, not root", "chown root: {state}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && os.Geteuid() != 0 {
				t.Skip("not root: chown needs root, and the hook checks the owner only when it runs as root")
			}
			pe := newPoolEnv(t, fabricPF)
			if err := os.MkdirAll(pe.state, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(pe.state, "claims.json"), []byte(`{"version": 1, "claims": []}`), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := tc.spoil(pe); err != nil {
				t.Fatal(err)
			}
			rep := strings.NewReplacer("{state}", pe.state, "{root}", pe.root)
			why, hint := rep.Replace(tc.why), "virt-failover: hint: "+rep.Replace(tc.hint)
			for _, dry := range []bool{false, true} {
				r := pe.hook("web-01", "migrate", "begin", vfDomain("web-01", uuidWeb, "0000:81:10.0", "interface"), dry)
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if r.code != 1 || strings.Contains(r.stdout, "<domain") || !strings.HasPrefix(lines[0], "virt-failover: qemu web-01 migrate begin: refused: claims: "+why) ||
					!slices.Contains(lines, hint) {
					t.Fatalf("dry run %v: code %d stderr\n%s\nwant the reason %q and %q", dry, r.code, r.stderr, why, hint)
				}
			}
			if rec := pe.last(); rec.Decision != Error || !strings.Contains(rec.Message, why) {
				t.Errorf("log record %+v", rec)
			}
			r := pe.hook("web-01", "release", "end", vfDomain("web-01", uuidWeb, "0000:03:02.1", "interface"), false)
			if _, err := os.Stat(filepath.Join(pe.state, "claims.json")); err != nil {
				return // no ledger there: release has nothing to read
			}
			if r.code != 0 || !strings.Contains(r.stderr, "error (ignored: the release operation never fails): claims: "+why) {
				t.Errorf("release: code %d stderr %q", r.code, r.stderr)
			}
		})
	}
}
