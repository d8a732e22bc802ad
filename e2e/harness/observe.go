package harness

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Migration is one live migration as the harness saw it from every side: virsh, the guest's serial
// log, QEMU's monitor events on both hosts, both hooks' logs and the destination's domain log.
type Migration struct {
	Domain   string
	From, To *Host

	Started  time.Time
	Duration time.Duration // virsh migrate, start to exit
	Output   string        // virsh migrate's combined output
	Err      error         // virsh migrate's error

	Before Heartbeat // the last heartbeat before the migration (ready and Answering)
	After  Heartbeat // a heartbeat some seconds after the primary is back (or after a failure)
	Lost   int       // probes lost between Before and After (of Probes)

	Unplugged string        // the guest's "failover primary slave:X unregistered" line
	Replugged string        // the guest's "failover primary slave:X registered" line after it
	Enslaved  Heartbeat     // the first heartbeat showing the primary enslaved again (plain guest: the first on the destination)
	Back      time.Duration // from the start of virsh migrate to the Enslaved heartbeat

	SourceEvents, DestEvents []MonitorEvent
	SourceHook, DestHook     []HookEntry // hook log entries for the domain added during the migration
	DestDomainLog            string      // what the destination's QEMU log of the domain got
}

var (
	unregisteredRE = regexp.MustCompile(`failover primary slave:(\S+) unregistered`)
	registeredRE   = regexp.MustCompile(`failover primary slave:(\S+) registered`)
)

// SettleTime is how long after the primary is back the harness waits before reading the probe
// counters (the probes still in flight at that point are few).
const SettleTime = 3.0 // guest seconds

