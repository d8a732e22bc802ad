package virt

import (
	"context"
	"errors"
	"fmt"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// LiveXML is the running domain's definition, as virsh dumpxml prints it, byte for byte.
func (c *Conn) LiveXML(ctx context.Context, dom string) ([]byte, error) {
	return c.xml(dom, 0, "live definition")
}

// InactiveXML is the domain's persistent definition, as virsh dumpxml --inactive prints it.
// For a running domain with no persistent definition (a transient one) libvirt gives the live one.
func (c *Conn) InactiveXML(ctx context.Context, dom string) ([]byte, error) {
	return c.xml(dom, libvirt.DomainXMLInactive, "persistent definition")
}

func (c *Conn) xml(dom string, flags libvirt.DomainXMLFlags, what string) ([]byte, error) {
	d, err := c.lookup(dom)
	if err != nil {
		return nil, err
	}
	s, err := c.l.DomainGetXMLDesc(d, flags)
	if err != nil {
		return nil, fmt.Errorf("%s of %s on %s: %w", what, dom, c.uri, libvirtError(err))
	}
	return []byte(s), nil
}

// XMLReader is what LiveDomain needs: a Hypervisor, or anything else that reads live XML.
type XMLReader interface {
	LiveXML(ctx context.Context, dom string) ([]byte, error)
}

// LiveDomain reads the running domain's definition as libvirtxml's typed view. The view is for
// reading: marshalling it back loses what libvirtxml does not model (comments, unknown elements,
// the order of devices), so changes to a definition are made on its bytes (xmlxform), never by
// re-marshalling a whole domain.
func LiveDomain(ctx context.Context, h XMLReader, dom string) (*libvirtxml.Domain, error) {
	b, err := h.LiveXML(ctx, dom)
	if err != nil {
		return nil, err
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(string(b)); err != nil {
		return nil, fmt.Errorf("live definition of %s: %w", dom, err)
	}
	return &d, nil
}

// HasDevice reports whether a domain definition has a device (a child of <devices>) with that
// alias name.
func HasDevice(domainXML []byte, alias string) (bool, error) {
	e, err := FindDevice(domainXML, alias)
	return e != nil, err
}

// FindDevice returns the element of the device with that alias in a domain definition: the child
// of <devices> whose own <alias name=...> it is, or nil. The element's span locates its bytes.
func FindDevice(domainXML []byte, alias string) (*xmlxform.Element, error) {
	doc, err := xmlxform.Parse(domainXML)
	if err != nil {
		return nil, fmt.Errorf("domain definition: %w", err)
	}
	devices := doc.Find("/domain/devices")
	if devices == nil {
		return nil, nil
	}
	for _, dev := range devices.Children {
		if a := dev.Child("alias"); a != nil {
			if name, _ := a.Attr("name"); name == alias {
				return dev, nil
			}
		}
	}
	return nil, nil
}

// ErrNoAlias: a device definition has no <alias name=...>, so nothing can find it again.
var ErrNoAlias = errors.New("device has no <alias name='ua-...'/>")

// DeviceAlias is the alias a device definition (an <interface>, <hostdev>, <disk>... element)
// gives itself, from its <alias name=...> child. A device without one is ErrNoAlias: libvirt
// would name it itself, and nothing could find it again.
func DeviceAlias(deviceXML []byte) (string, error) {
	doc, err := xmlxform.Parse(deviceXML)
	if err != nil {
		return "", fmt.Errorf("device definition: %w", err)
	}
	if doc.Root == nil {
		return "", fmt.Errorf("device definition: no element")
	}
	if a := doc.Root.Child("alias"); a != nil {
		if name, ok := a.Attr("name"); ok && name != "" {
			return name, nil
		}
	}
	return "", fmt.Errorf("<%s> device: %w", doc.Root.QName, ErrNoAlias)
}
