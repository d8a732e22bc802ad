// Package vfmactest provides a recording stand-in for vfmac.Setter, for tests.
package vfmactest

import (
	"fmt"

	"github.com/virt-failover/virt-failover/internal/vfmac"
)

// Fake records the MACs set. Fail, when set, is returned by every SetMAC.
type Fake struct {
	Set  map[string]string // "PF/VF" -> MAC
	Fail error
}

// SetMAC records the MAC.
func (f *Fake) SetMAC(pf string, vf int, mac vfmac.MAC) error {
	if f.Fail != nil {
		return f.Fail
	}
	if f.Set == nil {
		f.Set = map[string]string{}
	}
	f.Set[fmt.Sprintf("%s/%d", pf, vf)] = mac.String()
	return nil
}
