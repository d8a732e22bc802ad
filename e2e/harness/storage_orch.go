package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/internal/orchestrate"
)

// OrchestratedStorageXML is the multipath guest g (MultipathGuest) as "virt-failover pair
// --storage ua-hd0=LUN" records it: its pvscsi disk a stand-in for an assigned storage leg (a
// record of kind storage, emulated='yes', its standby the virtio-scsi path to the same LUN), which
// "virt-failover migrate" parks and plugs back.
func OrchestratedStorageXML(bin string, g Guest) ([]byte, error) {
	if g.LUN == "" {
		return nil, errors.New("OrchestratedStorageXML: not a multipath guest (no LUN)")
	}
	plain, err := g.XML()
	if err != nil {
		return nil, err
	}
	return RunPair(bin, plain, "--storage", LUNPrimary+"="+g.LUN)
}

// WithKernelArgs returns the definition def with args added to its kernel command line.
func WithKernelArgs(def []byte, args ...string) ([]byte, error) {
	s := string(def)
	if strings.Count(s, "</cmdline>") != 1 {
		return nil, errors.New("WithKernelArgs: the definition has no single <cmdline>")
	}
	return []byte(strings.Replace(s, "</cmdline>", " "+strings.Join(args, " ")+"</cmdline>", 1)), nil
}

// NoEject is the guest's kernel command line switch (e2e/guest/init.sh) that makes it ignore
// PCI hotplug requests once its primary is enslaved: it never completes an unplug.
const NoEject = "vfo.noeject=1"

// KeepReading reads the serial log every 100 ms until the returned function is called, so that
// SeenAt tells when each line came (to about 0.1 s) while the test waits for something else.
func (s *Serial) KeepReading() (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.Len()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-ended }
}

// Heartbeats returns the heartbeats in lines from to to (exclusive; -1: to the end).
func (s *Serial) Heartbeats(from, to int) []Heartbeat {
	lines := s.Lines(from)
	var hbs []Heartbeat
	for i, l := range lines {
		if to >= 0 && from+i >= to {
			break
		}
		if hb, ok := ParseHeartbeat(l); ok {
			hb.Index = from + i
			hbs = append(hbs, hb)
		}
	}
	return hbs
}

// OrchestratedMigration is one "virt-failover migrate --json" as the harness saw it: the
// command, its report, the guest's heartbeats and both QEMUs' monitor events.
type OrchestratedMigration struct {
	Domain   string
	From, To *Host
	Run      *Command            // virt-failover migrate, ended
	Code     int                 // its exit status
	Took     time.Duration       // from its start to its end
	Report   *orchestrate.Report // its --json report (nil if it printed none)

	Before Heartbeat // the last heartbeat before the command (ready, probes answered)
	// Back is the first ready heartbeat after the guest resumed on the destination (after a
	// failed migration: the first ready one after the command ended), read at BackAt.
	Back   Heartbeat
	BackAt time.Time
	After  Heartbeat // SettleTime (guest seconds) after Back, still ready
	Lost   int       // probes lost between Before and After

	// Resumed is the destination QEMU's RESUME event (the guest runs there); Negotiated its
	// FAILOVER_NEGOTIATED (QEMU plugs the teaming primary back). Zero when there was none.
	Resumed, Negotiated      time.Time
	SourceEvents, DestEvents []MonitorEvent
	// Heartbeats are those from Before to After.
	Heartbeats []Heartbeat
	// WorkerAttached is when the destination's replug worker (started by its hook) logged that it
	// attached a parked device (zero: it attached none; migrate's own replug did, or nothing was
	// parked).
	WorkerAttached time.Time
	// LinkUp is how long the emulated e1000e primary took on the destination from its driver's
	// probe to "NIC Link is Up", by the guest's kernel timestamps (0: not seen).
	LinkUp time.Duration
	// Carrying is when the guest's kernel logged the primary carrying its traffic again (the last
	// line matching the carrying pattern between Before and After), as host time: the kernel's
	// timestamp mapped through the heartbeats read after the guest resumed (zero: no pattern, or
	// no such line). It has the guest clock's resolution, not the heartbeat's second.
	Carrying time.Time
}

