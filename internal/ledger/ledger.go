// Package ledger keeps the claims a host's hooks take on pool resources (VFs, networks), in one
// file under the policy's state directory.
//
// Every change runs as a transaction: an exclusive flock on a lock file beside the ledger, a
// read of the ledger, the change, and an atomic replacement of the file (write a temporary file,
// fsync it, rename it over the ledger). A process killed at any point leaves
// either the old ledger or the new one, never a mix, and the next transaction takes the lock
// normally: the kernel releases a dead process's flock. Readers take a shared lock.
//
// A claim taken at an incoming migration's migrate begin is pending: it expires after the policy's
// claim_ttl unless prepare confirms it, because a migration that dies before prepare (in libvirt's
// ABI check, for example) brings no release. A claim records the boot it was taken in; claims of
// an earlier boot are stale, since no guest survives a reboot.
package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// File names under the state directory.
const (
	FileName = "claims.json"
	lockName = "claims.lock"
	tempName = "claims.json.tmp"
)

// formatVersion is the ledger format; a newer one is refused rather than rewritten.
const formatVersion = 1

// State is a claim's state.
type State string

// Claim states.
const (
	Pending   State = "pending"   // taken at migrate/restore begin; expires unless confirmed
	Confirmed State = "confirmed" // taken or confirmed at prepare or reconnect; lives until release
)

// Owner is the device a claim is for: one device of one domain.
type Owner struct {
	UUID   string `json:"uuid"`
	Domain string `json:"domain"`
	Alias  string `json:"alias"` // the device's alias, or another stable name of it
}

// Same reports whether o and p are the same device of the same domain.
func (o Owner) Same(p Owner) bool {
	return o.UUID == p.UUID && o.Alias == p.Alias
}

// Claim is one resource held for one device.
type Claim struct {
	Pool     string    `json:"pool"`
	Resource string    `json:"resource"` // a PCI address or a network/bridge name
	Owner              // embedded: uuid, domain, alias
	State    State     `json:"state"`
	Time     time.Time `json:"time"`             // when it was taken (or confirmed)
	Expires  time.Time `json:"expires,omitzero"` // pending claims only
	BootID   string    `json:"boot_id"`
}

// Status is what a claim counts for now.
type Status string

// Claim statuses.
const (
	Live    Status = "live"    // it holds its resource
	Expired Status = "expired" // pending and past its expiry
	Stale   Status = "stale"   // taken in an earlier boot
)

// file is the ledger's JSON document.
type file struct {
	Version int     `json:"version"`
	Claims  []Claim `json:"claims"`
}

// Ledger is the claims file of one state directory.
type Ledger struct {
	Dir    string
	BootID string           // this boot; "" makes no claim stale
	Now    func() time.Time // default time.Now
	// LockTimeout bounds Update's wait for the lock (ErrLockTimeout past it); 0 waits as long as
	// it takes.
	LockTimeout time.Duration
	// Deadline, when set, is the caller's own (the hook's whole call): Update waits for the lock
	// until then at most, and writes nothing once it has passed (ErrDeadline).
	Deadline time.Time
}

// Open returns the ledger of dir for this boot. The directory is created on the first write.
func Open(dir string) *Ledger {
	return &Ledger{Dir: dir, BootID: BootID(), Now: time.Now}
}

// BootID returns the kernel's boot id, "" if it cannot be read.
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Path is the ledger file.
func (l *Ledger) Path() string { return filepath.Join(l.Dir, FileName) }

// LockPath is the file whose flock guards the ledger.
func (l *Ledger) LockPath() string { return filepath.Join(l.Dir, lockName) }

func (l *Ledger) now() time.Time {
	if l.Now == nil {
		return time.Now()
	}
	return l.Now()
}

// StatusOf says what c counts for at time now in boot bootID.
func StatusOf(c Claim, bootID string, now time.Time) Status {
	switch {
	case bootID != "" && c.BootID != "" && c.BootID != bootID:
		return Stale
	case c.State == Pending && !c.Expires.IsZero() && !now.Before(c.Expires):
		return Expired
	}
	return Live
}

// Tx is one transaction on the ledger: a snapshot of the claims that the caller may change.
// Changes are written when the function given to Update returns nil.
type Tx struct {
	l       *Ledger
	now     time.Time
	claims  []Claim
	changed bool
}

