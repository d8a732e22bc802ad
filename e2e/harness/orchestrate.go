package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// The pool the orchestrated bonded guest's primary draws its network from, and its networks on
// each host: all over the guest bridge, so the guest keeps its gateway whichever it is on.
const FabricPool = "fabric"

// FabricNetworks are pool FabricPool's networks per host name.
var FabricNetworks = map[string][]string{"a": {"fabric-a1", "fabric-a2"}, "b": {"fabric-b1"}}

// DefineFabric defines and starts the host's networks of FabricPool.
func (h *Host) DefineFabric(ctx context.Context) error {
	for _, n := range FabricNetworks[h.Name] {
		if err := h.DefineNetwork(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// OrchestrationPolicy is a host's policy for orchestrated migrations: pool FabricPool with the
// host's networks, the claims and the hook's log at the host's real paths (commands run outside
// its namespaces see what its hook sees inside), and [orchestrate] connect naming the host's own
// socket, for the replug worker its hook starts. hostKeys are lines of its [host] table, like
// `default_pool = "fabric"` or `accept_incoming = false`.
func (h *Host) OrchestrationPolicy(hostKeys ...string) string {
	var nets []string
	for _, n := range FabricNetworks[h.Name] {
		nets = append(nets, fmt.Sprintf("%q", n))
	}
	var b strings.Builder
	if len(hostKeys) > 0 {
		fmt.Fprintf(&b, "[host]\n%s\n", strings.Join(hostKeys, "\n"))
	}
	fmt.Fprintf(&b, "[pools.%s]\nnetworks = [%s]\n", FabricPool, strings.Join(nets, ", "))
	fmt.Fprintf(&b, "[state]\ndir = %q\n[log]\nfile = %q\n", h.StateDir(), h.HookLogPath())
	fmt.Fprintf(&b, "[orchestrate]\nconnect = %q\n", h.URI())
	return b.String()
}

// HostArgs are the options that point a virt-failover command run outside the host's namespaces
// at the host's tree and policy.
func (h *Host) HostArgs() []string { return []string{"--root", h.Dir, "--policy", h.PolicyPath()} }

// MigrateArgs are the arguments of "virt-failover migrate" of dom from one host to the other, as
// an operator runs it outside both: DEST-URI is the destination as the source's libvirtd reaches
// it (peer to peer), --connect and --dest-connect this command's own way to each daemon,
// --migrate-uri the migration link, and --root and --policy the source's tree and policy.
func MigrateArgs(dom string, from, to *Host, extra ...string) []string {
	args := []string{"migrate", dom, to.P2PURI(), "--connect", from.URI(), "--dest-connect", to.URI(),
		"--migrate-uri", "tcp://" + to.MigIP}
	return append(append(args, from.HostArgs()...), extra...)
}

// OrchestratedBondXML is the bonded guest g paired for the orchestrator as an operator pairs it:
// its definition with the virtio NIC alone, then "virt-failover pair --bond --emulated-primary
// --pool POOL" adds the e1000e bond primary (alias BondPrimary, the standby's MAC) and the
// kind='bond' record with emulated='yes'; the primary is then put on network, a network of the pool.
func OrchestratedBondXML(bin string, g Guest, pool, network string) ([]byte, error) {
	if !g.Bond {
		return nil, errors.New("OrchestratedBondXML: not the bonded guest")
	}
	plain, err := g.PlainXML()
	if err != nil {
		return nil, err
	}
	doc, err := xmlxform.Parse(plain)
	if err != nil {
		return nil, err
	}
	t := xmlxform.NewTransform(doc)
	d := policy.NewDomain(doc)
	pri := d.NICByAlias(BondPrimary)
	if pri == nil {
		return nil, fmt.Errorf("the bonded guest's definition has no %s", BondPrimary)
	}
	t.Remove(pri.El)
	one, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	paired, err := RunPair(bin, one, "--bond", "--emulated-primary", "--pool", pool)
	if err != nil {
		return nil, err
	}
	if doc, err = xmlxform.Parse(paired); err != nil {
		return nil, err
	}
	d = policy.NewDomain(doc)
	if pri = d.NICByAlias(BondPrimary); pri == nil || pri.El.Child("source") == nil {
		return nil, fmt.Errorf("pair --bond --emulated-primary made no primary %s:\n%s", BondPrimary, paired)
	}
	t = xmlxform.NewTransform(doc)
	t.SetAttr(pri.El.Child("source"), "network", network)
	return t.Bytes()
}

// DefineAndStart defines a persistent domain on h from its definition and starts it, then waits
// until the guest's heartbeat satisfies ready.
func (h *Host) DefineAndStart(ctx context.Context, name string, def []byte, serial *Serial, what string, ready func(Heartbeat) bool) (Heartbeat, error) {
	path := filepath.Join(h.Dir, name+".xml")
	if err := os.WriteFile(path, def, 0o644); err != nil {
		return Heartbeat{}, err
	}
	if _, err := h.Virsh(ctx, "define", path); err != nil {
		return Heartbeat{}, err
	}
	return h.startWaiting(ctx, name, serial, what, ready, "start", name)
}

// Command is a command (virt-failover, as an operator runs it outside the hosts' namespaces) with
// both of its output streams followed line by line, each line with the time it was read.
type Command struct {
	Bin     string
	Args    []string
	Started time.Time

	cmd   *exec.Cmd
	done  chan struct{}
	err   error     // of Wait, once done is closed
	ended time.Time // once done is closed

	mu      sync.Mutex
	lines   []OutputLine
	changed chan struct{} // closed and replaced at every new line
}

// OutputLine is one line a command printed.
type OutputLine struct {
	Stderr bool
	Text   string
	At     time.Time
}

func (l OutputLine) String() string {
	if l.Stderr {
		return "stderr: " + l.Text
	}
	return l.Text
}

// StartCommand starts bin with args and follows its output; ctx ending kills it.
func StartCommand(ctx context.Context, bin string, args ...string) (*Command, error) {
	c := &Command{Bin: bin, Args: args, done: make(chan struct{}), changed: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, bin, args...)
	c.cmd.Env = append(os.Environ(), "LC_ALL=C")
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	c.Started = time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for _, s := range []struct {
		r   io.Reader
		err bool
	}{{stdout, false}, {stderr, true}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(s.r)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				c.add(OutputLine{Stderr: s.err, Text: sc.Text(), At: time.Now()})
			}
		}()
	}
	go func() {
		wg.Wait() // the pipes are read to their end before Wait closes them
		c.err = c.cmd.Wait()
		c.ended = time.Now()
		close(c.done)
		c.mu.Lock()
		close(c.changed)
		c.mu.Unlock()
	}()
	return c, nil
}

// RunCommand runs bin with args to its end.
func RunCommand(ctx context.Context, bin string, args ...string) (*Command, error) {
	c, err := StartCommand(ctx, bin, args...)
	if err != nil {
		return nil, err
	}
	<-c.done
	return c, nil
}

func (c *Command) add(l OutputLine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, l)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Lines returns the lines printed so far, in the order they were read.
func (c *Command) Lines() []OutputLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]OutputLine(nil), c.lines...)
}

