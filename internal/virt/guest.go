package virt

import (
	"context"
	"fmt"
	"net/netip"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Metadata reads the element a namespace (its URI) has in a domain's <metadata>, from the running
// domain (Live) or its persistent definition (Config): one of them. libvirt gives the element
// without its namespace prefix. found is false, with no error, when there is no such element.
func (c *Conn) Metadata(ctx context.Context, dom, uri string, impact Impact) (element []byte, found bool, err error) {
	if impact != Live && impact != Config {
		return nil, false, fmt.Errorf("metadata %s of %s on %s: %s: want live or config", uri, dom, c.uri, impact)
	}
	d, err := c.lookup(dom)
	if err != nil {
		return nil, false, err
	}
	s, err := c.l.DomainGetMetadata(d, int32(libvirt.DomainMetadataElement), libvirt.OptString{uri}, libvirt.DomainModificationImpact(impact))
	if err != nil {
		err = libvirtError(err)
		if Code(err) == int(libvirt.ErrNoDomainMetadata) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("metadata %s of %s (%s) on %s: %w", uri, dom, impact, c.uri, err)
	}
	return []byte(s), true, nil
}

// SetMetadata puts an element in a domain's <metadata> under a namespace (its URI), with the
// prefix key, in the running domain (Live), its persistent definition (Config), or both; it
// replaces what the namespace had there. An empty element removes the namespace's element. The
// metadata is outside libvirt's ABI check, so it may differ between hosts and definitions.
func (c *Conn) SetMetadata(ctx context.Context, dom, uri, key string, element []byte, impact Impact) error {
	if err := impact.check(); err != nil {
		return fmt.Errorf("set metadata %s of %s on %s: %w", uri, dom, c.uri, err)
	}
	d, err := c.lookup(dom)
	if err != nil {
		return err
	}
	var meta, k libvirt.OptString
	if len(element) > 0 {
		meta, k = libvirt.OptString{string(element)}, libvirt.OptString{key}
	}
	if err := c.l.DomainSetMetadata(d, int32(libvirt.DomainMetadataElement), meta, k, libvirt.OptString{uri}, libvirt.DomainModificationImpact(impact)); err != nil {
		what := "set"
		if len(element) == 0 {
			what = "remove"
		}
		return fmt.Errorf("%s metadata %s of %s (%s) on %s: %w", what, uri, dom, impact, c.uri, libvirtError(err))
	}
	return nil
}

// Interface is a guest network interface as the guest agent reports it.
type Interface struct {
	Name  string // the guest's name for it, like eth0
	MAC   string
	Addrs []netip.Prefix
}

// InterfaceAddresses asks the guest agent for the guest's interfaces and addresses
// (virDomainInterfaceAddresses with the agent source; this does not taint the domain). A guest
// with no agent configured, or one that does not answer, gives an error matching ErrNoAgent.
func (c *Conn) InterfaceAddresses(ctx context.Context, dom string) ([]Interface, error) {
	d, err := c.lookup(dom)
	if err != nil {
		return nil, err
	}
	ifaces, err := c.l.DomainInterfaceAddresses(d, uint32(libvirt.DomainInterfaceAddressesSrcAgent), 0)
	if err != nil {
		return nil, fmt.Errorf("interface addresses of %s from its guest agent on %s: %w", dom, c.uri, libvirtError(err))
	}
	out := make([]Interface, 0, len(ifaces))
	for _, i := range ifaces {
		itf := Interface{Name: i.Name}
		if len(i.Hwaddr) > 0 {
			itf.MAC = i.Hwaddr[0]
		}
		for _, a := range i.Addrs {
			ip, err := netip.ParseAddr(a.Addr)
			if err != nil {
				return nil, fmt.Errorf("interface addresses of %s on %s: %s: %w", dom, c.uri, i.Name, err)
			}
			itf.Addrs = append(itf.Addrs, netip.PrefixFrom(ip, int(a.Prefix)))
		}
		out = append(out, itf)
	}
	return out, nil
}
