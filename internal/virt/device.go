package virt

import (
	"context"
	"fmt"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Impact says which definitions of a domain a change affects: the running domain, its persistent
// definition, or both (libvirt's VIR_DOMAIN_AFFECT_LIVE and _CONFIG).
type Impact uint32

// The definitions a change can affect.
const (
	Live   Impact = 1 // the running domain
	Config Impact = 2 // the persistent definition (the next boot)
)

func (i Impact) String() string {
	switch i {
	case Live:
		return "live"
	case Config:
		return "config"
	case Live | Config:
		return "live+config"
	}
	return fmt.Sprintf("impact %d", uint32(i))
}

func (i Impact) check() error {
	if i == 0 || i&^(Live|Config) != 0 {
		return fmt.Errorf("%s: want live, config or both", i)
	}
	return nil
}

// DeviceFailure says how a Detach or an Attach failed.
type DeviceFailure int

// How a device change fails.
const (
	// CallFailed: libvirt refused the request (no such device, not hot-pluggable, bad XML...);
	// nothing changed.
	CallFailed DeviceFailure = iota + 1
	// RemovalFailed: the guest refused to release the device (DEVICE_REMOVAL_FAILED); it
	// stays.
	RemovalFailed
	// Timeout: the guest did not release (Detach) or the definition did not show (Attach) the
	// device in time. The request stands: the device may still go (or come) later.
	Timeout
)

// DeviceError is the error of Detach and Attach. errors.Is matches ErrTimeout for Timeout and
// ErrRemovalFailed for RemovalFailed; Err is libvirt's error for CallFailed.
type DeviceError struct {
	Op      string // "detach" or "attach"
	Domain  string
	Alias   string
	Host    string // the connection's URI
	Failure DeviceFailure
	Waited  time.Duration // how long the event was waited for: the timeout, for Timeout
	Err     error
}

func (e *DeviceError) Error() string {
	where := fmt.Sprintf("%s %s from %s on %s", e.Op, e.Alias, e.Domain, e.Host)
	if e.Op == "attach" {
		where = fmt.Sprintf("attach %s to %s on %s", e.Alias, e.Domain, e.Host)
	}
	switch e.Failure {
	case RemovalFailed:
		return where + ": the guest refused to release the device (DEVICE_REMOVAL_FAILED); it stays attached"
	case Timeout:
		if e.Op == "detach" {
			return fmt.Sprintf("%s: no DEVICE_REMOVED within %s: the guest has not released the device yet; the request stands and the device may still go later", where, e.Waited.Round(time.Millisecond))
		}
		return fmt.Sprintf("%s: the device is not in the live definition within %s", where, e.Waited.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *DeviceError) Unwrap() error { return e.Err }

// Is matches ErrTimeout and ErrRemovalFailed.
func (e *DeviceError) Is(target error) bool {
	return target == ErrTimeout && e.Failure == Timeout || target == ErrRemovalFailed && e.Failure == RemovalFailed
}

// Detach asks libvirt to remove the device with that alias (virDomainDetachDeviceAlias) from the
// running domain (Live), its persistent definition (Config), or both.
//
// A live removal needs the guest's cooperation, and libvirt's call returns before the guest acts:
// Detach subscribes to DEVICE_REMOVED and DEVICE_REMOVAL_FAILED of the domain before the call (so
// the event cannot come first), then waits up to timeout. It returns nil once the device is out of
// the live definition, a *DeviceError (Timeout, RemovalFailed or CallFailed) otherwise. On a
// Timeout the live definition is read once more, so an event that went missing does not fail a
// removal that happened. Config alone needs no guest and no waiting.
func (c *Conn) Detach(ctx context.Context, dom, alias string, impact Impact, timeout time.Duration) error {
	fail := func(f DeviceFailure, waited time.Duration, err error) error {
		return &DeviceError{Op: "detach", Domain: dom, Alias: alias, Host: c.uri, Failure: f, Waited: waited, Err: err}
	}
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	events, err := c.deviceCall(ectx, dom, impact, func(d libvirt.Domain) error {
		return c.l.DomainDetachDeviceAlias(d, alias, uint32(impact))
	}, EventDeviceRemoved, EventDeviceRemovalFailed)
	if err != nil {
		return fail(CallFailed, 0, err)
	}
	if events == nil {
		return nil
	}
	start := time.Now()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return fail(CallFailed, time.Since(start), c.lostOr(ctx, "waiting for DEVICE_REMOVED"))
			}
			if e.Alias != alias {
				continue
			}
			if e.Kind == EventDeviceRemovalFailed {
				return fail(RemovalFailed, time.Since(start), nil)
			}
			return nil
		case <-timer.C:
			if has, err := c.hasDevice(ctx, dom, alias); err == nil && !has {
				return nil
			}
			return fail(Timeout, timeout, nil)
		case <-ctx.Done():
			return fail(CallFailed, time.Since(start), fmt.Errorf("waiting for DEVICE_REMOVED: %w (the request stands: the device may still go)", context.Cause(ctx)))
		}
	}
}

