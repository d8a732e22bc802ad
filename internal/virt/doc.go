// Package virt is virt-failover's libvirt client, and the only package that imports one
// (github.com/digitalocean/go-libvirt, which speaks libvirt's RPC protocol in Go, so the binary
// stays static): connecting by URI, listing running domains, reading definitions, detaching and
// attaching devices with event waits, live peer-to-peer migration with progress and abort, job
// statistics, domain and QEMU monitor events, metadata, and the guest agent's view of the guest's interfaces.
//
// The orchestrator programs against Hypervisor; *Conn implements it. Tests run it against
// virttest's fake daemons, which speak the same protocol on unix sockets.
//
// # Waiting for devices
//
// A live detach needs the guest: libvirt asks QEMU to unplug the device, QEMU asks the guest, and
// virDomainDetachDeviceAlias returns before the guest answers. The answer is an event:
// DEVICE_REMOVED when the guest released the device (libvirt has removed it from the live
// definition), DEVICE_REMOVAL_FAILED when it refused. Detach subscribes to both before calling
// libvirt and waits; a guest that never answers is a timeout after which the request still stands.
// An attach is synchronous in libvirt (the device is in the live definition when the call
// returns; DEVICE_ADDED follows): Attach checks the live definition, the truth either way.
//
// # QEMU monitor events do not taint
//
// QEMUEvents uses libvirt's virConnectDomainQemuMonitorEventRegister (libvirt-qemu), which only
// registers a callback for events QEMU sends anyway (qemuConnectDomainQemuMonitorEventRegister in
// libvirt's src/qemu/qemu_driver.c calls virDomainQemuMonitorEventStateRegisterID and nothing
// else). What taints a domain "custom-monitor" is sending QEMU commands
// (virDomainQemuMonitorCommand, virsh qemu-monitor-command: qemuDomainQemuMonitorCommandWithFiles
// calls qemuDomainObjTaint with VIR_DOMAIN_TAINT_CUSTOM_MONITOR), which this package never does.
// See https://libvirt.org/html/libvirt-libvirt-qemu.html. The end-to-end test checks the domain
// log for the taint after subscribing.
//
// libvirt relays QEMU's FAILOVER_NEGOTIATED, UNPLUG_PRIMARY and MIGRATION (with status
// wait-unplug) only this way: it has no events of its own for them. go-libvirt drops QEMU events
// that carry no data member, which none of these is.
package virt

import (
	"context"
	"time"
)

// Hypervisor is one libvirt host as the orchestrator uses it. *Conn implements it.
type Hypervisor interface {
	// URI is the URI the host was reached by.
	URI() string
	// Close ends the connection.
	Close() error
	// Disconnected is closed when the connection is lost.
	Disconnected() <-chan struct{}

	// Domain looks a domain up and reads its state (ErrNoDomain when the host has none).
	Domain(ctx context.Context, name string) (DomainInfo, error)
	// ActiveDomains lists the domains that run on the host, by name.
	ActiveDomains(ctx context.Context) ([]DomainInfo, error)
	// LiveXML and InactiveXML are the definitions, byte for byte.
	LiveXML(ctx context.Context, dom string) ([]byte, error)
	InactiveXML(ctx context.Context, dom string) ([]byte, error)

	// Detach removes a device by alias and waits for the guest (DEVICE_REMOVED).
	Detach(ctx context.Context, dom, alias string, impact Impact, timeout time.Duration) error
	// Attach hot-plugs a device and waits until it is in the live definition.
	Attach(ctx context.Context, dom string, deviceXML []byte, impact Impact, timeout time.Duration) error

	// Migrate live-migrates a domain peer to peer, with progress and abort.
	Migrate(ctx context.Context, dom, destURI string, opts MigrateOptions) (*MigrateResult, error)
	// AbortJob aborts the domain's current job.
	AbortJob(ctx context.Context, dom string) error
	// JobStats and CompletedJobStats read the current and the last completed job's statistics.
	JobStats(ctx context.Context, dom string) (JobStats, error)
	CompletedJobStats(ctx context.Context, dom string) (JobStats, error)

	// Metadata reads a namespace's element of the domain's <metadata>; found is false if none.
	Metadata(ctx context.Context, dom, uri string, impact Impact) (element []byte, found bool, err error)
	// SetMetadata writes (or, with no element, removes) a namespace's element.
	SetMetadata(ctx context.Context, dom, uri, key string, element []byte, impact Impact) error

	// InterfaceAddresses asks the guest agent (ErrNoAgent when there is none).
	InterfaceAddresses(ctx context.Context, dom string) ([]Interface, error)

	// Events delivers domain events; QEMUEvents QEMU monitor events by name.
	Events(ctx context.Context, dom string, kinds ...EventKind) (<-chan Event, error)
	QEMUEvents(ctx context.Context, dom string, names ...string) (<-chan QEMUEvent, error)
}

var _ Hypervisor = (*Conn)(nil)
