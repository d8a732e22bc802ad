package harness

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseHeartbeat(t *testing.T) {
	line := "VFO-HB up=12.34 sent=20 recv=18 lost=1 | eth0 drv=virtio_net state=up master=- role=failover" +
		" | eth1 drv=virtio_net state=up master=eth0 role=- | eth2 drv=e1000e state=up master=eth0 role=-"
	hb, ok := ParseHeartbeat(line)
	if !ok {
		t.Fatal("does not parse")
	}
	if hb.Uptime != 12.34 || hb.Sent != 20 || hb.Recv != 18 || hb.Lost != 1 || len(hb.Netdevs) != 3 {
		t.Fatalf("got %+v", hb)
	}
	if m, _ := hb.Master(); m.Name != "eth0" {
		t.Errorf("master %v", m)
	}
	if p, _ := hb.Primary(); p.Name != "eth2" {
		t.Errorf("primary %v", p)
	}
	if s, _ := hb.Standby(); s.Name != "eth1" {
		t.Errorf("standby %v", s)
	}
	if !hb.PrimaryEnslaved() {
		t.Error("primary not enslaved")
	}
}

func TestParseHeartbeatDuringMigration(t *testing.T) {
	// The primary is gone while the guest is in wait-unplug.
	hb, ok := ParseHeartbeat("VFO-HB up=3.1 sent=5 recv=5 lost=0 | eth0 drv=virtio_net state=up master=- role=failover" +
		" | eth1 drv=virtio_net state=up master=eth0 role=-")
	if !ok || hb.PrimaryEnslaved() {
		t.Fatalf("ok=%v enslaved=%v", ok, hb.PrimaryEnslaved())
	}
	// A primary that is enslaved but not up yet does not count.
	hb, _ = ParseHeartbeat("VFO-HB up=3.1 sent=5 recv=5 lost=0 | eth0 drv=virtio_net state=up master=- role=failover" +
		" | eth2 drv=e1000e state=down master=eth0 role=-")
	if hb.PrimaryEnslaved() {
		t.Error("a primary that is down counts as enslaved")
	}
}

// TestLostProbes: a probe in flight at the heartbeat before the migration and answered after it
// is not a probe found, and one in flight at the heartbeat after it is not a probe lost.
func TestLostProbes(t *testing.T) {
	hb := func(line string) Heartbeat {
		h, ok := ParseHeartbeat(line + " | eth0 drv=virtio_net state=up master=- role=plain")
		if !ok {
			t.Fatalf("%q does not parse", line)
		}
		return h
	}
	for _, tc := range []struct {
		before, after string
		lost, probes  int
	}{
		{"VFO-HB up=10.0 sent=20 recv=19 lost=0", "VFO-HB up=20.0 sent=40 recv=40 lost=0", 0, 21},
		{"VFO-HB up=10.0 sent=20 recv=20 lost=0", "VFO-HB up=20.0 sent=40 recv=39 lost=0", 0, 19},
		{"VFO-HB up=10.0 sent=20 recv=19 lost=0", "VFO-HB up=20.0 sent=40 recv=33 lost=5", 5, 19},
	} {
		m := &Migration{Before: hb(tc.before), After: hb(tc.after)}
		m.Lost = lost(m.Before, m.After)
		if m.Lost != tc.lost || m.Probes() != tc.probes {
			t.Errorf("%s -> %s: %d of %d lost, want %d of %d", tc.before, tc.after, m.Lost, m.Probes(), tc.lost, tc.probes)
		}
	}
}

