// Package virttest is a fake libvirt for tests of code that uses internal/virt: in-process
// daemons that speak libvirt's RPC protocol on unix sockets, so the code under test connects to
// them with virt.Dial and the URI of a fake host, exactly as it connects to a real one.
//
// A fake host models running domains as their live definitions (bytes; devices are the children
// of <devices> with an <alias>), their persistent definitions, their metadata, a guest agent's
// interfaces, jobs, and the events libvirt sends: lifecycle, device added/removed/removal failed,
// migration iteration, job completed and QEMU monitor events. Hosts of one Cluster migrate
// domains to each other peer to peer. Script makes one call of an operation fail, hang or be
// refused by the guest, one call at a time.
package virttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Cluster is a set of fake hosts that can migrate domains to each other.
type Cluster struct {
	t     testing.TB
	dir   string
	mu    sync.Mutex
	hosts []*Host
}

// New makes an empty cluster; its hosts stop when the test ends.
func New(t testing.TB) *Cluster {
	t.Helper()
	// Unix socket paths are short (108 bytes): not under t.TempDir, whose names grow with the
	// test's name.
	dir, err := os.MkdirTemp("", "virttest")
	if err != nil {
		t.Fatal(err)
	}
	cl := &Cluster{t: t, dir: dir}
	t.Cleanup(func() {
		cl.mu.Lock()
		hosts := slices.Clone(cl.hosts)
		cl.mu.Unlock()
		for _, h := range hosts {
			h.stop()
		}
		os.RemoveAll(dir)
	})
	return cl
}

// Host starts a fake host of the cluster, listening on its own socket.
func (cl *Cluster) Host(name string) *Host {
	cl.t.Helper()
	sock := filepath.Join(cl.dir, name+".sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		cl.t.Fatal(err)
	}
	h := &Host{Name: name, cl: cl, sock: sock, ln: ln, RemoveDelay: 5 * time.Millisecond, MigrateTime: 30 * time.Millisecond,
		doms: map[string]*domain{}, clients: map[*client]bool{}, scripts: map[scriptKey][]Outcome{}, nextID: 1}
	cl.mu.Lock()
	cl.hosts = append(cl.hosts, h)
	cl.mu.Unlock()
	go h.accept(ln)
	return h
}

// byURI finds the host a URI names (by its socket, or its TCP address).
func (cl *Cluster) byURI(uri string) *Host {
	u, err := url.Parse(uri)
	if err != nil {
		return nil
	}
	sock := u.Query().Get("socket")
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, h := range cl.hosts {
		h.mu.Lock()
		tcp := h.tcp
		h.mu.Unlock()
		if sock != "" && h.sock == sock || u.Host != "" && tcp != nil && tcp.Addr().String() == u.Host {
			return h
		}
	}
	return nil
}

// Host is one fake libvirt host.
type Host struct {
	Name string
	// RemoveDelay is how long a guest takes to release a device after a live detach (5 ms); a
	// negative one releases it at once, and DEVICE_REMOVED then reaches the client before the
	// detach call's reply (as libvirt does for a device QEMU no longer has).
	RemoveDelay time.Duration
	// MigrateTime is how long a migration takes unless scripted (30 ms).
	MigrateTime time.Duration
	// OnMigrate, if set, is called as a migration of a domain from this host goes through each
	// QEMU migration status (after its MIGRATION event on the source, "completed" included, and
	// before the destination resumes the guest): a test emits QEMU events there, like
	// UNPLUG_PRIMARY on the source at "setup" and FAILOVER_NEGOTIATED on the destination at
	// "completed" (QEMU loads the device state last). Set it before any client connects.
	OnMigrate func(dom string, dest *Host, phase string)

	cl   *Cluster
	sock string
	ln   net.Listener
	tcp  net.Listener // TCPURI's, guarded by mu

	mu      sync.Mutex
	doms    map[string]*domain
	clients map[*client]bool
	scripts map[scriptKey][]Outcome
	calls   []string
	nextID  int32
	nextCB  int32
	stopped bool
}

// URI is the libvirt URI clients connect to the host with.
func (h *Host) URI() string { return "qemu:///system?socket=" + h.sock }

// TCPURI makes the host listen on a TCP port of the loopback address too (as libvirtd's
// listen_tcp) and returns its qemu+tcp URI.
func (h *Host) TCPURI() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tcp == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			h.cl.t.Fatal(err)
		}
		h.tcp = ln
		go h.accept(ln)
	}
	return "qemu+tcp://" + h.tcp.Addr().String() + "/system"
}

// Op is an operation a Script applies to.
type Op string

// The operations that can be scripted.
const (
	OpDetach      Op = "detach"       // target: the alias
	OpAttach      Op = "attach"       // target: the alias
	OpMigrate     Op = "migrate"      // target: ""
	OpMetadata    Op = "metadata"     // target: the namespace URI
	OpSetMetadata Op = "set-metadata" // target: the namespace URI
	OpAgent       Op = "agent"        // target: ""
)

