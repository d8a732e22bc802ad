package harness

import (
	"cmp"
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
//
// A bonded guest's (vfo.bond=1) netdevs carry more fields; a multipath guest's (vfo.mpath=1) line
// ends with its map and writer (e2e/guest/init.sh shows both).
type Heartbeat struct {
	Index     int // line number in the serial log
	Raw       string
	Uptime    float64
	Sent      int // probes sent to the gateway
	Recv      int // probes answered
	Lost      int // probes not answered within their 1 s (one in flight is in none but Sent)
	Netdevs   []Netdev
	Multipath *Multipath // nil unless the guest runs vfo.mpath=1
}

// Netdev is one network device in a heartbeat.
type Netdev struct {
	Name, Driver, State, Master, Role string
	// A bonded guest's heartbeat also gives each NIC's packet counters, and the bond's (Role
	// "bond") mode, active slave, primary and slaves ("" and nil where it has none).
	TxPackets, RxPackets  int64
	Mode, Active, Primary string
	Slaves                []string
}

func (n Netdev) String() string {
	return fmt.Sprintf("%s(%s,%s,master=%s)", n.Name, n.Driver, n.State, n.Master)
}

// Multipath is a multipath guest's device-mapper map and the writer that writes and verifies
// checksummed blocks through it (e2e/guest/mpath).
type Multipath struct {
	Name, Dev, WWID string // mpath0, dm-0 ("-" until the map exists), naa.5001405000e2e001
	Group           int    // the priority group in use: 1 holds the assigned legs while one is present
	Paths           []Path // the map's paths
	// Blocks written and read back right, reads and writes that failed, blocks read back wrong.
	Written, Verified, IOErrors, Bad int64
}

// Path is one path of a multipath map.
type Path struct {
	Dev, HBA string // sda, vmw_pvscsi (the driver of the disk's SCSI controller)
	Active   bool   // not failed
	Group    int    // its priority group
}

func (p Path) String() string {
	state := "failed"
	if p.Active {
		state = "active"
	}
	return fmt.Sprintf("%s(%s,%s,group %d)", p.Dev, p.HBA, state, p.Group)
}

var (
	hbRE     = regexp.MustCompile(`VFO-HB up=([0-9.]+) sent=(\d+) recv=(\d+) lost=(\d+)((?: \| \S.*)?)$`)
	netdevRE = regexp.MustCompile(`^(\S+) drv=(\S+) state=(\S+) master=(\S+) role=(\S+)((?: [a-z]+=\S+)*)$`)
	mpathRE  = regexp.MustCompile(`^mpath (\S+) dev=(\S+) wwid=(\S+) group=(\d+) paths=(\S+) written=(\d+) verified=(\d+) ioerr=(\d+) bad=(\d+)$`)
)

// ParseHeartbeat parses a heartbeat line; lines garbled by interleaved kernel messages do not parse.
func ParseHeartbeat(line string) (Heartbeat, bool) {
	m := hbRE.FindStringSubmatch(strings.TrimRight(line, " \t\r"))
	if m == nil {
		return Heartbeat{}, false
	}
	hb := Heartbeat{Raw: line}
	hb.Uptime, _ = strconv.ParseFloat(m[1], 64)
	hb.Sent, _ = strconv.Atoi(m[2])
	hb.Recv, _ = strconv.Atoi(m[3])
	hb.Lost, _ = strconv.Atoi(m[4])
	if m[5] == "" {
		return hb, true
	}
	for _, part := range strings.Split(m[5], " | ")[1:] {
		if hb.Multipath != nil {
			return Heartbeat{}, false // the multipath part is the last
		}
		if mp, ok := parseMultipath(part); ok {
			hb.Multipath = &mp
			continue
		}
		nd, ok := parseNetdev(part)
		if !ok {
			return Heartbeat{}, false
		}
		hb.Netdevs = append(hb.Netdevs, nd)
	}
	return hb, true
}

func parseNetdev(part string) (Netdev, bool) {
	m := netdevRE.FindStringSubmatch(part)
	if m == nil {
		return Netdev{}, false
	}
	nd := Netdev{Name: m[1], Driver: m[2], State: m[3], Master: m[4], Role: m[5]}
	for _, kv := range strings.Fields(m[6]) {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "tx":
			nd.TxPackets, err = strconv.ParseInt(v, 10, 64)
		case "rx":
			nd.RxPackets, err = strconv.ParseInt(v, 10, 64)
		case "mode":
			nd.Mode = v
		case "active":
			nd.Active = dash(v)
		case "primary":
			nd.Primary = dash(v)
		case "slaves":
			if v != "-" {
				nd.Slaves = strings.Split(v, ",")
			}
		}
		if err != nil {
			return Netdev{}, false
		}
	}
	return nd, true
}

func parseMultipath(part string) (Multipath, bool) {
	m := mpathRE.FindStringSubmatch(part)
	if m == nil {
		return Multipath{}, false
	}
	mp := Multipath{Name: m[1], Dev: m[2], WWID: m[3]}
	mp.Group, _ = strconv.Atoi(m[4])
	for i, n := range []*int64{&mp.Written, &mp.Verified, &mp.IOErrors, &mp.Bad} {
		*n, _ = strconv.ParseInt(m[6+i], 10, 64)
	}
	if m[5] == "-" {
		return mp, true
	}
	for _, p := range strings.Split(m[5], ",") {
		f := strings.Split(p, ":") // name:HBA:state:group
		if len(f) != 4 || (f[2] != "A" && f[2] != "F") {
			return Multipath{}, false
		}
		g, err := strconv.Atoi(f[3])
		if err != nil {
			return Multipath{}, false
		}
		mp.Paths = append(mp.Paths, Path{Dev: f[0], HBA: f[1], Active: f[2] == "A", Group: g})
	}
	return mp, true
}