// TestAnswering: the count of a migration starts at a heartbeat whose probes are answered, not
// at the first one with the primary enslaved while the guest's boot still loses probes.
func TestAnswering(t *testing.T) {
	const nics = " | eth0 drv=virtio_net state=up master=- role=plain"
	ok := Answering(Heartbeat.PlainUp)
	for i, tc := range []struct {
		counts string
		want   bool
	}{
		{"up=5.0 sent=5 recv=0 lost=3", false},  // the first: nothing to compare with
		{"up=6.0 sent=7 recv=0 lost=5", false},  // losing
		{"up=7.0 sent=9 recv=1 lost=7", false},  // answered, but lost too
		{"up=8.0 sent=11 recv=3 lost=7", true},  // answered, none lost
		{"up=9.0 sent=13 recv=3 lost=7", false}, // nothing answered
	} {
		hb, parsed := ParseHeartbeat("VFO-HB " + tc.counts + nics)
		if !parsed {
			t.Fatalf("%q does not parse", tc.counts)
		}
		if got := ok(hb); got != tc.want {
			t.Errorf("heartbeat %d (%s): %v, want %v", i, tc.counts, got, tc.want)
		}
	}
}

func TestParseHeartbeatGarbled(t *testing.T) {
	for _, line := range []string{
		"VFO-HB up=3.1 sent=5 recv=5 lost=0 | eth0 drv=virtio_net st[    6.0] e1000e: NIC Link is Up",
		"[    6.011435] e1000e 0000:02:00.0 eth2: NIC Link is Down",
		"VFO: failover master eth0",
	} {
		if hb, ok := ParseHeartbeat(line); ok {
			t.Errorf("%q parses: %+v", line, hb)
		}
	}
}

func TestSerialFollowsAppendsAndCrashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guest.log")
	s := NewSerial(path)
	if s.Len() != 0 {
		t.Fatal("lines before the file exists")
	}
	appendTo(t, path, "VFO: init\nhalf a li")
	if n := s.Len(); n != 1 {
		t.Fatalf("%d lines, want 1 (the partial line waits)", n)
	}
	appendTo(t, path, "ne\r\n[ 6.0] virtio_net virtio0 eth0: failover primary slave:eth2 unregistered\n")
	if got := s.Lines(1); len(got) != 2 || got[0] != "half a line" {
		t.Fatalf("lines %q", got)
	}
	if c := s.Crash(0); c != nil {
		t.Fatalf("crash in a healthy log: %v", c)
	}
	appendTo(t, path, "[ 9.1] list_del corruption. prev->next should be ffff\n")
	c := s.Crash(0)
	if c == nil || !strings.Contains(c.Error(), "guest kernel crashed: [ 9.1] list_del corruption") {
		t.Fatalf("crash %v", c)
	}
	_, _, err := s.Wait(t.Context(), 0, "anything", func(string) bool { return false })
	var gc *GuestCrash
	if !errors.As(err, &gc) {
		t.Fatalf("Wait did not stop at the crash: %v", err)
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestMonitorEventsFromDaemonLog(t *testing.T) {
	dir := t.TempDir()
	h := &Host{Dir: dir}
	logPath := h.DaemonLogPath()
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	lines := `2026-11-27 23:31:55.824+0000: 10271: info : qemuMonitorJSONIOProcessLine:203 : QEMU_MONITOR_RECV_EVENT: mon=0x7f5dcc0065d0 event={"timestamp": {"seconds": 1795822315, "microseconds": 824877}, "event": "UNPLUG_PRIMARY", "data": {"device-id": "ua-pri0"}}
2026-11-27 23:31:55.825+0000: 10271: info : qemuMonitorJSONIOProcessLine:208 : QEMU_MONITOR_RECV_REPLY: mon=0x7f5dcc0065d0 reply={"return": {}, "id": "libvirt-42"}
2026-11-27 23:31:55.825+0000: 10271: info : qemuMonitorJSONIOProcessLine:203 : QEMU_MONITOR_RECV_EVENT: mon=0x7f5dcc0065d0 event={"timestamp": {"seconds": 1795822315, "microseconds": 825882}, "event": "MIGRATION", "data": {"status": "wait-unplug"}}
2026-11-27 23:31:56.076+0000: 10271: info : qemuMonitorJSONIOProcessLine:203 : QEMU_MONITOR_RECV_EVENT: mon=0x7f5dcc0065d0 event={"timestamp": {"seconds": 1795822316, "microseconds": 76188}, "event": "MIGRATION", "data": {"status": "active"}}
`
	if err := os.WriteFile(logPath, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	events, err := h.MonitorEvents(0)
	if err != nil || len(events) != 3 {
		t.Fatalf("events %v, %v", events, err)
	}
	m := &Migration{SourceEvents: events}
	d, ok := m.WaitUnplug()
	if !ok || d.Microseconds() != 250306 {
		t.Errorf("wait-unplug %v %v", d, ok)
	}
	if e, ok := Event(events, "UNPLUG_PRIMARY", ""); !ok || e.Data["device-id"] != "ua-pri0" {
		t.Errorf("UNPLUG_PRIMARY %v", e)
	}
}

func TestGuestXML(t *testing.T) {
	xml, err := DefaultGuest("/k", "/i", "/s/guest.log").XML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<domain type='qemu'", "<teaming type='persistent'/>", "<alias name='ua-sby0'/>",
		"<alias name='ua-pri0'/>", "<rom enabled='no'/>", "value='ua-sby0'",
		"<source path='/s/guest.log' append='on'/>", "vfo.ip=198.51.100.10/24 vfo.gw=198.51.100.254",
	} {
		if !strings.Contains(string(xml), want) {
			t.Errorf("domain XML lacks %s", want)
		}
	}
}

// TestYardstickGuestXML: the yardstick guest is not paired, says vfo.plain=1, and shares no name,
// MAC or address with the failover guest, so both can run on one host's bridge at once.
func TestYardstickGuestXML(t *testing.T) {
	f := DefaultGuest("/k", "/i", "/s/guest.log")
	y := YardstickGuest("/k", "/i", "/s/plain.log")
	if y.Name == f.Name || y.MAC == f.MAC || y.IP == f.IP {
		t.Errorf("the yardstick guest shares a name, MAC or address with the failover guest: %+v", y)
	}
	xml, err := y.XML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<name>vfo-plain</name>", "<mac address='52:54:00:5f:00:11'/>", "<model type='virtio'/>",
		"vfo.ip=198.51.100.11/24 vfo.gw=198.51.100.254 vfo.plain=1", "<source path='/s/plain.log' append='on'/>",
	} {
		if !strings.Contains(string(xml), want) {
			t.Errorf("yardstick XML lacks %s", want)
		}
	}
	for _, unwanted := range []string{"<teaming", "failover_pair_id", "e1000e"} {
		if strings.Contains(string(xml), unwanted) {
			t.Errorf("yardstick XML has %s:\n%s", unwanted, xml)
		}
	}
}

func TestAsQEMU(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<domain type='kvm'>\n  <name>a</name>\n</domain>\n", "<domain type='qemu'>\n  <name>a</name>\n</domain>\n"},
		{"<?xml version=\"1.0\"?>\n<!-- kvm -->\n<domain id='3' type=\"kvm\" xmlns:qemu='x'>", "<?xml version=\"1.0\"?>\n<!-- kvm -->\n<domain id='3' type=\"qemu\" xmlns:qemu='x'>"},
		{"<domain type='qemu'><name>kvm</name></domain>", "<domain type='qemu'><name>kvm</name></domain>"},
		{"<domain type='xen'><os type='kvm'/></domain>", "<domain type='xen'><os type='kvm'/></domain>"},
	} {
		got, changed := AsQEMU([]byte(tc.in))
		if string(got) != tc.want || changed != (tc.in != tc.want) {
			t.Errorf("AsQEMU(%q) = %q, %v; want %q", tc.in, got, changed, tc.want)
		}
	}
}

