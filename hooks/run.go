package hooks

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/internal/hostpaths"
	"github.com/virt-failover/virt-failover/internal/trust"
	"github.com/virt-failover/virt-failover/internal/vfmac"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// Defaults for reading the domain definition from libvirt, and the whole call's deadline.
const (
	DefaultMaxInput = 64 << 20
	DefaultTimeout  = 60 * time.Second
)

// Options configure one hook run. The zero value reads the default policy, os.Stdin and writes to
// os.Stdout/os.Stderr.
type Options struct {
	// Paths is the host's tree (PathsFor; the zero value is the system): the policy's default
	// place, libvirt's status files, and the host paths the policy names (log, state, sysfs) are
	// taken in it, also when the policy cannot be read.
	Paths      hostpaths.Paths
	PolicyPath string // default Paths.PolicyFile()
	// LogFile overrides the policy's [log] file; it is also where a hook whose policy cannot be
	// read logs (else the default log file).
	LogFile  string
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
	MaxInput int64 // default DefaultMaxInput
	// Timeout is the whole call's deadline (default DefaultTimeout): reading the definition,
	// parsing it, planning and the claims ledger, whose lock_timeout ends there at the latest.
	// Past it the hook follows on_error at migrate, restore and prepare, and exits 0 elsewhere.
	Timeout time.Duration
	// DryRun decides as the hook would but prints a unified diff of the rewrite instead of the
	// document and a line saying what the hook would do, and writes no log line.
	DryRun  bool
	Now     func() time.Time
	Version string
	// VFMAC programs the MAC of a plain <hostdev> primary's VF (default vfmac.Netlink).
	VFMAC vfmac.Setter
	// Hostname is this host's name as parked records name it (default: the hostname).
	Hostname string
	// Worker is the program the replug worker runs as and its first arguments (argv[0] included);
	// the hook adds the worker's own (worker.go). Default: this executable, as "virt-failover".
	Worker []string
}

// Decision is what the hook did with one invocation.
type Decision string

// The decisions a log line can carry.
const (
	Pass    Decision = "pass"    // nothing to do; stdout empty, exit 0
	Rewrite Decision = "rewrite" // a changed definition was printed (migrate/restore only)
	Refuse  Decision = "refuse"  // the operation was refused by policy; exit 1
	Error   Decision = "error"   // bad input, a bad policy or an internal error; handled per on_error
)

// opSpec says how one libvirt operation behaves (docs/failover.md#hook-protocol).
type opSpec struct {
	// filter: libvirt reads stdout as the replacement definition (migrate, restore).
	filter bool
	// onError: a failure here can stop the operation, so [host] on_error decides between refusing
	// and passing. Elsewhere errors are logged and the hook exits 0: at stopped/release the guest
	// is already gone, and a failing reconnect makes libvirt kill the running guest.
	onError bool
	decide  func(*run) outcome
}

var ops = map[string]opSpec{
	"prepare":   {onError: true, decide: decidePrepare},
	"start":     {},
	"started":   {decide: decideStarted},
	"stopped":   {},
	"release":   {decide: decideRelease},
	"migrate":   {filter: true, onError: true, decide: decideIncoming},
	"restore":   {filter: true, onError: true, decide: decideIncoming},
	"reconnect": {decide: decideReconnect},
	"attach":    {},
}

// outcome is the result of deciding one invocation.
type outcome struct {
	decision Decision
	reason   string   // refusal or error, one line
	hints    []string // printed after the reason
	output   []byte   // the replacement definition (Rewrite only)
	changes  []string // what the rewrite changed, for the log
	claims   []string // claims taken or confirmed
	releases []string // claims freed
	actions  []string // host changes (VF MACs)
	reaped   []string // other domains' claims freed: their domain no longer runs here
	lint     []string // lint errors found at prepare
	message  string   // a note for the log when there is no reason
	worker   int      // the pid of the replug worker started (started only)
}

type run struct {
	inv      Invocation
	opts     Options
	pol      *policy.Policy
	input    []byte
	doc      *xmlxform.Doc // parsed lazily by document()
	docErr   error
	deadline time.Time    // the whole call's (wall clock)
	stage    atomic.Value // string: what the decision is doing, for a deadline's message
}

