package hooks

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virt-failover/virt-failover/internal/hostpaths"
	"github.com/virt-failover/virt-failover/policy"
)

// parkedDomain is a domain that arrived with a device the orchestrator parked for its migration
// (and, when switch, a second one parked for a switch).
func parkedDomain(reasons ...string) []byte {
	var recs strings.Builder
	for i, r := range reasons {
		alias := "ua-pri" + strconv.Itoa(i)
		recs.WriteString(`      <vfo:parked alias="` + alias + `" kind="bond" reason="` + r + `" since="2026-12-01T00:00:00Z">
        <vfo:interface type="network"><vfo:source network="lan"/><vfo:model type="e1000e"/><vfo:alias name="` + alias + `"/></vfo:interface>
      </vfo:parked>
`)
	}
	return []byte(`<domain type='qemu'>
  <name>web-01</name>
  <metadata>
    <vfo:failover xmlns:vfo="http://virt-failover.org/xmlns/domain/1.0">
` + recs.String() + `    </vfo:failover>
  </metadata>
  <devices>
    <interface type='network'><source network='lan'/><model type='virtio'/><alias name='ua-sby0'/></interface>
  </devices>
</domain>
`)
}

// standInWorker writes a worker stand-in: it records its arguments next to itself, then becomes a
// sleep (same pid) for seconds.
func standInWorker(t *testing.T, seconds int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "worker")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\nexec sleep " + strconv.Itoa(seconds) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func (e *env) runWith(op, subop string, stdin []byte, opts Options) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	opts.PolicyPath, opts.LogFile = e.policy, e.log
	opts.Stdin, opts.Stdout, opts.Stderr, opts.Timeout = bytes.NewReader(stdin), &out, &errb, 30*time.Second
	code := Run(Invocation{"qemu", "web-01", op, subop, "-"}, opts)
	return result{code, out.String(), errb.String()}
}

// At started, a domain with a device parked for its migration gets a replug worker: the hook
// returns at once while the worker runs on; the worker is in a session of its own, holds
// /dev/null as stdin, stdout and stderr and no other descriptor of the hook (the test holds a pipe
// without close-on-exec, as libvirt hands the hook its own), and gets the worker's arguments; the
// log line names its pid.
func TestStartedStartsADetachedReplugWorker(t *testing.T) {
	var pipe [2]int
	if err := syscall.Pipe(pipe[:]); err != nil { // no close-on-exec: an inherited descriptor
		t.Fatal(err)
	}
	defer syscall.Close(pipe[0])
	defer syscall.Close(pipe[1])

	e := newEnv(t, "[orchestrate]\nconnect = \"qemu:///system?socket=/run/libvirt/virtqemud-sock\"\n")
	worker := standInWorker(t, 30)
	start := time.Now()
	r := e.runWith("started", "begin", parkedDomain("migration"), Options{Worker: []string{worker}})
	took := time.Since(start)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("started: %+v", r)
	}
	rec := e.last()
	pid := rec.WorkerPID
	if pid <= 0 || rec.Decision != Pass || len(rec.Actions) != 1 || !strings.Contains(rec.Actions[0], "replug worker for parked ua-pri0") {
		t.Fatalf("log line %+v", rec)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil) // the test process is its parent: reap it
	})
	if took > 5*time.Second {
		t.Errorf("the hook took %s: it waited for the worker", took)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the worker is gone when the hook returns: %v", err)
	}

	// Once it is the sleep, its descriptors and session are what it runs with.
	deadline := time.Now().Add(10 * time.Second)
	for {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker stand-in never ran its sleep (comm %q)", comm)
		}
		time.Sleep(20 * time.Millisecond)
	}
	args, err := os.ReadFile(worker + ".args")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(args), "replug\n--connect\nqemu:///system?socket=/run/libvirt/virtqemud-sock\nweb-01\n"; got != want {
		t.Errorf("the worker's arguments:\n%s\nwant:\n%s", got, want)
	}
	// sleep's own loader opens and closes its libraries right after the exec (a descriptor 3
	// for a moment): what the worker runs with is what stays.
	want := []string{"0 -> /dev/null", "1 -> /dev/null", "2 -> /dev/null"}
	var fds []string
	for fdDeadline := time.Now().Add(5 * time.Second); ; {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		if err != nil {
			t.Fatal(err)
		}
		fds = fds[:0]
		for _, e := range ents {
			target, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + e.Name())
			fds = append(fds, e.Name()+" -> "+target)
		}
		if slices.Equal(fds, want) || time.Now().After(fdDeadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !slices.Equal(fds, want) {
		t.Errorf("the worker's descriptors: %q, want %q", fds, want)
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid pgrp session tty_nr ...: after the command name's closing parenthesis.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if f[2] != strconv.Itoa(pid) || f[3] != strconv.Itoa(pid) || f[4] != "0" {
		t.Errorf("the worker's process group %s, session %s, tty %s; want its own session (%d) without a terminal", f[2], f[3], f[4], pid)
	}
	if cwd, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); cwd != "/" {
		t.Errorf("the worker's working directory is %q", cwd)
	}
}

