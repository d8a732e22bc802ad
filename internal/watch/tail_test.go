package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/virt-failover/virt-failover/hooks"
)

func appendRecord(t *testing.T, file, op string, d hooks.Decision) {
	t.Helper()
	if err := hooks.AppendRecord(file, hooks.Record{Time: time.Now().UTC().Format(time.RFC3339Nano), Domain: "vm1", Op: op, SubOp: "begin", Decision: d}); err != nil {
		t.Fatal(err)
	}
}

func decisions(m *Metrics, op string, d hooks.Decision) float64 {
	return testutil.ToFloat64(m.hookDecisions.WithLabelValues(op, string(d)))
}

// The log's lines from before watch started are not counted; new ones are, across a rotation by
// rename (lines still written to the old file, then the new one), a log cut short in place, and a
// log that is created later.
func TestTailCountsDecisionsAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "virt-failover.log")
	appendRecord(t, file, "migrate", hooks.Refuse)
	m := NewMetrics(nil, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Tail(ctx, file, 5*time.Millisecond, t.Logf)
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond) // Tail is at the end now

	appendRecord(t, file, "migrate", hooks.Rewrite)
	appendRecord(t, file, "prepare", hooks.Pass)
	eventually(t, "two decisions", func() bool {
		return decisions(m, "migrate", hooks.Rewrite) == 1 && decisions(m, "prepare", hooks.Pass) == 1
	})
	if n := decisions(m, "migrate", hooks.Refuse); n != 0 {
		t.Errorf("a decision from before watch started counted: %v", n)
	}

	// A line half written, then rotated by rename: the old file's rest, then the new file.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"op":"migrate","decision":"ref`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := os.Rename(file, file+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("use\"}\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	appendRecord(t, file, "migrate", hooks.Refuse)
	appendRecord(t, file, "release", hooks.Pass)
	eventually(t, "the decisions around the rotation", func() bool {
		return decisions(m, "migrate", hooks.Refuse) == 2 && decisions(m, "release", hooks.Pass) == 1
	})

	// Cut short in place (copytruncate): read from the start.
	if err := os.Truncate(file, 0); err != nil {
		t.Fatal(err)
	}
	appendRecord(t, file, "started", hooks.Pass)
	eventually(t, "the decision after the truncation", func() bool { return decisions(m, "started", hooks.Pass) == 1 })

	// Gone, then created again.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	appendRecord(t, file, "restore", hooks.Error)
	eventually(t, "the decision in the new file", func() bool { return decisions(m, "restore", hooks.Error) == 1 })
	if n := decisions(m, "migrate", hooks.Refuse); n != 2 {
		t.Errorf("migrate refuse counted %v times, want 2", n)
	}
}

// A log that does not exist yet when watch starts: every line of it counts.
func TestTailWaitsForTheLog(t *testing.T) {
	file := filepath.Join(t.TempDir(), "log", "virt-failover.log")
	m := NewMetrics(nil, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Tail(ctx, file, 5*time.Millisecond, t.Logf)
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(20 * time.Millisecond)
	appendRecord(t, file, "migrate", hooks.Refuse)
	eventually(t, "the first decision", func() bool { return decisions(m, "migrate", hooks.Refuse) == 1 })
}