// TestWithoutKVM runs a command through WithoutKVM: it sees no /dev/kvm, every other mount
// below /dev as before, and working devices; the machine's /dev is untouched. Where /dev/kvm
// exists this exercises the overlay; where it does not, the script must do nothing.
func TestWithoutKVM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mount namespaces need root")
	}
	_, kvmErr := os.Stat("/dev/kvm")
	mounts := `awk '$5 ~ "^/dev/" && $5 != "/dev/kvm" { print $5 }' /proc/self/mountinfo | sort -u`
	outside, err := exec.Command("sh", "-c", mounts).Output()
	if err != nil {
		t.Fatal(err)
	}
	script := `set -e
if [ -e /dev/kvm ]; then echo "/dev/kvm is still there" >&2; exit 1; fi
echo probe >/dev/null
head -c 1 /dev/urandom >/dev/null
` + mounts
	argv := WithoutKVM(filepath.Join(t.TempDir(), "dev"), "sh", "-c", script)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv[:5], err, out)
	}
	if string(out) != string(outside) {
		t.Errorf("mounts below /dev without kvm:\n%s\nwant, as outside:\n%s", out, outside)
	}
	if _, err := os.Stat("/dev/kvm"); (err == nil) != (kvmErr == nil) {
		t.Errorf("/dev/kvm outside changed: %v, before %v", err, kvmErr)
	}
}

// TestHookRunsFromDaemonLog: libvirtd's own record of hook runs (lines as libvirt 9.0 writes
// them): a failing run (exit 1: an error line, then a result that says "status 0" all the same)
// and a passing one whose stderr spans lines, with another thread's errors in between.
func TestHookRunsFromDaemonLog(t *testing.T) {
	text := `2026-12-04 05:36:52.746+0000: 26436: debug : virRunScript:279 : Calling hook /etc/libvirt/hooks/qemu id=vfo-lock op=migrate subop=begin extra=-
2026-12-04 05:36:52.746+0000: 26436: debug : virCommandRunAsync:2607 : About to run LC_ALL=C HOME=/root /etc/libvirt/hooks/qemu vfo-lock migrate begin -
2026-12-04 05:36:52.748+0000: 26436: debug : virCommandRunAsync:2609 : Command result 0, with PID 26931
2026-12-04 05:36:54.754+0000: 26436: error : virCommandWait:2725 : internal error: Child process (LC_ALL=C HOME=/root /etc/libvirt/hooks/qemu vfo-lock migrate begin -) unexpected exit status 1: virt-failover: qemu vfo-lock migrate begin: refused: claims: the ledger's lock was not free in time: /s/claims.lock is held by another process for more than 2s

2026-12-04 05:36:54.754+0000: 26436: debug : virCommandRun:2453 : Result status 0, stdout: '' stderr: 'virt-failover: qemu vfo-lock migrate begin: refused: claims: the ledger's lock was not free in time: /s/claims.lock is held by another process for more than 2s
'
2026-12-04 05:36:54.754+0000: 26436: error : virRunScript:294 : Hook script execution failed: internal error: Child process (LC_ALL=C HOME=/root /etc/libvirt/hooks/qemu vfo-lock migrate begin -) unexpected exit status 1: virt-failover: qemu vfo-lock migrate begin: refused: claims: the ledger's lock was not free in time: /s/claims.lock is held by another process for more than 2s

2026-12-04 05:37:09.377+0000: 27305: debug : virRunScript:279 : Calling hook /etc/libvirt/hooks/qemu id=vfo-lock op=reconnect subop=begin extra=-
2026-12-04 05:37:09.377+0000: 27305: debug : virCommandRunAsync:2607 : About to run LC_ALL=C HOME=/root /etc/libvirt/hooks/qemu vfo-lock reconnect begin -
2026-12-04 05:37:09.379+0000: 27305: debug : virCommandRunAsync:2609 : Command result 0, with PID 27307
2026-12-04 05:37:09.381+0000: 27302: error : virNetDevSendEthtoolIoctl:3034 : ethtool ioctl error on eth0: No such device
2026-12-04 05:37:11.385+0000: 27305: debug : virCommandRun:2453 : Result status 0, stdout: '' stderr: 'virt-failover: qemu vfo-lock reconnect begin: error (ignored: the reconnect operation never fails): claims: the ledger's lock was not free in time: /s/claims.lock is held by another process for more than 2s
virt-failover: hint: a second line
'
2026-12-04 05:37:20.542+0000: 27284: debug : virRunScript:279 : Calling hook /etc/libvirt/hooks/qemu id=vfo-lock op=stopped subop=end extra=-
`
	runs := parseHookRuns(text)
	if len(runs) != 3 {
		t.Fatalf("got %d runs, want 3: %+v", len(runs), runs)
	}
	mig, rec, stop := runs[0], runs[1], runs[2]
	if mig.Call() != "migrate begin" || mig.Object != "vfo-lock" || !mig.Done || mig.OK() ||
		!strings.Contains(mig.Err, "unexpected exit status 1: virt-failover: qemu vfo-lock migrate begin: refused:") {
		t.Errorf("migrate begin: %+v, want a failed run", mig)
	}
	if d := mig.Duration(); d != 2008*time.Millisecond {
		t.Errorf("migrate begin took %v, want 2.008s", d)
	}
	wantStderr := "virt-failover: qemu vfo-lock reconnect begin: error (ignored: the reconnect operation never fails): claims: the ledger's lock was not free in time: /s/claims.lock is held by another process for more than 2s\nvirt-failover: hint: a second line\n"
	if rec.Call() != "reconnect begin" || !rec.OK() || rec.Stderr != wantStderr {
		t.Errorf("reconnect begin: %+v\nwant exit 0 with stderr %q", rec, wantStderr)
	}
	if stop.Call() != "stopped end" || stop.Done || stop.OK() {
		t.Errorf("stopped end without a result: %+v, want not done", stop)
	}
}