// MigrateObserved migrates dom from one host to another and gathers everything about it. A failed
// migration is not an error here (it is in Migration.Err); the error is for what kept the harness
// from observing, including a *GuestCrash.
func MigrateObserved(ctx context.Context, dom string, from, to *Host, serial *Serial) (*Migration, error) {
	m := &Migration{Domain: dom, From: from, To: to}
	srcHook0, _ := from.HookLog()
	dstHook0, _ := to.HookLog()
	srcLog0 := FileSize(from.DaemonLogPath())
	dstLog0 := FileSize(to.DaemonLogPath())
	dstDom0 := FileSize(to.DomainLogPath(dom))
	mark := serial.Len()

	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	before, err := serial.WaitHeartbeat(wctx, mark, "heartbeat with the primary enslaved and probes answered before migrating",
		Answering(Heartbeat.PrimaryEnslaved))
	cancel()
	if err != nil {
		return m, err
	}
	m.Before = before
	mark = before.Index + 1

	m.Started = time.Now()
	m.Output, m.Err = from.Migrate(ctx, dom, to)
	m.Duration = time.Since(m.Started)

	collect := func() error {
		var errs []error
		var err error
		m.SourceEvents, err = from.MonitorEvents(srcLog0)
		errs = append(errs, err)
		m.DestEvents, err = to.MonitorEvents(dstLog0)
		errs = append(errs, err)
		m.DestDomainLog, err = ReadFrom(to.DomainLogPath(dom), dstDom0)
		errs = append(errs, err)
		m.SourceHook, err = newHookEntries(from, dom, len(srcHook0))
		errs = append(errs, err)
		m.DestHook, err = newHookEntries(to, dom, len(dstHook0))
		errs = append(errs, err)
		return errors.Join(errs...)
	}

	wctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if m.Err != nil {
		// The guest should still run where it was, with its primary.
		after := serial.Len()
		m.After, err = serial.WaitHeartbeat(wctx, after, "heartbeat with the primary enslaved after the failed migration",
			Heartbeat.PrimaryEnslaved)
		m.Lost = lost(m.Before, m.After)
		return m, errors.Join(err, collect())
	}

	i, line, err := serial.WaitRE(wctx, mark, unregisteredRE)
	if err != nil {
		return m, errors.Join(err, collect())
	}
	m.Unplugged = line
	j, line, err := serial.WaitRE(wctx, i+1, registeredRE)
	if err != nil {
		return m, errors.Join(err, collect())
	}
	m.Replugged = line
	m.Enslaved, err = serial.WaitHeartbeat(wctx, j+1, "heartbeat with the primary enslaved again", Heartbeat.PrimaryEnslaved)
	if err != nil {
		return m, errors.Join(err, collect())
	}
	m.Back = serial.SeenAt(m.Enslaved.Index).Sub(m.Started)
	m.After, err = serial.WaitHeartbeat(wctx, m.Enslaved.Index, "heartbeat after the probes settled", func(h Heartbeat) bool {
		return h.Uptime >= m.Enslaved.Uptime+SettleTime
	})
	if err != nil {
		return m, errors.Join(err, collect())
	}
	m.Lost = lost(m.Before, m.After)

	// The source runs its stopped/release hooks while it tears the old QEMU down; wait for them.
	for {
		entries, _ := newHookEntries(from, dom, len(srcHook0))
		if hasCall(entries, "release end") || wctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := collect(); err != nil {
		return m, err
	}
	if c := serial.Crash(mark); c != nil {
		return m, c
	}
	return m, nil
}

// MigratePlain migrates the yardstick guest (Guest.Plain: no primary, nothing to fail over) and
// counts the probes it loses, measured as MigrateObserved measures a failover guest's: from the
// last heartbeat before the migration to one SettleTime after the first heartbeat on the
// destination.
func MigratePlain(ctx context.Context, dom string, from, to *Host, serial *Serial) (*Migration, error) {
	m := &Migration{Domain: dom, From: from, To: to}
	dstHook0, _ := to.HookLog()
	mark := serial.Len()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	before, err := serial.WaitHeartbeat(wctx, mark, "heartbeat with the plain virtio NIC up and probes answered before migrating",
		Answering(Heartbeat.PlainUp))
	if err != nil {
		return m, err
	}
	m.Before = before
	m.Started = time.Now()
	m.Output, m.Err = from.Migrate(ctx, dom, to)
	m.Duration = time.Since(m.Started)
	if m.Err != nil {
		return m, nil
	}
	first, err := serial.WaitHeartbeat(wctx, serial.Len(), "heartbeat on the destination", Heartbeat.PlainUp)
	if err != nil {
		return m, err
	}
	m.Enslaved = first
	m.Back = serial.SeenAt(first.Index).Sub(m.Started)
	m.After, err = serial.WaitHeartbeat(wctx, first.Index, "heartbeat after the probes settled", func(h Heartbeat) bool {
		return h.Uptime >= first.Uptime+SettleTime && h.PlainUp()
	})
	if err != nil {
		return m, err
	}
	m.Lost = lost(m.Before, m.After)
	m.DestHook, err = newHookEntries(to, dom, len(dstHook0))
	if c := serial.Crash(mark); c != nil {
		return m, c
	}
	return m, err
}

// Answering returns a predicate for Serial.WaitHeartbeat: a heartbeat that is ready and shows
// probes answered and none lost since the heartbeat before it. A count of lost probes that starts
// there holds none of an earlier event's (the guest's boot, a migration before).
func Answering(ready func(Heartbeat) bool) func(Heartbeat) bool {
	var prev *Heartbeat
	return func(h Heartbeat) bool {
		ok := ready(h) && prev != nil && h.Recv > prev.Recv && h.Lost == prev.Lost
		prev = &h
		return ok
	}
}

// Probes is the number of probes done (answered or lost) between Before and After: Lost is of these.
func (m *Migration) Probes() int {
	return (m.After.Recv + m.After.Lost) - (m.Before.Recv + m.Before.Lost)
}

// LostPerMigration is the mean number of probes lost per migration of ms, and of probes done.
func LostPerMigration(ms []*Migration) (lost, probes float64) {
	if len(ms) == 0 {
		return 0, 0
	}
	for _, m := range ms {
		lost += float64(m.Lost)
		probes += float64(m.Probes())
	}
	return lost / float64(len(ms)), probes / float64(len(ms))
}

// lost counts the probes that timed out between two heartbeats. A probe in flight at either
// one counts where it ends, so the count is exact (sent minus answered is not: it counts the
// probe in flight at After as lost and one answered just after Before as found).
func lost(before, after Heartbeat) int { return after.Lost - before.Lost }

func newHookEntries(h *Host, dom string, skip int) ([]HookEntry, error) {
	all, err := h.HookLog()
	if skip > len(all) {
		skip = len(all)
	}
	var out []HookEntry
	for _, e := range all[skip:] {
		if e.Domain == dom {
			out = append(out, e)
		}
	}
	return out, err
}

func hasCall(entries []HookEntry, call string) bool {
	for _, e := range entries {
		if e.Call() == call {
			return true
		}
	}
	return false
}

// WaitUnplug is how long the source QEMU stayed in the migration state wait-unplug (the guest
// ejecting the primary), from the source's monitor events.
func (m *Migration) WaitUnplug() (time.Duration, bool) {
	var start time.Time
	for _, e := range m.SourceEvents {
		if e.Name != "MIGRATION" {
			continue
		}
		if e.Status() == "wait-unplug" {
			start = e.Time
		} else if !start.IsZero() {
			return e.Time.Sub(start), true
		}
	}
	return 0, false
}

// Event returns the first monitor event with that name (and status, if not empty).
func Event(events []MonitorEvent, name, status string) (MonitorEvent, bool) {
	for _, e := range events {
		if e.Name == name && (status == "" || e.Status() == status) {
			return e, true
		}
	}
	return MonitorEvent{}, false
}

// Direction is "a->b".
func (m *Migration) Direction() string { return fmt.Sprintf("%s->%s", m.From.Name, m.To.Name) }

// HookDecision is the decision of the destination hook's "migrate begin" call.
func (m *Migration) HookDecision() (HookEntry, bool) {
	for _, e := range m.DestHook {
		if e.Call() == "migrate begin" {
			return e, true
		}
	}
	return HookEntry{}, false
}