// The kernel lines of a guest whose primary carries its traffic again, for MigrateOrchestrated:
// the failover guest's e1000e has its link (net_failover sends through a registered primary that
// has one), the bonded guest's bond made a slave active (the last one a migration makes is the
// primary plugged back).
var (
	FailoverCarryingRE = regexp.MustCompile(`\[\s*([0-9.]+)\] e1000e \S+ \S+: NIC Link is Up`)
	BondCarryingRE     = regexp.MustCompile(`\[\s*([0-9.]+)\] bond0: \(slave \S+\): making interface the new active one`)
)

// lastStamp is the kernel timestamp (seconds of guest uptime) of the last line re matches in
// lines; false if none does.
func lastStamp(lines []string, re *regexp.Regexp) (float64, bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		if m := re.FindStringSubmatch(lines[i]); m != nil {
			if t, err := strconv.ParseFloat(m[1], 64); err == nil {
				return t, true
			}
		}
	}
	return 0, false
}

// guestToHost maps the guest's uptime to host time by the heartbeats of hbs the harness read at or
// after since: a heartbeat is read at least as late as it was printed (0.1 s at most later while
// KeepReading runs), so the smallest difference between when it was read and the uptime it
// printed is the offset. Only heartbeats after the guest resumed on the destination count: its
// clock stood still while it was paused.
func guestToHost(serial *Serial, hbs []Heartbeat, since time.Time) (func(float64) time.Time, bool) {
	var off time.Duration
	found := false
	for _, h := range hbs {
		at := serial.SeenAt(h.Index)
		if at.Before(since) {
			continue
		}
		d := at.Sub(time.Unix(0, 0)) - time.Duration(h.Uptime*float64(time.Second))
		if !found || d < off {
			off, found = d, true
		}
	}
	return func(up float64) time.Time { return time.Unix(0, 0).Add(off + time.Duration(up*float64(time.Second))) }, found
}

// e1000eProbeRE is the e1000e driver's line as it probes a NIC.
var e1000eProbeRE = regexp.MustCompile(`\[\s*([0-9.]+)\] e1000e \S+ \S+ \(uninitialized\): registered PHC clock`)

// linkUp is the guest time from the last e1000e probe to the NIC's link up after it, in lines.
func linkUp(lines []string) time.Duration {
	var probe, up float64
	for _, l := range lines {
		if m := e1000eProbeRE.FindStringSubmatch(l); m != nil {
			probe, _ = strconv.ParseFloat(m[1], 64)
			up = 0
		} else if m := FailoverCarryingRE.FindStringSubmatch(l); m != nil && probe > 0 && up == 0 {
			up, _ = strconv.ParseFloat(m[1], 64)
		}
	}
	if probe == 0 || up < probe {
		return 0
	}
	return time.Duration((up - probe) * float64(time.Second))
}

// Probes is the number of probes done (answered or lost) between Before and After.
func (m *OrchestratedMigration) Probes() int {
	return (m.After.Recv + m.After.Lost) - (m.Before.Recv + m.Before.Lost)
}

// Direction is "a->b".
func (m *OrchestratedMigration) Direction() string { return m.From.Name + "->" + m.To.Name }

// Phase is the duration of a phase of the report (false: not in it).
func (m *OrchestratedMigration) Phase(name string) (time.Duration, bool) {
	if m.Report == nil {
		return 0, false
	}
	for _, t := range m.Report.Phases {
		if t.Phase == name {
			return time.Duration(t.Millis) * time.Millisecond, true
		}
	}
	return 0, false
}

