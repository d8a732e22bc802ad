package virt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Conn is a connection to one libvirt daemon. Its methods may be called from several goroutines
// at once (libvirt serves calls of one client concurrently, so a Migrate can be watched and
// aborted over the same connection).
//
// A context bounds what a method waits for (an event, a job); a single call to libvirt in flight
// is not interrupted by it.
type Conn struct {
	uri string
	l   *libvirt.Libvirt
	hub *hub
}

// The local sockets of libvirt's daemons: the monolithic libvirtd's, else the modular QEMU
// daemon's (a host that runs virtqemud without virtproxyd has only the latter).
var (
	libvirtdSocket  = "/run/libvirt/libvirt-sock"
	virtqemudSocket = "/run/libvirt/virtqemud-sock"
)

// transports are the URI transports Dial supports: the part after "+" in "qemu+ssh", or unix for
// a URI without one and without a host, tls for one with a host (as libvirt reads them).
var transports = []string{"unix", "tcp", "tls", "ssh", "libssh", "libssh2"}

// Dial connects to the libvirt daemon a URI names, through go-libvirt's dialers:
//
//	qemu:///system                          the local daemon's socket (libvirtd's, else virtqemud's)
//	qemu:///system?socket=/path/libvirt-sock  a local daemon on its own socket
//	qemu+tcp://host[:port]/system           libvirtd's TCP listener (port 16509)
//	qemu+tls://host/system                  TLS (?pkipath=, ?no_verify=1)
//	qemu+ssh://user@host/system             SSH with ~/.ssh/known_hosts and the user's key
//	                                        (?keyfile=, ?socket= the remote socket)
//
// The transport ext and any other are refused with an error that lists the supported ones.
func Dial(ctx context.Context, uri string) (*Conn, error) {
	u, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("connect to %s: %w", uri, context.Cause(ctx))
	}
	type result struct {
		l   *libvirt.Libvirt
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := libvirt.ConnectToURI(u)
		done <- result{l, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to %s: %w", uri, libvirtError(r.err))
		}
		return &Conn{uri: uri, l: r.l, hub: newHub()}, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.l != nil {
				_ = r.l.Disconnect()
			}
		}()
		return nil, fmt.Errorf("connect to %s: %w", uri, context.Cause(ctx))
	}
}

// parseURI checks a libvirt URI and settles the local socket: without ?socket= a unix URI gets
// libvirtd's socket, or virtqemud's when only that one exists.
func parseURI(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %q: %w", uri, err)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if driver == "" {
		return nil, fmt.Errorf("libvirt URI %q: no driver (want a URI like qemu:///system or qemu+ssh://host/system)", uri)
	}
	if transport == "" {
		transport = "unix"
		if u.Host != "" {
			transport = "tls"
		}
	}
	known := false
	for _, t := range transports {
		known = known || t == transport
	}
	if !known {
		return nil, fmt.Errorf("libvirt URI %q: transport %q is not supported (supported: %s)", uri, transport, strings.Join(transports, ", "))
	}
	if transport == "unix" && u.Query().Get("socket") == "" && u.Path == "/system" {
		if _, err := os.Stat(libvirtdSocket); err != nil {
			if _, err := os.Stat(virtqemudSocket); err == nil {
				q := u.Query()
				q.Set("socket", virtqemudSocket)
				u.RawQuery = q.Encode()
			}
		}
	}
	return u, nil
}

// URI is the URI the connection was made with.
func (c *Conn) URI() string { return c.uri }

// Close ends the connection. Event channels of the connection close.
func (c *Conn) Close() error {
	defer c.hub.cancel()
	if err := c.l.Disconnect(); err != nil {
		return fmt.Errorf("disconnect from %s: %w", c.uri, err)
	}
	return nil
}

// Disconnected is closed when the connection is lost or closed.
func (c *Conn) Disconnected() <-chan struct{} { return c.l.Disconnected() }

// lookup finds a domain by name.
func (c *Conn) lookup(name string) (libvirt.Domain, error) {
	d, err := c.l.DomainLookupByName(name)
	if err != nil {
		return d, fmt.Errorf("domain %s on %s: %w", name, c.uri, libvirtError(err))
	}
	return d, nil
}

// State is a domain's state, as libvirt's virDomainState.
type State int

// The states of a domain.
const (
	StateNone        State = State(libvirt.DomainNostate)
	StateRunning     State = State(libvirt.DomainRunning)
	StateBlocked     State = State(libvirt.DomainBlocked)
	StatePaused      State = State(libvirt.DomainPaused)
	StateShutdown    State = State(libvirt.DomainShutdown)
	StateShutoff     State = State(libvirt.DomainShutoff)
	StateCrashed     State = State(libvirt.DomainCrashed)
	StatePMSuspended State = State(libvirt.DomainPmsuspended)
)

