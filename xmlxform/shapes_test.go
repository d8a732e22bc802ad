package xmlxform

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// A shape makes a document of about n bytes (never more): a libvirt domain,
// or one built to find the parser's weak spots (the hostile shapes).
type shape struct {
	name string
	make func(n int) []byte
	// bad is set for a shape that is not well-formed.
	bad bool
}

// shapes are the libvirt domain and the hostile shapes that the benchmarks
// compare with it, and that the limits test feeds the parser at the hook's
// input cap.
var shapes = []shape{
	{name: "libvirt-domain", make: libvirtDomain},
	{name: "attrs-on-one-element", make: func(n int) []byte {
		return fill(n, "<domain", func(b *bytes.Buffer, i int) { attr(b, " a", i) }, "/>")
	}},
	{name: "prefixed-attrs-on-one-element", make: func(n int) []byte {
		return fill(n, "<domain xmlns:p='urn:p'", func(b *bytes.Buffer, i int) { attr(b, " p:a", i) }, "/>")
	}},
	{name: "namespace-declarations", make: namespaceDeclarations},
	{name: "namespace-scopes", make: func(n int) []byte {
		var head strings.Builder
		head.WriteString("<domain")
		for i := range 32 {
			fmt.Fprintf(&head, " xmlns:p%d='urn:p%d'", i, i)
		}
		head.WriteString(">")
		var scopes []string
		for i := range 7 * 32 {
			scopes = append(scopes, fmt.Sprintf("<a xmlns:q='urn:q%d'><q:b/><p%d:c/></a>", i%7, i%32))
		}
		return fill(n, head.String(), func(b *bytes.Buffer, i int) {
			b.WriteString(scopes[i%len(scopes)])
		}, "</domain>")
	}},
	{name: "elements", make: func(n int) []byte {
		return fill(n, "<domain>", func(b *bytes.Buffer, _ int) { b.WriteString("<a/>") }, "</domain>")
	}},
	{name: "deep-nesting", make: func(n int) []byte {
		const depth = MaxDepth - 1
		return fill(n, "<domain>", func(b *bytes.Buffer, _ int) {
			b.WriteString(strings.Repeat("<a>", depth))
			b.WriteString(strings.Repeat("</a>", depth))
		}, "</domain>")
	}},
	{name: "long-text", make: func(n int) []byte {
		line := strings.Repeat("lorem ipsum ", 6) + "\n"
		return fill(n, "<description>", func(b *bytes.Buffer, _ int) { b.WriteString(line) }, "</description>")
	}},
	{name: "newlines", make: func(n int) []byte {
		return fill(n, "<domain>", func(b *bytes.Buffer, _ int) { b.WriteString("\n\n\n\n\n\n\n\n") }, "</domain>")
	}},
	{name: "long-attribute-value", make: func(n int) []byte {
		// Tabs and references make Parse decode the value into a string
		// of its own, about as long as the source.
		return fill(n, "<domain name='", func(b *bytes.Buffer, _ int) { b.WriteString("lorem\tipsum &amp; dolor\t") }, "'/>")
	}},
	{name: "lt-in-text", make: func(n int) []byte {
		return fill(n, "<domain>", func(b *bytes.Buffer, _ int) { b.WriteString("&lt;&lt;&lt;&lt;") }, "</domain>")
	}},
	{name: "lt-in-cdata", make: func(n int) []byte {
		return fill(n, "<domain><![CDATA[", func(b *bytes.Buffer, _ int) { b.WriteString("<<<<<<<<") }, "]]></domain>")
	}},
	{name: "lt-in-comments", make: func(n int) []byte {
		return fill(n, "<domain>", func(b *bytes.Buffer, _ int) { b.WriteString("<!--<<<-->") }, "</domain>")
	}},
	{name: "lt-only", bad: true, make: func(n int) []byte {
		return bytes.Repeat([]byte{'<'}, n)
	}},
}

