package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Logf receives the progress lines of an orchestration, one event a line.
type Logf func(format string, args ...any)

// guest is one domain on one host, as the steps see it.
type guest struct {
	h    virt.Hypervisor
	name string
	logf Logf
	now  func() time.Time
}

// live reads and parses the live definition.
func (g *guest) live(ctx context.Context) (*policy.Domain, error) {
	src, err := g.h.LiveXML(ctx, g.name)
	if err != nil {
		return nil, err
	}
	return parseDomain(src, fmt.Sprintf("the live definition of %s on %s", g.name, g.h.URI()))
}

// inactive reads and parses the persistent definition; nil for a transient domain.
func (g *guest) inactive(ctx context.Context) (*policy.Domain, error) {
	info, err := g.h.Domain(ctx, g.name)
	if err != nil {
		return nil, err
	}
	if !info.Persistent {
		return nil, nil
	}
	src, err := g.h.InactiveXML(ctx, g.name)
	if err != nil {
		return nil, err
	}
	return parseDomain(src, fmt.Sprintf("the persistent definition of %s on %s", g.name, g.h.URI()))
}

func parseDomain(src []byte, what string) (*policy.Domain, error) {
	doc, err := xmlxform.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return policy.NewDomain(doc), nil
}

// impacts says which definitions a metadata change and a device change of the domain touch: the
// live one always; the persistent one too when the domain has one (and, for a device, when the
// device is in it).
func (g *guest) impacts(ctx context.Context, alias string) (meta, dev virt.Impact, err error) {
	meta, dev = virt.Live, virt.Live
	cfg, err := g.inactive(ctx)
	if err != nil || cfg == nil {
		return meta, dev, err
	}
	meta |= virt.Config
	if len(cfg.Aliases[alias]) > 0 {
		dev |= virt.Config
	}
	return meta, dev, nil
}

// setMetadata replaces virt-failover's metadata element.
func (g *guest) setMetadata(ctx context.Context, payload string, impact virt.Impact) error {
	return g.h.SetMetadata(ctx, g.name, policy.NamespaceMetadata, policy.MetadataKey, []byte(payload), impact)
}

// park records d as parked for reason (metadata first, live and persistent), then detaches it
// (live, waiting for the guest, then from the persistent definition). On a failure of the detach
// the record is taken back unless the device may still go (a timeout): then it stays, and the
// error says to run repair.
func (g *guest) park(ctx context.Context, d Device, reason string, timeout time.Duration) error {
	dom, err := g.live(ctx)
	if err != nil {
		return err
	}
	meta, devImpact, err := g.impacts(ctx, d.Alias)
	if err != nil {
		return err
	}
	// The record keeps the device as the persistent definition has it where it has it: the live
	// form carries what libvirt made up for this run (a vnetN target, port IDs).
	if devImpact&virt.Config != 0 {
		if cfg, err := g.inactive(ctx); err == nil && cfg != nil && cfg.ParkedFor(d.Alias) == nil {
			dom = cfg
		}
	}
	payload, err := dom.ParkMetadata(policy.Park{Alias: d.Alias, Kind: d.Kind, Reason: reason, Pool: d.Pool, Since: g.now()})
	if err != nil {
		return fmt.Errorf("park %s of %s: %w", d.Alias, g.name, err)
	}
	if err := g.setMetadata(ctx, payload, meta); err != nil {
		return fmt.Errorf("park %s of %s: record it in the metadata: %w", d.Alias, g.name, err)
	}
	start := time.Now()
	err = g.h.Detach(ctx, g.name, d.Alias, virt.Live, timeout)
	if err == nil && devImpact&virt.Config != 0 {
		err = g.h.Detach(ctx, g.name, d.Alias, virt.Config, timeout)
		if err != nil {
			// Out of the guest but not of its persistent definition: plug it back.
			if aerr := g.replugOne(ctx, d.Alias, timeout); aerr != nil {
				return errors.Join(err, aerr)
			}
			return err
		}
	}
	if err != nil {
		if errors.Is(err, virt.ErrTimeout) {
			return fmt.Errorf("%w; its parked record stays: once the guest has released it or not, \"virt-failover repair %s\" plugs it back or drops the record", err, g.name)
		}
		if uerr := g.unpark(ctx, d.Alias); uerr != nil {
			return errors.Join(err, uerr)
		}
		return err
	}
	g.logf("detached %s (%s) in %s", d.Alias, d.Kind, since(start))
	return nil
}