// TestParseBondHeartbeat: lines of a bonded guest (vfo.bond=1) as its serial log has them, the
// primary under the bond and active, then unplugged.
func TestParseBondHeartbeat(t *testing.T) {
	whole, ok := ParseHeartbeat("VFO-HB up=47.01 sent=87 recv=80 lost=5 | bond0 drv=- state=up master=- role=bond mode=active-backup active=eth1 primary=eth1 slaves=eth0,eth1" +
		" | eth0 drv=virtio_net state=up master=bond0 role=- tx=26 rx=1 | eth1 drv=e1000e state=up master=bond0 role=- tx=5 rx=0")
	if !ok {
		t.Fatal("does not parse")
	}
	b, _ := whole.Bond()
	p, _ := whole.BondPrimary()
	s, _ := whole.BondStandby()
	if b.Name != "bond0" || b.Mode != "active-backup" || b.Active != "eth1" || b.Primary != "eth1" ||
		!slices.Equal(b.Slaves, []string{"eth0", "eth1"}) || p.Name != "eth1" || s.Name != "eth0" || s.TxPackets != 26 || p.TxPackets != 5 {
		t.Errorf("bond %+v primary %+v standby %+v", b, p, s)
	}
	if !whole.BondWhole() || whole.BondOnStandby() || whole.PrimaryEnslaved() {
		t.Errorf("whole %v, on standby %v, failover %v", whole.BondWhole(), whole.BondOnStandby(), whole.PrimaryEnslaved())
	}
	// Enslaved again but its link not up yet: the bond still runs on the standby.
	relinking, _ := ParseHeartbeat("VFO-HB up=44.39 sent=82 recv=75 lost=5 | bond0 drv=- state=up master=- role=bond mode=active-backup active=eth0 primary=eth1 slaves=eth0,eth1" +
		" | eth0 drv=virtio_net state=up master=bond0 role=- tx=24 rx=1 | eth1 drv=e1000e state=down master=bond0 role=- tx=0 rx=0")
	if relinking.BondWhole() || relinking.BondOnStandby() {
		t.Error("a primary without link counts")
	}
	gone, ok := ParseHeartbeat("VFO-HB up=34.19 sent=62 recv=60 lost=1 | bond0 drv=- state=up master=- role=bond mode=active-backup active=eth0 primary=- slaves=eth0" +
		" | eth0 drv=virtio_net state=up master=bond0 role=- tx=15 rx=1")
	if !ok || gone.BondWhole() || !gone.BondOnStandby() {
		t.Errorf("unplugged: ok %v whole %v on standby %v", ok, gone.BondWhole(), gone.BondOnStandby())
	}
	if b, _ := gone.Bond(); b.Primary != "" {
		t.Errorf("primary %q, want none", b.Primary)
	}
	if got := gone.Summary(); !strings.Contains(got, "bond0 active=eth0 primary=- slaves=eth0") {
		t.Errorf("summary %q", got)
	}
	if _, ok := ParseHeartbeat("VFO-HB up=34.19 sent=62 recv=60 lost=1 | eth0 drv=virtio_net state=up master=bond0 role=- tx=1[   6.0] bond0: x"); ok {
		t.Error("a garbled counter parses")
	}
}