// Outcome is what one scripted call does instead of its default.
type Outcome struct {
	// Err: the call fails with this libvirt error and changes nothing.
	Err *virt.Error
	// Refuse: a detach's guest refuses the removal: DEVICE_REMOVAL_FAILED after the delay.
	Refuse bool
	// Hang: a detach's guest never releases the device (no event); a migration stays in its
	// last phase until aborted.
	Hang bool
	// NoEvent: a detach's guest releases the device, but no DEVICE_REMOVED reaches the clients
	// (an event lost).
	NoEvent bool
	// Delay, if not 0, replaces RemoveDelay (detach) or MigrateTime (migrate).
	Delay time.Duration
	// Phases are the QEMU migration statuses a migration announces (MIGRATION events) before
	// it completes; default: setup, active. "completed" follows unless it hangs.
	Phases []string
}

type scriptKey struct {
	op          Op
	dom, target string
}

// Script queues outcomes for the next calls of op on a domain and target (see Op); each call
// takes the first one left. Calls with none left behave normally.
func (h *Host) Script(op Op, dom, target string, outs ...Outcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := scriptKey{op, dom, target}
	h.scripts[k] = append(h.scripts[k], outs...)
}

func (h *Host) takeScript(op Op, dom, target string) (Outcome, bool) {
	k := scriptKey{op, dom, target}
	q := h.scripts[k]
	if len(q) == 0 {
		return Outcome{}, false
	}
	h.scripts[k] = q[1:]
	return q[0], true
}

// Calls lists the changing calls the host served, in order, like "detach vm ua-x live",
// "attach vm ua-x live+config", "migrate vm to b", "set-metadata vm URI live", "abort vm".
func (h *Host) Calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func (h *Host) logCall(format string, args ...any) {
	h.calls = append(h.calls, fmt.Sprintf(format, args...))
}

type metaEntry struct{ key, element string }

type domain struct {
	name   string
	uuid   [16]byte
	id     int32
	state  int32
	reason int32
	live   []byte
	config []byte // nil: transient
	meta   map[virt.Impact]map[string]metaEntry
	agent  []virt.Interface // nil: no agent configured
	job    *job
	done   []typedParam // the last completed job's statistics
}

type job struct {
	started time.Time
	total   uint64
	length  time.Duration
	abort   chan struct{}
	aborted bool
}

// Add starts a running domain from a definition (its <name>; its <uuid>, or one made from the
// name); persistent also defines it. The definition is kept as given, so devices are found by
// their <alias name=...> children.
func (h *Host) Add(def []byte, persistent bool) error {
	doc, err := xmlxform.Parse(def)
	if err != nil {
		return err
	}
	name := ""
	if e := doc.Find("/domain/name"); e != nil {
		name = strings.TrimSpace(e.Text(doc))
	}
	if name == "" {
		return fmt.Errorf("virttest: a domain definition without <name>")
	}
	d := &domain{name: name, state: stateRunning, reason: 1, live: slices.Clone(def),
		meta: map[virt.Impact]map[string]metaEntry{virt.Live: metadataOf(def), virt.Config: {}}}
	if e := doc.Find("/domain/uuid"); e != nil {
		text := strings.TrimSpace(e.Text(doc))
		b, err := hex.DecodeString(strings.ReplaceAll(text, "-", ""))
		if err != nil || len(b) != 16 {
			return fmt.Errorf("virttest: domain %s: uuid %q is not one", name, text)
		}
		copy(d.uuid[:], b)
	} else {
		sum := sha256.Sum256([]byte(name))
		copy(d.uuid[:], sum[:16])
	}
	if persistent {
		d.config = slices.Clone(def)
		d.meta[virt.Config] = metadataOf(def)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.doms[name]; ok && old.state != stateShutoff {
		return fmt.Errorf("virttest: domain %s already runs on %s", name, h.Name)
	}
	d.id = h.nextID
	h.nextID++
	h.doms[name] = d
	return nil
}

// LiveXML is a domain's live definition (nil if the host does not run it).
func (h *Host) LiveXML(dom string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.doms[dom]; ok && d.state != stateShutoff {
		return withMetadata(d.live, d.meta[virt.Live])
	}
	return nil
}

// InactiveXML is a domain's persistent definition (nil if it has none here).
func (h *Host) InactiveXML(dom string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.doms[dom]; ok && d.config != nil {
		return withMetadata(d.config, d.meta[virt.Config])
	}
	return nil
}

// State is a domain's state on the host; ok is false when the host does not know it.
func (h *Host) State(dom string) (st virt.State, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.doms[dom]; ok {
		return virt.State(d.state), true
	}
	return virt.StateNone, false
}

// Pause pauses a running domain (as virsh suspend does).
func (h *Host) Pause(dom string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.doms[dom]; ok && d.state == stateRunning {
		d.state, d.reason = statePaused, 1
	}
}

// SetAgent gives a running domain a guest agent that reports these interfaces (nil: no agent).
func (h *Host) SetAgent(dom string, ifaces []virt.Interface) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d, ok := h.doms[dom]; ok {
		d.agent = ifaces
	}
}

