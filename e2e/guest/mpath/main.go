// Command vfo-mpath is the end-to-end test guest's multipath: busybox has no dmsetup and no
// multipathd, so this small static program does what they would for one LUN. It waits for the
// SCSI disks that share a WWID, makes a device-mapper multipath map over them through the DM
// ioctls (the assigned legs in the first priority group, the virtio-scsi paths in the second,
// queue_if_no_path), and keeps the map's paths equal to the disks present: a path that leaves the
// guest is dropped, one that comes back is added, a failed one whose disk still answers is
// reinstated, one whose disk stopped answering is removed from the guest (its hot-unplug notice
// went missing), and the SCSI address where a path was is rescanned while it is empty (for a
// hot-plug notice that went missing). Once the first group has an active path again, I/O goes
// back to it (multipathd's "failback immediate"). A writer writes checksummed blocks through the map and reads them back. The state
// goes to a status file the guest's heartbeat copies (e2e/guest/init.sh, mode vfo.mpath=1):
//
//	mpath mpath0 dev=dm-0 wwid=naa.5001405000e2e001 group=1 paths=sda:vmw_pvscsi:A:1,sdb:virtio_scsi:A:2 written=120 verified=238 ioerr=0 bad=0
//
// paths lists the map's paths as name:HBA:state:group (state A active, F failed); group is the
// priority group in use; ioerr counts failed reads and writes of the multipath device, bad the
// blocks that read back wrong.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	name     string
	status   string
	sys      string
	dev      string
	paths    int
	wait     time.Duration
	interval time.Duration
	period   time.Duration
	blocks   uint64
}

func main() {
	var c config
	flag.StringVar(&c.name, "name", "mpath0", "device-mapper name of the map")
	flag.StringVar(&c.status, "status", "/tmp/mpath.hb", "status file the heartbeat reads")
	flag.StringVar(&c.sys, "sys", "/sys", "sysfs")
	flag.StringVar(&c.dev, "dev", "/dev", "devtmpfs")
	flag.IntVar(&c.paths, "paths", 2, "paths to wait for before making the map")
	flag.DurationVar(&c.wait, "wait", time.Minute, "how long to wait for them (then any one path will do)")
	flag.DurationVar(&c.interval, "interval", 500*time.Millisecond, "path check interval")
	flag.DurationVar(&c.period, "period", 100*time.Millisecond, "one block written per period")
	flag.Uint64Var(&c.blocks, "blocks", 1024, "blocks (4 KiB) the writer cycles through")
	flag.Parse()
	if err := run(c); err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Printf("VFO: multipath: "+format+"\n", args...)
}

// mpath is the map and what the heartbeat says of it.
type mpath struct {
	c    config
	ctl  *control
	node string // dm-0

	probe   func(path string) error // probeRead; a fake in tests
	message func(msg string) error  // a target message to the map

	slots   []slot               // where the paths were when the map was made
	scanned map[slot]time.Time   // when a slot without a disk was last rescanned
	fails   map[string]int       // failed probes in a row, by major:minor
	probed  map[string]time.Time // when a path was last probed, by major:minor

	mu     sync.Mutex
	wwid   string
	known  map[string]disk // every path ever put in the table, by major:minor
	status mapStatus
	cnt    counters
}

// rescanEvery is how often an empty slot is rescanned; probeEvery how often an active path is
// probed (a failed one is probed at every check); removeAfter is how many failed probes in a row
// make a path's disk count as gone.
const (
	rescanEvery = 2 * time.Second
	probeEvery  = 2 * time.Second
	removeAfter = 3
)

func newMpath(c config) *mpath {
	return &mpath{c: c, probe: probeRead, known: map[string]disk{}, scanned: map[slot]time.Time{},
		fails: map[string]int{}, probed: map[string]time.Time{}}
}