// Stdout and Stderr are what the command printed on each stream so far, a line per line.
func (c *Command) Stdout() string { return c.text(false) }

// Stderr is what the command printed on stderr so far.
func (c *Command) Stderr() string { return c.text(true) }

func (c *Command) text(stderr bool) string {
	var b strings.Builder
	for _, l := range c.Lines() {
		if l.Stderr == stderr {
			b.WriteString(l.Text + "\n")
		}
	}
	return b.String()
}

// Output is everything the command printed so far, both streams in the order read.
func (c *Command) Output() string {
	var b strings.Builder
	for _, l := range c.Lines() {
		b.WriteString(l.String() + "\n")
	}
	return b.String()
}

// WaitLine waits for a line matching re (either stream) and returns it and its index in Lines.
// It fails when the command ends without printing one.
func (c *Command) WaitLine(ctx context.Context, re *regexp.Regexp) (int, OutputLine, error) {
	for from := 0; ; {
		c.mu.Lock()
		lines, changed := c.lines, c.changed
		c.mu.Unlock()
		for i := from; i < len(lines); i++ {
			if re.MatchString(lines[i].Text) {
				return i, lines[i], nil
			}
		}
		from = len(lines)
		select {
		case <-changed:
			if c.Exited() && from == len(c.Lines()) {
				return -1, OutputLine{}, fmt.Errorf("%s ended (%v) without a line matching %q:\n%s", c, c.err, re, c.Output())
			}
		case <-ctx.Done():
			return -1, OutputLine{}, fmt.Errorf("%s: no line matching %q: %w:\n%s", c, re, ctx.Err(), c.Output())
		}
	}
}

