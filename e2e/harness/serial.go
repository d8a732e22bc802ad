package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Serial follows the guest's serial log, a plain file that the QEMU of whichever host runs the
// guest appends to (<serial type='file'> with append='on', written through that host's virtlogd).
// Lines are numbered from 0 in the order they were appended; a line number is a mark to search from.
type Serial struct {
	Path string

	mu      sync.Mutex
	off     int64
	partial []byte
	lines   []string
	times   []time.Time // when each line was first seen
}

// NewSerial follows path, which need not exist yet.
func NewSerial(path string) *Serial { return &Serial{Path: path} }

func (s *Serial) refresh() error {
	f, err := os.Open(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	s.off += int64(len(b))
	now := time.Now()
	data := append(s.partial, b...)
	for {
		i := strings.IndexByte(string(data), '\n')
		if i < 0 {
			break
		}
		s.lines = append(s.lines, strings.TrimRight(string(data[:i]), "\r"))
		s.times = append(s.times, now)
		data = data[i+1:]
	}
	s.partial = append([]byte(nil), data...)
	return nil
}

// Len reads what is new and returns the number of complete lines: the mark for "from now on".
func (s *Serial) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.refresh()
	return len(s.lines)
}

// Lines returns the lines from index from on.
func (s *Serial) Lines(from int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.refresh()
	if from >= len(s.lines) {
		return nil
	}
	return append([]string(nil), s.lines[from:]...)
}

// SeenAt is when the harness first read line i.
func (s *Serial) SeenAt(i int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.times) {
		return time.Time{}
	}
	return s.times[i]
}

// crashRE matches the guest kernel's crash reports.
var crashRE = regexp.MustCompile(`kernel BUG|Kernel panic|Oops|list_del corruption|general protection fault`)

// GuestCrash is a guest kernel crash seen in the serial log. It is not a failover failure.
type GuestCrash struct {
	Line string
}

func (c *GuestCrash) Error() string { return "guest kernel crashed: " + c.Line }

// Crash returns the first crash report from line from on, if any.
func (s *Serial) Crash(from int) *GuestCrash {
	for _, l := range s.Lines(from) {
		if crashRE.MatchString(l) {
			return &GuestCrash{Line: strings.TrimSpace(l)}
		}
	}
	return nil
}