// Run handles one invocation and returns the process exit code. It never panics: a panic in a
// decision is recovered and handled as an internal error.
func Run(inv Invocation, opts Options) int {
	opts = withDefaults(opts)
	start := opts.Now()
	spec, known := ops[inv.Op]
	r := &run{inv: inv, opts: opts, deadline: time.Now().Add(opts.Timeout)}

	// Only a policy no one but root can change is obeyed (internal/trust), and read.
	var pol *policy.Policy
	perr := trust.Check(opts.PolicyPath, os.Geteuid() == 0)
	if perr == nil {
		pol, perr = policy.Load(opts.PolicyPath)
	}
	if perr != nil {
		pol = policy.Default()
	}
	// A hook installed in a tree keeps its log, state and sysfs in that tree, also when its policy
	// cannot be read.
	opts.Paths.MapPolicy(pol)
	r.pol = pol
	input, ierr := readInput(opts.Stdin, opts.MaxInput, r.deadline, opts.Timeout)
	r.input = input

	var out outcome
	switch {
	case !known:
		out = outcome{decision: Pass} // future operations must not break guests
	case perr != nil:
		out = policyErrorOutcome("policy", perr)
	case ierr != nil:
		out = errorOutcome("domain definition on stdin", ierr)
	case !pol.Host.Enabled:
		out = outcome{decision: Pass, reason: "disabled by [host] enabled = false"}
	case spec.decide != nil:
		out = r.decideWithin(spec.decide)
	default:
		out = outcome{decision: Pass}
	}

	code := r.finish(spec, &out)
	if opts.DryRun {
		// Say what the hook would have decided: a pass prints nothing at all otherwise.
		for _, c := range out.claims {
			fmt.Fprintf(opts.Stdout, "dry run: would claim %s\n", c)
		}
		for _, c := range out.releases {
			fmt.Fprintf(opts.Stdout, "dry run: would release %s\n", c)
		}
		for _, c := range out.reaped {
			fmt.Fprintf(opts.Stdout, "dry run: would reap %s\n", c)
		}
		for _, a := range out.actions {
			fmt.Fprintf(opts.Stdout, "dry run: %s\n", a)
		}
		fmt.Fprintf(opts.Stdout, "dry run: %s would %s\n", inv, dryRunVerb(out.decision, code, spec))
		return code
	}
	r.log(start, out, perr)
	return code
}