// Exited reports whether the command has ended.
func (c *Command) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Ended is when the command ended (the zero time while it runs).
func (c *Command) Ended() time.Time {
	if !c.Exited() {
		return time.Time{}
	}
	return c.ended
}

// Kill sends SIGKILL, as kill -9 does, and waits for the command to end.
func (c *Command) Kill() error {
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-c.done
	return nil
}

// Wait waits for the command to end and returns its exit status (-1 when a signal ended it).
func (c *Command) Wait(ctx context.Context) (int, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return -1, fmt.Errorf("%s still runs: %w:\n%s", c, ctx.Err(), c.Output())
	}
	return c.cmd.ProcessState.ExitCode(), nil
}

func (c *Command) String() string { return filepath.Base(c.Bin) + " " + strings.Join(c.Args, " ") }

// Status is "virt-failover status --json" of the host, run outside its namespaces, and its text.
func (h *Host) Status(ctx context.Context, bin string) (*claims.Status, string, error) {
	out, err := exec.CommandContext(ctx, bin, append([]string{"status", "--json"}, h.HostArgs()...)...).Output()
	if err != nil {
		return nil, "", fmt.Errorf("[%s] status --json: %w", h.Name, err)
	}
	var st claims.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, "", fmt.Errorf("[%s] status --json: %w:\n%s", h.Name, err, out)
	}
	text, _ := exec.CommandContext(ctx, bin, append([]string{"status"}, h.HostArgs()...)...).CombinedOutput()
	return &st, string(text), nil
}

// ClaimsOf lists a status's claims of domain dom, as "POOL: RESOURCE for DOMAIN ALIAS (STATE)".
func ClaimsOf(st *claims.Status, dom string) []string {
	var out []string
	for _, c := range st.Claims {
		if c.Domain == dom {
			out = append(out, claims.Line(c.Claim))
		}
	}
	return out
}

// FreezeLibvirtd stops the host's libvirtd (SIGSTOP) until ThawLibvirtd: its clients' calls wait.
func (h *Host) FreezeLibvirtd() error { return h.signalLibvirtd(syscall.SIGSTOP) }

// ThawLibvirtd lets a frozen libvirtd go on (SIGCONT).
func (h *Host) ThawLibvirtd() error { return h.signalLibvirtd(syscall.SIGCONT) }

func (h *Host) signalLibvirtd(sig syscall.Signal) error {
	pid := h.LibvirtdPID()
	if pid == 0 {
		return fmt.Errorf("host %s: libvirtd is not running", h.Name)
	}
	// The daemon's pid is nsenter's, which execs libvirtd in place.
	return syscall.Kill(pid, sig)
}

// Parked reads the parked records of dom's live definition (inactive: its persistent one).
func (h *Host) Parked(ctx context.Context, dom string, inactive bool) ([]*policy.Parked, []byte, error) {
	args := []string{"dumpxml", dom}
	if inactive {
		args = []string{"dumpxml", "--inactive", dom}
	}
	out, err := h.Virsh(ctx, args...)
	if err != nil {
		return nil, nil, err
	}
	doc, err := xmlxform.Parse([]byte(out))
	if err != nil {
		return nil, nil, err
	}
	return policy.NewDomain(doc).Parked, []byte(out), nil
}

// CountDevices counts the devices of a domain definition whose alias is alias.
func CountDevices(def []byte, alias string) (int, error) {
	doc, err := xmlxform.Parse(bytes.TrimSpace(def))
	if err != nil {
		return 0, err
	}
	return len(policy.NewDomain(doc).Aliases[alias]), nil
}
