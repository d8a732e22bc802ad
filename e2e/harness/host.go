package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Host is one private libvirt host: libvirtd and virtlogd in their own mount, UTS and network
// namespaces, with private copies of libvirt's directories and of virt-failover's policy and state
// directories, all kept under Dir:
//
//	Dir/etc/libvirt          -> /etc/libvirt   (hooks/qemu is the hook under test)
//	Dir/etc/virt-failover    -> /etc/virt-failover (policy.toml)
//	Dir/run/libvirt          -> /run/libvirt   (libvirt-sock: the socket clients use)
//	Dir/var/lib/libvirt      -> /var/lib/libvirt
//	Dir/var/lib/virt-failover-> /var/lib/virt-failover
//	Dir/var/log/libvirt      -> /var/log/libvirt (libvirtd.log, qemu/DOM.log, virt-failover.log)
//	Dir/var/cache/libvirt    -> /var/cache/libvirt
//
// Mount points that do not exist on the machine (/run/libvirt, /etc/virt-failover,
// /var/lib/virt-failover) are made inside overlays over /etc, /run and /var/lib whose upper
// directories are under Dir/.ovl, so nothing is created outside Dir. /usr is an overlay too, and
// /run/systemd an empty tmpfs: a package installed inside the namespaces (InstallDeb) writes its
// files, its dpkg database entries (/var/lib/dpkg) and its conffiles into Dir/.ovl only, and its
// maintainer scripts find no systemd to talk to.
type Host struct {
	Name   string // short name, also the UTS hostname suffix: "a", "b"
	Dir    string
	MigIP  string // address on the migration link, like 192.0.2.1
	UUID   string // host_uuid in libvirtd.conf
	logf   func(string, ...any)
	hook   string
	deb    string
	holder *exec.Cmd
	hold   *os.File // the holder's stdin; closing it ends the holder

	mu       sync.Mutex
	kvm      bool // libvirt offers KVM guests (its capabilities, read by Start)
	libvirtd *daemon
	virtlogd *daemon
	stopped  bool
}

// HostConfig describes a host to start.
type HostConfig struct {
	Name  string
	Dir   string
	MigIP string
	UUID  string
	Hook  string // executable installed as /etc/libvirt/hooks/qemu (copied); empty: no hook
	// Deb, when set instead of Hook, is a virt-failover .deb that dpkg installs inside the host's
	// namespaces before the daemons start (InstallDeb): its postinst links the hook.
	Deb  string
	Logf func(string, ...any)
}

// daemonEnv is the environment libvirtd, virtlogd and therefore the hook run with.
var daemonEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LC_ALL=C",
}

// NewHost prepares the directories of a host and enters its namespaces; Start starts the daemons.
func NewHost(ctx context.Context, cfg HostConfig) (*Host, error) {
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	for _, sys := range []string{"/etc", "/run", "/var/lib"} {
		if dir == sys || strings.HasPrefix(dir, sys+"/") {
			return nil, fmt.Errorf("host dir %s must not be under %s (the host overlays it)", dir, sys)
		}
	}
	if strings.ContainsAny(dir, ",:' \t\n") {
		return nil, fmt.Errorf("host dir %q: no commas, colons, quotes or blanks please (mount options)", dir)
	}
	if n := len(dir + "/run/libvirt/libvirt-sock"); n > 100 {
		return nil, fmt.Errorf("host dir %s: socket path would be %d bytes, the limit is 107", dir, n)
	}
	if cfg.Hook != "" && cfg.Deb != "" {
		return nil, errors.New("a host takes a hook or a package, not both")
	}
	h := &Host{Name: cfg.Name, Dir: dir, MigIP: cfg.MigIP, UUID: cfg.UUID, logf: cfg.Logf, hook: cfg.Hook, deb: cfg.Deb}
	if h.logf == nil {
		h.logf = func(string, ...any) {}
	}
	if err := h.prepareDirs(); err != nil {
		return nil, err
	}
	if err := h.enter(ctx); err != nil {
		h.Stop()
		return nil, err
	}
	if h.deb != "" {
		start := time.Now()
		out, err := h.InstallDeb(ctx, h.deb)
		if err != nil {
			h.Stop()
			return nil, err
		}
		h.logf("host %s: dpkg -i %s (%.1fs):\n%s", h.Name, filepath.Base(h.deb), time.Since(start).Seconds(), out)
	}
	return h, nil
}