var stateNames = []string{"no state", "running", "blocked", "paused", "shutting down", "shut off", "crashed", "pmsuspended"}

// String is virsh's name of the state ("running", "shut off").
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state %d", int(s))
}

// DomainInfo is who a domain is on a host and what state it is in.
type DomainInfo struct {
	Name string
	UUID string // canonical, like 6d3f5c0e-0a0a-4a1e-9e2e-00000000000a
	ID   int    // -1 when the domain is not running
	// State and Reason are libvirt's virDomainGetState: Reason is the state's reason code
	// (for StatePaused, 2 is migration; for StateShutoff, 5 is migrated; see libvirt-domain.h).
	State  State
	Reason int
	// Persistent says the domain has a persistent definition (it is not transient).
	Persistent bool
}

// Domain looks a domain up by name and reads its state. A host without it gives an error that
// matches ErrNoDomain.
func (c *Conn) Domain(ctx context.Context, name string) (DomainInfo, error) {
	d, err := c.lookup(name)
	if err != nil {
		return DomainInfo{}, err
	}
	st, reason, err := c.l.DomainGetState(d, 0)
	if err != nil {
		return DomainInfo{}, fmt.Errorf("state of %s on %s: %w", name, c.uri, libvirtError(err))
	}
	persistent, err := c.l.DomainIsPersistent(d)
	if err != nil {
		return DomainInfo{}, fmt.Errorf("persistence of %s on %s: %w", name, c.uri, libvirtError(err))
	}
	return DomainInfo{Name: d.Name, UUID: formatUUID(d.UUID), ID: int(d.ID), State: State(st), Reason: int(reason),
		Persistent: persistent == 1}, nil
}

// Running lists the domains active on the host (running or paused; not shut off), with their
// states, sorted by name. A domain that ends while it is listed is left out.
func (c *Conn) Running(ctx context.Context) ([]DomainInfo, error) {
	doms, _, err := c.l.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive)
	if err != nil {
		return nil, fmt.Errorf("list the domains on %s: %w", c.uri, libvirtError(err))
	}
	var out []DomainInfo
	for _, d := range doms {
		info, err := c.Domain(ctx, d.Name)
		if errors.Is(err, ErrNoDomain) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if info.State != StateShutoff {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b DomainInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func formatUUID(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Errors that callers tell apart with errors.Is. The error returned says more (what failed on
// which domain and host, and libvirt's own message).
var (
	// ErrNoDomain: the host has no domain of that name.
	ErrNoDomain = errors.New("no such domain")
	// ErrNoAgent: the guest has no guest agent configured, or it does not answer.
	ErrNoAgent = errors.New("no guest agent")
	// ErrTimeout: what was waited for did not happen in time.
	ErrTimeout = errors.New("timed out")
	// ErrRemovalFailed: the guest refused to release a device (DEVICE_REMOVAL_FAILED).
	ErrRemovalFailed = errors.New("device removal failed")
	// ErrAborted: a job (a migration) was aborted.
	ErrAborted = errors.New("job aborted")
	// ErrConnectionLost: the connection to libvirt ended while a call was in flight; the call
	// may or may not have taken effect.
	ErrConnectionLost = errors.New("connection to libvirt lost")
)

// Error is an error libvirt reported, with its virErrorNumber.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is maps libvirt's error codes to this package's errors.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNoDomain:
		return e.Code == int(libvirt.ErrNoDomain)
	case ErrNoAgent:
		return e.Code == int(libvirt.ErrAgentUnresponsive) ||
			e.Code == int(libvirt.ErrArgumentUnsupported) && strings.Contains(e.Message, "agent")
	case ErrAborted:
		return e.Code == int(libvirt.ErrOperationAborted)
	case ErrTimeout:
		return e.Code == int(libvirt.ErrOperationTimeout)
	}
	return false
}

// Code is the libvirt error code of err (0 when err is no libvirt error).
func Code(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// libvirtError turns go-libvirt's errors into this package's.
func libvirtError(err error) error {
	var le libvirt.Error
	switch {
	case errors.As(err, &le):
		return &Error{Code: int(le.Code), Message: le.Message}
	case errors.Is(err, libvirt.ErrInterrupted):
		return ErrConnectionLost
	}
	return err
}

// settle is how long Migrate waits, after libvirt's call returned, for the event that carries
// the job's final statistics: it is on its way already.
const settle = 2 * time.Second
