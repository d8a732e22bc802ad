// Package watch is the long-running "virt-failover watch": it follows one libvirt host's events
// (lifecycle, device added and removed, QEMU's FAILOVER_NEGOTIATED, UNPLUG_PRIMARY and MIGRATION)
// and keeps, per running guest, its failover state and, per migration it sees, the times of its
// unplug, migration, downtime and re-plug. It serves them as Prometheus metrics, as JSON for
// "virt-failover status", and its health (docs/watch.md).
//
// It reconnects with backoff when libvirtd goes away, and then reads every running guest's live
// definition again: the parked records there (docs/metadata.md#parked) are the truth about
// which devices are unplugged and why.
package watch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Source is what watch needs of a libvirt connection; *virt.Conn is one.
type Source interface {
	URI() string
	Close() error
	Disconnected() <-chan struct{}
	ActiveDomains(ctx context.Context) ([]virt.DomainInfo, error)
	LiveXML(ctx context.Context, dom string) ([]byte, error)
	CompletedJobStats(ctx context.Context, dom string) (virt.JobStats, error)
	Events(ctx context.Context, dom string, kinds ...virt.EventKind) (<-chan virt.Event, error)
	QEMUEvents(ctx context.Context, dom string, names ...string) (<-chan virt.QEMUEvent, error)
}

// The QEMU events watch follows.
var qemuEvents = []string{"FAILOVER_NEGOTIATED", "UNPLUG_PRIMARY", "MIGRATION"}

// The failover states of a guest, worst first (docs/watch.md#states).
const (
	// StateDegraded: on its emulated devices (a device parked, a primary unplugged) for longer
	// than [watch] degraded_after.
	StateDegraded = "degraded"
	// StateParked: devices of the guest are parked (unplugged by virt-failover, their definitions
	// in its metadata).
	StateParked = "parked"
	// StatePrimaryUnplugged: QEMU unplugged a failover primary (UNPLUG_PRIMARY) for a migration,
	// and the guest has not negotiated failover since.
	StatePrimaryUnplugged = "primary-unplugged"
	// StateNegotiated: the guest negotiated failover (FAILOVER_NEGOTIATED) and nothing is
	// unplugged.
	StateNegotiated = "negotiated"
	// StateRunning: nothing unplugged, and no negotiation seen since watch saw the guest start
	// (a guest without failover pairs, or one that negotiated before watch started).
	StateRunning = "running"
)

// States are the failover states, in the order above.
var States = []string{StateDegraded, StateParked, StatePrimaryUnplugged, StateNegotiated, StateRunning}

// Config is what a Watcher watches and how.
type Config struct {
	// Dial connects to the host's libvirt.
	Dial func(ctx context.Context) (Source, error)
	// DegradedAfter is [watch] degraded_after.
	DegradedAfter time.Duration
	// Backoff bounds the wait between connection attempts: it starts at the first and doubles up
	// to the second (1s and 30s when zero).
	Backoff [2]time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logf reports what watch does (connections, resyncs, errors); nil discards.
	Logf func(format string, args ...any)
}

// Watcher keeps the failover state of one host's guests.
type Watcher struct {
	cfg     Config
	metrics *Metrics

	mu         sync.Mutex
	connected  bool
	reason     string // why not connected
	uri        string
	guests     map[string]*guest
	migrations []*Migration // finished, newest last, at most keepMigrations
}

// keepMigrations is how many finished migrations /guests shows.
const keepMigrations = 50