// deviceCall makes a device change: it checks the impact, looks the domain up, subscribes to the
// events that will answer a live change (before the call, so none can come first) and calls
// libvirt. events is nil for a change of the persistent definition alone: nothing to wait for.
func (c *Conn) deviceCall(ctx context.Context, dom string, impact Impact, call func(libvirt.Domain) error, kinds ...EventKind) (events <-chan Event, err error) {
	if err := impact.check(); err != nil {
		return nil, err
	}
	d, err := c.lookup(dom)
	if err != nil {
		return nil, err
	}
	if impact&Live != 0 {
		if events, err = c.Events(ctx, dom, kinds...); err != nil {
			return nil, err
		}
	}
	if err := call(d); err != nil {
		return nil, libvirtError(err)
	}
	return events, nil
}

// lostOr says why an event channel closed: the context ended, or the connection went.
func (c *Conn) lostOr(ctx context.Context, what string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	return fmt.Errorf("%s: %w", what, ErrConnectionLost)
}

// Attach hot-plugs a device (virDomainAttachDeviceFlags) into the running domain (Live), its
// persistent definition (Config), or both. The device XML must name its alias
// (<alias name='ua-...'/>): that is how Attach finds the device again, and how anything later
// finds it.
//
// For Live, Attach returns nil once the device is in the live definition: libvirt's call returns
// after QEMU added it, and DEVICE_ADDED follows; the live definition, read after the call and
// after each DEVICE_ADDED of that alias, is the judge. Past timeout it returns a *DeviceError
// with Timeout.
func (c *Conn) Attach(ctx context.Context, dom string, deviceXML []byte, impact Impact, timeout time.Duration) error {
	alias, aerr := DeviceAlias(deviceXML)
	fail := func(f DeviceFailure, waited time.Duration, err error) error {
		return &DeviceError{Op: "attach", Domain: dom, Alias: alias, Host: c.uri, Failure: f, Waited: waited, Err: err}
	}
	if aerr != nil {
		alias = "(no alias)"
		return fail(CallFailed, 0, aerr)
	}
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	events, err := c.deviceCall(ectx, dom, impact, func(d libvirt.Domain) error {
		return c.l.DomainAttachDeviceFlags(d, string(deviceXML), uint32(impact))
	}, EventDeviceAdded)
	if err != nil {
		return fail(CallFailed, 0, err)
	}
	if events == nil {
		return nil
	}
	start := time.Now()
	present := func() (bool, error) { return c.hasDevice(ctx, dom, alias) }
	if ok, err := present(); err != nil {
		return fail(CallFailed, time.Since(start), err)
	} else if ok {
		return nil
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return fail(CallFailed, time.Since(start), c.lostOr(ctx, "waiting for DEVICE_ADDED"))
			}
			if e.Alias != alias {
				continue
			}
			if ok, err := present(); err != nil {
				return fail(CallFailed, time.Since(start), err)
			} else if ok {
				return nil
			}
		case <-timer.C:
			if ok, err := present(); err == nil && ok {
				return nil
			}
			return fail(Timeout, timeout, nil)
		case <-ctx.Done():
			return fail(CallFailed, time.Since(start), fmt.Errorf("waiting for the device: %w", context.Cause(ctx)))
		}
	}
}

// hasDevice reports whether the live definition of dom has a device with that alias: the judge
// of both a removal and an addition, whatever the events said.
func (c *Conn) hasDevice(ctx context.Context, dom, alias string) (bool, error) {
	xml, err := c.LiveXML(ctx, dom)
	if err != nil {
		return false, err
	}
	return HasDevice(xml, alias)
}