// EmitQEMU sends a QEMU monitor event of a domain to the clients subscribed to it; data is the
// event's "data" member as JSON ("" for none).
func (h *Host) EmitQEMU(dom, name, data string) {
	h.mu.Lock()
	d, ok := h.doms[dom]
	var w wireDomain
	if ok {
		w = d.wire()
	}
	h.mu.Unlock()
	if !ok {
		return
	}
	now := time.Now()
	h.emit(true, 0, w, name, func(e *enc) {
		e.str(name)
		e.u64(uint64(now.Unix()))
		e.u32(uint32(now.Nanosecond() / 1000))
		e.optStr(data, data != "")
	})
}

func (d *domain) wire() wireDomain {
	id := d.id
	if d.state == stateShutoff {
		id = -1
	}
	return wireDomain{name: d.name, uuid: d.uuid, id: id}
}

// client is one connection to the host.
type client struct {
	h    *Host
	conn net.Conn
	wmu  sync.Mutex
	regs map[int32]reg // guarded by h.mu
}

// reg is an event registration: a libvirt event ID, or QEMU monitor events (qemu).
type reg struct {
	qemu    bool
	eventID int32
	dom     string // "" for every domain
	name    string // QEMU event name filter ("" for all)
}

func (h *Host) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		c := &client{h: h, conn: conn, regs: map[int32]reg{}}
		h.mu.Lock()
		if h.stopped {
			h.mu.Unlock()
			conn.Close()
			return
		}
		h.clients[c] = true
		h.mu.Unlock()
		go c.serve()
	}
}

// Disconnect drops every client connection, as a restart of the daemon does; the host keeps its
// domains and accepts new connections.
func (h *Host) Disconnect() {
	h.mu.Lock()
	clients := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	for _, c := range clients {
		c.conn.Close()
	}
}

func (h *Host) stop() {
	h.mu.Lock()
	h.stopped = true
	clients := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	for _, d := range h.doms {
		if d.job != nil && !d.job.aborted {
			d.job.aborted = true
			close(d.job.abort)
		}
	}
	tcp := h.tcp
	h.mu.Unlock()
	h.ln.Close()
	if tcp != nil {
		tcp.Close()
	}
	for _, c := range clients {
		c.conn.Close()
	}
}

func (c *client) serve() {
	defer func() {
		c.h.mu.Lock()
		delete(c.h.clients, c)
		c.h.mu.Unlock()
		c.conn.Close()
	}()
	var hdr [28]byte
	for {
		if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		if n < 28 || n > 32<<20 {
			return
		}
		payload := make([]byte, n-28)
		if _, err := io.ReadFull(c.conn, payload); err != nil {
			return
		}
		prog := binary.BigEndian.Uint32(hdr[4:8])
		proc := binary.BigEndian.Uint32(hdr[12:16])
		serial := binary.BigEndian.Uint32(hdr[20:24])
		go c.handle(prog, proc, serial, payload)
	}
}

// write sends one packet.
func (c *client) write(prog, proc, typ, serial, status uint32, payload []byte) {
	var e enc
	e.u32(uint32(28 + len(payload)))
	e.u32(prog)
	e.u32(1)
	e.u32(proc)
	e.u32(typ)
	e.u32(serial)
	e.u32(status)
	e.b = append(e.b, payload...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, _ = c.conn.Write(e.b)
}

// rpcError is a call's failure as libvirt reports it.
type rpcError struct {
	code int
	msg  string
}

func fromVirt(e *virt.Error) *rpcError { return &rpcError{e.Code, e.Message} }

func (c *client) handle(prog, proc, serial uint32, payload []byte) {
	d := &dec{b: payload}
	var out enc
	var rerr *rpcError
	if prog == qemuProgram {
		rerr = c.qemuCall(proc, d, &out)
	} else {
		rerr = c.remoteCall(proc, d, &out)
	}
	if rerr == nil && d.err != nil {
		rerr = &rpcError{errInternal, fmt.Sprintf("virttest: malformed arguments of procedure %d: %v", proc, d.err)}
	}
	if rerr != nil {
		c.write(prog, proc, typeReply, serial, statusError, errorPayload(rerr.code, rerr.msg))
		return
	}
	c.write(prog, proc, typeReply, serial, statusOK, out.b)
}

// register adds an event registration (for one domain if hasDom) and returns its callback ID.
// Like libvirt, it refuses a second registration of the same event (QEMU monitor events: of any
// name) for the same domain, or for all domains, on one connection.
func (c *client) register(r reg, dom wireDomain, hasDom bool, out *enc) *rpcError {
	if hasDom {
		r.dom = dom.name
	}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	for _, o := range c.regs {
		if o.qemu == r.qemu && o.eventID == r.eventID && o.dom == r.dom {
			return &rpcError{errInvalidArg, "invalid argument: event callback already tracked"}
		}
	}
	c.h.nextCB++
	c.regs[c.h.nextCB] = r
	out.i32(c.h.nextCB)
	return nil
}

func (c *client) deregister(id int32) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	delete(c.regs, id)
}

