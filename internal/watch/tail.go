package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/virt-failover/virt-failover/hooks"
)

// Tail follows the hook's decision log (one JSON hooks.Record a line) from its end, as it is
// when Tail starts, and counts each new line's decision by operation. It survives the log's
// rotation by rename (logrotate's default; the hook opens the file anew for every line, so it
// writes to the new one at once): it reads what is left of the old file, then the new one from
// its start. A file cut short (copytruncate) is read again from its start. A missing file is
// waited for. It polls every interval until ctx ends.
func (m *Metrics) Tail(ctx context.Context, file string, interval time.Duration, logf func(string, ...any)) {
	t := &tailer{file: file, count: func(r hooks.Record) {
		m.hookDecisions.WithLabelValues(r.Op, string(r.Decision)).Inc()
	}, logf: logf}
	t.open(true)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		t.poll()
		select {
		case <-ctx.Done():
			if t.f != nil {
				t.f.Close()
			}
			return
		case <-tick.C:
		}
	}
}

type tailer struct {
	file    string
	f       *os.File
	partial []byte // a line not ended yet
	count   func(hooks.Record)
	logf    func(string, ...any)
}

// open opens the log; atEnd starts at its end (what was there before watch started is not
// counted).
func (t *tailer) open(atEnd bool) {
	f, err := os.Open(t.file)
	if err != nil {
		return
	}
	if atEnd {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return
		}
	}
	t.f, t.partial = f, nil
}

func (t *tailer) poll() {
	if t.f == nil {
		// Created since: every line in it is new.
		t.open(false)
		if t.f == nil {
			return
		}
	}
	t.read()
	cur, err := t.f.Stat()
	if err != nil {
		return
	}
	st, err := os.Stat(t.file)
	switch {
	case err != nil && os.IsNotExist(err):
		// Renamed away and no new one yet: keep the old one open for lines still coming to it.
	case err != nil:
		t.logf("hook log %s: %v", t.file, err)
	case !os.SameFile(cur, st):
		// Rotated: what was left of the old file is read; now the new one, from its start.
		t.f.Close()
		t.f = nil
		t.open(false)
		if t.f != nil {
			t.read()
		}
	default:
		if off, err := t.f.Seek(0, io.SeekCurrent); err == nil && st.Size() < off {
			// Cut short in place: read it again from the start.
			if _, err := t.f.Seek(0, io.SeekStart); err == nil {
				t.partial = nil
				t.read()
			}
		}
	}
}

// read counts every whole line from the current offset.
func (t *tailer) read() {
	buf, err := io.ReadAll(t.f)
	if err != nil {
		t.logf("hook log %s: %v", t.file, err)
	}
	data := append(t.partial, buf...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSpace(data[:i])
		data = data[i+1:]
		if len(line) == 0 {
			continue
		}
		var r hooks.Record
		if err := json.Unmarshal(line, &r); err != nil || r.Op == "" {
			t.logf("hook log %s: a line that is no hook record: %.80s", t.file, line)
			continue
		}
		t.count(r)
	}
	t.partial = bytes.Clone(data)
}