// dash maps the heartbeat's "-" (none) to "".
func dash(v string) string {
	if v == "-" {
		return ""
	}
	return v
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

// Bond is a bonded guest's bond (the netdev with role bond).
func (h Heartbeat) Bond() (Netdev, bool) {
	for _, n := range h.Netdevs {
		if n.Role == "bond" {
			return n, true
		}
	}
	return Netdev{}, false
}

// BondPrimary is the NIC under the bond that is not virtio (the VF, or the e1000e standing in
// for one); BondStandby is the virtio NIC under it.
func (h Heartbeat) BondPrimary() (Netdev, bool) { return h.bondSlave(false) }

// BondStandby is the virtio NIC under the bond.
func (h Heartbeat) BondStandby() (Netdev, bool) { return h.bondSlave(true) }

func (h Heartbeat) bondSlave(virtio bool) (Netdev, bool) {
	b, ok := h.Bond()
	if !ok {
		return Netdev{}, false
	}
	for _, n := range h.Netdevs {
		if n.Master == b.Name && (n.Driver == "virtio_net") == virtio {
			return n, true
		}
	}
	return Netdev{}, false
}

// BondWhole reports a bonded guest's healthy state: the bond up in active-backup with both NICs
// under it and up, and the primary NIC the bond's primary and its active slave.
func (h Heartbeat) BondWhole() bool {
	b, ok := h.Bond()
	if !ok || b.State != "up" || b.Mode != "active-backup" || len(b.Slaves) != 2 {
		return false
	}
	p, okp := h.BondPrimary()
	s, oks := h.BondStandby()
	return okp && oks && p.State == "up" && s.State == "up" && b.Primary == p.Name && b.Active == p.Name
}

// BondOnStandby reports a bonded guest whose primary NIC is gone (unplugged) and whose bond runs
// on the virtio NIC alone.
func (h Heartbeat) BondOnStandby() bool {
	b, ok := h.Bond()
	if !ok || b.State != "up" || len(b.Slaves) != 1 {
		return false
	}
	_, okp := h.BondPrimary()
	s, oks := h.BondStandby()
	return !okp && oks && s.State == "up" && b.Active == s.Name
}

// Using is the map's active paths in the priority group in use.
func (m *Multipath) Using() []Path {
	var out []Path
	for _, p := range m.Paths {
		if p.Group == m.Group && p.Active {
			out = append(out, p)
		}
	}
	return out
}

// Active counts the paths that have not failed.
func (m *Multipath) Active() int {
	n := 0
	for _, p := range m.Paths {
		if p.Active {
			n++
		}
	}
	return n
}

// onlyPaths reports whether the map's paths are exactly one active path through an HBA whose
// driver is (virtio) or is not (!virtio) virtio_scsi, for each wanted kind, and the group in use
// is the first wanted kind's.
func (m *Multipath) onlyPaths(kinds ...bool) bool {
	if m == nil || len(m.Paths) != len(kinds) || m.Active() != len(kinds) {
		return false
	}
	for _, virtio := range kinds {
		n := 0
		for _, p := range m.Paths {
			if (p.HBA == "virtio_scsi") == virtio {
				n++
			}
		}
		if n != 1 {
			return false
		}
	}
	using := m.Using()
	return len(using) == 1 && (using[0].HBA == "virtio_scsi") == kinds[0]
}

// MultipathWhole reports a multipath guest's healthy map: two active paths, the assigned leg (an
// HBA that is not virtio-scsi) and the virtio-scsi path, with I/O on the assigned leg.
func (h Heartbeat) MultipathWhole() bool { return h.Multipath.onlyPaths(false, true) }

// MultipathOnStandby reports a multipath guest whose assigned leg is gone: one path left, the
// virtio-scsi one, active and in use.
func (h Heartbeat) MultipathOnStandby() bool { return h.Multipath.onlyPaths(true) }

// Summary is the netdevs in a short form, like "eth0(virtio_net,up,master=-) eth1(...)", then
// the bond's active slave and the multipath map's paths and counters, if any.
func (h Heartbeat) Summary() string {
	parts := make([]string, len(h.Netdevs))
	for i, n := range h.Netdevs {
		parts[i] = n.String()
	}
	if b, ok := h.Bond(); ok {
		parts = append(parts, fmt.Sprintf("%s active=%s primary=%s slaves=%s", b.Name, cmp.Or(b.Active, "-"),
			cmp.Or(b.Primary, "-"), cmp.Or(strings.Join(b.Slaves, ","), "-")))
	}
	if m := h.Multipath; m != nil {
		paths := make([]string, len(m.Paths))
		for i, p := range m.Paths {
			paths[i] = p.String()
		}
		parts = append(parts, fmt.Sprintf("%s group=%d paths=[%s] written=%d verified=%d ioerr=%d bad=%d",
			m.Name, m.Group, strings.Join(paths, " "), m.Written, m.Verified, m.IOErrors, m.Bad))
	}
	return strings.Join(parts, " ")
}