func (c *client) qemuCall(proc uint32, d *dec, out *enc) *rpcError {
	switch proc {
	case qemuProcDomainMonitorEventRegister:
		dom, hasDom := d.optDomain()
		name, _ := d.optStr()
		d.u32()
		return c.register(reg{qemu: true, name: name}, dom, hasDom, out)
	case qemuProcDomainMonitorEventDeregister:
		c.deregister(d.i32())
	default:
		return &rpcError{errInternal, fmt.Sprintf("virttest: unknown QEMU procedure %d", proc)}
	}
	return nil
}

func noDomain(name string) *rpcError {
	return &rpcError{errNoDomain, fmt.Sprintf("Domain not found: no domain with matching name '%s'", name)}
}

// domain finds a domain a call names (the host's lock held).
func (h *Host) domain(w wireDomain) (*domain, *rpcError) {
	d, ok := h.doms[w.name]
	if !ok {
		return nil, noDomain(w.name)
	}
	return d, nil
}

func notRunning(d *domain) *rpcError {
	return &rpcError{errOperationInvalid, "Requested operation is not valid: domain is not running"}
}

func (c *client) remoteCall(proc uint32, d *dec, out *enc) *rpcError {
	h := c.h
	switch proc {
	case procAuthList:
		out.u32(0)
	case procConnectOpen, procConnectClose:
	case procConnectGetLibVersion:
		out.u64(9000000)
	case procConnectListAllDomains:
		d.i32() // need_results: the fake always gives them
		return h.listAll(d.u32(), out)
	case procDomainLookupByName:
		name := d.str()
		h.mu.Lock()
		defer h.mu.Unlock()
		dm, ok := h.doms[name]
		if !ok {
			return noDomain(name)
		}
		out.domain(dm.wire())
	case procDomainGetState:
		w := d.domain()
		d.u32()
		h.mu.Lock()
		defer h.mu.Unlock()
		dm, err := h.domain(w)
		if err != nil {
			return err
		}
		out.i32(dm.state)
		out.i32(dm.reason)
	case procDomainIsPersistent:
		w := d.domain()
		h.mu.Lock()
		defer h.mu.Unlock()
		dm, err := h.domain(w)
		if err != nil {
			return err
		}
		if dm.config != nil {
			out.i32(1)
		} else {
			out.i32(0)
		}
	case procDomainGetXMLDesc:
		w := d.domain()
		flags := d.u32()
		h.mu.Lock()
		defer h.mu.Unlock()
		dm, err := h.domain(w)
		if err != nil {
			return err
		}
		x, meta := dm.live, dm.meta[virt.Live]
		if flags&domainXMLInactive != 0 && dm.config != nil || dm.state == stateShutoff {
			x, meta = dm.config, dm.meta[virt.Config]
		}
		out.str(string(withMetadata(x, meta)))
	case procDomainDetachDeviceAlias:
		return h.detach(d.domain(), d.str(), virt.Impact(d.u32()))
	case procDomainAttachDeviceFlags:
		return h.attach(d.domain(), []byte(d.str()), virt.Impact(d.u32()))
	case procDomainGetMetadata:
		w := d.domain()
		d.i32()
		uri, _ := d.optStr()
		return h.getMetadata(w, uri, virt.Impact(d.u32()), out)
	case procDomainSetMetadata:
		w := d.domain()
		d.i32()
		meta, hasMeta := d.optStr()
		key, _ := d.optStr()
		uri, _ := d.optStr()
		return h.setMetadata(w, uri, key, meta, hasMeta, virt.Impact(d.u32()))
	case procDomainInterfaceAddresses:
		w := d.domain()
		d.u32()
		d.u32()
		return h.interfaceAddresses(w, out)
	case procDomainGetJobStats:
		w := d.domain()
		flags := d.u32()
		return h.jobStats(w, flags, out)
	case procDomainAbortJob:
		w := d.domain()
		h.mu.Lock()
		defer h.mu.Unlock()
		dm, err := h.domain(w)
		if err != nil {
			return err
		}
		h.logCall("abort %s", dm.name)
		if dm.job == nil || dm.job.aborted {
			return &rpcError{errOperationInvalid, "Requested operation is not valid: no job is active on the domain"}
		}
		dm.job.aborted = true
		close(dm.job.abort)
	case procDomainMigratePerform3Params:
		w := d.domain()
		dest, _ := d.optStr()
		params := d.typedParams()
		d.opaque()
		flags := d.u32()
		if d.err != nil {
			return nil
		}
		if err := h.migrate(w, dest, params, flags); err != nil {
			return err
		}
		out.u32(0) // no cookie
	case procConnectDomainEventCallbackRegAny:
		ev := d.i32()
		dom, hasDom := d.optDomain()
		return c.register(reg{eventID: ev}, dom, hasDom, out)
	case procConnectDomainEventCallbackDereg:
		c.deregister(d.i32())
	default:
		return &rpcError{errInternal, fmt.Sprintf("virttest: procedure %d is not implemented", proc)}
	}
	return nil
}

