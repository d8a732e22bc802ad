package claims

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/virt-failover/virt-failover/internal/ledger"
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

// Running is what libvirt's status directory says runs on this host.
type Running struct {
	Dir     string
	Domains []RunningDomain
	Missing bool  // the directory does not exist: nothing runs, as far as it tells
	Err     error // status files (or the directory) that could not be read
}

// Complete reports whether a domain the view does not list does not run here: the directory
// exists and every status file in it was read. Only a complete view may free a domain's claims.
func (rv Running) Complete() bool { return !rv.Missing && rv.Err == nil }

// runs reports whether the owner of c runs here, by UUID or by name.
func (rv Running) runs(c ledger.Claim) bool {
	for _, rd := range rv.Domains {
		if strings.EqualFold(rd.UUID, c.UUID) || rd.Name == c.Domain || c.UUID == "name:"+rd.Name {
			return true
		}
	}
	return false
}

// LoadRunning reads libvirt's status files of running domains (DIR/NAME.xml, a <domstatus>
// around the live <domain>): the hook must not ask libvirt (docs/failover.md#hook-protocol), and
// these files are what libvirt itself reloads on restart.
func LoadRunning(dir string) Running {
	rv := Running{Dir: dir}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		rv.Missing = true
		return rv
	}
	if err != nil {
		rv.Err = err
		return rv
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".xml") {
			continue
		}
		f := filepath.Join(dir, e.Name())
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
		rv.Domains = append(rv.Domains, RunningDomain{Name: d.Name, UUID: d.UUID, File: f, Domain: d, Uses: usesOf(d)})
	}
	rv.Err = errors.Join(errs...)
	return rv
}

// ReadRunning returns the domains LoadRunning finds; a missing directory means nothing runs.
func ReadRunning(dir string) ([]RunningDomain, error) {
	rv := LoadRunning(dir)
	return rv.Domains, rv.Err
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
