package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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