// New makes a Watcher whose metrics go to m.
func New(cfg Config, m *Metrics) *Watcher {
	if cfg.Backoff[0] <= 0 {
		cfg.Backoff[0] = time.Second
	}
	if cfg.Backoff[1] < cfg.Backoff[0] {
		cfg.Backoff[1] = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	w := &Watcher{cfg: cfg, metrics: m, guests: map[string]*guest{}, reason: "not connected yet"}
	m.watcher = w
	return w
}

// guest is what watch knows of one running guest.
type guest struct {
	name       string
	parked     []*policy.Parked
	teaming    bool                 // it has a QEMU failover pair (a kind='net' record)
	firstSeen  map[string]time.Time // parked alias -> when watch first saw it (a record without since)
	negotiated map[string]time.Time // FAILOVER_NEGOTIATED device-id -> when
	unplugged  map[string]time.Time // UNPLUG_PRIMARY device-id -> when
	added      time.Time            // the last DEVICE_ADDED
	out, in    *Migration           // the migration under way from here, to here
	last       *Migration           // the last finished one
	stopQEMU   context.CancelFunc
}

// Migration is one migration as this host saw it.
type Migration struct {
	Domain    string    `json:"domain"`
	Direction string    `json:"direction"` // "out" (from this host) or "in"
	Outcome   string    `json:"outcome"`   // "in progress", "completed" or "failed"
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended,omitzero"`
	// The phases, in seconds (absent when this host did not see them): unplug (the source's devices
	// going), migration (the source: from QEMU's setup to the source letting the guest go; the
	// destination: from libvirt preparing the guest to its resume), downtime (libvirt's completed
	// job statistics), replug (the destination: from the resume until every device parked for the
	// migration is back and the teaming pairs negotiated).
	Unplug    *float64 `json:"unplug_seconds,omitempty"`
	Migration *float64 `json:"migration_seconds,omitempty"`
	Downtime  *float64 `json:"downtime_seconds,omitempty"`
	Replug    *float64 `json:"replug_seconds,omitempty"`

	unplugStart, unplugEnd time.Time
	qemuStart              time.Time // QEMU's first MIGRATION status
	resumed                time.Time
	waitReplug             bool
}

// Phases says the phases seen, like "unplug 0.310s, migration 2.604s, downtime 0.190s".
func (m Migration) Phases() string {
	var parts []string
	for _, p := range []struct {
		name string
		v    *float64
	}{{"unplug", m.Unplug}, {"migration", m.Migration}, {"downtime", m.Downtime}, {"replug", m.Replug}} {
		if p.v != nil {
			parts = append(parts, fmt.Sprintf("%s %.3fs", p.name, *p.v))
		}
	}
	return strings.Join(parts, ", ")
}

func seconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

// Run watches until ctx ends: it connects, follows the events, and reconnects with backoff when
// the connection is lost.
func (w *Watcher) Run(ctx context.Context) error {
	wait := w.cfg.Backoff[0]
	for ctx.Err() == nil {
		src, err := w.cfg.Dial(ctx)
		if err != nil {
			w.setDown(fmt.Sprintf("connecting: %v", err))
			w.cfg.Logf("%v; again in %s", err, wait)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			wait = min(2*wait, w.cfg.Backoff[1])
			continue
		}
		wait = w.cfg.Backoff[0]
		err = w.follow(ctx, src)
		src.Close()
		if ctx.Err() != nil {
			break
		}
		w.setDown(fmt.Sprintf("connection to %s lost: %v", src.URI(), err))
		w.metrics.reconnects.Inc()
		w.cfg.Logf("connection to %s lost (%v); reconnecting", src.URI(), err)
	}
	w.setDown("stopped")
	return nil
}

func (w *Watcher) setDown(reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.connected, w.reason = false, reason
	for _, g := range w.guests {
		if g.stopQEMU != nil {
			g.stopQEMU()
			g.stopQEMU = nil
		}
	}
}

// qemuEvent is a QEMU event with the guest it is about.
type qemuEvent = virt.QEMUEvent

// follow subscribes, resyncs from the live definitions and applies events until the connection
// ends.
func (w *Watcher) follow(ctx context.Context, src Source) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := src.Events(cctx, "", virt.EventLifecycle, virt.EventDeviceAdded, virt.EventDeviceRemoved, virt.EventMetadataChange)
	if err != nil {
		return err
	}
	qemu := make(chan qemuEvent)
	running, err := src.ActiveDomains(cctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.uri = src.URI()
	names := map[string]bool{}
	for _, d := range running {
		names[d.Name] = true
	}
	for name, g := range w.guests {
		if !names[name] {
			w.finishAll(g, "failed")
			delete(w.guests, name)
		}
	}
	w.mu.Unlock()
	for _, d := range running {
		w.refresh(cctx, src, d.Name)
		w.subscribeQEMU(cctx, src, d.Name, qemu)
	}
	w.mu.Lock()
	for _, g := range w.guests {
		w.settleLocked(g)
	}
	w.connected, w.reason = true, ""
	w.mu.Unlock()
	w.cfg.Logf("connected to %s: %d running guest(s)", src.URI(), len(running))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-src.Disconnected():
			return virt.ErrConnectionLost
		case e, ok := <-events:
			if !ok {
				return virt.ErrConnectionLost
			}
			w.domainEvent(cctx, src, e, qemu)
		case e := <-qemu:
			w.qemuEvent(e)
		}
	}
}

