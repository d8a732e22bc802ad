package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func testLedger(t *testing.T) (*Ledger, *time.Time) {
	t.Helper()
	now := t0
	return &Ledger{Dir: filepath.Join(t.TempDir(), "state"), BootID: "boot-1", Now: func() time.Time { return now }}, &now
}

func owner(dom, alias string) Owner { return Owner{UUID: "uuid-" + dom, Domain: dom, Alias: alias} }

func TestTakeConfirmRelease(t *testing.T) {
	l, now := testLedger(t)
	web := owner("web-01", "ua-pri0")
	err := l.Update(func(tx *Tx) error {
		_, err := tx.Take("fabric", "0000:03:02.0", web, Pending, 10*time.Minute)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another device cannot take it while it is live.
	err = l.Update(func(tx *Tx) error {
		_, err := tx.Take("fabric", "0000:03:02.0", owner("db-01", "ua-pri0"), Pending, time.Minute)
		return err
	})
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "web-01 ua-pri0 holds 0000:03:02.0") {
		t.Fatalf("second take: %v", err)
	}
	// Confirming replaces the pending claim.
	*now = now.Add(time.Minute)
	must(t, l.Update(func(tx *Tx) error {
		_, err := tx.Take("fabric", "0000:03:02.0", web, Confirmed, 10*time.Minute)
		return err
	}))
	claims := all(t, l)
	if len(claims) != 1 || claims[0].State != Confirmed || !claims[0].Expires.IsZero() || claims[0].BootID != "boot-1" {
		t.Fatalf("after confirm: %+v", claims)
	}
	// A device holds one resource: taking another moves the claim.
	must(t, l.Update(func(tx *Tx) error {
		_, err := tx.Take("fabric", "0000:03:02.1", web, Confirmed, 0)
		return err
	}))
	if claims := all(t, l); len(claims) != 1 || claims[0].Resource != "0000:03:02.1" {
		t.Fatalf("after move: %+v", claims)
	}
	// Release.
	must(t, l.Update(func(tx *Tx) error {
		if gone := tx.Remove(func(c Claim) bool { return c.UUID == web.UUID }); len(gone) != 1 {
			t.Errorf("removed %v", gone)
		}
		return nil
	}))
	if claims := all(t, l); len(claims) != 0 {
		t.Fatalf("after release: %+v", claims)
	}
}

func TestPendingExpiresAndOtherBootIsStale(t *testing.T) {
	l, now := testLedger(t)
	must(t, l.Update(func(tx *Tx) error {
		_, err := tx.Take("fabric", "net-1", owner("web-01", "ua-pri0"), Pending, 10*time.Minute)
		return err
	}))
	*now = now.Add(10 * time.Minute)
	must(t, l.View(func(tx *Tx) error {
		c := tx.Claims()[0]
		if s := tx.Status(c); s != Expired {
			t.Errorf("status %s, want expired", s)
		}
		if _, held := tx.Holder("fabric", "net-1"); held {
			t.Error("an expired claim still holds its resource")
		}
		return nil
	}))
	// An expired claim gives way to a new one.
	must(t, l.Update(func(tx *Tx) error {
		_, err := tx.Take("fabric", "net-1", owner("db-01", "ua-pri0"), Confirmed, 0)
		return err
	}))
	l2 := &Ledger{Dir: l.Dir, BootID: "boot-2", Now: l.Now}
	must(t, l2.View(func(tx *Tx) error {
		if s := tx.Status(tx.Claims()[0]); s != Stale {
			t.Errorf("claim of an earlier boot: %s, want stale", s)
		}
		return nil
	}))
}

func TestFailedTransactionWritesNothing(t *testing.T) {
	l, _ := testLedger(t)
	boom := errors.New("boom")
	err := l.Update(func(tx *Tx) error {
		if _, err := tx.Take("fabric", "net-1", owner("web-01", "a"), Pending, time.Minute); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("err %v", err)
	}
	if _, err := os.Stat(l.Path()); !os.IsNotExist(err) {
		t.Fatalf("a failed transaction wrote the ledger: %v", err)
	}
}

func TestFileFormat(t *testing.T) {
	l, _ := testLedger(t)
	must(t, l.Update(func(tx *Tx) error {
		_, err := tx.Take("fabric", "0000:03:02.0", owner("web-01", "ua-pri0"), Pending, 10*time.Minute)
		return err
	}))
	b, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	c := doc["claims"].([]any)[0].(map[string]any)
	for _, k := range []string{"pool", "resource", "uuid", "domain", "alias", "state", "time", "expires", "boot_id"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claim has no %q: %s", k, b)
		}
	}
	fi, _ := os.Stat(l.Path())
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	// A newer format is refused, not overwritten.
	must(t, os.WriteFile(l.Path(), []byte(`{"version": 9, "claims": []}`), 0o640))
	if err := l.Update(func(*Tx) error { return nil }); err == nil || !strings.Contains(err.Error(), "format 9") {
		t.Errorf("newer format: %v", err)
	}
}

func TestViewOfAMissingDirectory(t *testing.T) {
	l := &Ledger{Dir: filepath.Join(t.TempDir(), "absent")}
	must(t, l.View(func(tx *Tx) error {
		if len(tx.Claims()) != 0 {
			t.Error("claims from nowhere")
		}
		return nil
	}))
	if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
		t.Error("View created the state directory")
	}
}