// Claims returns every claim, live or not, in the ledger's order. The slice is a copy.
func (tx *Tx) Claims() []Claim { return slices.Clone(tx.claims) }

// Status says what c counts for now.
func (tx *Tx) Status(c Claim) Status { return StatusOf(c, tx.l.BootID, tx.now) }

// Holder returns the live claim on pool's resource, if any.
func (tx *Tx) Holder(pool, resource string) (Claim, bool) {
	for i := range tx.claims {
		c := &tx.claims[i]
		if c.Resource == resource && c.Pool == pool && tx.Status(*c) == Live {
			return *c, true
		}
	}
	return Claim{}, false
}

// ErrCorrupt is returned when the ledger file does not read as a claims ledger.
var ErrCorrupt = errors.New("claims: the ledger is corrupt")

func corrupt(path, why string) error {
	return fmt.Errorf("%w: %s: %s; nothing was written to it (\"virt-failover claims rebuild\" moves it aside and rebuilds the claims from the running guests)", ErrCorrupt, path, why)
}

// ErrLockTimeout is returned by Update when the ledger's lock stays held past LockTimeout.
var ErrLockTimeout = errors.New("claims: the ledger's lock was not free in time")

// ErrDeadline is returned by Update when the Deadline passed before it could write.
var ErrDeadline = errors.New("claims: the caller's deadline passed")

// ErrHeld is returned by Take when another device holds the resource.
var ErrHeld = errors.New("resource held by another claim")

// Take claims pool's resource for owner in state st. It replaces the owner's earlier claim (a
// device holds one resource) and any claim on the resource that is no longer live. A live claim
// of another owner on the resource is an error wrapping ErrHeld. ttl sets a pending claim's
// expiry.
func (tx *Tx) Take(pool, resource string, owner Owner, st State, ttl time.Duration) (Claim, error) {
	if h, ok := tx.Holder(pool, resource); ok && !h.Owner.Same(owner) {
		return Claim{}, fmt.Errorf("%w: %s %s holds %s", ErrHeld, h.Domain, h.Alias, resource)
	}
	c := Claim{Pool: pool, Resource: resource, Owner: owner, State: st, Time: tx.now, BootID: tx.l.BootID}
	if st == Pending {
		c.Expires = tx.now.Add(ttl)
	}
	kept := tx.claims[:0:0]
	for _, old := range tx.claims {
		sameRes := old.Pool == pool && old.Resource == resource
		if old.Owner.Same(owner) || sameRes {
			if old.Owner.Same(owner) && sameRes && old.State == Confirmed && st == Confirmed {
				c.Time = old.Time // a confirmed claim keeps its age
			}
			continue
		}
		kept = append(kept, old)
	}
	tx.claims = append(kept, c)
	tx.changed = true
	return c, nil
}

// Remove deletes the claims for which drop returns true and returns them.
func (tx *Tx) Remove(drop func(Claim) bool) []Claim {
	var gone []Claim
	kept := tx.claims[:0:0]
	for _, c := range tx.claims {
		if drop(c) {
			gone = append(gone, c)
			continue
		}
		kept = append(kept, c)
	}
	if len(gone) > 0 {
		tx.claims = kept
		tx.changed = true
	}
	return gone
}