// URI is the libvirt URI of the host for clients in the root namespace.
func (h *Host) URI() string { return "qemu:///system?socket=" + h.Socket() }

// P2PURI is the URI another host's libvirtd uses for peer-to-peer migration to this host.
func (h *Host) P2PURI() string { return "qemu+unix:///system?socket=" + h.Socket() }

// Socket is the path of libvirtd's read-write socket.
func (h *Host) Socket() string { return filepath.Join(h.Dir, "run/libvirt/libvirt-sock") }

// Path maps a path inside the host's namespace (like /var/log/libvirt/qemu/x.log) to the real path.
func (h *Host) Path(nsPath string) string {
	for _, p := range []string{"/etc/libvirt", "/etc/virt-failover", "/run/libvirt", "/var/lib/libvirt",
		"/var/lib/virt-failover", "/var/log/libvirt", "/var/cache/libvirt"} {
		if nsPath == p || strings.HasPrefix(nsPath, p+"/") {
			return filepath.Join(h.Dir, nsPath)
		}
	}
	return nsPath
}

// HookLogPath is the real path of the hook's log (the default [log] file).
func (h *Host) HookLogPath() string { return h.Path("/var/log/libvirt/virt-failover.log") }

// DaemonLogPath is libvirtd's log file (with the QEMU monitor traffic).
func (h *Host) DaemonLogPath() string { return h.Path("/var/log/libvirt/libvirtd.log") }

// DomainLogPath is the QEMU log of a domain (command line, taint messages).
func (h *Host) DomainLogPath(dom string) string {
	return h.Path("/var/log/libvirt/qemu/" + dom + ".log")
}

// PolicyPath is the real path of /etc/virt-failover/policy.toml.
func (h *Host) PolicyPath() string { return h.Path("/etc/virt-failover/policy.toml") }