// TestParseMultipath: the multipath part as e2e/guest/mpath writes it (its TestStatusLine).
func TestParseMultipath(t *testing.T) {
	const nic = "VFO-HB up=26.55 sent=45 recv=44 lost=0 | eth0 drv=virtio_net state=up master=- role=plain"
	whole, ok := ParseHeartbeat(nic + " | mpath mpath0 dev=dm-0 wwid=naa.5001405000e2e001 group=1 paths=sda:vmw_pvscsi:A:1,sdb:virtio_scsi:A:2 written=227 verified=454 ioerr=0 bad=0")
	if !ok || whole.Multipath == nil || !whole.PlainUp() {
		t.Fatalf("does not parse: %+v", whole)
	}
	m := whole.Multipath
	want := Multipath{Name: "mpath0", Dev: "dm-0", WWID: "naa.5001405000e2e001", Group: 1, Written: 227, Verified: 454,
		Paths: []Path{{"sda", "vmw_pvscsi", true, 1}, {"sdb", "virtio_scsi", true, 2}}}
	if d := cmp.Diff(want, *m); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	if !whole.MultipathWhole() || whole.MultipathOnStandby() || len(m.Using()) != 1 || m.Using()[0].Dev != "sda" {
		t.Errorf("whole %v on standby %v using %v", whole.MultipathWhole(), whole.MultipathOnStandby(), m.Using())
	}
	for _, tc := range []struct {
		part             string
		whole, onStandby bool
	}{
		{"mpath mpath0 dev=dm-0 wwid=naa.5001405000e2e001 group=2 paths=sda:vmw_pvscsi:F:1,sdb:virtio_scsi:A:2 written=300 verified=600 ioerr=0 bad=0", false, false},
		{"mpath mpath0 dev=dm-0 wwid=naa.5001405000e2e001 group=1 paths=sdb:virtio_scsi:A:1 written=311 verified=622 ioerr=0 bad=0", false, true},
		{"mpath mpath0 dev=- wwid=- group=0 paths=- written=0 verified=0 ioerr=0 bad=0", false, false},
		// Both back, but I/O still on the standby's group (before the reload).
		{"mpath mpath0 dev=dm-0 wwid=naa.5001405000e2e001 group=2 paths=sdc:vmw_pvscsi:A:1,sdb:virtio_scsi:A:2 written=400 verified=800 ioerr=0 bad=0", false, false},
	} {
		hb, ok := ParseHeartbeat(nic + " | " + tc.part)
		if !ok {
			t.Errorf("%q does not parse", tc.part)
			continue
		}
		if hb.MultipathWhole() != tc.whole || hb.MultipathOnStandby() != tc.onStandby {
			t.Errorf("%q: whole %v on standby %v", tc.part, hb.MultipathWhole(), hb.MultipathOnStandby())
		}
	}
	for _, garbled := range []string{
		nic + " | mpath mpath0 dev=dm-0 wwid=naa.5001405000e2e001 group=1 paths=sda:vmw_pvscsi:A:1,sdb:virtio_s[    9.1] sd 0:0:0:0",
		nic + " | mpath mpath0 dev=dm-0 wwid=x group=1 paths=sda:vmw_pvscsi:X:1 written=1 verified=1 ioerr=0 bad=0",
		nic + " | mpath mpath0 dev=- wwid=- group=0 paths=- written=0 verified=0 ioerr=0 bad=0 | eth1 drv=virtio_net state=up master=- role=-",
	} {
		if hb, ok := ParseHeartbeat(garbled); ok {
			t.Errorf("%q parses: %+v", garbled, hb.Multipath)
		}
	}
}

