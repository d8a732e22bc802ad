package harness

import (
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
