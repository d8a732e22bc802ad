package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// HookEntry is one line of the hook's JSON log: one hook invocation.
type HookEntry struct {
	Time       string   `json:"time"`
	Domain     string   `json:"domain"`
	Op         string   `json:"op"`
	Subop      string   `json:"subop"`
	Extra      string   `json:"extra"`
	Decision   string   `json:"decision"`
	DurationMS *float64 `json:"duration_ms"`
	Changes    []string `json:"changes"`
	Message    string   `json:"message"`
}

// Call is "op subop", the way libvirt names a hook call.
func (e HookEntry) Call() string { return e.Op + " " + e.Subop }

// HookLog parses the host's hook log. A missing log is an empty log.
func (h *Host) HookLog() ([]HookEntry, error) {
	b, err := os.ReadFile(h.HookLogPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries []HookEntry
	var errs []error
	for i, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e HookEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %v: %q", h.HookLogPath(), i+1, err, line))
			continue
		}
		entries = append(entries, e)
	}
	return entries, errors.Join(errs...)
}

// MonitorEvent is a QMP event QEMU sent to libvirtd, as libvirtd logged it.
type MonitorEvent struct {
	Time time.Time      // QEMU's timestamp
	Name string         // like UNPLUG_PRIMARY
	Data map[string]any // the event's data
}

// Status is data.status (MIGRATION events).
func (e MonitorEvent) Status() string {
	s, _ := e.Data["status"].(string)
	return s
}

func (e MonitorEvent) String() string {
	d, _ := json.Marshal(e.Data)
	return fmt.Sprintf("%s %s %s", e.Time.Format("15:04:05.000"), e.Name, d)
}

// FileSize is the size of a file, 0 if it does not exist; used as a mark to read what comes later.
func FileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// ReadFrom returns the content of path from offset on ("" if the file does not exist).
func ReadFrom(path string, offset int64) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	return string(b), err
}

// MonitorEvents returns the QMP events in libvirtd's log from offset on. libvirtd logs each as
// "QEMU_MONITOR_RECV_EVENT: mon=0x... event={...}".
func (h *Host) MonitorEvents(offset int64) ([]MonitorEvent, error) {
	text, err := ReadFrom(h.DaemonLogPath(), offset)
	if err != nil {
		return nil, err
	}
	var events []MonitorEvent
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte("QEMU_MONITOR_RECV_EVENT")) {
			continue
		}
		i := bytes.Index(line, []byte("event={"))
		if i < 0 {
			continue
		}
		var raw struct {
			Timestamp struct {
				Seconds      int64 `json:"seconds"`
				Microseconds int64 `json:"microseconds"`
			} `json:"timestamp"`
			Event string         `json:"event"`
			Data  map[string]any `json:"data"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(line[i+len("event="):]), &raw); err != nil {
			continue
		}
		events = append(events, MonitorEvent{
			Time: time.Unix(raw.Timestamp.Seconds, raw.Timestamp.Microseconds*1000),
			Name: raw.Event,
			Data: raw.Data,
		})
	}
	return events, sc.Err()
}

// HookRun is one run of a hook script as libvirtd saw it: its "Calling hook" line (util.hook)
// and, from the same thread, the result of the command (util.command, both at debug level in
// the hosts' libvirtd.conf) and any error libvirtd reported for it in between.
type HookRun struct {
	Start, End        time.Time // libvirtd's timestamps of the call and of its result
	Object, Op, SubOp string
	Done              bool   // the result was logged
	Err               string // the error libvirtd reported (the hook exited non-zero), "" if none
	Stderr            string // what the hook wrote to stderr
}

// Call is "op subop", the way libvirt names a hook call.
func (r HookRun) Call() string { return r.Op + " " + r.SubOp }

// OK reports whether the hook exited 0: libvirtd logged its result and no error for it. (The
// result line says "status 0" whatever the exit status when the caller does not ask for it, as
// hooks do not; a non-zero exit is the error libvirtd reports before it.)
func (r HookRun) OK() bool { return r.Done && r.Err == "" }

// Duration is how long libvirtd waited for the hook.
func (r HookRun) Duration() time.Duration { return r.End.Sub(r.Start) }

// HookRuns returns the hook runs in libvirtd's log from offset on, in the order they started.
func (h *Host) HookRuns(offset int64) ([]HookRun, error) {
	text, err := ReadFrom(h.DaemonLogPath(), offset)
	if err != nil {
		return nil, err
	}
	return parseHookRuns(text), nil
}

var (
	// 2026-12-04 03:40:54.676+0000: 22055: debug : virRunScript:279 : Calling hook ...
	daemonLogRE = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d{4}): (\d+): (\w+) : (\w+):\d+ : `)
	callingRE   = regexp.MustCompile(`^Calling hook \S+ id=(\S*) op=(\S*) subop=(\S*) extra=`)
)

// parseHookRuns reads hook runs from libvirtd log text. A message may span several lines (a
// hook's stderr does): the lines up to the next stamped one belong to it.
func parseHookRuns(text string) []HookRun {
	type record struct {
		time      time.Time
		thread    string
		level, fn string
		msg       string
	}
	var recs []record
	for _, line := range strings.Split(text, "\n") {
		m := daemonLogRE.FindStringSubmatch(line)
		if m == nil {
			if len(recs) > 0 {
				recs[len(recs)-1].msg += "\n" + line
			}
			continue
		}
		t, _ := time.Parse("2006-01-02 15:04:05.000-0700", m[1])
		recs = append(recs, record{time: t, thread: m[2], level: m[3], fn: m[4], msg: line[len(m[0]):]})
	}
	var runs []HookRun
	open := map[string]int{} // thread -> index in runs of its run without a result yet
	for _, r := range recs {
		if m := callingRE.FindStringSubmatch(r.msg); m != nil {
			open[r.thread] = len(runs)
			runs = append(runs, HookRun{Start: r.time, Object: m[1], Op: m[2], SubOp: m[3]})
			continue
		}
		i, ok := open[r.thread]
		if !ok {
			continue
		}
		run := &runs[i]
		switch {
		case r.level == "error" && run.Err == "":
			run.Err = strings.TrimSpace(r.msg)
		case r.fn == "virCommandRun" && strings.HasPrefix(r.msg, "Result "):
			msg := strings.TrimRight(r.msg, "\n")
			if j := strings.Index(msg, " stderr: '"); j >= 0 {
				run.Stderr = strings.TrimSuffix(msg[j+len(" stderr: '"):], "'")
			}
			run.Done, run.End = true, r.time
			delete(open, r.thread)
		}
	}
	return runs
}

// KernelSegfault is the kernel log's last line about a segfault of a process whose name starts
// with name (like "libvirtd[4655]: segfault at 0 ip ... in libvirt.so.0..."), or a word on why
// there is none.
func KernelSegfault(name string) string {
	out, err := exec.Command("dmesg").Output()
	if err != nil {
		return "kernel log unreadable: " + err.Error()
	}
	return lastSegfault(string(out), name)
}

func lastSegfault(klog, name string) string {
	last := ""
	for _, line := range strings.Split(klog, "\n") {
		if i := strings.Index(line, name); i >= 0 && strings.Contains(line[i:], "segfault") {
			if _, msg, ok := strings.Cut(line, "] "); ok && strings.HasPrefix(line, "[") {
				line = msg // without the kernel's timestamp
			}
			last = strings.TrimSpace(line)
		}
	}
	if last == "" {
		return "no segfault of " + name + " in it"
	}
	return last
}