// listAll answers virConnectListAllDomains: the domains that run (flag active), or all (no flag),
// by name. Other flags are not modelled.
func (h *Host) listAll(flags uint32, out *enc) *rpcError {
	if flags&^uint32(listActive) != 0 {
		return &rpcError{errInvalidArg, fmt.Sprintf("virttest: list flags %#x are not modelled", flags)}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var ws []wireDomain
	for _, d := range h.doms {
		if flags&listActive == 0 || d.state != stateShutoff {
			ws = append(ws, d.wire())
		}
	}
	slices.SortFunc(ws, func(a, b wireDomain) int { return strings.Compare(a.name, b.name) })
	out.u32(uint32(len(ws)))
	for _, w := range ws {
		out.domain(w)
	}
	out.u32(uint32(len(ws)))
	return nil
}

// eventProcs maps a libvirt event ID to the procedure of its message.
var eventProcs = map[int32]uint32{
	eventIDLifecycle:           procDomainEventCallbackLifecycle,
	eventIDDeviceRemoved:       procDomainEventCallbackDeviceRemoved,
	eventIDDeviceAdded:         procDomainEventCallbackDeviceAdded,
	eventIDMigrationIteration:  procDomainEventCallbackMigrationIter,
	eventIDDeviceRemovalFailed: procDomainEventCallbackDeviceRemFail,
	eventIDMetadataChange:      procDomainEventCallbackMetadataChange,
}

// emit sends an event to every registration that wants it: a libvirt event (eventID) or a QEMU
// monitor event (qemu, with its name). body writes what follows the callback ID and the domain.
func (h *Host) emit(qemu bool, eventID int32, w wireDomain, name string, body func(*enc)) {
	type target struct {
		c  *client
		id int32
	}
	var targets []target
	h.mu.Lock()
	for c := range h.clients {
		for id, r := range c.regs {
			if r.qemu != qemu || (!qemu && r.eventID != eventID) || (r.dom != "" && r.dom != w.name) ||
				(qemu && r.name != "" && r.name != name) {
				continue
			}
			targets = append(targets, target{c, id})
		}
	}
	h.mu.Unlock()
	slices.SortFunc(targets, func(a, b target) int { return int(a.id - b.id) })
	for _, t := range targets {
		var e enc
		e.i32(t.id)
		e.domain(w)
		body(&e)
		if qemu {
			t.c.write(qemuProgram, qemuProcDomainMonitorEvent, typeMessage, 0, statusOK, e.b)
		} else {
			t.c.write(remoteProgram, eventProcs[eventID], typeMessage, 0, statusOK, e.b)
		}
	}
}

func (h *Host) emitLifecycle(w wireDomain, event, detail int32) {
	h.emit(false, eventIDLifecycle, w, "", func(e *enc) {
		e.i32(event)
		e.i32(detail)
	})
}

func (h *Host) emitAlias(eventID int32, w wireDomain, alias string) {
	h.emit(false, eventID, w, "", func(e *enc) { e.str(alias) })
}

// removeDevice cuts the device with that alias out of a definition, with its line.
func removeDevice(def []byte, alias string) ([]byte, error) {
	el, err := virt.FindDevice(def, alias)
	if err != nil || el == nil {
		return def, err
	}
	sp := el.Span()
	start, end := sp.Start, sp.End
	for start > 0 && (def[start-1] == ' ' || def[start-1] == '\t') {
		start--
	}
	if start > 0 && def[start-1] == '\n' && end < len(def) && def[end] == '\n' {
		end++
	} else {
		start = sp.Start
	}
	return xmlxform.Apply(def, []xmlxform.Edit{{Span: xmlxform.Span{Start: start, End: end}}})
}

// insertDevice adds a device as the last child of <devices>.
func insertDevice(def, dev []byte) ([]byte, error) {
	doc, err := xmlxform.Parse(def)
	if err != nil {
		return nil, err
	}
	devices := doc.Find("/domain/devices")
	if devices == nil {
		return nil, fmt.Errorf("virttest: the definition has no <devices>")
	}
	at := devices.End.Start
	text := append(append([]byte("  "), bytes.TrimSpace(dev)...), "\n  "...)
	if devices.SelfClosing {
		return nil, fmt.Errorf("virttest: <devices/> is empty")
	}
	return xmlxform.Apply(def, []xmlxform.Edit{{Span: xmlxform.Span{Start: at, End: at}, Text: text}})
}

func (h *Host) detach(w wireDomain, alias string, impact virt.Impact) *rpcError {
	h.mu.Lock()
	d, rerr := h.checkDetach(w, alias, impact)
	if rerr != nil {
		h.mu.Unlock()
		return rerr
	}
	out, _ := h.takeScript(OpDetach, d.name, alias)
	if out.Err != nil {
		h.mu.Unlock()
		return fromVirt(out.Err)
	}
	if impact&virt.Config != 0 {
		cfg, err := removeDevice(d.config, alias)
		if err != nil {
			h.mu.Unlock()
			return &rpcError{errInternal, err.Error()}
		}
		d.config = cfg
	}
	delay := h.RemoveDelay
	if out.Delay != 0 {
		delay = out.Delay
	}
	h.mu.Unlock()
	if impact&virt.Live == 0 || out.Hang {
		return nil
	}
	// The guest's answer: the device goes (DEVICE_REMOVED), or stays (DEVICE_REMOVAL_FAILED).
	release := func() {
		h.mu.Lock()
		if cur, ok := h.doms[d.name]; !ok || cur != d || d.state == stateShutoff {
			h.mu.Unlock()
			return
		}
		w := d.wire()
		if out.Refuse {
			h.mu.Unlock()
			h.emitAlias(eventIDDeviceRemovalFailed, w, alias)
			return
		}
		if live, err := removeDevice(d.live, alias); err == nil {
			d.live = live
		}
		h.mu.Unlock()
		if !out.NoEvent {
			h.emitAlias(eventIDDeviceRemoved, w, alias)
		}
	}
	if delay < 0 {
		// Released at once: the event goes out before the call's reply.
		release()
		return nil
	}
	go func() {
		time.Sleep(delay)
		release()
	}()
	return nil
}

// checkDetach finds the domain of a detach and checks the device is where it is to go from
// (the host's lock held).
func (h *Host) checkDetach(w wireDomain, alias string, impact virt.Impact) (*domain, *rpcError) {
	d, rerr := h.domain(w)
	if rerr != nil {
		return nil, rerr
	}
	h.logCall("detach %s %s %s", d.name, alias, impact)
	// libvirt 9.0's words and code (virDomainDefFindDevice).
	missing := &rpcError{errInternal, "internal error: no device found with alias " + alias}
	if impact&virt.Config != 0 {
		if d.config == nil {
			return nil, &rpcError{errOperationInvalid, "Requested operation is not valid: cannot modify the persistent configuration of a transient domain"}
		}
		if has, _ := virt.HasDevice(d.config, alias); !has {
			return nil, missing
		}
	}
	if impact&virt.Live != 0 {
		if d.state != stateRunning && d.state != statePaused {
			return nil, notRunning(d)
		}
		if has, _ := virt.HasDevice(d.live, alias); !has {
			return nil, missing
		}
	}
	return d, nil
}

func (h *Host) attach(w wireDomain, dev []byte, impact virt.Impact) *rpcError {
	alias, err := virt.DeviceAlias(dev)
	if err != nil {
		// libvirt names such a device itself; the fake cannot model that.
		return &rpcError{errInvalidArg, "virttest: " + err.Error()}
	}
	h.mu.Lock()
	d, rerr := h.domain(w)
	if rerr != nil {
		h.mu.Unlock()
		return rerr
	}
	h.logCall("attach %s %s %s", d.name, alias, impact)
	dup := &rpcError{errOperationFailed, "operation failed: non unique alias detected: " + alias}
	if impact&virt.Config != 0 {
		if d.config == nil {
			h.mu.Unlock()
			return &rpcError{errOperationInvalid, "Requested operation is not valid: cannot modify the persistent configuration of a transient domain"}
		}
		if has, _ := virt.HasDevice(d.config, alias); has {
			h.mu.Unlock()
			return dup
		}
	}
	if impact&virt.Live != 0 {
		if d.state != stateRunning && d.state != statePaused {
			h.mu.Unlock()
			return notRunning(d)
		}
		if has, _ := virt.HasDevice(d.live, alias); has {
			h.mu.Unlock()
			return dup
		}
	}
	if out, ok := h.takeScript(OpAttach, d.name, alias); ok && out.Err != nil {
		h.mu.Unlock()
		return fromVirt(out.Err)
	}
	if impact&virt.Config != 0 {
		cfg, err := insertDevice(d.config, dev)
		if err != nil {
			h.mu.Unlock()
			return &rpcError{errInternal, err.Error()}
		}
		d.config = cfg
	}
	if impact&virt.Live == 0 {
		h.mu.Unlock()
		return nil
	}
	live, err := insertDevice(d.live, dev)
	if err != nil {
		h.mu.Unlock()
		return &rpcError{errInternal, err.Error()}
	}
	d.live = live
	wd := d.wire()
	h.mu.Unlock()
	// libvirt queues DEVICE_ADDED while the call is still in progress; it reaches the client
	// after the reply or before it.
	go h.emitAlias(eventIDDeviceAdded, wd, alias)
	return nil
}

func (h *Host) getMetadata(w wireDomain, uri string, impact virt.Impact, out *enc) *rpcError {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, rerr := h.domain(w)
	if rerr != nil {
		return rerr
	}
	if o, ok := h.takeScript(OpMetadata, d.name, uri); ok && o.Err != nil {
		return fromVirt(o.Err)
	}
	if impact != virt.Live && impact != virt.Config {
		return &rpcError{errInvalidArg, "invalid argument: flags 'affect live' and 'affect config' are mutually exclusive"}
	}
	if impact == virt.Config && d.config == nil {
		return &rpcError{errOperationInvalid, "Requested operation is not valid: transient domains do not have any persistent config"}
	}
	m, ok := d.meta[impact][uri]
	if !ok {
		return &rpcError{errNoDomainMetadata, "metadata not found: Requested metadata element is not present"}
	}
	out.str(m.element)
	return nil
}

// setMetadata sets or removes a metadata element and, as libvirt does, announces the change
// (VIR_DOMAIN_EVENT_ID_METADATA_CHANGE) to the clients registered for it.
func (h *Host) setMetadata(w wireDomain, uri, key, meta string, hasMeta bool, impact virt.Impact) *rpcError {
	changed, rerr := h.applyMetadata(w, uri, key, meta, hasMeta, impact)
	if rerr != nil {
		return rerr
	}
	h.emit(false, eventIDMetadataChange, changed, "", func(e *enc) {
		e.i32(metadataElement)
		e.optStr(uri, true)
	})
	return nil
}

func (h *Host) applyMetadata(w wireDomain, uri, key, meta string, hasMeta bool, impact virt.Impact) (wireDomain, *rpcError) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, rerr := h.domain(w)
	if rerr != nil {
		return w, rerr
	}
	h.logCall("set-metadata %s %s %s", d.name, uri, impact)
	if o, ok := h.takeScript(OpSetMetadata, d.name, uri); ok && o.Err != nil {
		return w, fromVirt(o.Err)
	}
	if impact&virt.Config != 0 && d.config == nil {
		return w, &rpcError{errOperationInvalid, "Requested operation is not valid: cannot change persistent config of a transient domain"}
	}
	if hasMeta {
		if _, err := xmlxform.Parse([]byte(meta)); err != nil {
			return w, &rpcError{errInvalidArg, "XML error: " + err.Error()}
		}
	}
	for _, i := range []virt.Impact{virt.Live, virt.Config} {
		if impact&i == 0 {
			continue
		}
		if hasMeta {
			d.meta[i][uri] = metaEntry{key: key, element: meta}
		} else {
			delete(d.meta[i], uri)
		}
	}
	return d.wire(), nil
}