// Wait waits until a line from index from on satisfies match and returns its index. It stops early
// with a *GuestCrash if the guest kernel crashes.
func (s *Serial) Wait(ctx context.Context, from int, what string, match func(string) bool) (int, string, error) {
	for {
		s.mu.Lock()
		err := s.refresh()
		lines := s.lines
		s.mu.Unlock()
		if err != nil {
			return -1, "", err
		}
		for i := from; i < len(lines); i++ {
			if match(lines[i]) {
				return i, lines[i], nil
			}
			if crashRE.MatchString(lines[i]) {
				return -1, "", &GuestCrash{Line: strings.TrimSpace(lines[i])}
			}
		}
		if len(lines) > from {
			from = len(lines)
		}
		select {
		case <-ctx.Done():
			return -1, "", fmt.Errorf("serial log %s: no %s: %w", s.Path, what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitRE waits for a line matching re from index from on.
func (s *Serial) WaitRE(ctx context.Context, from int, re *regexp.Regexp) (int, string, error) {
	return s.Wait(ctx, from, fmt.Sprintf("line matching %q", re), re.MatchString)
}

// WaitHeartbeat waits for a heartbeat from index from on that satisfies ok (nil: any heartbeat).
func (s *Serial) WaitHeartbeat(ctx context.Context, from int, what string, ok func(Heartbeat) bool) (Heartbeat, error) {
	var hb Heartbeat
	_, _, err := s.Wait(ctx, from, what, func(line string) bool {
		h, good := ParseHeartbeat(line)
		if !good || (ok != nil && !ok(h)) {
			return false
		}
		hb = h
		return true
	})
	if err != nil {
		return Heartbeat{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.lines) - 1; i >= from; i-- {
		if s.lines[i] == hb.Raw {
			hb.Index = i
			break
		}
	}
	return hb, nil
}

// LastHeartbeat returns the latest heartbeat from index from on.
func (s *Serial) LastHeartbeat(from int) (Heartbeat, bool) {
	lines := s.Lines(from)
	for i := len(lines) - 1; i >= 0; i-- {
		if hb, ok := ParseHeartbeat(lines[i]); ok {
			hb.Index = from + i
			return hb, true
		}
	}
	return Heartbeat{}, false
}

// Heartbeat is one line of the guest's heartbeat:
//
//	VFO-HB up=12.34 sent=20 recv=18 lost=1 | eth0 drv=virtio_net state=up master=- role=failover | ...
type Heartbeat struct {
	Index   int // line number in the serial log
	Raw     string
	Uptime  float64
	Sent    int // probes sent to the gateway
	Recv    int // probes answered
	Lost    int // probes not answered within their 1 s (one in flight is in none but Sent)
	Netdevs []Netdev
}

// Netdev is one network device in a heartbeat.
type Netdev struct {
	Name, Driver, State, Master, Role string
}

func (n Netdev) String() string {
	return fmt.Sprintf("%s(%s,%s,master=%s)", n.Name, n.Driver, n.State, n.Master)
}

var hbRE = regexp.MustCompile(`VFO-HB up=([0-9.]+) sent=(\d+) recv=(\d+) lost=(\d+)((?: \| \S+ drv=\S+ state=\S+ master=\S+ role=\S+)*)\s*$`)

// ParseHeartbeat parses a heartbeat line; lines garbled by interleaved kernel messages do not parse.
func ParseHeartbeat(line string) (Heartbeat, bool) {
	m := hbRE.FindStringSubmatch(line)
	if m == nil {
		return Heartbeat{}, false
	}
	hb := Heartbeat{Raw: line}
	hb.Uptime, _ = strconv.ParseFloat(m[1], 64)
	hb.Sent, _ = strconv.Atoi(m[2])
	hb.Recv, _ = strconv.Atoi(m[3])
	hb.Lost, _ = strconv.Atoi(m[4])
	for _, part := range strings.Split(m[5], " | ") {
		f := strings.Fields(part)
		if len(f) != 5 {
			continue
		}
		nd := Netdev{Name: f[0]}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "drv":
				nd.Driver = v
			case "state":
				nd.State = v
			case "master":
				nd.Master = v
			case "role":
				nd.Role = v
			}
		}
		hb.Netdevs = append(hb.Netdevs, nd)
	}
	return hb, true
}

// Master is the failover master netdev.
func (h Heartbeat) Master() (Netdev, bool) {
	for _, n := range h.Netdevs {
		if n.Role == "failover" {
			return n, true
		}
	}
	return Netdev{}, false
}

// Primary is the non-virtio netdev enslaved to the failover master (the emulated VF), if present.
func (h Heartbeat) Primary() (Netdev, bool) {
	m, ok := h.Master()
	if !ok {
		return Netdev{}, false
	}
	for _, n := range h.Netdevs {
		if n.Master == m.Name && n.Driver != "virtio_net" {
			return n, true
		}
	}
	return Netdev{}, false
}

// Standby is the virtio netdev enslaved to the failover master.
func (h Heartbeat) Standby() (Netdev, bool) {
	m, ok := h.Master()
	if !ok {
		return Netdev{}, false
	}
	for _, n := range h.Netdevs {
		if n.Master == m.Name && n.Driver == "virtio_net" {
			return n, true
		}
	}
	return Netdev{}, false
}

// PrimaryEnslaved reports the healthy failover state: master up, and a primary that is up and
// enslaved to it.
func (h Heartbeat) PrimaryEnslaved() bool {
	m, ok := h.Master()
	if !ok || m.State != "up" {
		return false
	}
	p, ok := h.Primary()
	return ok && p.State == "up"
}

// PlainUp reports the yardstick guest's healthy state: its plain virtio NIC is up.
func (h Heartbeat) PlainUp() bool {
	for _, n := range h.Netdevs {
		if n.Role == "plain" {
			return n.State == "up"
		}
	}
	return false
}

// Summary is the netdevs in a short form, like "eth0(virtio_net,up,master=-) eth1(...)".
func (h Heartbeat) Summary() string {
	parts := make([]string, len(h.Netdevs))
	for i, n := range h.Netdevs {
		parts[i] = n.String()
	}
	return strings.Join(parts, " ")
}
