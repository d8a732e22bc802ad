package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/internal/orchestrate"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
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

// BondPairedXML is the bonded guest g (BondGuest) as an operator pairs it for the orchestrator,
// without a pool: its definition with the virtio NIC alone, then "virt-failover pair --bond
// --emulated-primary" adds the e1000e primary (alias BondPrimary, the standby's MAC) and a record
// of kind bond, emulated='yes', which "virt-failover migrate" parks and plugs back.
func BondPairedXML(bin string, g Guest) ([]byte, error) {
	if !g.Bond {
		return nil, errors.New("BondPairedXML: not the bonded guest")
	}
	plain, err := g.PlainXML()
	if err != nil {
		return nil, err
	}
	doc, err := xmlxform.Parse(plain)
	if err != nil {
		return nil, err
	}
	pri := policy.NewDomain(doc).NICByAlias(BondPrimary)
	if pri == nil {
		return nil, fmt.Errorf("the bonded guest's definition has no %s", BondPrimary)
	}
	t := xmlxform.NewTransform(doc)
	t.Remove(pri.El)
	one, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	return RunPair(bin, one, "--bond", "--emulated-primary")
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

// DefineStart defines the persistent domain def on h, starts it and waits until the serial log
// shows a heartbeat that satisfies ready. It returns that heartbeat.
func (h *Host) DefineStart(ctx context.Context, name string, def []byte, serial *Serial, what string, ready func(Heartbeat) bool) (Heartbeat, error) {
	path := h.Dir + "/" + name + ".xml"
	if err := os.WriteFile(path, def, 0o644); err != nil {
		return Heartbeat{}, err
	}
	mark := serial.Len()
	if _, err := h.Virsh(ctx, "define", path); err != nil {
		return Heartbeat{}, err
	}
	if _, err := h.Virsh(ctx, "start", name); err != nil {
		return Heartbeat{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	hb, err := serial.WaitHeartbeat(ctx, mark, what, ready)
	if err != nil {
		return hb, fmt.Errorf("booting %s on %s: %w", name, h.Name, err)
	}
	return hb, nil
}

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

// OrchestratorRun is one run of a virt-failover command on the test machine.
type OrchestratorRun struct {
	Args           []string
	Started        time.Time
	Took           time.Duration
	Code           int // exit status; -1: it did not run or was killed
	Stdout, Stderr string
}

// RunOrchestrator runs "BIN ARGS..." and waits for it to end (at most 10 minutes). A non-zero exit
// status is not an error here: it is in Code.
func RunOrchestrator(ctx context.Context, bin string, args ...string) (*OrchestratorRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	r := &OrchestratorRun{Args: args, Code: -1}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r.Started = time.Now()
	err := cmd.Run()
	r.Took = time.Since(r.Started)
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.Code = 0
	case errors.As(err, &ee) && ee.Exited():
		r.Code = ee.ExitCode()
	default:
		return r, fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, r.Stderr)
	}
	return r, nil
}

// String is the command line and what it printed, for a test log.
func (r *OrchestratorRun) String() string {
	return fmt.Sprintf("virt-failover %s: exit %d after %.2fs\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code,
		r.Took.Seconds(), r.Stdout, r.Stderr)
}

// MigrateArgs are the arguments of "virt-failover migrate" that move dom from h to the host to:
// the destination as h's daemon reaches it (peer to peer), as the command reaches it, the
// migration link, and h's policy and tree.
func (h *Host) MigrateArgs(dom string, to *Host, extra ...string) []string {
	args := []string{"migrate", dom, to.P2PURI(), "--connect", h.URI(), "--dest-connect", to.URI(),
		"--migrate-uri", "tcp://" + to.MigIP, "--root", h.Dir, "--policy", h.PolicyPath()}
	return append(args, extra...)
}

// OrchestratedMigration is one "virt-failover migrate --json" as the harness saw it: the
// command, its report, the guest's heartbeats and both QEMUs' monitor events.
type OrchestratedMigration struct {
	Domain   string
	From, To *Host
	Run      *OrchestratorRun
	Report   *orchestrate.Report // the command's --json report (nil if it printed none)

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
// extra) from the host from to the host to, and observes it: it waits for a ready heartbeat with
// probes answered first, reads the serial log throughout, and after a migration waits for the
// guest to be ready again on the destination and SettleTime more. carrying (nil: none) is the
// guest's kernel line saying its primary carries its traffic again (FailoverCarryingRE,
// BondCarryingRE). A failed command is not an
// error here (Run.Code); the error is for what kept the harness from observing, a guest that
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
	args := append(from.MigrateArgs(dom, to, extra...), "--json")
	m.Run, err = RunOrchestrator(ctx, bin, args...)
	if err != nil {
		return m, err
	}
	if strings.TrimSpace(m.Run.Stdout) != "" {
		var rep orchestrate.Report
		if err := json.Unmarshal([]byte(m.Run.Stdout), &rep); err != nil {
			return m, fmt.Errorf("the --json report: %v\n%s", err, m.Run)
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
	since := m.Run.Started.Add(m.Run.Took)
	if m.Run.Code == 0 && !m.Resumed.IsZero() {
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
