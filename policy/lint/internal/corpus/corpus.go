// Package corpus generates realistic domain definitions for the linter's benchmarks: the shapes
// libvirt writes (q35 and i440fx machines, root ports, addresses, aliases), with and without
// failover pairs of every kind the linter knows, a few with mistakes.
package corpus

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Domain returns the i-th domain of the corpus; the same i always gives the same bytes.
func Domain(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 0x5f))
	var b strings.Builder
	q35 := r.IntN(4) != 0
	machine := "pc-i440fx-7.2"
	if q35 {
		machine = "pc-q35-7.2"
	}
	kind := i % 6 // 0 plain, 1 VF interface pair, 2 plain-hostdev pair, 3 hostdev network pair, 4 emulated pair, 5 storage pair
	ns := ""
	if kind == 4 {
		ns = " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"
	}
	fmt.Fprintf(&b, "<domain type='kvm'%s>\n  <name>vm-%04d</name>\n  <uuid>%08x-%04x-4%03x-8%03x-%012x</uuid>\n", ns, i,
		r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Uint64()&(1<<48-1))
	if kind == 5 {
		b.WriteString("  <metadata>\n    <vfo:failover xmlns:vfo=\"http://virt-failover.org/xmlns/domain/1.0\" version=\"v0.1.0\">\n" +
			"      <vfo:pair kind=\"storage\" standby=\"ua-lun0\" primary=\"ua-hd0\" device=\"0000:81:00.0\" lun=\"/dev/disk/by-id/wwn-0x5000c500a1b2c3d4\"/>\n" +
			"    </vfo:failover>\n  </metadata>\n")
	} else if r.IntN(3) == 0 {
		b.WriteString("  <metadata>\n    <libosinfo:libosinfo xmlns:libosinfo=\"http://libosinfo.org/xmlns/libvirt/domain/1.0\">\n" +
			"      <libosinfo:os id=\"http://debian.org/debian/12\"/>\n    </libosinfo:libosinfo>\n  </metadata>\n")
	}
	mem := (1 + r.IntN(16)) * 1048576
	fmt.Fprintf(&b, "  <memory unit='KiB'>%d</memory>\n  <currentMemory unit='KiB'>%d</currentMemory>\n  <vcpu placement='static'>%d</vcpu>\n", mem, mem, 1+r.IntN(8))
	fmt.Fprintf(&b, "  <os>\n    <type arch='x86_64' machine='%s'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n", machine)
	b.WriteString("  <features>\n    <acpi/>\n    <apic/>\n  </features>\n  <cpu mode='host-passthrough' check='none' migratable='on'/>\n")
	b.WriteString("  <clock offset='utc'>\n    <timer name='rtc' tickpolicy='catchup'/>\n    <timer name='pit' tickpolicy='delay'/>\n    <timer name='hpet' present='no'/>\n  </clock>\n")
	b.WriteString("  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n")
	b.WriteString("  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n")
	bus := 1
	next := func() string {
		if !q35 {
			bus++
			return fmt.Sprintf("<address type='pci' domain='0x0000' bus='0x00' slot='0x%02x' function='0x0'/>", bus+2)
		}
		s := fmt.Sprintf("<address type='pci' domain='0x0000' bus='0x%02x' slot='0x00' function='0x0'/>", bus)
		bus++
		return s
	}
	for d := 0; d < 1+r.IntN(3); d++ {
		fmt.Fprintf(&b, "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2' discard='unmap'/>\n"+
			"      <source file='/var/lib/libvirt/images/vm-%04d-%d.qcow2'/>\n      <target dev='vd%c' bus='virtio'/>\n      %s\n    </disk>\n", i, d, 'a'+d, next())
	}
	mac := func(n int) string { return fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>8&0xff, i&0xff, n) }
	switch kind {
	case 1:
		fmt.Fprintf(&b, "    <interface type='bridge'>\n      <mac address='%s'/>\n      <source bridge='br-fabric'/>\n      <model type='virtio'/>\n      <teaming type='persistent'/>\n      <alias name='ua-sby0'/>\n      %s\n    </interface>\n", mac(1), next())
		fmt.Fprintf(&b, "    <interface type='hostdev' managed='yes'>\n      <mac address='%s'/>\n      <source>\n        <address type='pci' domain='0x0000' bus='0x03' slot='0x%02x' function='0x%x'/>\n      </source>\n      <teaming type='transient' persistent='ua-sby0'/>\n      <alias name='ua-pri0'/>\n      <rom bar='off'/>\n      %s\n    </interface>\n", mac(1), 2+r.IntN(16), r.IntN(8), next())
	case 2:
		fmt.Fprintf(&b, "    <interface type='network'>\n      <mac address='%s'/>\n      <source network='lan'/>\n      <model type='virtio'/>\n      <teaming type='persistent'/>\n      <alias name='ua-sby0'/>\n      %s\n    </interface>\n", mac(1), next())
		fmt.Fprintf(&b, "    <hostdev mode='subsystem' type='pci' managed='yes'>\n      <source>\n        <address domain='0x0000' bus='0x03' slot='0x07' function='0x%x'/>\n      </source>\n      <teaming type='transient' persistent='ua-sby0'/>\n      <alias name='ua-pri0'/>\n      %s\n    </hostdev>\n", r.IntN(8), next())
	case 3:
		fmt.Fprintf(&b, "    <interface type='network'>\n      <mac address='%s'/>\n      <source network='lan'/>\n      <model type='virtio'/>\n      <teaming type='persistent'/>\n      <alias name='ua-sby0'/>\n      %s\n    </interface>\n", mac(1), next())
		// Every tenth pair has a typo in persistent=.
		p := "ua-sby0"
		if i%60 == 3 {
			p = "ua-sbyO"
		}
		fmt.Fprintf(&b, "    <interface type='network'>\n      <mac address='%s'/>\n      <source network='fabric'/>\n      <teaming type='transient' persistent='%s'/>\n      <alias name='ua-pri0'/>\n      %s\n    </interface>\n", mac(1), p, next())
	case 4:
		fmt.Fprintf(&b, "    <interface type='network'>\n      <mac address='%s'/>\n      <source network='lan'/>\n      <model type='virtio'/>\n      <teaming type='persistent'/>\n      <alias name='ua-sby0'/>\n      %s\n    </interface>\n", mac(1), next())
		fmt.Fprintf(&b, "    <interface type='network'>\n      <mac address='%s'/>\n      <source network='lan'/>\n      <model type='e1000e'/>\n      <rom enabled='no'/>\n      <alias name='ua-pri0'/>\n      %s\n    </interface>\n", mac(1), next())
	case 5:
		fmt.Fprintf(&b, "    <controller type='scsi' index='0' model='virtio-scsi'>\n      %s\n    </controller>\n", next())
		b.WriteString("    <disk type='block' device='lun'>\n      <driver name='qemu' type='raw'/>\n      <source dev='/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'/>\n" +
			"      <target dev='sda' bus='scsi'/>\n      <alias name='ua-lun0'/>\n      <address type='drive' controller='0' bus='0' target='0' unit='0'/>\n    </disk>\n")
		fmt.Fprintf(&b, "    <hostdev mode='subsystem' type='pci' managed='yes'>\n      <source>\n        <address domain='0x0000' bus='0x81' slot='0x00' function='0x0'/>\n      </source>\n      <alias name='ua-hd0'/>\n      %s\n    </hostdev>\n", next())
	}
	for n := 0; n < r.IntN(3); n++ {
		fmt.Fprintf(&b, "    <interface type='network'>\n      <mac address='%s'/>\n      <source network='default'/>\n      <model type='virtio'/>\n      %s\n    </interface>\n", mac(10+n), next())
	}
	fmt.Fprintf(&b, "    <serial type='pty'>\n      <target type='isa-serial' port='0'>\n        <model name='isa-serial'/>\n      </target>\n    </serial>\n"+
		"    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n"+
		"    <channel type='unix'>\n      <target type='virtio' name='org.qemu.guest_agent.0'/>\n      <address type='virtio-serial' controller='0' bus='0' port='1'/>\n    </channel>\n"+
		"    <input type='tablet' bus='usb'>\n      <address type='usb' bus='0' port='1'/>\n    </input>\n    <input type='mouse' bus='ps2'/>\n    <input type='keyboard' bus='ps2'/>\n"+
		"    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>\n      <listen type='address' address='127.0.0.1'/>\n    </graphics>\n"+
		"    <video>\n      <model type='virtio' heads='1' primary='yes'/>\n      %s\n    </video>\n"+
		"    <memballoon model='virtio'>\n      %s\n    </memballoon>\n    <rng model='virtio'>\n      <backend model='random'>/dev/urandom</backend>\n      %s\n    </rng>\n", next(), next(), next())
	if q35 {
		b.WriteString("    <controller type='pci' index='0' model='pcie-root'/>\n")
		for p := 1; p < bus+2; p++ {
			fmt.Fprintf(&b, "    <controller type='pci' index='%d' model='pcie-root-port'>\n      <model name='pcie-root-port'/>\n      <target chassis='%d' port='0x%x'/>\n"+
				"      <address type='pci' domain='0x0000' bus='0x00' slot='0x%02x' function='0x%x'/>\n    </controller>\n", p, p, 0x7+p, 1+(p-1)/8, (p-1)%8)
		}
	} else {
		b.WriteString("    <controller type='pci' index='0' model='pci-root'/>\n")
	}
	b.WriteString("  </devices>\n")
	if kind == 4 {
		b.WriteString("  <qemu:override>\n    <qemu:device alias='ua-pri0'>\n      <qemu:frontend>\n        <qemu:property name='failover_pair_id' type='string' value='ua-sby0'/>\n      </qemu:frontend>\n    </qemu:device>\n  </qemu:override>\n")
	}
	b.WriteString("</domain>\n")
	return []byte(b.String())
}
