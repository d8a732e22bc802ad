package claims

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Use is a host resource a running domain's device uses.
type Use struct {
	Kind   policy.ResourceKind
	Name   string // PCI address, or network/bridge name
	Device string // the device's alias, else its label
}

// RunningDomain is a domain libvirt runs, as its status file shows it.
type RunningDomain struct {
	Name, UUID string
	File       string
	Domain     *policy.Domain // the live definition
	Uses       []Use          // every interface source and assigned PCI device
}

// ReadRunning reads libvirt's status files of running domains (DIR/NAME.xml, a <domstatus> around
// the live <domain>): the hook must not ask libvirt (docs/failover.md#hook-protocol), and these files are
// what libvirt itself reloads on restart. A missing directory means nothing runs.
func ReadRunning(dir string) ([]RunningDomain, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		return nil, err
	}
	var out []RunningDomain
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) { // the domain stopped meanwhile
				errs = append(errs, err)
			}
			continue
		}
		doc, err := xmlxform.Parse(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%w", f, err))
			continue
		}
		el := doc.Root
		if el.Name.Local == "domstatus" {
			el = el.Child("domain")
		}
		if el == nil || el.Name.Local != "domain" {
			continue
		}
		d := policy.NewDomainAt(doc, el)
		out = append(out, RunningDomain{Name: d.Name, UUID: d.UUID, File: f, Domain: d, Uses: usesOf(d)})
	}
	return out, errors.Join(errs...)
}

// usesOf lists the host resources the devices of a domain use.
func usesOf(d *policy.Domain) []Use {
	var out []Use
	name := func(alias string, el *xmlxform.Element) string {
		if alias != "" {
			return alias
		}
		return policy.DeviceLabel(el)
	}
	for _, n := range d.NICs {
		src := n.El.Child("source")
		switch {
		case (n.Type == "network" || n.Type == "bridge") && src != nil:
			// The live XML names both the network and its bridge (type='bridge' with
			// <source network= bridge=>): a pool may list either.
			for _, attr := range []string{"network", "bridge"} {
				if v, ok := src.Attr(attr); ok {
					out = append(out, Use{policy.KindNetwork, v, name(n.Alias, n.El)})
				}
			}
			// A hostdev network's live XML also carries the VF libvirt picked.
			if a := src.Child("address"); a != nil {
				if pci := policy.PCIAddress(a); pci != "" {
					out = append(out, Use{policy.KindVF, pci, name(n.Alias, n.El)})
				}
			}
		case n.Type == "hostdev" && src != nil:
			if pci := policy.PCIAddress(src.Child("address")); pci != "" {
				out = append(out, Use{policy.KindVF, pci, name(n.Alias, n.El)})
			}
		}
	}
	for _, h := range d.Hostdevs {
		if h.Type == "pci" && h.Source != "" {
			out = append(out, Use{policy.KindVF, h.Source, name(h.Alias, h.El)})
		}
	}
	return out
}

// usage indexes who uses what among the running domains, leaving out one domain (by UUID).
type usage map[resKey][]string

type resKey struct {
	kind policy.ResourceKind
	name string
}

func usageOf(running []RunningDomain, exceptUUID string) usage {
	u := usage{}
	for _, rd := range running {
		if rd.UUID == exceptUUID && exceptUUID != "" {
			continue
		}
		for _, use := range rd.Uses {
			k := resKey{use.Kind, use.Name}
			if !slices.Contains(u[k], rd.Name) {
				u[k] = append(u[k], rd.Name)
			}
		}
	}
	return u
}