func withDefaults(o Options) Options {
	if o.PolicyPath == "" {
		o.PolicyPath = o.Paths.PolicyFile()
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.MaxInput <= 0 {
		o.MaxInput = DefaultMaxInput
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.VFMAC == nil {
		o.VFMAC = vfmac.Netlink{}
	}
	return o
}

func dryRunVerb(d Decision, code int, spec opSpec) string {
	switch {
	case d == Rewrite:
		return "print the rewritten definition above (exit 0)"
	case d == Pass && spec.filter:
		return "pass: print nothing, libvirt keeps the definition unchanged (exit 0)"
	case d == Pass:
		return "pass (exit 0)"
	case d == Refuse || (d == Error && spec.onError && code != 0):
		return "refuse (exit 1)"
	}
	return "log the error and exit 0"
}

// decideWithin decides in a goroutine of its own and waits for it until the call's deadline: a
// decision stuck in the kernel (a hung file system, a PF that never answers) must not hold libvirtd.
// Past the deadline the outcome is an error, which finish handles per operation; the decision may
// go on until the process exits, but its ledger transaction writes nothing any more
// (ledger.Ledger.Deadline). A decision that ends in an error at the deadline (its lock wait cut
// short) reads the same.
func (r *run) decideWithin(f func(*run) outcome) outcome {
	r.at("deciding")
	done := make(chan outcome, 1)
	go func() { done <- r.safeDecide(f) }()
	timer := time.NewTimer(time.Until(r.deadline))
	defer timer.Stop()
	select {
	case out := <-done:
		if out.decision != Error || time.Now().Before(r.deadline) {
			return out
		}
	case <-timer.C:
	}
	return outcome{decision: Error, reason: fmt.Sprintf("deadline: the hook did not finish within %s (it was %s)", r.opts.Timeout, r.stage.Load())}
}

// at records what the decision is doing now.
func (r *run) at(stage string) { r.stage.Store(stage) }

// safeDecide turns a panic in a decision into an internal error.
func (r *run) safeDecide(f func(*run) outcome) (out outcome) {
	defer func() {
		if p := recover(); p != nil {
			out = errorOutcome("internal error", fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
		}
	}()
	return f(r)
}

func errorOutcome(what string, err error) outcome {
	msg := strings.TrimPrefix(err.Error(), what+": ") // say "claims:" once
	if first, rest, ok := strings.Cut(msg, "\n"); ok {
		// errors.Join separates several errors by newlines: the first line must stand alone,
		// the others follow as detail.
		return outcome{decision: Error, reason: what + ": " + first, hints: strings.Split(rest, "\n")}
	}
	return outcome{decision: Error, reason: what + ": " + msg}
}

// policyErrorOutcome reports every problem of the policy file (or of another file the hook
// trusts, what names it), each with its hint.
func policyErrorOutcome(what string, err error) outcome {
	var lines []string
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		lines = append(lines, e.Error())
		var pe *policy.Error
		if errors.As(e, &pe) && pe.Hint != "" {
			lines = append(lines, "hint: "+pe.Hint)
		}
	}
	return outcome{decision: Error, reason: what + ": " + lines[0], hints: lines[1:]}
}

// finish writes the outcome to stdout/stderr and returns the exit code.
func (r *run) finish(spec opSpec, out *outcome) int {
	fail := false
	switch out.decision {
	case Refuse:
		fail = true
	case Error:
		fail = spec.onError && r.pol.Host.OnError != policy.OnErrorPass
	case Rewrite:
		if !spec.filter {
			panic("hooks: rewrite decided for an operation whose stdout libvirt ignores")
		}
		if r.opts.DryRun {
			fmt.Fprintf(r.opts.Stdout, "%s", diff.Diff(r.inv.Object+".xml (incoming)", r.input, r.inv.Object+".xml (rewritten)", out.output))
			return 0
		}
		// One write of the complete document: libvirt parses whatever it reads as the new
		// definition, so a partial document must never be written.
		if _, err := r.opts.Stdout.Write(out.output); err != nil {
			// libvirt gets no definition, so the migration fails: the claims taken for it go now,
			// not when they expire, and the log says refuse.
			rel := outcome{decision: Pass}
			if len(out.claims) > 0 {
				if doc, derr := r.document(); derr == nil {
					uuid, _ := claims.Identity(policy.NewDomain(doc), r.inv.Object)
					rel = r.releaseClaims(uuid)
				}
			}
			*out = outcome{decision: Refuse, reason: fmt.Sprintf("writing the rewritten definition: %v", err), changes: out.changes,
				releases: rel.releases, reaped: append(out.reaped, rel.reaped...)}
			fail = true
			break
		}
	}
	if out.decision == Refuse || out.decision == Error {
		verb := "refused"
		if !fail {
			verb = "error (ignored: " + r.ignoredBecause(spec) + ")"
		}
		fmt.Fprintf(r.opts.Stderr, "virt-failover: %s: %s: %s\n", r.inv, verb, out.reason)
		for _, h := range out.hints {
			if h != "" {
				fmt.Fprintf(r.opts.Stderr, "virt-failover: %s\n", h)
			}
		}
	}
	if fail {
		return 1
	}
	return 0
}

func (r *run) ignoredBecause(spec opSpec) string {
	if spec.onError {
		return "[host] on_error = \"pass\""
	}
	return "the " + r.inv.Op + " operation never fails"
}

// document parses the incoming definition once.
func (r *run) document() (*xmlxform.Doc, error) {
	if r.doc == nil && r.docErr == nil {
		r.at("parsing the domain definition")
		r.doc, r.docErr = xmlxform.Parse(r.input)
		if r.docErr != nil {
			r.docErr = fmt.Errorf("line %w", r.docErr)
		}
	}
	return r.doc, r.docErr
}

// decidePrepare runs at every start, incoming migrations and restores included: it confirms the
// domain's claims on pool resources, or refuses a resource this host cannot give.
func decidePrepare(r *run) outcome {
	doc, err := r.document()
	if err != nil {
		return errorOutcome("domain definition on stdin", err)
	}
	dom := policy.NewDomain(doc) // one read model for lint and claims
	r.at("linting the domain definition")
	findings, refusal := r.lintAtPrepare(dom)
	if refusal != nil {
		return *refusal
	}
	out := outcome{decision: Pass}
	if h, s := r.subject(dom); s != nil {
		out = r.prepare(h, s)
	}
	out.lint = findings
	if len(findings) > 0 && out.decision == Pass && out.message == "" {
		out.message = fmt.Sprintf("lint: %d error(s), logged only ([host] enforce = %q)", len(findings), r.pol.Host.Enforce)
	}
	return out
}

// decideRelease frees the domain's claims on this host: it stopped, left by migration, or its
// incoming migration failed.
func decideRelease(r *run) outcome {
	doc, err := r.document()
	if err != nil {
		return errorOutcome("domain definition on stdin", err)
	}
	uuid, _ := claims.Identity(policy.NewDomain(doc), r.inv.Object)
	return r.releaseClaims(uuid)
}

// decideReconnect rebuilds the running domain's claims after libvirtd restarted. It never refuses.
func decideReconnect(r *run) outcome {
	doc, err := r.document()
	if err != nil {
		return errorOutcome("domain definition on stdin", err)
	}
	h, s := r.subject(policy.NewDomain(doc))
	if s == nil {
		return outcome{decision: Pass}
	}
	return r.rebuild(h, s)
}

// decideIncoming handles migrate begin (destination) and restore begin: the only places where the
// hook may change the definition, and only host-side parts of it (docs/failover.md#abi-check).
func decideIncoming(r *run) outcome {
	if r.inv.Op == "migrate" && !r.pol.Host.AcceptIncoming {
		return outcome{
			decision: Refuse,
			reason:   "this host does not accept incoming migrations ([host] accept_incoming = false in " + r.pol.Source + ")",
			hints:    []string{"hint: migrate to another host, or set accept_incoming = true when the maintenance ends"},
		}
	}
	doc, err := r.document()
	if err != nil {
		return errorOutcome("domain definition on stdin", err)
	}
	if h, s := r.subject(policy.NewDomain(doc)); s != nil {
		return r.incoming(h, s, doc)
	}
	r.at("rewriting the domain definition")
	plan := policy.PlanRewrite(doc, r.pol)
	if len(plan.Changes) == 0 {
		return outcome{decision: Pass}
	}
	out, err := claims.CheckedRewrite(doc, plan.Transform)
	if err != nil {
		return errorOutcome("internal error", err)
	}
	return outcome{decision: Rewrite, output: out, changes: plan.Changes}
}

// readInput reads all of r, at most max bytes, by deadline (timeout names it in the error).
func readInput(r io.Reader, max int64, deadline time.Time, timeout time.Duration) ([]byte, error) {
	if f, ok := r.(*os.File); ok {
		if f.SetReadDeadline(deadline) == nil {
			return readCapped(f, max, timeout)
		}
		// libvirt hands the hook a blocking pipe, which the runtime poller does not take. Made
		// non-blocking it does, and the deadline then needs no second goroutine and timer thread
		// (which cost more than the hook's own work).
		if pf := pollable(f); pf != nil && pf.SetReadDeadline(deadline) == nil {
			return readCapped(pf, max, timeout)
		}
	}
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := readCapped(r, max, timeout)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		return res.b, res.err
	case <-time.After(time.Until(deadline)):
		return nil, fmt.Errorf("no end of input within %s", timeout)
	}
}

// pollable returns f reopened on the same descriptor in non-blocking mode when f is a pipe or a
// socket, nil otherwise (regular files and terminals keep the blocking read).
func pollable(f *os.File) *os.File {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return nil
	}
	fd := f.Fd()
	if syscall.SetNonblock(int(fd), true) != nil {
		return nil
	}
	pf := os.NewFile(fd, f.Name())
	reopenedMu.Lock()
	reopened = append(reopened, pf)
	reopenedMu.Unlock()
	return pf
}

// reopened keeps the files pollable made reachable: a collected *os.File closes its descriptor,
// which is also f's.
var (
	reopenedMu sync.Mutex
	reopened   []*os.File
)

func readCapped(r io.Reader, max int64, timeout time.Duration) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, fmt.Errorf("no end of input within %s", timeout)
	}
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d MiB; libvirt never sends such a definition", max>>20)
	}
	return b, nil
}