func (h *Host) interfaceAddresses(w wireDomain, out *enc) *rpcError {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, rerr := h.domain(w)
	if rerr != nil {
		return rerr
	}
	if o, ok := h.takeScript(OpAgent, d.name, ""); ok && o.Err != nil {
		return fromVirt(o.Err)
	}
	if d.state != stateRunning {
		return notRunning(d)
	}
	if d.agent == nil {
		return &rpcError{errArgumentUnsupported, "argument unsupported: QEMU guest agent is not configured"}
	}
	out.u32(uint32(len(d.agent)))
	for _, itf := range d.agent {
		out.str(itf.Name)
		out.optStr(itf.MAC, itf.MAC != "")
		out.u32(uint32(len(itf.Addrs)))
		for _, a := range itf.Addrs {
			typ := int32(0)
			if a.Addr().Is6() {
				typ = 1
			}
			out.i32(typ)
			out.str(a.Addr().String())
			out.u32(uint32(a.Bits()))
		}
	}
	return nil
}

// progress is a running job's statistics: it transfers its memory evenly over its length.
func (j *job) progress() []typedParam {
	el := time.Since(j.started)
	done := j.total
	if j.length > 0 && el < j.length {
		done = uint64(float64(j.total) * float64(el) / float64(j.length))
	}
	return []typedParam{
		{name: "operation", u: 3},
		{name: "time_elapsed", u: uint64(el.Milliseconds())},
		{name: "data_total", u: j.total},
		{name: "data_processed", u: done},
		{name: "data_remaining", u: j.total - done},
		{name: "memory_total", u: j.total},
		{name: "memory_processed", u: done},
		{name: "memory_remaining", u: j.total - done},
		{name: "memory_iteration", u: 1},
	}
}