// setReason changes the reason of a parked record (live and persistent).
func (g *guest) setReason(ctx context.Context, dom *policy.Domain, pk *policy.Parked, reason string) error {
	t := xmlxform.NewTransform(dom.Doc)
	t.SetAttr(pk.El, "reason", reason)
	out, err := t.Bytes()
	if err != nil {
		return err
	}
	changed, err := parseDomain(out, "the definition with the new reason")
	if err != nil {
		return err
	}
	payload, err := changed.FailoverMetadata()
	if err != nil {
		return err
	}
	meta, _, err := g.impacts(ctx, "")
	if err != nil {
		return err
	}
	return g.setMetadata(ctx, payload, meta)
}

// unpark drops the parked record of alias (live and persistent).
func (g *guest) unpark(ctx context.Context, alias string) error {
	dom, err := g.live(ctx)
	if err != nil {
		return err
	}
	if dom.ParkedFor(alias) == nil {
		return nil
	}
	payload, err := dom.UnparkMetadata(alias)
	if err != nil {
		return err
	}
	meta, _, err := g.impacts(ctx, alias)
	if err != nil {
		return err
	}
	if err := g.setMetadata(ctx, payload, meta); err != nil {
		return fmt.Errorf("drop the parked record of %s from %s: %w", alias, g.name, err)
	}
	return nil
}

// replugOne plugs the parked device alias back from its record and drops the record. A device
// that is in the live definition already is not attached again (whoever plugged it, the record
// only goes). The persistent definition gets the device too when it lacks it.
func (g *guest) replugOne(ctx context.Context, alias string, timeout time.Duration) error {
	dom, err := g.live(ctx)
	if err != nil {
		return err
	}
	pk := dom.ParkedFor(alias)
	if pk == nil {
		if len(dom.Aliases[alias]) > 0 {
			return nil
		}
		return fmt.Errorf("plug %s back into %s: it is neither in the domain nor parked", alias, g.name)
	}
	if len(dom.Aliases[alias]) == 0 {
		xml, err := dom.DeviceXML(pk)
		if err != nil {
			return err
		}
		start := time.Now()
		if err := g.h.Attach(ctx, g.name, []byte(xml), virt.Live, timeout); err != nil {
			// Someone else (the replug worker) may have plugged it meanwhile.
			if again, lerr := g.live(ctx); lerr != nil || len(again.Aliases[alias]) == 0 {
				return err
			}
		} else {
			g.logf("attached %s (%s) in %s", alias, pk.Kind, since(start))
		}
		cfg, err := g.inactive(ctx)
		if err != nil {
			return err
		}
		if cfg != nil && len(cfg.Aliases[alias]) == 0 {
			if err := g.h.Attach(ctx, g.name, []byte(xml), virt.Config, timeout); err != nil {
				return fmt.Errorf("%s is back in the guest, but not in its persistent definition: %w", alias, err)
			}
		}
	}
	return g.unpark(ctx, alias)
}

// replug plugs back every parked device whose record matches want, in record order; it goes on
// past a failure and returns the devices plugged and the errors.
func (g *guest) replug(ctx context.Context, want func(*policy.Parked) bool, timeout time.Duration) (done []string, err error) {
	dom, err := g.live(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, pk := range dom.Parked {
		if !want(pk) {
			continue
		}
		if err := g.replugOne(ctx, pk.Alias, timeout); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, pk.Alias)
	}
	if err := g.sweep(ctx); err != nil {
		errs = append(errs, err)
	}
	return done, errors.Join(errs...)
}

// sweep drops the records of parked devices that are in the live definition (plugged back by
// someone whose own unpark raced with another's read-modify-write of the metadata), until none is
// left or a few passes fail to change anything.
func (g *guest) sweep(ctx context.Context) error {
	for range 3 {
		dom, err := g.live(ctx)
		if err != nil {
			return err
		}
		var stale []string
		for _, pk := range dom.Parked {
			if len(dom.Aliases[pk.Alias]) > 0 {
				stale = append(stale, pk.Alias)
			}
		}
		if len(stale) == 0 {
			return nil
		}
		for _, alias := range stale {
			if err := g.unpark(ctx, alias); err != nil {
				return err
			}
		}
	}
	return nil
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }
