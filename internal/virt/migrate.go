package virt

import (
	"context"
	"fmt"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// MigrateFlags are libvirt's VIR_MIGRATE_* flags; Migrate always adds LIVE and PEER2PEER.
type MigrateFlags uint64

// Flags a caller adds to a migration.
const (
	// PersistDest: the destination keeps the domain defined (persistent) after the migration.
	PersistDest = MigrateFlags(libvirt.MigratePersistDest)
	// UndefineSource: the source undefines its persistent definition after a migration.
	UndefineSource = MigrateFlags(libvirt.MigrateUndefineSource)
	// AutoConverge: throttle the guest's CPUs if its memory does not converge.
	AutoConverge = MigrateFlags(libvirt.MigrateAutoConverge)
	// AbortOnError: abort the migration on an I/O error of a disk.
	AbortOnError = MigrateFlags(libvirt.MigrateAbortOnError)
)

// MigrateOptions are a migration's settings besides its domain and destination.
type MigrateOptions struct {
	// MigrateURI is where QEMU's migration stream goes, like tcp://192.0.2.2 (virsh migrate's
	// --migrateuri, VIR_MIGRATE_PARAM_URI). Empty: libvirt picks the destination's host name.
	MigrateURI string
	// Flags are added to LIVE|PEER2PEER.
	Flags MigrateFlags
	// Progress, if set, is called from Migrate's goroutine every ProgressInterval and whenever
	// QEMU's migration status changes. It must not block; to abort, it may cancel Migrate's
	// context.
	Progress func(Progress)
	// ProgressInterval is how often the job's statistics are read; 0 means 500 ms.
	ProgressInterval time.Duration
	// Dest, if set, is a connection to the destination: Migrate reads the final statistics
	// there when the source does not keep the domain (a transient one, or UndefineSource).
	Dest Hypervisor
}

// Progress is a migration's state as it runs.
type Progress struct {
	// Phase is QEMU's migration status as last announced by its MIGRATION event: "setup",
	// "wait-unplug" (waiting for the guest to release failover primaries), "active",
	// "pre-switchover", "device", "completed"...; "" before the first.
	Phase string
	// PhaseSince is when QEMU entered Phase.
	PhaseSince time.Time
	// Elapsed is the job's time so far, by libvirt's job statistics.
	Elapsed time.Duration
	// Data* are the job's bytes: in all, transferred and left (memory and disks).
	DataTotal, DataProcessed, DataRemaining uint64
	// Iteration is the pass over the guest's memory (1 is the first; 0 before it).
	Iteration uint64
}

// PhaseChange is QEMU's migration status changing, with QEMU's timestamp.
type PhaseChange struct {
	Status string
	At     time.Time
}

// MigrateResult is what is known of a migration when Migrate returns, whether it succeeded or not.
type MigrateResult struct {
	Started  time.Time
	Duration time.Duration // of libvirt's call, start to end
	// Phases are QEMU's migration statuses in order, as its MIGRATION events announced them
	// on the source.
	Phases []PhaseChange
	// Stats are the job's final statistics (downtime, total time, bytes) when libvirt gave them
	// (virDomainGetJobStats with COMPLETED on the source, which keeps them while it keeps the
	// domain, else on MigrateOptions.Dest, which keeps those of the incoming migration);
	// HaveStats says so.
	Stats     JobStats
	HaveStats bool
}

// PhaseTime is how long QEMU stayed in a migration status (like "wait-unplug"): from its
// MIGRATION event to the next one.
func (r *MigrateResult) PhaseTime(status string) (time.Duration, bool) {
	for i, p := range r.Phases {
		if p.Status == status && i+1 < len(r.Phases) {
			return r.Phases[i+1].At.Sub(p.At), true
		}
	}
	return 0, false
}

// MigrateError is the error of a migration that did not happen. The guest still runs on the
// source (libvirt rolls a failed or aborted live migration back).
type MigrateError struct {
	Domain string
	Host   string // the source's URI
	Dest   string
	// Aborted says the job was aborted through Migrate's context; Cause is the context's cause.
	Aborted bool
	Cause   error
	Err     error // libvirt's error
}

func (e *MigrateError) Error() string {
	where := fmt.Sprintf("migrate %s from %s to %s", e.Domain, e.Host, e.Dest)
	if e.Aborted {
		return fmt.Sprintf("%s: aborted (%v): %v", where, e.Cause, e.Err)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *MigrateError) Unwrap() error { return e.Err }

// Is matches ErrAborted for an aborted migration.
func (e *MigrateError) Is(target error) bool { return target == ErrAborted && e.Aborted }

// Migrate live-migrates a domain to the host destURI names, peer to peer
// (virDomainMigrateToURI3 with VIR_MIGRATE_LIVE|VIR_MIGRATE_PEER2PEER and opts.Flags): the
// SOURCE daemon connects to destURI, so the URI must work from the source host (its daemon's
// view), not from this client.
//
// While the migration runs, Migrate reads the job's statistics and follows QEMU's MIGRATION
// events to feed opts.Progress. When ctx ends (cancel it, with a cause, to abort; AbortJob from
// anywhere does the same) Migrate aborts the job (virDomainAbortJob) and waits for libvirt to end
// it, so that what it returns is the truth: a *MigrateError matching ErrAborted, or success if
// the migration completed first. It returns the result in both cases.
func (c *Conn) Migrate(ctx context.Context, dom, destURI string, opts MigrateOptions) (*MigrateResult, error) {
	res := &MigrateResult{}
	fail := func(aborted bool, err error) error {
		e := &MigrateError{Domain: dom, Host: c.uri, Dest: destURI, Aborted: aborted, Err: err}
		if aborted {
			e.Cause = context.Cause(ctx)
		}
		return e
	}
	if ctx.Err() != nil {
		return res, fail(false, fmt.Errorf("not started: %w", context.Cause(ctx)))
	}
	d, err := c.lookup(dom)
	if err != nil {
		return res, fail(false, err)
	}
	// Watch before starting, so that no event of this migration is missed.
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	phases, err := c.QEMUEvents(wctx, dom, "MIGRATION")
	if err != nil {
		return res, fail(false, err)
	}

	var params []libvirt.TypedParam
	if opts.MigrateURI != "" {
		params = append(params, libvirt.TypedParam{Field: libvirt.MigrateParamURI, Value: *libvirt.NewTypedParamValueString(opts.MigrateURI)})
	}
	flags := libvirt.DomainMigrateFlags(opts.Flags) | libvirt.MigrateLive | libvirt.MigratePeer2peer
	done := make(chan error, 1)
	res.Started = time.Now()
	go func() {
		_, err := c.l.DomainMigratePerform3Params(d, libvirt.OptString{destURI}, params, nil, flags)
		done <- err
	}()

	interval := opts.ProgressInterval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var prog Progress
	report := func() {
		if opts.Progress != nil {
			opts.Progress(prog)
		}
	}
	aborted := false
	abortCh := ctx.Done()
	var perr error
wait:
	for {
		select {
		case perr = <-done:
			break wait
		case e, ok := <-phases:
			if !ok {
				phases = nil
				continue
			}
			if st := e.Field("status"); st != "" {
				res.Phases = append(res.Phases, PhaseChange{Status: st, At: e.Time})
				prog.Phase, prog.PhaseSince = st, e.Time
				report()
			}
		case <-ticker.C:
			if st, err := c.jobStats(d, 0); err == nil && st.Type != JobNone {
				prog.Elapsed = st.Elapsed
				prog.DataTotal, prog.DataProcessed, prog.DataRemaining = st.DataTotal, st.DataProcessed, st.DataRemaining
				prog.Iteration = st.MemoryIteration
				report()
			}
		case <-abortCh:
			abortCh = nil
			aborted = true
			// Fails when the job has ended meanwhile; the call's outcome then tells.
			_ = c.l.DomainAbortJob(d)
		}
	}
	res.Duration = time.Since(res.Started)
	// QEMU announced the end of its migration before libvirt's call returned; take what is
	// still on its way.
	timer := time.NewTimer(settle)
	defer timer.Stop()
	for phases != nil && len(res.Phases) > 0 && !terminal(res.Phases[len(res.Phases)-1].Status) {
		select {
		case e, ok := <-phases:
			if !ok {
				phases = nil
			} else if st := e.Field("status"); st != "" {
				res.Phases = append(res.Phases, PhaseChange{Status: st, At: e.Time})
			}
		case <-timer.C:
			phases = nil
		}
	}
	if perr != nil {
		// An abort by anyone (AbortJob from another client too) is an abort.
		err := libvirtError(perr)
		return res, fail(aborted || Code(err) == int(libvirt.ErrOperationAborted), err)
	}
	// The job's final statistics, where libvirt keeps them.
	if st, err := c.jobStats(d, completedKept); err == nil && st.Type == JobCompleted {
		res.Stats, res.HaveStats = st, true
	} else if opts.Dest != nil {
		if st, err := opts.Dest.CompletedJobStats(ctx, dom); err == nil && st.Type == JobCompleted {
			res.Stats, res.HaveStats = st, true
		}
	}
	return res, nil
}

// terminal reports whether a QEMU migration status is an end.
func terminal(status string) bool {
	return status == "completed" || status == "failed" || status == "cancelled"
}

// AbortJob aborts the domain's current job (virDomainAbortJob), like virsh domjobabort. A
// migration aborted this way fails with an error matching ErrAborted; QEMU re-plugs failover
// primaries it had unplugged for it (after waiting up to 30 s for an unplug in progress).
func (c *Conn) AbortJob(ctx context.Context, dom string) error {
	d, err := c.lookup(dom)
	if err != nil {
		return err
	}
	if err := c.l.DomainAbortJob(d); err != nil {
		return fmt.Errorf("abort the job of %s on %s: %w", dom, c.uri, libvirtError(err))
	}
	return nil
}

// JobType is libvirt's virDomainJobType.
type JobType int

// The job types.
const (
	JobNone      = JobType(libvirt.DomainJobNone)
	JobBounded   = JobType(libvirt.DomainJobBounded)
	JobUnbounded = JobType(libvirt.DomainJobUnbounded)
	JobCompleted = JobType(libvirt.DomainJobCompleted)
	JobFailed    = JobType(libvirt.DomainJobFailed)
	JobCancelled = JobType(libvirt.DomainJobCancelled)
)

var jobNames = []string{"none", "bounded", "unbounded", "completed", "failed", "cancelled"}

func (t JobType) String() string {
	if t >= 0 && int(t) < len(jobNames) {
		return jobNames[t]
	}
	return fmt.Sprintf("job type %d", int(t))
}

// JobStats are a job's statistics (virDomainGetJobStats). Fields libvirt did not give are 0;
// Params has everything it gave, by libvirt's names (time_elapsed, downtime, memory_dirty_rate...).
type JobStats struct {
	Type      JobType
	Elapsed   time.Duration // time_elapsed
	Remaining time.Duration // time_remaining (bounded jobs)
	Downtime  time.Duration // downtime: the guest's pause at the switch-over (completed migration)
	SetupTime time.Duration // setup_time

	DataTotal, DataProcessed, DataRemaining       uint64 // bytes
	MemoryTotal, MemoryProcessed, MemoryRemaining uint64 // bytes
	MemoryBPS                                     uint64 // memory_bps, bytes/s
	MemoryDirtyRate                               uint64 // memory_dirty_rate, pages/s
	MemoryIteration                               uint64 // memory_iteration

	Params map[string]any
}

// JobStats reads the statistics of the domain's current job (Type JobNone when it has none).
func (c *Conn) JobStats(ctx context.Context, dom string) (JobStats, error) {
	d, err := c.lookup(dom)
	if err != nil {
		return JobStats{}, err
	}
	return c.jobStats(d, 0)
}

// CompletedJobStats reads the statistics of the domain's last completed job (downtime, total
// time of a migration), as virsh domjobinfo --completed --keep-completed; Type JobNone when
// libvirt has none. After a migration the source keeps them only while it keeps the domain (a
// persistent one).
//
// They are read with VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED: libvirt otherwise drops them at the
// first read, and both the orchestrator and watch read them after a migration.
func (c *Conn) CompletedJobStats(ctx context.Context, dom string) (JobStats, error) {
	d, err := c.lookup(dom)
	if err != nil {
		return JobStats{}, err
	}
	return c.jobStats(d, completedKept)
}

// completedKept reads the last completed job's statistics and leaves them for the next reader.
const completedKept = libvirt.DomainJobStatsCompleted | libvirt.DomainJobStatsKeepCompleted

func (c *Conn) jobStats(d libvirt.Domain, flags libvirt.DomainGetJobStatsFlags) (JobStats, error) {
	typ, params, err := c.l.DomainGetJobStats(d, flags)
	if err != nil {
		return JobStats{}, fmt.Errorf("job statistics of %s on %s: %w", d.Name, c.uri, libvirtError(err))
	}
	return jobStats(libvirt.DomainJobType(typ), params), nil
}

func jobStats(typ libvirt.DomainJobType, params []libvirt.TypedParam) JobStats {
	st := JobStats{Type: JobType(typ), Params: map[string]any{}}
	for _, p := range params {
		st.Params[p.Field] = p.Value.I
		var n uint64
		switch v := p.Value.I.(type) {
		case int32:
			n = uint64(max(v, 0))
		case uint32:
			n = uint64(v)
		case int64:
			n = uint64(max(v, 0))
		case uint64:
			n = v
		}
		ms := time.Duration(n) * time.Millisecond
		switch p.Field {
		case libvirt.DomainJobOperationStr:
		case libvirt.DomainJobTimeElapsed:
			st.Elapsed = ms
		case libvirt.DomainJobTimeRemaining:
			st.Remaining = ms
		case libvirt.DomainJobDowntime:
			st.Downtime = ms
		case libvirt.DomainJobSetupTime:
			st.SetupTime = ms
		case libvirt.DomainJobDataTotal:
			st.DataTotal = n
		case libvirt.DomainJobDataProcessed:
			st.DataProcessed = n
		case libvirt.DomainJobDataRemaining:
			st.DataRemaining = n
		case libvirt.DomainJobMemoryTotal:
			st.MemoryTotal = n
		case libvirt.DomainJobMemoryProcessed:
			st.MemoryProcessed = n
		case libvirt.DomainJobMemoryRemaining:
			st.MemoryRemaining = n
		case libvirt.DomainJobMemoryBps:
			st.MemoryBPS = n
		case libvirt.DomainJobMemoryDirtyRate:
			st.MemoryDirtyRate = n
		case libvirt.DomainJobMemoryIteration:
			st.MemoryIteration = n
		}
	}
	return st
}
