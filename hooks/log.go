package hooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Record is one line of the decision log: one JSON object per hook invocation. Fields are only
// ever added. The domain definition is never logged: at migrate it carries secrets (VNC/SPICE
// passwords, docs/failover.md#hook-protocol).
type Record struct {
	Time       string   `json:"time"`
	Domain     string   `json:"domain"`
	Op         string   `json:"op"`
	SubOp      string   `json:"subop"`
	Extra      string   `json:"extra"`
	Decision   Decision `json:"decision"`
	DurationMS float64  `json:"duration_ms"`
	Changes    []string `json:"changes,omitempty"`
	Message    string   `json:"message,omitempty"`
	Policy     string   `json:"policy,omitempty"`
	PID        int      `json:"pid"`
	Version    string   `json:"version,omitempty"`
	Claims     []string `json:"claims,omitempty"`   // pool claims taken or confirmed: "POOL: RESOURCE for DOMAIN ALIAS (STATE)"
	Releases   []string `json:"releases,omitempty"` // pool claims freed
	Actions    []string `json:"actions,omitempty"`  // host changes, like a VF's MAC
	Lint       []string `json:"lint,omitempty"`     // lint errors at prepare: "VF007 NAME line N: MESSAGE"
	// Reaped are other domains' claims the call's transaction freed because their domain no longer
	// runs here: "POOL: RESOURCE for DOMAIN ALIAS (STATE): WHY".
	Reaped    []string `json:"reaped,omitempty"`
	WorkerPID int      `json:"worker_pid,omitempty"` // the replug worker the hook started (started)
}

// log appends the invocation's record to the policy's log file. A failure to log never changes
// the decision; it is reported on stderr, which libvirt keeps in its own log.
func (r *run) log(start time.Time, out outcome, perr error) {
	rec := Record{
		Time:       start.UTC().Format(time.RFC3339Nano),
		Domain:     r.inv.Object,
		Op:         r.inv.Op,
		SubOp:      r.inv.SubOp,
		Extra:      r.inv.Extra,
		Decision:   out.decision,
		DurationMS: float64(r.opts.Now().Sub(start).Microseconds()) / 1000,
		Changes:    out.changes,
		Message:    out.reason,
		Policy:     r.pol.Source,
		PID:        os.Getpid(),
		Version:    r.opts.Version,
		Claims:     out.claims,
		Releases:   out.releases,
		Actions:    out.actions,
		Lint:       out.lint,
		Reaped:     out.reaped,
		WorkerPID:  out.worker,
	}
	if rec.Message == "" {
		rec.Message = out.message
	}
	if perr != nil {
		rec.Policy = r.opts.PolicyPath
	}
	file := r.pol.Log.File
	if r.opts.LogFile != "" {
		file = r.opts.LogFile
	}
	if err := AppendRecord(file, rec); err != nil {
		fmt.Fprintf(r.opts.Stderr, "virt-failover: warning: %v\n", err)
	}
}

// AppendRecord appends rec as one JSON line to file, creating it with mode 0640 (and its
// directory with 0750) when missing. One write call per line keeps concurrent hooks' lines whole.
func AppendRecord(file string, rec Record) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "->" in changes readable
	if err := enc.Encode(rec); err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	line := buf.Bytes() // Encode ends the line with '\n'
	// Never through a link (the hook runs as root: a link would let anyone who can write the
	// directory have root append to any file), never blocking (a FIFO would hold the hook and
	// libvirtd with it), and only a regular file.
	const flags = os.O_WRONLY | os.O_APPEND | os.O_CREATE | syscall.O_NOFOLLOW | syscall.O_NONBLOCK
	f, err := os.OpenFile(file, flags, 0o640)
	if os.IsNotExist(err) {
		if mkErr := os.MkdirAll(filepath.Dir(file), 0o750); mkErr == nil {
			f, err = os.OpenFile(file, flags, 0o640)
		}
	}
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("decision log %s: not a regular file; the hook writes only to one", file)
	}
	// An existing log more open than the 0640 it is created with is tightened to it (the line
	// carries no secret, so one that cannot be is written all the same, and the error reported).
	var merr error
	if perm := st.Mode().Perm(); perm&^0o640 != 0 {
		if err := f.Chmod(perm & 0o640); err != nil {
			merr = fmt.Errorf("decision log %s: tightening its mode %#o to %#o: %w", file, perm, perm&0o640, err)
		}
	}
	_, werr := f.Write(line)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("decision log %s: %w", file, werr)
	}
	if cerr != nil {
		return fmt.Errorf("decision log %s: %w", file, cerr)
	}
	return merr
}