func run(c config) error {
	m := newMpath(c)
	go m.writeStatus()
	lun := m.waitPaths()
	ctl, err := openControl(filepath.Join(c.dev, "mapper", "control"))
	if err != nil {
		return err
	}
	m.ctl = ctl
	m.message = func(msg string) error { return ctl.message(c.name, msg) }
	sectors := lun[0].Sectors
	for _, d := range lun {
		sectors = min(sectors, d.Sectors)
	}
	if c.blocks*blockSize/512 > sectors {
		return fmt.Errorf("the LUN has %d sectors, the writer wants %d blocks", sectors, c.blocks)
	}
	devno, err := ctl.create(c.name, "mpath-"+lun[0].WWID)
	if err != nil {
		return err
	}
	var major, minor int
	if _, err := fmt.Sscanf(devno, "%d:%d", &major, &minor); err != nil {
		return fmt.Errorf("device number %q: %w", devno, err)
	}
	node := fmt.Sprintf("dm-%d", minor) // devtmpfs names device-mapper devices so
	m.mu.Lock()
	m.wwid, m.node = lun[0].WWID, node
	m.mu.Unlock()
	for _, d := range lun {
		m.slots = append(m.slots, d.Slot)
	}
	if err := m.load(sectors, groups(lun)); err != nil {
		return err
	}
	logf("%s (%s) over %s, WWID %s", c.name, node, describe(groups(lun)), lun[0].WWID)
	m.check(sectors)

	path := filepath.Join(c.dev, node)
	var f *os.File
	for i := 0; ; i++ {
		if f, err = os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	w := newWriter(f, c.blocks, alignedBuffer(), alignedBuffer(), &m.cnt, logf)
	go w.run(c.period)
	for {
		time.Sleep(c.interval)
		m.check(sectors)
	}
}

// waitPaths waits until c.paths disks share a WWID, or c.wait passed and there is one.
func (m *mpath) waitPaths() []disk {
	deadline := time.Now().Add(m.c.wait)
	for {
		lun := pickLUN(scanDisks(m.c.sys))
		if len(lun) >= m.c.paths || (len(lun) > 0 && time.Now().After(deadline)) {
			return lun
		}
		time.Sleep(m.c.interval)
	}
}

// load makes a table with these groups live.
func (m *mpath) load(sectors uint64, gs [][]disk) error {
	m.mu.Lock()
	for _, g := range gs {
		for _, d := range g {
			m.known[d.Dev] = d
		}
	}
	m.mu.Unlock()
	if err := m.ctl.load(m.c.name, sectors, "multipath", multipathTable(devs(gs))); err != nil {
		return err
	}
	return m.ctl.resume(m.c.name)
}

// check brings the map's paths in line with the disks present.
func (m *mpath) check(sectors uint64) {
	st, err := m.readStatus()
	if err != nil {
		logf("%v", err)
		return
	}
	var present []disk
	for _, d := range scanDisks(m.c.sys) {
		if d.WWID == m.wwid { // written by this goroutine only
			present = append(present, d)
		}
	}
	a := plan(present, st, m.slots)
	for _, sl := range a.Rescan {
		last, ok := m.scanned[sl]
		if ok && time.Since(last) < rescanEvery {
			continue
		}
		if !ok {
			logf("no disk at %d:%s:%s:%s: rescanning it every %v", sl.Host, sl.Channel, sl.Target, sl.LUN, rescanEvery)
		}
		m.scanned[sl] = time.Now()
		if err := sl.rescan(m.c.sys); err != nil {
			logf("rescan: %v", err)
		}
	}
	for sl := range m.scanned {
		if !slices.Contains(a.Rescan, sl) {
			delete(m.scanned, sl)
		}
	}
	if a.Reload != nil {
		if err := m.load(sectors, a.Reload); err != nil {
			logf("reload: %v", err)
			return
		}
		logf("paths now %s", describe(a.Reload))
	}
	changed := a.Reload != nil
	for _, p := range a.Probe {
		if p.Active && time.Since(m.probed[p.Dev]) < probeEvery {
			continue
		}
		m.probed[p.Dev] = time.Now()
		changed = m.checkPath(p) || changed
	}
	if changed {
		if st, err = m.readStatus(); err != nil {
			return
		}
	}
	if g := failbackGroup(st); g != 0 {
		if err := m.message(fmt.Sprintf("switch_group %d", g)); err != nil {
			logf("switch to group %d: %v", g, err)
			return
		}
		logf("failback: group %d has an active path again, I/O goes there", g)
		_, _ = m.readStatus()
	}
}

// failbackGroup is the group the map should switch to, as multipathd's "failback immediate" has
// it: the first group with an active path when the map uses (or is to use) a later one; 0 for
// none. The kernel leaves a map on the group it went to when a path of a better group fails,
// also once that path is reinstated: only a new table or switch_group brings it back.
func failbackGroup(st mapStatus) int {
	for gi, g := range st.Groups {
		if slices.ContainsFunc(g, func(p pathStatus) bool { return p.Active }) {
			if gi+1 < st.Group {
				return gi + 1
			}
			return 0
		}
	}
	return 0
}

// checkPath probes one path of the table whose disk is present, as multipathd's path checker
// would: a failed path that answers is reinstated; an active one that does not is failed; one
// that has not answered removeAfter times in a row is removed from the guest, as a hot-unplug
// would have done. It reports whether it changed the map.
func (m *mpath) checkPath(p pathStatus) bool {
	d := m.known[p.Dev]
	err := m.probe(filepath.Join(m.c.dev, d.Name))
	if err == nil {
		delete(m.fails, p.Dev)
		if p.Active {
			return false
		}
		if err := m.message("reinstate_path " + p.Dev); err != nil {
			logf("reinstate %s: %v", d.Name, err)
			return false
		}
		logf("path %s reinstated", d.Name)
		return true
	}
	m.fails[p.Dev]++
	changed := false
	if p.Active {
		if err := m.message("fail_path " + p.Dev); err != nil {
			logf("fail %s: %v", d.Name, err)
		} else {
			logf("path %s failed (%v)", d.Name, err)
			changed = true
		}
	}
	if m.fails[p.Dev] == removeAfter {
		logf("path %s does not answer (%v): removing the disk", d.Name, err)
		if err := d.remove(m.c.sys); err != nil {
			logf("remove %s: %v", d.Name, err)
		}
	}
	return changed
}

func (m *mpath) readStatus() (mapStatus, error) {
	s, err := m.ctl.status(m.c.name)
	if err != nil {
		return mapStatus{}, err
	}
	st, err := parseStatus(s)
	if err != nil {
		return mapStatus{}, err
	}
	m.mu.Lock()
	m.status = st
	m.mu.Unlock()
	return st, nil
}

// probeRead reads the first block of a path directly, as multipathd's directio checker does; a read
// that hangs counts as failed after 5 s.
func probeRead(path string) error {
	done := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		_, err = f.ReadAt(alignedBuffer(), 0)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s: read timed out", path)
	}
}