// No worker without a device parked for a migration, with replug = "off", and in a dry run (which
// says what it would start).
func TestStartedStartsNoWorker(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		dom          []byte
		dry          bool
	}{
		{"nothing-parked", "", parkedDomain(), false},
		{"parked-for-a-switch", "", parkedDomain("switch"), false},
		{"replug-off", "[orchestrate]\nreplug = \"off\"\n", parkedDomain("migration"), false},
		{"dry-run", "", parkedDomain("switch", "migration"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.policy)
			worker := standInWorker(t, 0)
			r := e.runWith("started", "begin", tc.dom, Options{Worker: []string{worker}, DryRun: tc.dry})
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("started: %+v", r)
			}
			time.Sleep(100 * time.Millisecond)
			if _, err := os.Stat(worker + ".args"); err == nil {
				t.Fatal("a worker ran")
			}
			if tc.dry {
				if want := "dry run: would start the replug worker for parked ua-pri1: " + worker + " replug --connect qemu:///system web-01\n"; !strings.HasPrefix(r.stdout, want) {
					t.Errorf("dry run printed:\n%s\nwant it to start with:\n%s", r.stdout, want)
				}
				return
			}
			if rec := e.last(); rec.WorkerPID != 0 || len(rec.Actions) != 0 || rec.Decision != Pass {
				t.Errorf("log line %+v", rec)
			}
		})
	}
}

// The worker's command line: this executable under the command line's name, the policy's URI,
// the tree of a hook installed in one, and "--" before a name a parser would take for an option.
func TestWorkerCommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		root, dom string
		want      []string
	}{
		{"", "web-01", []string{"virt-failover", "replug", "--connect", "qemu+tcp://h/system", "web-01"}},
		{"/srv/host-b", "web-01", []string{"virt-failover", "replug", "--connect", "qemu+tcp://h/system", "--root", "/srv/host-b", "web-01"}},
		{"", "-x", []string{"virt-failover", "replug", "--connect", "qemu+tcp://h/system", "--", "-x"}},
	} {
		r := &run{inv: Invocation{Object: tc.dom}, opts: Options{Paths: hostpaths.Paths{Root: tc.root}}, pol: mustPolicy(t, "[orchestrate]\nconnect = \"qemu+tcp://h/system\"\n")}
		path, argv, err := r.workerCommand()
		if err != nil || path != exe || !slices.Equal(argv, tc.want) {
			t.Errorf("root %q, domain %q: %s %q (%v), want %s %q", tc.root, tc.dom, path, argv, err, exe, tc.want)
		}
	}
}

func mustPolicy(t *testing.T, body string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("policy.toml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Where the kernel has no close_range, the descriptors /proc/self/fd lists are marked one by one.
func TestCloseOnExecListed(t *testing.T) {
	var pipe [2]int
	if err := syscall.Pipe(pipe[:]); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(pipe[0])
	defer syscall.Close(pipe[1])
	for _, fd := range pipe {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
			t.Fatalf("fd %d: flags %d, %v: want a descriptor without close-on-exec to start with", fd, flags, err)
		}
	}
	if err := closeOnExecListed(3); err != nil {
		t.Fatal(err)
	}
	for _, fd := range pipe {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
			t.Errorf("fd %d: flags %d, %v: not close-on-exec", fd, flags, err)
		}
	}
}