// TestBondGuestXML: the bonded guest has an e1000e and a virtio NIC with one MAC, aliased for
// unplugging, nothing of net_failover, and its own name, MAC and address.
func TestBondGuestXML(t *testing.T) {
	g := BondGuest("/k", "/i", "/s/bond.log")
	if f := DefaultGuest("/k", "/i", "/s/guest.log"); g.Name == f.Name || g.MAC == f.MAC || g.IP == f.IP {
		t.Errorf("the bonded guest shares a name, MAC or address with the failover guest: %+v", g)
	}
	xml, err := g.XML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<name>vfo-bond</name>", "vfo.ip=198.51.100.12/24 vfo.gw=198.51.100.254 vfo.bond=1</cmdline>",
		"<model type='e1000e'/>\n      <rom enabled='no'/>\n      <alias name='ua-pri0'/>",
		"<model type='virtio'/>\n      <alias name='ua-sby0'/>",
	} {
		if !strings.Contains(string(xml), want) {
			t.Errorf("bonded guest XML lacks %q", want)
		}
	}
	if n := strings.Count(string(xml), "<mac address='52:54:00:5f:00:12'/>"); n != 2 {
		t.Errorf("%d NICs with the guest's MAC, want 2", n)
	}
	for _, unwanted := range []string{"<teaming", "failover_pair_id", "vfo.plain", "<disk"} {
		if strings.Contains(string(xml), unwanted) {
			t.Errorf("bonded guest XML has %s:\n%s", unwanted, xml)
		}
	}
}

// TestMultipathGuestXML: two disks on one host block device with one WWN and serial, one on a
// pvscsi controller of its own, one on virtio-scsi, shareable and uncached (libvirt migrates a
// shared disk only so), and a plain NIC.
func TestMultipathGuestXML(t *testing.T) {
	g := MultipathGuest("/k", "/i", "/s/mpath.log", "/dev/loop7")
	xml, err := g.XML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(xml)
	for _, want := range []string{
		"<name>vfo-mpath</name>", "vfo.ip=198.51.100.13/24 vfo.gw=198.51.100.254 vfo.plain=1 vfo.mpath=1</cmdline>",
		"<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
		"<controller type='scsi' index='0' model='virtio-scsi'/>", "<controller type='scsi' index='1' model='vmpvscsi'>\n      <alias name='ua-pvscsi1'/>",
		"<qemu:device alias='ua-pvscsi1'>\n      <qemu:frontend>\n        <qemu:property name='use_msg' type='unsigned' value='0'/>",
		"<alias name='ua-hd0'/>\n      <address type='drive' controller='1' bus='0' target='0' unit='0'/>",
		"<alias name='ua-lun0'/>\n      <address type='drive' controller='0' bus='0' target='0' unit='0'/>",
		"<mac address='52:54:00:5f:00:13'/>",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("multipath guest XML lacks %q", want)
		}
	}
	for want, n := range map[string]int{
		"<source dev='/dev/loop7'/>": 2, "<wwn>5001405000e2e001</wwn>": 2, "<serial>vfo-lun0</serial>": 2,
		"<shareable/>": 2, "cache='none'": 2, "<interface": 1,
	} {
		if got := strings.Count(s, want); got != n {
			t.Errorf("%d of %s, want %d", got, want, n)
		}
	}
	if strings.Contains(s, "<teaming") || strings.Contains(s, "e1000e") {
		t.Errorf("multipath guest XML is paired:\n%s", s)
	}
}

