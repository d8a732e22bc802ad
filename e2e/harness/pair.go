package harness

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// The two hosts' networks. Everything lives in the hosts' network namespaces.
const (
	// Migration link: a veth pair between the hosts.
	MigIPA = "192.0.2.1"
	MigIPB = "192.0.2.2"

	// Guest network: a bridge with the same name, MAC and gateway address on both hosts, so a
	// guest keeps its gateway across a migration.
	Bridge    = "vfbr0"
	BridgeMAC = "02:76:66:00:00:fe"
	GuestGW   = "198.51.100.254"
	GuestIP   = "198.51.100.10"
	PlainIP   = "198.51.100.11" // the yardstick guest's (YardstickGuest), so it can run beside the failover guest
	// BondIP and MultipathIP are the bonded and the multipath guests' (BondGuest, MultipathGuest).
	BondIP      = "198.51.100.12"
	MultipathIP = "198.51.100.13"
	GuestNet    = "/24"

	hostUUIDA = "6d3f5c0e-0a0a-4a1e-9e2e-00000000000a"
	hostUUIDB = "6d3f5c0e-0a0a-4a1e-9e2e-00000000000b"
)

// Pair is two hosts, A and B, joined by a migration link. A defines the libvirt network "lan";
// B defines "lan" and "lan-b", both over the same bridge, so a policy can remap one to the other.
type Pair struct {
	Dir  string
	A, B *Host
}

// PairConfig describes the pair to start.
type PairConfig struct {
	Dir  string // run directory; the hosts live in Dir/a and Dir/b
	Hook string // hook executable to install on both hosts
	// DebB, when set, is a virt-failover .deb that B installs with dpkg (Host.InstallDeb)
	// instead of the copied Hook.
	DebB string
	Logf func(string, ...any)
}

// StartPair creates both hosts, links them and starts their daemons. On error everything it
// started is stopped again.
func StartPair(ctx context.Context, cfg PairConfig) (p *Pair, err error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	p = &Pair{Dir: cfg.Dir}
	defer func() {
		if err != nil {
			p.Stop()
			p = nil
		}
	}()
	for _, hc := range []struct {
		host      **Host
		name      string
		ip        string
		uuid      string
		hook, deb string
	}{{&p.A, "a", MigIPA, hostUUIDA, cfg.Hook, ""}, {&p.B, "b", MigIPB, hostUUIDB, cfg.Hook, cfg.DebB}} {
		if hc.deb != "" {
			hc.hook = ""
		}
		h, err := NewHost(ctx, HostConfig{
			Name: hc.name, Dir: filepath.Join(cfg.Dir, hc.name), MigIP: hc.ip, UUID: hc.uuid,
			Hook: hc.hook, Deb: hc.deb, Logf: logf,
		})
		if err != nil {
			return p, err
		}
		*hc.host = h
	}
	// The migration link: create the pair in A and move one end into B.
	if _, err := p.A.NS(ctx, "ip", "link", "add", "vfmig0", "type", "veth", "peer", "name", "vfmig0",
		"netns", strconv.Itoa(p.B.holder.Process.Pid)); err != nil {
		return p, err
	}
	for _, h := range []*Host{p.A, p.B} {
		script := fmt.Sprintf(`set -e
ip addr add %[1]s/24 dev vfmig0
ip link set vfmig0 up
ip link add %[2]s type bridge
ip link set %[2]s address %[3]s
ip addr add %[4]s%[5]s dev %[2]s
ip link set %[2]s up
`, h.MigIP, Bridge, BridgeMAC, GuestGW, GuestNet)
		if _, err := h.NS(ctx, "sh", "-c", script); err != nil {
			return p, err
		}
	}
	// Both daemons probe QEMU's capabilities at their first start; let them do it side by side.
	errs := make(chan error, 2)
	for _, h := range []*Host{p.A, p.B} {
		logf("host %s: starting virtlogd and libvirtd in %s", h.Name, h.Dir)
		go func() { errs <- h.Start(ctx) }()
	}
	if err := errors.Join(<-errs, <-errs); err != nil {
		return p, err
	}
	if err := p.A.DefineNetwork(ctx, "lan"); err != nil {
		return p, err
	}
	for _, n := range []string{"lan", "lan-b"} {
		if err := p.B.DefineNetwork(ctx, n); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Hosts returns A and B (the ones that exist).
func (p *Pair) Hosts() []*Host {
	var hs []*Host
	for _, h := range []*Host{p.A, p.B} {
		if h != nil {
			hs = append(hs, h)
		}
	}
	return hs
}

// Other returns the host of the pair that is not h.
func (p *Pair) Other(h *Host) *Host {
	if h == p.A {
		return p.B
	}
	return p.A
}

// Stop stops both hosts.
func (p *Pair) Stop() {
	if p == nil {
		return
	}
	for _, h := range p.Hosts() {
		h.Stop()
	}
}

// DefineNetwork defines and starts a libvirt network over the guest bridge.
func (h *Host) DefineNetwork(ctx context.Context, name string) error {
	xml := fmt.Sprintf("<network>\n  <name>%s</name>\n  <forward mode='bridge'/>\n  <bridge name='%s'/>\n</network>\n",
		name, Bridge)
	path := filepath.Join(h.Dir, "net-"+name+".xml")
	if err := os.WriteFile(path, []byte(xml), 0o644); err != nil {
		return err
	}
	if _, err := h.Virsh(ctx, "net-define", path); err != nil {
		return err
	}
	if _, err := h.Virsh(ctx, "net-start", name); err != nil {
		return err
	}
	return nil
}

// Interface is one <interface> of a running domain's live definition.
type Interface struct {
	Alias   string // <alias name=...>
	Model   string // <model type=...>
	Network string // <source network=...>
	Teaming string // <teaming type=...>: persistent (the virtio standby), transient, or ""
}

// Interfaces returns the <interface> elements of the running domain, in order, from its live
// XML (virsh dumpxml).
func (h *Host) Interfaces(ctx context.Context, dom string) ([]Interface, error) {
	out, err := h.Virsh(ctx, "dumpxml", dom)
	if err != nil {
		return nil, err
	}
	var d struct {
		Interfaces []struct {
			Alias struct {
				Name string `xml:"name,attr"`
			} `xml:"alias"`
			Model struct {
				Type string `xml:"type,attr"`
			} `xml:"model"`
			Source struct {
				Network string `xml:"network,attr"`
			} `xml:"source"`
			Teaming struct {
				Type string `xml:"type,attr"`
			} `xml:"teaming"`
		} `xml:"devices>interface"`
	}
	if err := xml.Unmarshal([]byte(out), &d); err != nil {
		return nil, fmt.Errorf("[%s] dumpxml %s: %w", h.Name, dom, err)
	}
	itfs := make([]Interface, len(d.Interfaces))
	for i, x := range d.Interfaces {
		itfs[i] = Interface{Alias: x.Alias.Name, Model: x.Model.Type, Network: x.Source.Network, Teaming: x.Teaming.Type}
	}
	return itfs, nil
}

// InterfaceNetworks returns the source network of each <interface> of the running domain, in
// order, from its live XML (virsh dumpxml).
func (h *Host) InterfaceNetworks(ctx context.Context, dom string) ([]string, error) {
	itfs, err := h.Interfaces(ctx, dom)
	if err != nil {
		return nil, err
	}
	nets := make([]string, len(itfs))
	for i, itf := range itfs {
		nets[i] = itf.Network
	}
	return nets, nil
}