// A guest arriving with its emulated bond primary parked (docs/metadata.md#parked): migrate begin
// claims a network of the pool for it and writes the claim into its record, prepare confirms the
// claim, started starts the replug worker, release frees the claim.
func TestParkedDeviceThroughTheHook(t *testing.T) {
	pe := newPoolEnv(t, "[pools.fabric]\nnetworks = [\"fabric-b1\"]\n")
	worker := standInWorker(t, 0)
	in := []byte(`<domain type='kvm'>
  <name>web-02</name>
  <uuid>` + uuidWeb + `</uuid>
  <metadata>
    <vfo:failover xmlns:vfo="http://virt-failover.org/xmlns/domain/1.0" version="v0.1.0">
      <vfo:pair kind="bond" standby="ua-sby0" primary="ua-pri0" mac="52:54:00:6d:90:02" pool="fabric" emulated="yes"/>
      <vfo:parked alias="ua-pri0" kind="bond" reason="migration" pool="fabric" since="2026-11-28T09:59:00Z">
        <vfo:interface type="network">
          <vfo:mac address="52:54:00:6d:90:02"/>
          <vfo:source network="fabric-a1"/>
          <vfo:model type="e1000e"/>
          <vfo:alias name="ua-pri0"/>
        </vfo:interface>
      </vfo:parked>
    </vfo:failover>
  </metadata>
  <devices>
    <interface type='network'><mac address='52:54:00:6d:90:02'/><source network='lan'/><model type='virtio'/><alias name='ua-sby0'/></interface>
  </devices>
</domain>
`)
	run := func(op, subop string, stdin []byte) result {
		t.Helper()
		var out, errb bytes.Buffer
		code := Run(Invocation{"qemu", "web-02", op, subop, "-"}, Options{
			PolicyPath: pe.policy, LogFile: pe.log, Stdin: bytes.NewReader(stdin), Stdout: &out, Stderr: &errb,
			Timeout: 30 * time.Second, Paths: hostpaths.Paths{Root: pe.root}, VFMAC: pe.mac,
			Now: func() time.Time { return pe.now }, Hostname: "vf-b", Worker: []string{worker},
		})
		return result{code, out.String(), errb.String()}
	}
	r := run("migrate", "begin", in)
	want := strings.NewReplacer(`network="fabric-a1"`, `network="fabric-b1"`,
		`since="2026-11-28T09:59:00Z">`, `since="2026-11-28T09:59:00Z" host="vf-b">`).Replace(string(in))
	if r.code != 0 || r.stdout != want {
		t.Fatalf("migrate begin: code %d, stderr %q, output:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
	}
	rec := pe.last()
	if rec.Decision != Rewrite || len(rec.Claims) != 1 || rec.Claims[0] != "fabric: fabric-b1 for web-02 ua-pri0 (pending)" ||
		!slices.Contains(rec.Changes, "parked interface ua-pri0: source network 'fabric-a1' -> 'fabric-b1' (pool fabric)") {
		t.Fatalf("log line %+v", rec)
	}
	if r := run("prepare", "begin", []byte(want)); r.code != 0 || pe.last().Claims[0] != "fabric: fabric-b1 for web-02 ua-pri0 (confirmed)" {
		t.Fatalf("prepare: %+v, log %+v", r, pe.last())
	}
	if r := run("started", "begin", []byte(want)); r.code != 0 || pe.last().WorkerPID == 0 {
		t.Fatalf("started: %+v, log %+v", r, pe.last())
	}
	reap(t, pe.last().WorkerPID)
	if r := run("release", "end", []byte(want)); r.code != 0 || len(pe.claims()) != 0 {
		t.Fatalf("release: %+v, claims %+v", r, pe.claims())
	}
}

// reap waits for a worker the test process started (its parent until the test ends).
func reap(t *testing.T, pid int) {
	t.Helper()
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Errorf("waiting for the worker %d: %v", pid, err)
	}
}