func TestDeviceByAlias(t *testing.T) {
	live := `<domain type='qemu' id='3'>
  <name>vfo-bond</name>
  <devices>
    <interface type='network'>
      <mac address='52:54:00:5f:00:12'/>
      <source network='lan' portid='5b0c' bridge='vfbr0'/>
      <model type='e1000e'/>
      <alias name='ua-pri0'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <interface type='network'>
      <alias name='ua-sby0'/>
    </interface>
  </devices>
</domain>
`
	dev, ok, err := deviceByAlias([]byte(live), "ua-pri0")
	if err != nil || !ok {
		t.Fatalf("%v %v", ok, err)
	}
	if !strings.HasPrefix(string(dev), "<interface type='network'>\n      <mac") || !strings.HasSuffix(string(dev), "function='0x0'/>\n    </interface>") {
		t.Errorf("device %q", dev)
	}
	if _, ok, err := deviceByAlias([]byte(live), "ua-hd0"); ok || err != nil {
		t.Errorf("an absent alias: %v %v", ok, err)
	}
}

// TestLoopsUnder finds a stale run's loop devices by their backing files, and no others.
func TestLoopsUnder(t *testing.T) {
	sys := t.TempDir()
	for dev, file := range map[string]string{
		"loop0": "/srv/vf/e2e/out/test-1/lun.img\n",
		"loop1": "/srv/vf/e2e/out/test-10/lun.img (deleted)\n",
		"loop2": "/var/lib/images/other.img\n",
	} {
		dir := filepath.Join(sys, "block", dev, "loop")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "backing_file"), []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := loopsUnder(sys, "/srv/vf/e2e/out/test-1"); !slices.Equal(got, []string{"/dev/loop0"}) {
		t.Errorf("got %v", got)
	}
}

// TestLUN makes a loop device over a sparse file and detaches it (root only).
func TestLUN(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	dir := t.TempDir()
	l, err := NewLUN(t.Context(), filepath.Join(dir, "lun.img"), 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := loopsUnder("/sys", dir); !slices.Equal(got, []string{l.Dev}) {
		t.Errorf("loops under %s: %v, want %s", dir, got, l.Dev)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := loopsUnder("/sys", dir); len(got) != 0 {
		t.Errorf("still attached: %v", got)
	}
}

func TestLastSegfault(t *testing.T) {
	klog := `[  10.0] libvirtd[4655]: segfault at 0 ip 00007f error 4 in libvirt.so.0.9000.0[7f+1]
[  11.0] rpc-libvirtd[4700]: segfault at 8 ip 00007e error 4 in libvirt_driver_qemu.so[7e+1]
[  12.0] qemu-system-x86[99]: segfault at 0 ip 1 error 4
[  13.0] libvirtd: started`
	if got, want := lastSegfault(klog, "libvirtd"), "rpc-libvirtd[4700]: segfault at 8 ip 00007e error 4 in libvirt_driver_qemu.so[7e+1]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := lastSegfault(klog, "virtqemud"); got != "no segfault of virtqemud in it" {
		t.Errorf("got %q", got)
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP x_total A counter.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"two words\"} 3\nx_up 1\ny_sum 0.25\nbroken\n"
	want := map[string]float64{`x_total{a="1",b="two words"}`: 3, "x_up": 1, "y_sum": 0.25}
	if diff := cmp.Diff(want, ParseMetrics(text)); diff != "" {
		t.Errorf("ParseMetrics (-want +got):\n%s", diff)
	}
}