// subscribeQEMU relays a guest's QEMU events into qemu until the guest or the connection ends.
func (w *Watcher) subscribeQEMU(ctx context.Context, src Source, dom string, qemu chan<- qemuEvent) {
	w.mu.Lock()
	g := w.guestLocked(dom)
	if g.stopQEMU != nil {
		w.mu.Unlock()
		return
	}
	qctx, stop := context.WithCancel(ctx)
	g.stopQEMU = stop
	w.mu.Unlock()
	ch, err := src.QEMUEvents(qctx, dom, qemuEvents...)
	if err != nil {
		w.cfg.Logf("QEMU events of %s: %v", dom, err)
		stop()
		return
	}
	go func() {
		for e := range ch {
			select {
			case qemu <- e:
			case <-qctx.Done():
				return
			}
		}
	}()
}

func (w *Watcher) guestLocked(dom string) *guest {
	g, ok := w.guests[dom]
	if !ok {
		g = &guest{name: dom, firstSeen: map[string]time.Time{}, negotiated: map[string]time.Time{}, unplugged: map[string]time.Time{}}
		w.guests[dom] = g
	}
	return g
}

// refresh reads a guest's live definition: its parked records and failover pairs.
func (w *Watcher) refresh(ctx context.Context, src Source, dom string) {
	x, err := src.LiveXML(ctx, dom)
	if err != nil {
		if !errors.Is(err, virt.ErrNoDomain) {
			w.cfg.Logf("live definition of %s: %v", dom, err)
		}
		return
	}
	doc, err := xmlxform.Parse(x)
	if err != nil {
		w.cfg.Logf("live definition of %s: %v", dom, err)
		return
	}
	d := policy.NewDomain(doc)
	w.mu.Lock()
	defer w.mu.Unlock()
	g := w.guestLocked(dom)
	g.parked = d.Parked
	g.teaming = slices.ContainsFunc(d.Records, func(r *policy.Record) bool { return r.Kind == policy.KindNetPair })
	now := w.cfg.Now()
	seen := map[string]time.Time{}
	for _, p := range g.parked {
		t, ok := g.firstSeen[p.Alias]
		if !ok {
			t = now
		}
		seen[p.Alias] = t
	}
	g.firstSeen = seen
}

// parkedFor counts the guest's devices parked for reason.
func (g *guest) parkedFor(reason string) int {
	n := 0
	for _, p := range g.parked {
		if p.Reason == reason {
			n++
		}
	}
	return n
}

func (w *Watcher) domainEvent(ctx context.Context, src Source, e virt.Event, qemu chan<- qemuEvent) {
	switch e.Kind {
	case virt.EventDeviceRemoved, virt.EventDeviceAdded, virt.EventMetadataChange:
		w.refresh(ctx, src, e.Domain)
		w.mu.Lock()
		g := w.guestLocked(e.Domain)
		if e.Kind == virt.EventDeviceRemoved && g.parkedFor(policy.ParkedForMigration) > 0 {
			m := w.outLocked(g, e.Received)
			if m.unplugStart.IsZero() {
				m.unplugStart = e.Received
				for _, p := range g.parked {
					if t := g.parkedAt(p); p.Reason == policy.ParkedForMigration && t.Before(m.unplugStart) {
						m.unplugStart = t
					}
				}
			}
			m.unplugEnd = e.Received
		}
		if e.Kind == virt.EventDeviceAdded {
			g.added = e.Received
		}
		w.settleLocked(g)
		w.mu.Unlock()
	case virt.EventLifecycle:
		w.lifecycle(ctx, src, e, qemu)
	}
}