func all(t *testing.T, l *Ledger) []Claim {
	t.Helper()
	var out []Claim
	must(t, l.View(func(tx *Tx) error { out = tx.Claims(); return nil }))
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTakeOneOf64 is one transaction as the hook runs it at migrate begin: lock, read a ledger
// of 63 claims, take one, write it back (fsync and rename included).
func BenchmarkTakeOneOf64(b *testing.B) {
	l := &Ledger{Dir: filepath.Join(b.TempDir(), "state"), BootID: "boot-1"}
	must(&testing.T{}, l.Update(func(tx *Tx) error {
		for i := range 63 {
			if _, err := tx.Take("fabric", fmt.Sprintf("0000:81:%02x.%d", 2+i/8, i%8), owner(fmt.Sprintf("g%d", i), "ua-pri0"), Confirmed, 0); err != nil {
				return err
			}
		}
		return nil
	}))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		err := l.Update(func(tx *Tx) error {
			_, err := tx.Take("fabric", "0000:81:09.7", owner("web-01", "ua-pri0"), Pending, time.Minute)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// holdLock takes l's lock as another process would (through another open file description), until
// the returned function runs.
func holdLock(t *testing.T, l *Ledger) func() {
	t.Helper()
	if err := l.Update(func(tx *Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(l.LockPath(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}

// A lock held by another process (here another open file description) makes Update give up after
// LockTimeout with ErrLockTimeout, and change nothing; once it is free, Update goes through.
func TestUpdateGivesUpOnAHeldLock(t *testing.T) {
	l := Open(t.TempDir())
	unlock := holdLock(t, l)
	l.LockTimeout = 200 * time.Millisecond
	start := time.Now()
	err := l.Update(func(tx *Tx) error {
		_, err := tx.Take("p", "r", Owner{UUID: "u", Domain: "d", Alias: "a"}, Confirmed, 0)
		return err
	})
	waited := time.Since(start)
	if !errors.Is(err, ErrLockTimeout) || !strings.Contains(err.Error(), "held by another process for more than 200ms") {
		t.Fatalf("err %v", err)
	}
	if waited < 200*time.Millisecond || waited > 5*time.Second {
		t.Errorf("gave up after %v", waited)
	}
	unlock()
	if err := l.Update(func(tx *Tx) error {
		_, err := tx.Take("p", "r", Owner{UUID: "u", Domain: "d", Alias: "a"}, Confirmed, 0)
		return err
	}); err != nil {
		t.Fatalf("after the lock is free: %v", err)
	}
}

// The caller's Deadline bounds the wait for the lock also when LockTimeout is longer (or 0, no
// bound), and a transaction that reaches its write past the Deadline writes nothing.
func TestUpdateStopsAtTheCallersDeadline(t *testing.T) {
	l := Open(t.TempDir())
	take := func(tx *Tx) error {
		_, err := tx.Take("p", "r", Owner{UUID: "u", Domain: "d", Alias: "a"}, Confirmed, 0)
		return err
	}
	unlock := holdLock(t, l)
	for _, lockTimeout := range []time.Duration{0, time.Minute} {
		l.LockTimeout, l.Deadline = lockTimeout, time.Now().Add(200*time.Millisecond)
		start := time.Now()
		err := l.Update(take)
		if waited := time.Since(start); !errors.Is(err, ErrDeadline) || waited < 200*time.Millisecond || waited > 5*time.Second {
			t.Errorf("lock_timeout %v: err %v after %v", lockTimeout, err, waited)
		}
	}
	unlock()
	l.LockTimeout, l.Deadline = 0, time.Now().Add(time.Minute)
	err := l.Update(func(tx *Tx) error {
		l.Deadline = time.Now() // the deadline passes while the transaction runs
		return take(tx)
	})
	if !errors.Is(err, ErrDeadline) {
		t.Fatalf("err %v", err)
	}
	if _, err := os.Stat(l.Path()); !os.IsNotExist(err) {
		t.Errorf("a transaction past the deadline wrote the ledger: %v", err)
	}
}

// A file that does not read as a ledger is refused, never taken for empty and overwritten.
func TestCorruptLedgerIsRefusedAndKept(t *testing.T) {
	for name, body := range map[string]string{
		"null":             "null",
		"misspelled-key":   `{"version": 1, "claim": [{"pool": "p", "resource": "r", "uuid": "u", "domain": "d", "alias": "a", "state": "confirmed", "time": "2026-12-01T00:00:00Z", "boot_id": "b"}]}`,
		"no-version":       `{"claims": []}`,
		"truncated":        `{"version": 1, "claims": [`,
		"two-values":       `{"version": 1, "claims": []} {}`,
		"unknown-in-claim": `{"version": 1, "claims": [{"pool": "p", "resourse": "r"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			l := Open(t.TempDir())
			if err := os.WriteFile(l.Path(), []byte(body), 0o640); err != nil {
				t.Fatal(err)
			}
			err := l.Update(func(tx *Tx) error {
				_, err := tx.Take("p", "r2", Owner{UUID: "u2", Domain: "d2", Alias: "a"}, Confirmed, 0)
				return err
			})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "claims rebuild") || strings.Count(err.Error(), "claims:") != 1 {
				t.Fatalf("err %v", err)
			}
			if b, _ := os.ReadFile(l.Path()); string(b) != body {
				t.Errorf("the corrupt ledger was rewritten: %s", b)
			}
			if err := l.View(func(*Tx) error { return nil }); !errors.Is(err, ErrCorrupt) {
				t.Errorf("View: %v", err)
			}
		})
	}
}