func (h *Host) prepareDirs() error {
	for _, d := range []string{
		"etc/libvirt/hooks", "etc/libvirt/qemu/networks/autostart", "etc/libvirt/qemu/autostart",
		"etc/libvirt/nwfilter", "etc/virt-failover",
		"run/libvirt", "var/lib/libvirt/qemu", "var/lib/virt-failover",
		"var/log/libvirt/qemu", "var/cache/libvirt/qemu",
		".ovl/etc/upper", ".ovl/etc/work", ".ovl/run/upper", ".ovl/run/work",
		".ovl/varlib/upper", ".ovl/varlib/work", ".ovl/usr/upper", ".ovl/usr/work",
	} {
		if err := os.MkdirAll(filepath.Join(h.Dir, d), 0o755); err != nil {
			return err
		}
	}
	// The machine's client and lock-manager configuration, and its nwfilters; not its domains
	// or networks (the default network would autostart).
	for _, glob := range []string{"/etc/libvirt/*.conf", "/etc/libvirt/nwfilter/*.xml"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			switch filepath.Base(f) {
			case "libvirtd.conf", "qemu.conf", "virtlogd.conf":
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(h.Dir, f), b, 0o600); err != nil {
				return err
			}
		}
	}
	files := map[string]string{
		"etc/libvirt/libvirtd.conf": fmt.Sprintf(`# private libvirtd of e2e host %s
host_uuid = "%s"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
# util.hook and util.command at debug: every hook call with its result and stderr (Host.HookRuns)
log_filters = "1:util.hook 1:util.command 2:qemu.qemu_monitor_json 2:qemu.qemu_migration 2:qemu.qemu_process 3:*"
`, h.Name, h.UUID),
		"etc/libvirt/qemu.conf": `# private QEMU driver configuration of an e2e host
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
`,
		"etc/libvirt/virtlogd.conf": `# no rotation: the e2e serial log is followed by offset
max_size = 1073741824
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(h.Dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if h.hook != "" {
		b, err := os.ReadFile(h.hook)
		if err != nil {
			return fmt.Errorf("hook: %w", err)
		}
		if err := os.WriteFile(filepath.Join(h.Dir, "etc/libvirt/hooks/qemu"), b, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(h.Dir, "etc/libvirt/hooks/qemu"), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// enter creates the namespaces (held by a process that lives until Stop) and the mounts.
func (h *Host) enter(ctx context.Context) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	// The holder reads its stdin until EOF: it ends when Stop closes the pipe or this process dies.
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--uts", "--net", "--",
		"sh", "-c", "cat >/dev/null")
	cmd.Stdin = r
	cmd.Env = daemonEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // a Ctrl-C is for the harness, not for it
	out, err := os.OpenFile(filepath.Join(h.Dir, "holder.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		out.Close()
		return fmt.Errorf("unshare: %w", err)
	}
	r.Close()
	h.holder, h.hold = cmd, w
	go func() {
		_ = cmd.Wait()
		out.Close()
	}()
	register(h)
	// unshare execs sh only after the namespaces exist; wait for that.
	selfNS, _ := os.Readlink("/proc/self/ns/net")
	for i := 0; ; i++ {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
		if err == nil && ns != selfNS {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(comm)) != "unshare" {
				break
			}
		}
		if i > 200 {
			return errors.New("unshare did not enter new namespaces")
		}
		time.Sleep(25 * time.Millisecond)
	}
	d := h.Dir
	script := fmt.Sprintf(`set -e
hostname vf-%[2]s
ip link set lo up
mount -t overlay vf-etc -o lowerdir=/etc,upperdir=%[1]s/.ovl/etc/upper,workdir=%[1]s/.ovl/etc/work /etc
mount -t overlay vf-run -o lowerdir=/run,upperdir=%[1]s/.ovl/run/upper,workdir=%[1]s/.ovl/run/work /run
mount -t overlay vf-varlib -o lowerdir=/var/lib,upperdir=%[1]s/.ovl/varlib/upper,workdir=%[1]s/.ovl/varlib/work /var/lib
mount -t overlay vf-usr -o lowerdir=/usr,upperdir=%[1]s/.ovl/usr/upper,workdir=%[1]s/.ovl/usr/work /usr
# The machine's systemd is not the host's: maintainer scripts must not talk to it.
if [ -d /run/systemd ]; then mount -t tmpfs vf-systemd /run/systemd; fi
mkdir -p /etc/virt-failover /run/libvirt /var/lib/virt-failover
for m in etc/libvirt etc/virt-failover run/libvirt var/lib/libvirt var/lib/virt-failover var/log/libvirt var/cache/libvirt; do
	mount --bind "%[1]s/$m" "/$m"
done
`, d, h.Name)
	if _, err := h.NS(ctx, "sh", "-c", script); err != nil {
		return fmt.Errorf("host %s: mounts: %w", h.Name, err)
	}
	return nil
}

// nsArgv prefixes argv with nsenter into the host's namespaces.
func (h *Host) nsArgv(argv ...string) []string {
	return append([]string{"nsenter", "-t", strconv.Itoa(h.holder.Process.Pid), "-m", "-u", "-n", "--"}, argv...)
}

// NS runs a command inside the host's namespaces and returns its stdout.
func (h *Host) NS(ctx context.Context, argv ...string) (string, error) {
	full := h.nsArgv(argv...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = daemonEnv
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("[%s] %s: %v: %s", h.Name, strings.Join(argv, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Start starts virtlogd and libvirtd and waits until libvirtd answers. It then reads whether
// libvirt offers KVM (Host.KVM); when it does not but /dev/kvm exists (KVMUnusable), it hides
// /dev/kvm in the host's namespace so that libvirt does not probe QEMU again at every call.
func (h *Host) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.virtlogd.alive() {
		d, err := startDaemon("virtlogd", filepath.Join(h.Dir, "virtlogd.out"), daemonEnv,
			h.nsArgv("virtlogd", "-p", "/run/libvirt/virtlogd.pid")...)
		if err != nil {
			return err
		}
		h.virtlogd = d
		if err := waitFile(ctx, filepath.Join(h.Dir, "run/libvirt/virtlogd-sock"), d); err != nil {
			return fmt.Errorf("host %s: virtlogd: %w (see %s/virtlogd.out)", h.Name, err, h.Dir)
		}
	}
	if err := h.startLibvirtd(ctx); err != nil {
		return err
	}
	caps, err := h.Virsh(ctx, "capabilities")
	if err != nil {
		return err
	}
	h.kvm = OffersKVM(caps)
	if h.kvm {
		return nil
	}
	if !KVMUnusable(caps) {
		h.logf("host %s: libvirt offers no KVM on this machine (no /dev/kvm)", h.Name)
		return nil
	}
	if err := h.hideKVM(ctx); err != nil {
		return fmt.Errorf("host %s: hiding the unusable /dev/kvm: %w", h.Name, err)
	}
	h.logf("host %s: libvirt offers no KVM on this machine although /dev/kvm exists: /dev/kvm hidden in the host's namespace", h.Name)
	return nil
}

// KVM reports whether libvirt offers KVM guests on the host, as it said when the host started.
func (h *Host) KVM() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.kvm
}

func (h *Host) startLibvirtd(ctx context.Context) error {
	_ = os.Remove(h.Socket())
	d, err := startDaemon("libvirtd", filepath.Join(h.Dir, "libvirtd.out"), daemonEnv,
		h.nsArgv("libvirtd", "-p", "/run/libvirt/libvirtd.pid")...)
	if err != nil {
		return err
	}
	h.libvirtd = d
	if err := waitFile(ctx, h.Socket(), d); err != nil {
		return fmt.Errorf("host %s: libvirtd: %w (see %s/libvirtd.out)", h.Name, err, h.Dir)
	}
	for {
		if _, err := h.Virsh(ctx, "version"); err == nil {
			return nil
		} else if ctx.Err() != nil || !d.alive() {
			return fmt.Errorf("host %s: libvirtd does not answer: %w", h.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// RestartDaemon stops libvirtd (SIGTERM; running domains keep running) and starts it again.
func (h *Host) RestartDaemon(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.libvirtd.stop(60 * time.Second)
	return h.startLibvirtd(ctx)
}

// ReviveLibvirtd starts libvirtd again when it ended by itself (a crash: the test never stops
// it but through RestartDaemon and Stop), and says how it had ended; "" when it was running. The
// domains it ran keep running: QEMU does not end with libvirtd, which reconnects to them.
func (h *Host) ReviveLibvirtd(ctx context.Context) (ended string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped || h.libvirtd == nil || h.libvirtd.alive() {
		return "", nil
	}
	ended = h.libvirtd.ended
	return ended, h.startLibvirtd(ctx)
}

// LibvirtdPID is the pid of the running libvirtd (0 if none).
func (h *Host) LibvirtdPID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.libvirtd.alive() {
		return 0
	}
	return h.libvirtd.cmd.Process.Pid
}

func waitFile(ctx context.Context, path string, d *daemon) error {
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if !d.alive() {
			return fmt.Errorf("%s exited before creating %s", d.name, path)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Virsh runs virsh against the host and returns its stdout; the error carries stderr.
func (h *Host) Virsh(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", h.URI()}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("[%s] virsh %s: %v: %s", h.Name, strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Migrate live-migrates dom from h to the host to, peer to peer, with the migration stream on the
// veth link. It returns virsh's combined output.
func (h *Host) Migrate(ctx context.Context, dom string, to *Host) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := []string{"-c", h.URI(), "migrate", "--live", "--p2p", dom, to.P2PURI(), "tcp://" + to.MigIP}
	cmd := exec.CommandContext(ctx, "virsh", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		// Do not leave a migration job behind.
		_, _ = h.Virsh(context.Background(), "domjobabort", dom)
	}
	return string(out), err
}

// DomState returns virsh domstate of dom ("running", "paused", ...), or "" if the host has no
// such domain.
func (h *Host) DomState(ctx context.Context, dom string) (string, error) {
	out, err := h.Virsh(ctx, "domstate", dom)
	if err != nil {
		if strings.Contains(err.Error(), "failed to get domain") || strings.Contains(err.Error(), "Domain not found") {
			return "", nil
		}
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// WritePolicy replaces /etc/virt-failover/policy.toml (the hook reads it on every call).
func (h *Host) WritePolicy(toml string) error {
	path := h.PolicyPath()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(toml), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Stop destroys the host's domains, stops its daemons, ends every process left in its namespaces
// (QEMU included) and with them the namespaces and mounts. It is safe to call more than once.
func (h *Host) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	h.stopped = true
	if h.libvirtd.alive() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		if out, err := h.Virsh(ctx, "list", "--name"); err == nil {
			for _, dom := range strings.Fields(out) {
				if _, err := h.Virsh(ctx, "destroy", dom); err != nil {
					h.logf("host %s: %v", h.Name, err)
				}
			}
		}
		cancel()
	}
	h.libvirtd.stop(30 * time.Second)
	h.virtlogd.stop(10 * time.Second)
	if h.holder != nil {
		// Whatever else lives in the namespaces (QEMU, a stuck hook): end it by pid.
		killAll(nsProcesses(h.Dir))
		h.hold.Close()
		killAll([]int{h.holder.Process.Pid})
	}
	unregister(h)
}

// MigrateWith live-migrates dom from h to the host to, peer to peer, like Migrate, with more virsh
// migrate options (like --persistent). It returns virsh's combined output.
func (h *Host) MigrateWith(ctx context.Context, dom string, to *Host, extra ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := append([]string{"-c", h.URI(), "migrate", "--live", "--p2p"}, extra...)
	args = append(args, dom, to.P2PURI(), "tcp://"+to.MigIP)
	cmd := exec.CommandContext(ctx, "virsh", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		_, _ = h.Virsh(context.Background(), "domjobabort", dom)
	}
	return string(out), err
}

// BootXML starts a transient domain from its definition on h and waits until the serial log's
// heartbeat shows the failover master with the primary enslaved.
func (h *Host) BootXML(ctx context.Context, name string, def []byte, serial *Serial) (Heartbeat, error) {
	return h.bootXML(ctx, name, def, serial, "heartbeat with the primary enslaved to the failover master", Heartbeat.PrimaryEnslaved)
}

func (h *Host) bootXML(ctx context.Context, name string, def []byte, serial *Serial, what string, ready func(Heartbeat) bool) (Heartbeat, error) {
	path := filepath.Join(h.Dir, name+".xml")
	if err := os.WriteFile(path, def, 0o644); err != nil {
		return Heartbeat{}, err
	}
	return h.startWaiting(ctx, name, serial, what, ready, "create", path)
}

// startWaiting starts a guest with virsh args, then waits until its heartbeat satisfies ready.
func (h *Host) startWaiting(ctx context.Context, name string, serial *Serial, what string, ready func(Heartbeat) bool, args ...string) (Heartbeat, error) {
	mark := serial.Len()
	if _, err := h.Virsh(ctx, args...); err != nil {
		return Heartbeat{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	hb, err := serial.WaitHeartbeat(ctx, mark, what, ready)
	if err != nil {
		return hb, fmt.Errorf("booting %s on %s: %w", name, h.Name, err)
	}
	return hb, nil
}

// StateDir is the real path of the host's /var/lib/virt-failover, where its claims are.
func (h *Host) StateDir() string { return h.Path("/var/lib/virt-failover") }