// settleLocked ends what the guest's definition says is over: an outgoing migration whose
// devices came back with the guest still here (rolled back), an arrival whose devices are all
// back. The removal of a parked record follows a device's attach (DEVICE_ADDED): libvirt
// announces it (METADATA_CHANGE), and the time of the last DEVICE_ADDED is when the device came
// back.
func (w *Watcher) settleLocked(g *guest) {
	if g.parkedFor(policy.ParkedForMigration) > 0 {
		return
	}
	t := w.cfg.Now()
	if !g.added.IsZero() {
		t = g.added
	}
	if m := g.out; m != nil && g.qemuDone() && !m.unplugEnd.IsZero() {
		// Unplugged for a migration and back with the guest still here: rolled back, or put
		// back by repair (maybe while watch was away: then its DEVICE_ADDED was not seen).
		end := w.cfg.Now()
		if g.added.After(m.unplugEnd) {
			end = g.added
		}
		w.finishLocked(g, m, "failed", end)
	}
	w.replugLocked(g, t)
}

// qemuDone says no QEMU migration of the guest's outgoing migration is under way.
func (g *guest) qemuDone() bool { return g.out == nil || g.out.qemuStart.IsZero() }

// outLocked is the guest's outgoing migration, begun at t if none is under way.
func (w *Watcher) outLocked(g *guest, t time.Time) *Migration {
	if g.out == nil {
		g.out = &Migration{Domain: g.name, Direction: "out", Outcome: "in progress", Started: t}
	}
	return g.out
}

