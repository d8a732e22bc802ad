package virt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// EventKind is a kind of libvirt domain event.
type EventKind int

// The domain events Events delivers.
const (
	// EventLifecycle: the domain was defined, started, paused, resumed, stopped...
	// (VIR_DOMAIN_EVENT_ID_LIFECYCLE).
	EventLifecycle EventKind = iota + 1
	// EventDeviceAdded: a device was hot-plugged (VIR_DOMAIN_EVENT_ID_DEVICE_ADDED).
	EventDeviceAdded
	// EventDeviceRemoved: the guest released a device and libvirt removed it from the live
	// definition (VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, QEMU's DEVICE_DELETED).
	EventDeviceRemoved
	// EventDeviceRemovalFailed: the guest refused to release a device
	// (VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED, QEMU's DEVICE_UNPLUG_GUEST_ERROR).
	EventDeviceRemovalFailed
	// EventMigrationIteration: an outgoing migration started another pass over the guest's
	// memory (VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION).
	EventMigrationIteration
	// EventMetadataChange: the domain's metadata was set or removed, by virDomainSetMetadata
	// (VIR_DOMAIN_EVENT_ID_METADATA_CHANGE): a parked record written or dropped. Namespace is
	// the URI of the element's namespace.
	EventMetadataChange
)

// There is no EventJobCompleted: go-libvirt cannot decode VIR_DOMAIN_EVENT_ID_JOB_COMPLETED (its
// event decoder has no decoder for the typed parameters the event carries, and drops it).
// CompletedJobStats reads the same statistics.

var eventIDs = map[EventKind]libvirt.DomainEventID{
	EventLifecycle:           libvirt.DomainEventIDLifecycle,
	EventDeviceAdded:         libvirt.DomainEventIDDeviceAdded,
	EventDeviceRemoved:       libvirt.DomainEventIDDeviceRemoved,
	EventDeviceRemovalFailed: libvirt.DomainEventIDDeviceRemovalFailed,
	EventMigrationIteration:  libvirt.DomainEventIDMigrationIteration,
	EventMetadataChange:      libvirt.DomainEventIDMetadataChange,
}

var eventNames = map[EventKind]string{
	EventLifecycle:           "lifecycle",
	EventDeviceAdded:         "device-added",
	EventDeviceRemoved:       "device-removed",
	EventDeviceRemovalFailed: "device-removal-failed",
	EventMigrationIteration:  "migration-iteration",
	EventMetadataChange:      "metadata-change",
}

func (k EventKind) String() string {
	if n, ok := eventNames[k]; ok {
		return n
	}
	return fmt.Sprintf("event kind %d", int(k))
}

// Event is one libvirt domain event.
type Event struct {
	Kind     EventKind
	Domain   string
	Received time.Time // when this client received it
	// Alias is the device of EventDeviceAdded, EventDeviceRemoved, EventDeviceRemovalFailed.
	Alias string
	// Namespace is the metadata namespace of EventMetadataChange.
	Namespace string
	// Lifecycle is the change of EventLifecycle.
	Lifecycle Lifecycle
	// Iteration is the memory pass of EventMigrationIteration (1 is the first).
	Iteration int
}

// LifecycleType is what happened to a domain (virDomainEventType).
type LifecycleType int

// The lifecycle event types.
const (
	Defined     LifecycleType = LifecycleType(libvirt.DomainEventDefined)
	Undefined   LifecycleType = LifecycleType(libvirt.DomainEventUndefined)
	Started     LifecycleType = LifecycleType(libvirt.DomainEventStarted)
	Suspended   LifecycleType = LifecycleType(libvirt.DomainEventSuspended)
	Resumed     LifecycleType = LifecycleType(libvirt.DomainEventResumed)
	Stopped     LifecycleType = LifecycleType(libvirt.DomainEventStopped)
	Shutdown    LifecycleType = LifecycleType(libvirt.DomainEventShutdown)
	PMSuspended LifecycleType = LifecycleType(libvirt.DomainEventPmsuspended)
	Crashed     LifecycleType = LifecycleType(libvirt.DomainEventCrashed)
)

var lifecycleNames = []string{"defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown", "pmsuspended", "crashed"}

