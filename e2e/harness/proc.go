package harness

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is a long-running process the harness started and reaps.
type daemon struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	out  *os.File
	// ended says how it ended ("signal: segmentation fault", "exit status 1"); set before done
	// closes.
	ended string
}

// startDaemon starts argv in a new session with stdin from /dev/null and stdout and stderr
// appended to logPath.
func startDaemon(name, logPath string, env []string, argv ...string) (*daemon, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &daemon{name: name, cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		_ = cmd.Wait()
		out.Close()
		d.ended = cmd.ProcessState.String()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) alive() bool {
	if d == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL.
func (d *daemon) stop(grace time.Duration) {
	if !d.alive() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return
	case <-time.After(grace):
	}
	_ = d.cmd.Process.Kill()
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// nsProcesses lists the processes whose mounts include an overlay with an upper directory
// under dir: exactly the processes living in the namespaces of a host whose directory is dir.
func nsProcesses(dir string) []int {
	needle := "upperdir=" + filepath.Clean(dir) + "/"
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "mountinfo"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), needle) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killAll sends SIGKILL to the given processes and waits (up to 20 s) until they are gone.
func killAll(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && running(pid) {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// The registry of live hosts lets a signal handler or a watchdog tear everything down.
var (
	liveMu sync.Mutex
	live   = map[*Host]bool{}
)

func register(h *Host) {
	liveMu.Lock()
	live[h] = true
	liveMu.Unlock()
}

func unregister(h *Host) {
	liveMu.Lock()
	delete(live, h)
	liveMu.Unlock()
}

// StopAll stops every host this process started and has not stopped yet.
func StopAll() {
	liveMu.Lock()
	hosts := make([]*Host, 0, len(live))
	for h := range live {
		hosts = append(hosts, h)
	}
	liveMu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.Stop()
		}()
	}
	wg.Wait()
}

// StopOnSignal makes SIGINT, SIGTERM and SIGHUP stop every live host, then exit with status 130.
// before, if not nil, runs first (to say what is happening).
func StopOnSignal(before func(os.Signal)) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-ch
		if before != nil {
			before(sig)
		}
		go func() {
			// A second signal while tearing down exits at once.
			<-ch
			os.Exit(130)
		}()
		StopAll()
		os.Exit(130)
	}()
}

// SweepStale kills what an earlier, killed run left behind: for every run directory under outRoot
// whose owner process is gone, the processes still living in that run's host namespaces, and the
// loop devices over its files (a multipath guest's LUN).
func SweepStale(outRoot string, logf func(string, ...any)) {
	runs, err := filepath.Glob(filepath.Join(outRoot, "*", "owner"))
	if err != nil {
		return
	}
	for _, ownerFile := range runs {
		runDir := filepath.Dir(ownerFile)
		b, err := os.ReadFile(ownerFile)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && (pid == os.Getpid() || running(pid)) {
			continue
		}
		if pids := nsProcesses(runDir); len(pids) > 0 {
			if logf != nil {
				logf("sweeping %d processes left by an earlier run in %s", len(pids), runDir)
			}
			killAll(pids)
		}
		for _, dev := range loopsUnder("/sys", runDir) {
			if logf != nil {
				logf("detaching %s, left by an earlier run in %s", dev, runDir)
			}
			if err := (&LUN{Dev: dev}).Close(); err != nil && logf != nil {
				logf("%v", err)
			}
		}
		_ = os.Remove(ownerFile)
	}
}

// ClaimRunDir creates dir and records this process as its owner (for SweepStale).
func ClaimRunDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "owner"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}