func (w *Watcher) lifecycle(ctx context.Context, src Source, e virt.Event, qemu chan<- qemuEvent) {
	l := e.Lifecycle
	switch {
	case l.Type == virt.Started:
		w.mu.Lock()
		g := w.guestLocked(e.Domain)
		if l.Migrated() {
			g.in = &Migration{Domain: e.Domain, Direction: "in", Outcome: "in progress", Started: e.Received}
		}
		w.mu.Unlock()
		w.subscribeQEMU(ctx, src, e.Domain, qemu)
		w.refresh(ctx, src, e.Domain)
	case l.Type == virt.Resumed && l.Migrated():
		w.refresh(ctx, src, e.Domain)
		w.mu.Lock()
		g := w.guestLocked(e.Domain)
		if m := g.in; m != nil && m.resumed.IsZero() {
			go w.downtime(ctx, src, m)
			m.resumed = e.Received
			m.Migration = seconds(e.Received.Sub(m.Started))
			m.Outcome = "completed"
			w.metrics.migrations.WithLabelValues("in", "completed").Inc()
			w.metrics.observePhases(m)
			m.waitReplug = true
			w.replugLocked(g, e.Received)
		}
		w.mu.Unlock()
	case l.Type == virt.Stopped || l.Type == virt.Crashed || l.Type == virt.Undefined:
		if l.Type == virt.Undefined {
			return
		}
		var downtime *float64
		if l.Migrated() {
			if st, err := src.CompletedJobStats(ctx, e.Domain); err == nil && st.Type == virt.JobCompleted && st.Downtime > 0 {
				downtime = seconds(st.Downtime)
			}
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		g, ok := w.guests[e.Domain]
		if !ok {
			return
		}
		if l.Migrated() && g.out == nil {
			w.outLocked(g, e.Received)
		}
		if m := g.out; m != nil && l.Migrated() {
			if downtime != nil {
				m.Downtime = downtime
				w.metrics.downtime.Observe(*downtime)
			}
			if !m.qemuStart.IsZero() {
				m.Migration = seconds(e.Received.Sub(m.qemuStart))
			}
			w.finishLocked(g, m, "completed", e.Received)
		}
		w.finishAll(g, "failed")
		if g.stopQEMU != nil {
			g.stopQEMU()
		}
		delete(w.guests, e.Domain)
	}
}

// downtime reads the completed job's statistics of an arrived guest. libvirt has them once its
// incoming job ends, a moment after the resume it announces: it is asked a few times.
func (w *Watcher) downtime(ctx context.Context, src Source, m *Migration) {
	for range 20 {
		st, err := src.CompletedJobStats(ctx, m.Domain)
		if err == nil && st.Type == virt.JobCompleted && st.Downtime > 0 {
			w.mu.Lock()
			m.Downtime = seconds(st.Downtime)
			w.mu.Unlock()
			w.metrics.downtime.Observe(st.Downtime.Seconds())
			return
		}
		if err != nil && errors.Is(err, virt.ErrNoDomain) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// replugLocked ends the re-plug of an arrived guest once nothing parked for the migration is left
// and its teaming pairs negotiated since it arrived.
func (w *Watcher) replugLocked(g *guest, t time.Time) {
	m := g.in
	if m == nil || !m.waitReplug || g.parkedFor(policy.ParkedForMigration) > 0 {
		return
	}
	if g.teaming {
		// QEMU sends FAILOVER_NEGOTIATED on the destination as it loads the device state, before
		// the resume, or later when the guest negotiates then.
		negotiated := false
		for _, nt := range g.negotiated {
			negotiated = negotiated || !nt.Before(m.Started)
		}
		if !negotiated {
			return
		}
	}
	m.waitReplug = false
	if t.After(m.resumed) {
		m.Replug = seconds(t.Sub(m.resumed))
		w.metrics.replug.Observe(*m.Replug)
	}
	w.finishLocked(g, m, "completed", t)
}

// finishLocked ends a migration with its outcome and keeps it.
func (w *Watcher) finishLocked(g *guest, m *Migration, outcome string, t time.Time) {
	if m.Ended.IsZero() {
		m.Ended = t
		if m.unplugStart.IsZero() && !m.unplugEnd.IsZero() {
			m.unplugStart = m.qemuStart // QEMU unplugged a primary with no wait-unplug status seen
		}
		if m.Unplug == nil && !m.unplugStart.IsZero() && m.unplugEnd.After(m.unplugStart) {
			m.Unplug = seconds(m.unplugEnd.Sub(m.unplugStart))
		}
		if m.Direction == "out" || m.Outcome != "completed" {
			// An arrival was counted at the resume; the rest now.
			m.Outcome = outcome
			w.metrics.migrations.WithLabelValues(m.Direction, outcome).Inc()
			w.metrics.observePhases(m)
		}
		w.migrations = append(w.migrations, m)
		if len(w.migrations) > keepMigrations {
			w.migrations = slices.Delete(w.migrations, 0, len(w.migrations)-keepMigrations)
		}
	}
	g.last = m
	if g.out == m {
		g.out = nil
	}
	if g.in == m {
		g.in = nil
	}
}

// finishAll ends what is still under way for a guest that is gone.
func (w *Watcher) finishAll(g *guest, outcome string) {
	now := w.cfg.Now()
	for _, m := range []*Migration{g.out, g.in} {
		if m != nil {
			w.finishLocked(g, m, outcome, now)
		}
	}
}

func (w *Watcher) qemuEvent(e qemuEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	g, ok := w.guests[e.Domain]
	if !ok {
		return
	}
	id := e.Field("device-id")
	switch e.Name {
	case "FAILOVER_NEGOTIATED":
		g.negotiated[id] = e.Time
		clear(g.unplugged)
		w.replugLocked(g, e.Time)
	case "UNPLUG_PRIMARY":
		g.unplugged[id] = e.Time
		m := w.outLocked(g, e.Time)
		if m.unplugEnd.Before(e.Time) {
			m.unplugEnd = e.Time
		}
	case "MIGRATION":
		switch status := e.Field("status"); status {
		case "setup", "wait-unplug", "active":
			if g.in != nil {
				return // the destination's QEMU reports the incoming stream too
			}
			m := w.outLocked(g, e.Time)
			if m.qemuStart.IsZero() {
				m.qemuStart = e.Time
			}
			if status == "wait-unplug" && m.unplugStart.IsZero() {
				m.unplugStart = e.Time
			}
		case "failed", "cancelled":
			clear(g.unplugged) // QEMU plugs its primaries back on the source
			if g.out != nil {
				w.finishLocked(g, g.out, "failed", e.Time)
			}
		}
	}
}

// Guest is one guest's failover state, as /guests serves it.
type Guest struct {
	Name  string `json:"name"`
	State string `json:"state"` // one of States
	// EmulatedSince is when it went onto its emulated devices (a device parked, a primary
	// unplugged); absent when it is not on them.
	EmulatedSince *time.Time `json:"emulated_since,omitempty"`
	Negotiated    []string   `json:"negotiated,omitempty"` // standby device ids QEMU reported negotiated
	Unplugged     []string   `json:"unplugged,omitempty"`  // primaries QEMU unplugged
	Parked        []Parked   `json:"parked,omitempty"`
	// Migration is the one under way (or, when none is, the last one watch saw).
	Migration *Migration `json:"migration,omitempty"`
}

// Parked is a parked device (docs/metadata.md#parked).
type Parked struct {
	Alias  string `json:"alias"`
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	Pool   string `json:"pool,omitempty"`
	Since  string `json:"since,omitempty"`
}

// Report is what /guests serves.
type Report struct {
	URI        string      `json:"uri"`
	Connected  bool        `json:"connected"`
	Reason     string      `json:"reason,omitempty"` // why not connected
	Guests     []Guest     `json:"guests"`
	Migrations []Migration `json:"migrations"` // the last ones that ended, oldest first
}

// Report is the state of the host's guests now.
func (w *Watcher) Report() Report {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := Report{URI: w.uri, Connected: w.connected, Reason: w.reason, Guests: w.snapshotLocked(), Migrations: []Migration{}}
	for _, m := range w.migrations {
		r.Migrations = append(r.Migrations, *m)
	}
	return r
}

// Health is nil when watch is connected to libvirt, else why not.
func (w *Watcher) Health() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.connected {
		return nil
	}
	return errors.New(w.reason)
}

// parkedAt is when a device was parked, as well as watch knows. Its record's since has whole
// seconds; watch reads a record when libvirt announces it (METADATA_CHANGE), milliseconds after
// it was written, so that sight is the better time unless the record was there before watch
// looked (a second or more after its since).
func (g *guest) parkedAt(p *policy.Parked) time.Time {
	seen, saw := g.firstSeen[p.Alias]
	since, ok := p.SinceTime()
	switch {
	case !ok:
		return seen
	case saw && !seen.Before(since) && seen.Sub(since) < time.Second:
		return seen
	}
	return since
}

func (w *Watcher) snapshotLocked() []Guest {
	now := w.cfg.Now()
	out := []Guest{}
	for _, name := range slices.Sorted(maps.Keys(w.guests)) {
		g := w.guests[name]
		s := Guest{Name: name, State: StateRunning}
		var since time.Time
		for _, p := range g.parked {
			s.Parked = append(s.Parked, Parked{Alias: p.Alias, Kind: p.Kind, Reason: p.Reason, Pool: p.Pool, Since: p.Since})
			if t := g.parkedAt(p); since.IsZero() || t.Before(since) {
				since = t
			}
		}
		for _, id := range slices.Sorted(maps.Keys(g.unplugged)) {
			s.Unplugged = append(s.Unplugged, id)
			if t := g.unplugged[id]; since.IsZero() || t.Before(since) {
				since = t
			}
		}
		s.Negotiated = slices.Sorted(maps.Keys(g.negotiated))
		switch {
		case !since.IsZero() && now.Sub(since) > w.cfg.DegradedAfter:
			s.State = StateDegraded
		case len(g.parked) > 0:
			s.State = StateParked
		case len(g.unplugged) > 0:
			s.State = StatePrimaryUnplugged
		case len(g.negotiated) > 0:
			s.State = StateNegotiated
		}
		if !since.IsZero() {
			s.EmulatedSince = &since
		}
		for _, m := range []*Migration{g.last, g.in, g.out} {
			if m != nil {
				c := *m
				s.Migration = &c
			}
		}
		out = append(out, s)
	}
	return out
}