// Update runs fn in a transaction under the exclusive lock and writes the ledger if fn changed
// it and returned nil. fn's error is returned as it is.
func (l *Ledger) Update(fn func(*Tx) error) error {
	if err := os.MkdirAll(l.Dir, 0o750); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	unlock, err := l.lock(syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	l.removeStaleTemps()
	claims, err := l.read()
	if err != nil {
		return err
	}
	tx := &Tx{l: l, now: l.now(), claims: claims}
	if err := fn(tx); err != nil {
		return err
	}
	if !tx.changed {
		return nil
	}
	if !l.Deadline.IsZero() && !time.Now().Before(l.Deadline) {
		return fmt.Errorf("%w: nothing was written to %s", ErrDeadline, l.Path())
	}
	return l.write(tx.claims)
}

// View runs fn on a snapshot; changes fn makes are not written. It takes no lock and creates
// nothing: every Update replaces the file whole by a rename, so a reader sees the ledger as one
// transaction or the next left it, never half of one, and a held lock (a slow writer, a stuck
// tool) never blocks a reader such as status or a dry run.
func (l *Ledger) View(fn func(*Tx) error) error {
	claims, err := l.read()
	if err != nil {
		return err
	}
	return fn(&Tx{l: l, now: l.now(), claims: claims})
}

// lock takes the ledger's flock; the returned function releases it.
func (l *Ledger) lock(how int) (func(), error) {
	// Never through a link planted in the state directory, and only a regular file.
	f, err := os.OpenFile(l.LockPath(), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o640)
	if err != nil {
		return nil, fmt.Errorf("claims: lock: %w", err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("claims: lock %s: not a regular file", f.Name())
	}
	// With a deadline, poll a non-blocking flock: a lock held by a stuck process must not hold
	// the caller (libvirtd waits for the hook) longer than LockTimeout.
	var deadline time.Time
	if l.LockTimeout > 0 {
		how |= syscall.LOCK_NB
		deadline = time.Now().Add(l.LockTimeout)
	}
	caller := !l.Deadline.IsZero() && (deadline.IsZero() || l.Deadline.Before(deadline))
	if caller {
		how |= syscall.LOCK_NB
		deadline = l.Deadline
	}
	for wait := time.Millisecond; ; {
		err = syscall.Flock(int(f.Fd()), how)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			break
		}
		if !time.Now().Before(deadline) {
			f.Close()
			if caller {
				return nil, fmt.Errorf("%w while %s was held by another process", ErrDeadline, f.Name())
			}
			return nil, fmt.Errorf("%w: %s is held by another process for more than %s", ErrLockTimeout, f.Name(), l.LockTimeout)
		}
		time.Sleep(min(wait, time.Until(deadline)))
		wait = min(2*wait, 50*time.Millisecond)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("claims: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

// read loads the claims; a missing ledger has none.
func (l *Ledger) read() ([]Claim, error) {
	b, err := os.ReadFile(l.Path())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	// Strictly: a ledger that does not read as one (null, a misspelled key, no version) is corrupt,
	// and is refused rather than taken for empty and overwritten, which would lose its claims.
	var f *file
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, corrupt(l.Path(), err.Error())
	}
	if dec.More() {
		return nil, corrupt(l.Path(), "more than one JSON value")
	}
	if f == nil {
		return nil, corrupt(l.Path(), "it is null")
	}
	if f.Version == 0 {
		return nil, corrupt(l.Path(), "it has no version")
	}
	if f.Version > formatVersion {
		return nil, fmt.Errorf("claims: %s is format %d; this virt-failover reads format %d", l.Path(), f.Version, formatVersion)
	}
	return f.Claims, nil
}

// write replaces the ledger atomically: temporary file, fsync, rename.
// Only the lock holder writes, so the temporary file has a fixed name; one a killed writer left
// behind is truncated here.
func (l *Ledger) write(claims []Claim) error {
	// One claim a line: readable, and cheaper to write than indented JSON.
	b := []byte(fmt.Sprintf("{\"version\": %d, \"claims\": [", formatVersion))
	for i, c := range claims {
		if i > 0 {
			b = append(b, ',')
		}
		cb, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("claims: %w", err)
		}
		b = append(append(b, "\n  "...), cb...)
	}
	b = append(b, "\n]}\n"...)
	// A fresh name, created exclusively: a link planted in the state directory is never
	// followed. Temp files a killed writer left are removed under the lock (removeStaleTemps).
	f, err := os.CreateTemp(l.Dir, tempName+"-*")
	if err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	tmp := f.Name()
	werr := f.Chmod(0o640)
	if werr == nil {
		_, werr = f.Write(b)
	}
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp) // a full disk must not keep the half-written file
		return fmt.Errorf("claims: writing %s: %w", tmp, err)
	}
	// The directory is not fsynced: only a crash of the machine can lose the rename, and then
	// the machine reboots and every claim of this boot is stale anyway. The file's fsync stays,
	// so that such a crash leaves the old ledger or the new one, never an empty file.
	if err := os.Rename(tmp, l.Path()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("claims: %w", err)
	}
	return nil
}

// removeStaleTemps removes the temp files of writers killed between creating and renaming them;
// it runs under the exclusive lock, when no writer can be between the two.
func (l *Ledger) removeStaleTemps() {
	left, _ := filepath.Glob(filepath.Join(l.Dir, tempName+"-*"))
	for _, p := range left {
		os.Remove(p)
	}
}
