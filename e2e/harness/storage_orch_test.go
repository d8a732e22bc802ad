package harness

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLinkUp reads the e1000e primary's link-up time from a destination's kernel lines: from its
// last probe to the link up after it; an earlier probe's link and a probe without a link yet do
// not count. A kernel line may come in the middle of a heartbeat line.
func TestLinkUp(t *testing.T) {
	before := []string{
		"[    2.113014] e1000e 0000:02:00.0 0000:02:00.0 (uninitialized): registered PHC clock",
		"[    2.168112] virtio_net virtio0 eth0: failover primary slave:eth2 registered",
		"[    5.041542] e1000e 0000:02:00.0 eth2: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
		"VFO-HB up=6.01 sent=9 recv=4 lost=3 | eth0 drv=virtio_net state=up master=- role=failover",
		"[    8.176683] e1000e 0000:02:00.0 eth2: NIC Link is Down",
		"[    8.672773] e1000e 0000:02:00.0 0000:02:00.0 (uninitialized): registered PHC clock",
	}
	after := append(before[:len(before):len(before)],
		"[    8.837355] virtio_net virtio0 eth0: failover primary slave:eth2 registered",
		// a kernel line within a heartbeat line
		"VFO-HB up=11.1 sent=20 recv=11 lost=5 | eth0 drv=virtio_net[   11.185226] e1000e 0000:02:00.0 eth2: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
		"[   14.185226] e1000e 0000:02:00.0 eth2: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx")
	if got := linkUp(before); got != 0 {
		t.Errorf("a probe without its link yet: %v, want 0", got)
	}
	if got, want := linkUp(after), 2512453*time.Microsecond; got.Round(time.Microsecond) != want {
		t.Errorf("linkUp = %v, want %v", got, want)
	}
	if got := linkUp(nil); got != 0 {
		t.Errorf("no lines: %v", got)
	}
}

// TestCarrying: the last carrying line of a migration (the bond's switch back to its primary, not
// its failover to the standby before), and its timestamp in host time through the heartbeats read
// after the guest resumed: the one read soonest after it was printed sets the offset.
func TestCarrying(t *testing.T) {
	lines := []string{
		"[   38.310136] bond0: (slave eth0): making interface the new active one",
		"VFO-HB up=40.13 sent=74 recv=73 lost=1 | bond0 drv=- state=up master=- role=bond",
		"VFO-HB up=41.22 sent=76 recv=75 lost=1 | bond0 drv=- state=up master=- role=bond",
		"[   42.271322] bond0: (slave eth1): link status definitely up, 1000 Mbps full duplex",
		"VFO-HB up=42.33 sent=78 recv=77 lost=1 | bond0 drv=- state=up [   42.272646] bond0: (slave eth1): making interface the new active one",
		"VFO-HB up=43.48 sent=81 recv=80 lost=1 | bond0 drv=- state=up master=- role=bond",
	}
	up, ok := lastStamp(lines, BondCarryingRE)
	if !ok || up != 42.272646 {
		t.Fatalf("lastStamp = %v, %v; want 42.272646", up, ok)
	}
	if _, ok := lastStamp(lines, FailoverCarryingRE); ok {
		t.Error("a failover carrying line in a bond's log")
	}

	path := filepath.Join(t.TempDir(), "serial.log")
	serial := NewSerial(path)
	base := time.Now()
	var hbs []Heartbeat
	for i, l := range lines {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(l + "\n")
		f.Close()
		serial.Len()
		if hb, ok := ParseHeartbeat(l); ok {
			hb.Index = i
			hbs = append(hbs, hb)
		}
	}
	// When the harness read each heartbeat: the second one read soonest (0.02 s after it was
	// printed), the first one before the guest resumed.
	seen := map[int]time.Duration{1: 39 * time.Second, 2: 41240 * time.Millisecond, 5: 43700 * time.Millisecond}
	for i, at := range seen {
		serial.times[i] = base.Add(at)
	}
	toHost, found := guestToHost(serial, hbs, base.Add(40*time.Second))
	if !found {
		t.Fatal("no heartbeat after the resume")
	}
	if got, want := toHost(42.272646).Sub(base), 42292646*time.Microsecond; got.Round(time.Microsecond) != want {
		t.Errorf("the carrying line in host time: %v after the base, want %v", got, want)
	}
	if _, found := guestToHost(serial, hbs, base.Add(time.Minute)); found {
		t.Error("an offset without a heartbeat read after the resume")
	}
}