// alignedBuffer is one block of page-aligned memory, as O_DIRECT wants.
func alignedBuffer() []byte {
	b, err := unix.Mmap(-1, 0, blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		panic(err)
	}
	return b
}

func describe(gs [][]disk) string {
	var parts []string
	for i, g := range gs {
		for _, d := range g {
			parts = append(parts, fmt.Sprintf("%s (%s, group %d)", d.Name, d.HBA, i+1))
		}
	}
	return strings.Join(parts, ", ")
}

// line is the heartbeat's multipath part.
func (m *mpath) line() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	node, wwid := m.node, m.wwid
	if node == "" {
		node, wwid = "-", "-"
	}
	var paths []string
	for gi, g := range m.status.Groups {
		for _, p := range g {
			d, ok := m.known[p.Dev]
			if !ok {
				d = disk{Name: strings.ReplaceAll(p.Dev, ":", "."), HBA: "-"}
			}
			state := "F"
			if p.Active {
				state = "A"
			}
			paths = append(paths, fmt.Sprintf("%s:%s:%s:%d", d.Name, d.HBA, state, gi+1))
		}
	}
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	group := m.status.Current
	if group == 0 {
		group = m.status.Group
	}
	return fmt.Sprintf("mpath %s dev=%s wwid=%s group=%d paths=%s written=%d verified=%d ioerr=%d bad=%d",
		m.c.name, node, wwid, group, strings.Join(paths, ","),
		m.cnt.Written.Load(), m.cnt.Verified.Load(), m.cnt.IOErrors.Load(), m.cnt.Bad.Load())
}

// writeStatus replaces the status file twice a second.
func (m *mpath) writeStatus() {
	tmp := m.c.status + ".tmp"
	for {
		if err := os.WriteFile(tmp, []byte(m.line()+"\n"), 0o644); err == nil {
			_ = os.Rename(tmp, m.c.status)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