func (t LifecycleType) String() string {
	if t >= 0 && int(t) < len(lifecycleNames) {
		return lifecycleNames[t]
	}
	return fmt.Sprintf("lifecycle %d", int(t))
}

// Lifecycle is a lifecycle event: its type and libvirt's detail code for that type
// (virDomainEvent*DetailType).
type Lifecycle struct {
	Type   LifecycleType
	Detail int
}

// migratedDetail is the detail code that means "because of a migration", per type.
var migratedDetail = map[LifecycleType]int{
	Started:   int(libvirt.DomainEventStartedMigrated),
	Suspended: int(libvirt.DomainEventSuspendedMigrated),
	Resumed:   int(libvirt.DomainEventResumedMigrated),
	Stopped:   int(libvirt.DomainEventStoppedMigrated),
}

// Migrated reports whether the change came from a migration: started (on the destination),
// suspended, resumed, or stopped (on the source) because of one.
func (l Lifecycle) Migrated() bool {
	d, ok := migratedDetail[l.Type]
	return ok && d == l.Detail
}

func (l Lifecycle) String() string {
	if l.Migrated() {
		return l.Type.String() + " (migrated)"
	}
	return fmt.Sprintf("%s (detail %d)", l.Type, l.Detail)
}

// Events delivers the domain events of the given kinds (all kinds if none) for one domain, or for
// every domain when dom is "". The subscription is in place when Events returns, so an action
// taken afterwards cannot outrun its event. The channel closes when ctx ends or the connection is
// lost; the caller reads it until then (or cancels ctx). A slow reader holds up no one: what it
// has not read yet waits for it.
func (c *Conn) Events(ctx context.Context, dom string, kinds ...EventKind) (<-chan Event, error) {
	if len(kinds) == 0 {
		kinds = []EventKind{EventLifecycle, EventDeviceAdded, EventDeviceRemoved, EventDeviceRemovalFailed,
			EventMigrationIteration, EventMetadataChange}
	}
	q := newQueue()
	var ups []*upstream
	for _, k := range kinds {
		id, ok := eventIDs[k]
		if !ok {
			c.hub.leave(q, ups)
			return nil, fmt.Errorf("events of %s on %s: unknown event kind %d", domainOrAll(dom), c.uri, int(k))
		}
		up, err := join(c.hub, upKey{id: id}, q, func(hctx context.Context) (<-chan any, error) {
			return c.l.SubscribeEvents(hctx, id, nil)
		})
		if err != nil {
			c.hub.leave(q, ups)
			return nil, fmt.Errorf("subscribe to %s events of %s on %s: %w", k, domainOrAll(dom), c.uri, libvirtError(err))
		}
		ups = append(ups, up)
	}
	out := make(chan Event)
	go func() {
		defer close(out)
		defer c.hub.leave(q, ups)
		for {
			raw, ok := q.pop(ctx)
			if !ok {
				return
			}
			e, keep := convertEvent(raw)
			if !keep || dom != "" && e.Domain != dom {
				continue
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func domainOrAll(dom string) string {
	if dom == "" {
		return "all domains"
	}
	return dom
}

func convertEvent(raw any) (Event, bool) {
	now := time.Now()
	switch m := raw.(type) {
	case *libvirt.DomainEventCallbackLifecycleMsg:
		return Event{Kind: EventLifecycle, Domain: m.Msg.Dom.Name, Received: now,
			Lifecycle: Lifecycle{Type: LifecycleType(m.Msg.Event), Detail: int(m.Msg.Detail)}}, true
	case *libvirt.DomainEventCallbackDeviceAddedMsg:
		return Event{Kind: EventDeviceAdded, Domain: m.Dom.Name, Received: now, Alias: m.DevAlias}, true
	case *libvirt.DomainEventCallbackDeviceRemovedMsg:
		return Event{Kind: EventDeviceRemoved, Domain: m.Msg.Dom.Name, Received: now, Alias: m.Msg.DevAlias}, true
	case *libvirt.DomainEventCallbackDeviceRemovalFailedMsg:
		return Event{Kind: EventDeviceRemovalFailed, Domain: m.Dom.Name, Received: now, Alias: m.DevAlias}, true
	case *libvirt.DomainEventCallbackMetadataChangeMsg:
		e := Event{Kind: EventMetadataChange, Domain: m.Dom.Name, Received: now}
		if len(m.Nsuri) > 0 {
			e.Namespace = m.Nsuri[0]
		}
		return e, true
	case *libvirt.DomainEventCallbackMigrationIterationMsg:
		return Event{Kind: EventMigrationIteration, Domain: m.Dom.Name, Received: now, Iteration: int(m.Iteration)}, true
	}
	return Event{}, false
}

// QEMUEvent is an event of a domain's QEMU (a QMP event), relayed by libvirt.
type QEMUEvent struct {
	Domain string
	Name   string    // like FAILOVER_NEGOTIATED, UNPLUG_PRIMARY, MIGRATION
	Time   time.Time // QEMU's timestamp
	// Data is the event's "data" member as JSON (nil if it has none), like
	// {"device-id":"ua-sby0"} or {"status":"wait-unplug"}.
	Data json.RawMessage
}

// Field is a string member of the event's data ("" if absent): Field("status") of MIGRATION,
// Field("device-id") of UNPLUG_PRIMARY and FAILOVER_NEGOTIATED.
func (e QEMUEvent) Field(name string) string {
	var m map[string]any
	if json.Unmarshal(e.Data, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

// QEMUEvents delivers the QEMU monitor events of a domain whose names are given (all if none),
// through libvirt's virConnectDomainQemuMonitorEventRegister. Registering does not taint the
// domain (see the package documentation). The channel closes when ctx ends or the connection is
// lost.
//
// When the host has no such domain yet (the destination of a migration that has not begun),
// QEMUEvents waits for it: the subscription is made when libvirt announces the domain (its
// lifecycle event), and the channel closes if that fails. For an incoming migration libvirt
// announces the domain (started, migrated) at the end of the Prepare phase, before the source
// sends anything, so the failover events of the incoming stream are not missed.
func (c *Conn) QEMUEvents(ctx context.Context, dom string, names ...string) (<-chan QEMUEvent, error) {
	if dom == "" {
		return nil, fmt.Errorf("QEMU events on %s: no domain named (libvirt relays them per domain)", c.uri)
	}
	q := newQueue()
	subscribe := func() (*upstream, error) {
		d, err := c.lookup(dom)
		if err != nil {
			return nil, err
		}
		up, err := join(c.hub, upKey{qemu: true, uuid: d.UUID}, q, func(hctx context.Context) (<-chan libvirt.DomainEvent, error) {
			return c.l.SubscribeQEMUEvents(hctx, dom)
		})
		if err != nil {
			return nil, fmt.Errorf("subscribe to QEMU events of %s on %s: %w", dom, c.uri, libvirtError(err))
		}
		return up, nil
	}
	relay := func(up *upstream, out chan<- QEMUEvent) {
		defer c.hub.leave(q, []*upstream{up})
		for {
			raw, ok := q.pop(ctx)
			if !ok {
				return
			}
			e := raw.(libvirt.DomainEvent)
			if len(names) > 0 && !slices.Contains(names, e.Event) {
				continue
			}
			qe := QEMUEvent{Domain: e.Domain.Name, Name: e.Event, Time: time.Unix(int64(e.Seconds), int64(e.Microseconds)*1000)}
			if len(e.Details) > 0 {
				// libvirt relays the event's "data" member as JSON (qemuMonitorJSONIOProcessEvent).
				qe.Data = json.RawMessage(e.Details)
			}
			select {
			case out <- qe:
			case <-ctx.Done():
				return
			}
		}
	}
	out := make(chan QEMUEvent)
	up, err := subscribe()
	if err == nil {
		go func() {
			defer close(out)
			relay(up, out)
		}()
		return out, nil
	}
	if !errors.Is(err, ErrNoDomain) {
		return nil, err
	}
	// Not there yet: watch for it, then look again (it may have come meanwhile).
	lctx, stop := context.WithCancel(ctx)
	life, err := c.Events(lctx, dom, EventLifecycle)
	if err != nil {
		stop()
		return nil, err
	}
	go func() {
		defer close(out)
		up, err := subscribe()
		for err != nil && errors.Is(err, ErrNoDomain) {
			if _, ok := <-life; !ok {
				stop()
				return
			}
			up, err = subscribe()
		}
		stop()
		for range life {
		}
		if err == nil {
			relay(up, out)
		}
	}()
	return out, nil
}
