package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/virt-failover/virt-failover/policy"
)

// The replug worker (docs/metadata.md#parked): when a domain starts or arrives on this host with
// devices the orchestrator parked for a migration, something must plug them back once the guest
// runs. The hook cannot: libvirt holds the domain's job while it runs, and waits for it
// (docs/failover.md#hook-protocol). So at started it starts a worker and returns at once:
//
//	virt-failover replug --connect URI [--root DIR] [--] DOMAIN
//
// URI is [orchestrate] connect; --root names the tree of a hook installed in one (its policy, log
// and claims); "--" comes before a domain name that starts with '-'. The worker is fully detached:
// its own session (setsid), no controlling terminal, stdin, stdout and stderr on /dev/null, no
// other descriptor of the hook (those include libvirt's pipes, which libvirt reads until every
// holder closes them), working directory /, the hook's environment. Nobody waits for it. It
// connects to libvirt after the hook has returned, plugs the parked devices back and clears their
// records; it logs its own progress.

// decideStarted starts the replug worker when the domain has devices parked for a migration and
// [orchestrate] replug is auto.
func decideStarted(r *run) outcome {
	// Most domains have nothing parked: they cost the hook no parse at started.
	if r.pol.Orchestrate.Replug != policy.ReplugAuto || !bytes.Contains(r.input, []byte("parked")) {
		return outcome{decision: Pass}
	}
	doc, err := r.document()
	if err != nil {
		return errorOutcome("domain definition on stdin", err)
	}
	var parked []string
	for _, pk := range policy.NewDomain(doc).Parked {
		if pk.Reason == policy.ParkedForMigration {
			parked = append(parked, pk.Alias)
		}
	}
	if len(parked) == 0 {
		return outcome{decision: Pass}
	}
	path, argv, err := r.workerCommand()
	if err != nil {
		return errorOutcome("replug worker", err)
	}
	what := fmt.Sprintf("replug worker for parked %s: %s", strings.Join(parked, ", "), strings.Join(argv, " "))
	if r.opts.DryRun {
		return outcome{decision: Pass, actions: []string{"would start the " + what}}
	}
	pid, err := spawnDetached(path, argv)
	if err != nil {
		return errorOutcome("replug worker", err)
	}
	return outcome{decision: Pass, worker: pid, actions: []string{fmt.Sprintf("started the %s (pid %d)", what, pid)}}
}

// workerCommand is the program to run and its argv: Options.Worker with the worker's arguments,
// or this executable under the command line's name.
func (r *run) workerCommand() (string, []string, error) {
	var path string
	var argv []string
	if len(r.opts.Worker) > 0 {
		path, argv = r.opts.Worker[0], append([]string(nil), r.opts.Worker...)
	} else {
		exe, err := os.Executable()
		if err != nil {
			return "", nil, fmt.Errorf("finding this executable: %w", err)
		}
		// Not the hook's name: under .../hooks/qemu the binary would be the hook again.
		path, argv = exe, []string{"virt-failover"}
	}
	argv = append(argv, "replug", "--connect", r.pol.Orchestrate.Connect)
	if !r.opts.Paths.System() {
		argv = append(argv, "--root", r.opts.Paths.Root)
	}
	if strings.HasPrefix(r.inv.Object, "-") {
		argv = append(argv, "--")
	}
	return path, append(argv, r.inv.Object), nil
}

// spawnDetached starts path with argv fully detached (see above) and returns its pid without
// waiting for it.
func spawnDetached(path string, argv []string) (int, error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	// Every descriptor beyond 0-2 is closed at the exec: the runtime opens its own close-on-exec,
	// but the hook inherits others from libvirt.
	if err := closeOnExecFrom(3); err != nil {
		return 0, fmt.Errorf("keeping the hook's descriptors from the worker: %w", err)
	}
	p, err := os.StartProcess(path, argv, &os.ProcAttr{
		Dir:   "/",
		Env:   os.Environ(),
		Files: []*os.File{null, null, null},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return 0, err
	}
	pid := p.Pid
	_ = p.Release() // not waited for: it outlives the hook, and init reaps it
	return pid, nil
}

// closeOnExecFrom marks every open descriptor from fd on close-on-exec: in one close_range call
// (Linux 5.11 and later), else one by one from /proc/self/fd.
func closeOnExecFrom(fd int) error {
	err := unix.CloseRange(uint(fd), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil || !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return closeOnExecListed(fd)
}

// closeOnExecListed marks the descriptors /proc/self/fd lists from fd on close-on-exec.
func closeOnExecListed(fd int) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n < fd {
			continue
		}
		// The directory's own descriptor is gone by now: EBADF is no error here.
		if _, err := unix.FcntlInt(uintptr(n), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return err
		}
	}
	return nil
}