func (h *Host) jobStats(w wireDomain, flags uint32, out *enc) *rpcError {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, rerr := h.domain(w)
	if rerr != nil {
		return rerr
	}
	switch {
	case flags&jobStatsCompleted != 0 && d.job == nil && d.done != nil:
		out.i32(jobCompleted)
		out.typedParams(d.done)
		if flags&jobStatsKeepCompleted == 0 {
			d.done = nil // read once, as libvirt does without VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED
		}
	case flags&jobStatsCompleted == 0 && d.job != nil:
		out.i32(jobUnbounded)
		out.typedParams(d.job.progress())
	default:
		out.i32(0)
		out.u32(0)
	}
	return nil
}

func (h *Host) migrate(w wireDomain, destURI string, params map[string]any, flags uint32) *rpcError {
	dest := h.cl.byURI(destURI)
	h.mu.Lock()
	d, rerr := h.domain(w)
	if rerr != nil {
		h.mu.Unlock()
		return rerr
	}
	h.logCall("migrate %s to %s", d.name, destURI)
	if d.state != stateRunning && d.state != statePaused {
		h.mu.Unlock()
		return notRunning(d)
	}
	if d.job != nil {
		h.mu.Unlock()
		return &rpcError{errOperationInvalid, "Requested operation is not valid: another migration job is already running"}
	}
	out, _ := h.takeScript(OpMigrate, d.name, "")
	if out.Err != nil {
		h.mu.Unlock()
		return fromVirt(out.Err)
	}
	if dest == nil || dest == h {
		h.mu.Unlock()
		return &rpcError{errSystem, fmt.Sprintf("Cannot recv data: failed to connect to destination '%s'", destURI)}
	}
	length := h.MigrateTime
	if out.Delay > 0 {
		length = out.Delay
	}
	j := &job{started: time.Now(), total: 64 << 20, length: length, abort: make(chan struct{})}
	d.job = j
	live := slices.Clone(d.live)
	src := d.wire()
	liveMeta := maps.Clone(d.meta[virt.Live])
	cfgMeta := liveMeta
	persistXML := live
	if d.config != nil {
		cfgMeta, persistXML = maps.Clone(d.meta[virt.Config]), slices.Clone(d.config)
	}
	h.mu.Unlock()

	// Prepare: the destination makes the domain, paused, and announces it.
	incoming := &domain{name: d.name, uuid: d.uuid, state: statePaused, reason: 2, live: live,
		meta: map[virt.Impact]map[string]metaEntry{virt.Live: liveMeta, virt.Config: {}}}
	if rerr := dest.incoming(incoming); rerr != nil {
		h.endJob(d, j)
		return rerr
	}
	dest.emitLifecycle(incoming.wire(), lifecycleStarted, detailMigrated)
	phase := func(p string) {
		h.EmitQEMU(d.name, "MIGRATION", fmt.Sprintf(`{"status":%q}`, p))
		if h.OnMigrate != nil {
			h.OnMigrate(d.name, dest, p)
		}
	}

	phases := out.Phases
	if len(phases) == 0 {
		phases = []string{"setup", "active"}
	}
	step := length / time.Duration(len(phases)+1)
	aborted := false
	for i, p := range phases {
		phase(p)
		if p == "active" {
			h.emit(false, eventIDMigrationIteration, src, "", func(e *enc) { e.i32(1) })
		}
		wait := step
		if out.Hang && i == len(phases)-1 {
			wait = 1<<63 - 1
		}
		select {
		case <-time.After(wait):
		case <-j.abort:
			aborted = true
		}
		if aborted {
			break
		}
	}
	if aborted {
		h.EmitQEMU(d.name, "MIGRATION", `{"status":"cancelling"}`)
		h.EmitQEMU(d.name, "MIGRATION", `{"status":"cancelled"}`)
		dest.removeIncoming(incoming)
		h.endJob(d, j)
		return &rpcError{errOperationAborted, "operation aborted: migration out job: canceled by client"}
	}
	phase("completed")
	stats := []typedParam{
		{name: "operation", u: 3},
		{name: "time_elapsed", u: uint64(time.Since(j.started).Milliseconds())},
		{name: "downtime", u: 7},
		{name: "setup_time", u: 1},
		{name: "data_total", u: j.total},
		{name: "data_processed", u: j.total},
		{name: "data_remaining", u: 0},
		{name: "memory_total", u: j.total},
		{name: "memory_processed", u: j.total},
		{name: "memory_remaining", u: 0},
		{name: "memory_iteration", u: 1},
	}

	// Finish: the destination runs the domain; the source lets it go.
	dest.mu.Lock()
	incoming.state, incoming.reason = stateRunning, 2
	incoming.done = slices.Clone(stats)
	incoming.done[0].u = 2 // VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN
	if flags&migrateFlagPersistDest != 0 {
		incoming.config = persistXML
		incoming.meta[virt.Config] = cfgMeta
	}
	dest.mu.Unlock()
	if flags&migrateFlagPersistDest != 0 {
		dest.emitLifecycle(incoming.wire(), lifecycleDefined, 0)
	}
	dest.emitLifecycle(incoming.wire(), lifecycleResumed, detailMigrated)

	h.mu.Lock()
	d.job = nil
	d.done = stats
	undefine := d.config == nil || flags&migrateFlagUndefineSource != 0
	wasPersistent := d.config != nil
	d.state, d.reason = stateShutoff, shutoffMigrated
	src = d.wire()
	if undefine {
		delete(h.doms, d.name)
	} else {
		d.live = nil
		d.meta[virt.Live] = map[string]metaEntry{}
	}
	h.mu.Unlock()
	h.emitLifecycle(src, lifecycleStopped, detailStoppedMigrated)
	if undefine && wasPersistent {
		h.emitLifecycle(src, lifecycleUndefined, 0)
	}
	return nil
}

// endJob ends a job that did not complete.
func (h *Host) endJob(d *domain, j *job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d.job == j {
		d.job = nil
	}
}

// incoming adds the domain an incoming migration prepares.
func (h *Host) incoming(d *domain) *rpcError {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.doms[d.name]; ok {
		if old.state != stateShutoff {
			return &rpcError{errOperationInvalid, fmt.Sprintf("Requested operation is not valid: domain '%s' is already active", d.name)}
		}
		if old.uuid != d.uuid {
			return &rpcError{errOperationFailed, fmt.Sprintf("operation failed: domain '%s' already exists with another uuid", d.name)}
		}
		d.config, d.meta[virt.Config] = old.config, old.meta[virt.Config]
	}
	d.id = h.nextID
	h.nextID++
	h.doms[d.name] = d
	return nil
}

// removeIncoming drops the domain of a migration that failed.
func (h *Host) removeIncoming(d *domain) {
	h.mu.Lock()
	if h.doms[d.name] == d {
		if d.config != nil {
			d.state, d.reason, d.live = stateShutoff, 0, nil
		} else {
			delete(h.doms, d.name)
		}
	}
	w := d.wire()
	h.mu.Unlock()
	h.emitLifecycle(w, lifecycleStopped, 5)
}
