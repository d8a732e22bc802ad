package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// DeviceXML returns the live definition of the device of dom whose alias is alias, as the
// domain's live XML has it (address included, so that attaching it again puts it back where it
// was).
func (h *Host) DeviceXML(ctx context.Context, dom, alias string) ([]byte, error) {
	live, err := h.Virsh(ctx, "dumpxml", dom)
	if err != nil {
		return nil, err
	}
	dev, ok, err := deviceByAlias([]byte(live), alias)
	if err != nil {
		return nil, fmt.Errorf("[%s] dumpxml %s: %w", h.Name, dom, err)
	}
	if !ok {
		return nil, fmt.Errorf("[%s] %s has no device with alias %s", h.Name, dom, alias)
	}
	return dev, nil
}

// deviceByAlias returns the bytes of the element under <devices> whose <alias name> is alias.
func deviceByAlias(domain []byte, alias string) ([]byte, bool, error) {
	doc, err := xmlxform.Parse(domain)
	if err != nil {
		return nil, false, err
	}
	devices := doc.Find("/domain/devices")
	if devices == nil {
		return nil, false, nil
	}
	for _, el := range devices.Children {
		if a := el.Child("alias"); a != nil {
			if name, _ := a.Attr("name"); name == alias {
				s := el.Span()
				return append([]byte(nil), doc.Src[s.Start:s.End]...), true, nil
			}
		}
	}
	return nil, false, nil
}

// HasDevice reports whether the live XML of dom has a device with that alias.
func (h *Host) HasDevice(ctx context.Context, dom, alias string) (bool, error) {
	live, err := h.Virsh(ctx, "dumpxml", dom)
	if err != nil {
		return false, err
	}
	_, ok, err := deviceByAlias([]byte(live), alias)
	return ok, err
}

// DetachAlias hot-unplugs the device of dom with that alias (virsh detach-device-alias --live)
// and waits until it is gone from the live XML. It returns how long that took.
func (h *Host) DetachAlias(ctx context.Context, dom, alias string) (time.Duration, error) {
	start := time.Now()
	if _, err := h.Virsh(ctx, "detach-device-alias", dom, alias, "--live"); err != nil {
		return 0, err
	}
	return h.waitDevice(ctx, dom, alias, false, start)
}

// AttachDevice hot-plugs a device into dom (virsh attach-device --live) and waits until the live
// XML has a device with alias. It returns how long that took.
func (h *Host) AttachDevice(ctx context.Context, dom, alias string, def []byte) (time.Duration, error) {
	path := filepath.Join(h.Dir, dom+"-"+alias+".xml")
	if err := os.WriteFile(path, def, 0o644); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := h.Virsh(ctx, "attach-device", dom, path, "--live"); err != nil {
		return 0, err
	}
	return h.waitDevice(ctx, dom, alias, true, start)
}

func (h *Host) waitDevice(ctx context.Context, dom, alias string, present bool, start time.Time) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		ok, err := h.HasDevice(ctx, dom, alias)
		if err == nil && ok == present {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			state := "still there"
			if present {
				state = "not there"
			}
			return time.Since(start), fmt.Errorf("[%s] %s: device %s %s after %.1fs (%v)", h.Name, dom, alias, state,
				time.Since(start).Seconds(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