// attr writes an attribute named name and i, with a digit for a value (the
// shapes write millions: fmt would take long under the race detector).
func attr(b *bytes.Buffer, name string, i int) {
	var num [20]byte
	b.WriteString(name)
	b.Write(strconv.AppendInt(num[:0], int64(i), 10))
	b.WriteString("='")
	b.WriteByte(byte('0' + i%10))
	b.WriteByte('\'')
}

// fill writes head, then calls unit with 0, 1, 2, ... as long as the units
// and tail fit in n bytes, then tail.
func fill(n int, head string, unit func(b *bytes.Buffer, i int), tail string) []byte {
	var b bytes.Buffer
	b.Grow(n)
	b.WriteString(head)
	for i := 0; ; i++ {
		before := b.Len()
		unit(&b, i)
		if b.Len()+len(tail) > n {
			b.Truncate(before)
			break
		}
	}
	b.WriteString(tail)
	return b.Bytes()
}

// namespaceDeclarations is a root element with as many namespace
// declarations as fit in an eighth of n, and elements in no namespace and in
// the first declared one (the last a backward search reaches) for the rest.
func namespaceDeclarations(n int) []byte {
	var head strings.Builder
	head.WriteString("<domain")
	for i := 0; head.Len() < n/8; i++ {
		fmt.Fprintf(&head, " xmlns:p%d='urn:p%d'", i, i)
	}
	head.WriteString(">")
	return fill(n, head.String(), func(b *bytes.Buffer, _ int) { b.WriteString("<a/><p0:b/>") }, "</domain>")
}

// libvirtDomain is a domain as virsh dumpxml writes it, with as many disks,
// network interfaces and assigned devices as it takes to reach n bytes.
func libvirtDomain(n int) []byte {
	const head = `<domain type='kvm' id='7' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web-01</name>
  <uuid>6f1c3e2a-9b4d-4c7e-8a51-2d0f3b9e7c14</uuid>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>8388608</currentMemory>
  <vcpu placement='static'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
`
	const tail = `  </devices>
  <qemu:commandline>
    <qemu:arg value='-global'/>
    <qemu:arg value='ICH9-LPC.disable_s3=1'/>
  </qemu:commandline>
</domain>
`
	return fill(n, head, func(b *bytes.Buffer, i int) {
		bus, slot := i/32%256, i%32
		switch i % 3 {
		case 0:
			fmt.Fprintf(b, `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io='native' discard='unmap'/>
      <source file='/var/lib/libvirt/images/web-01-disk%d.qcow2' index='%d'/>
      <backingStore/>
      <target dev='vd%c%c' bus='virtio'/>
      <alias name='virtio-disk%d'/>
      <address type='pci' domain='0x0000' bus='0x%02x' slot='0x%02x' function='0x0'/>
    </disk>
`, i, i+1, 'a'+i/26%26, 'a'+i%26, i, bus, slot)
		case 1:
			fmt.Fprintf(b, `    <interface type='bridge'>
      <mac address='52:54:00:%02x:%02x:%02x'/>
      <source bridge='br-fabric-a'/>
      <target dev='vnet%d'/>
      <model type='virtio'/>
      <teaming type='persistent'/>
      <alias name='ua-net%d'/>
      <address type='pci' domain='0x0000' bus='0x%02x' slot='0x%02x' function='0x0'/>
    </interface>
`, i>>16&255, i>>8&255, i&255, i, i, bus, slot)
		default:
			fmt.Fprintf(b, `    <hostdev mode='subsystem' type='pci' managed='yes'>
      <driver name='vfio'/>
      <source>
        <address domain='0x0000' bus='0x%02x' slot='0x%02x' function='0x%x'/>
      </source>
      <alias name='hostdev%d'/>
      <address type='pci' domain='0x0000' bus='0x%02x' slot='0x%02x' function='0x0'/>
    </hostdev>
`, 0x3b+i%64, i/8%32, i%8, i, bus, slot)
		}
	}, tail)
}