// MigrateOrchestrated runs "virt-failover migrate DOM DEST --json" (bin, with MigrateArgs and
// extra; at most 10 minutes) from the host from to the host to, and observes it: it waits for a ready heartbeat with
// probes answered first, reads the serial log throughout, and after a migration waits for the
// guest to be ready again on the destination and SettleTime more. carrying (nil: none) is the
// guest's kernel line saying its primary carries its traffic again (FailoverCarryingRE,
// BondCarryingRE). A failed command is not an
// error here (Code); the error is for what kept the harness from observing, a guest that
// does not get ready again included (the result is filled in as far as it got).
func MigrateOrchestrated(ctx context.Context, bin, dom string, from, to *Host, serial *Serial, ready func(Heartbeat) bool, carrying *regexp.Regexp, extra ...string) (*OrchestratedMigration, error) {
	m := &OrchestratedMigration{Domain: dom, From: from, To: to}
	srcLog0, dstLog0 := FileSize(from.DaemonLogPath()), FileSize(to.DaemonLogPath())
	dstHook0, _ := to.HookLog()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	before, err := serial.WaitHeartbeat(wctx, serial.Len(), "ready heartbeat with probes answered before migrating", Answering(ready))
	if err != nil {
		return m, err
	}
	m.Before = before
	stop := serial.KeepReading()
	defer stop()
	rctx, stopRun := context.WithTimeout(ctx, 10*time.Minute)
	defer stopRun()
	if m.Run, err = RunCommand(rctx, bin, append(MigrateArgs(dom, from, to, extra...), "--json")...); err != nil {
		return m, err
	}
	if m.Code, err = m.Run.Wait(rctx); err != nil {
		return m, err
	}
	m.Took = m.Run.Ended().Sub(m.Run.Started)
	if out := m.Run.Stdout(); strings.TrimSpace(out) != "" {
		var rep orchestrate.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			return m, fmt.Errorf("%s: the --json report: %v\n%s", m.Run, err, m.Run.Output())
		}
		m.Report = &rep
	}
	collect := func() error {
		var errs []error
		var err error
		m.SourceEvents, err = from.MonitorEvents(srcLog0)
		errs = append(errs, err)
		m.DestEvents, err = to.MonitorEvents(dstLog0)
		errs = append(errs, err)
		return errors.Join(errs...)
	}
	if err := collect(); err != nil {
		return m, err
	}
	if e, ok := Event(m.DestEvents, "RESUME", ""); ok {
		m.Resumed = e.Time
	}
	if e, ok := Event(m.DestEvents, "FAILOVER_NEGOTIATED", ""); ok {
		m.Negotiated = e.Time
	}
	// The first ready heartbeat the harness read after the guest resumed on the destination
	// (after a failed migration: after the command ended, where the guest stayed).
	since := m.Run.Ended()
	if m.Code == 0 && !m.Resumed.IsZero() {
		since = m.Resumed
	}
	mark := before.Index + 1
	for mark < serial.Len() && serial.SeenAt(mark).Before(since) {
		mark++
	}
	m.Back, err = serial.WaitHeartbeat(wctx, mark, "ready heartbeat after the migration", ready)
	if err != nil {
		return m, err
	}
	m.BackAt = serial.SeenAt(m.Back.Index)
	m.After, err = serial.WaitHeartbeat(wctx, m.Back.Index, "ready heartbeat after the probes settled", func(h Heartbeat) bool {
		return h.Uptime >= m.Back.Uptime+SettleTime && ready(h)
	})
	if err != nil {
		return m, err
	}
	m.Lost = m.After.Lost - m.Before.Lost
	m.Heartbeats = serial.Heartbeats(m.Before.Index, m.After.Index+1)
	lines := serial.Lines(m.Before.Index)[:m.After.Index-m.Before.Index]
	m.LinkUp = linkUp(lines)
	if carrying != nil && !m.Resumed.IsZero() {
		up, ok := lastStamp(lines, carrying)
		toHost, found := guestToHost(serial, m.Heartbeats, m.Resumed)
		if ok && found {
			m.Carrying = toHost(up)
		}
	}
	entries, err := newHookEntries(to, dom, len(dstHook0))
	if err != nil {
		return m, err
	}
	for _, e := range entries {
		if e.Op == "replug" && strings.HasPrefix(e.Message, "attached ") {
			if at, err := time.Parse(time.RFC3339Nano, e.Time); err == nil && m.WorkerAttached.IsZero() {
				m.WorkerAttached = at
			}
		}
	}
	if err := collect(); err != nil {
		return m, err
	}
	if c := serial.Crash(m.Before.Index); c != nil {
		return m, c
	}
	return m, nil
}
