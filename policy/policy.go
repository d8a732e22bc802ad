package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// DefaultPath is where the hook and the command line read the policy from.
const DefaultPath = "/etc/virt-failover/policy.toml"

// Values of [Host].OnError.
const (
	OnErrorRefuse = "refuse" // fail the operation, with a message libvirt shows
	OnErrorPass   = "pass"   // let the definition through unchanged
)

// Values of [Orchestrate].Replug.
const (
	ReplugAuto = "auto" // the hook starts a replug worker when a guest arrives with parked devices
	ReplugOff  = "off"  // nothing re-plugs on arrival; "virt-failover repair" does it when asked
)

// Values of [Host].Enforce.
const (
	EnforceOff    = "off"    // prepare does not lint
	EnforceWarn   = "warn"   // prepare logs lint errors and carries on
	EnforceRefuse = "refuse" // prepare refuses a definition with lint errors
)

// Policy is the operator's policy file, validated, with defaults filled in.
type Policy struct {
	Host    Host
	Standby Standby
	Pools   map[string]Pool // by pool name; never nil
	Storage []Storage
	Rewrite Rewrite
	Lint    Lint
	State   State
	Log     Log
	// Orchestrate is the [orchestrate] table: how devices unplugged for a migration come back.
	Orchestrate Orchestrate
	// Watch is the [watch] table: the long-running "virt-failover watch" (docs/watch.md).
	Watch   Watch
	Source  string // file it was read from; "" for built-in defaults
	Missing bool   // true when Source did not exist and defaults were used
}

// Host is the [host] table: how the hook behaves on this host.
type Host struct {
	Enabled        bool   // false: the hook passes everything through untouched (kill switch)
	AcceptIncoming bool   // false: refuse every incoming migration (maintenance)
	OnError        string // OnErrorRefuse or OnErrorPass: migrate/restore/prepare on an internal error or bad input
	Enforce        string // EnforceOff, EnforceWarn or EnforceRefuse: what prepare does with lint errors
	DefaultPool    string // pool for primaries whose metadata names none; "" for none
	SysfsRoot      string // where sysfs is mounted; tests point it elsewhere
}

// Standby is the [standby] table: the source of a new virtio standby interface. Exactly one of
// Network (a libvirt network) and Bridge (a host bridge) is set.
type Standby struct {
	Network string
	Bridge  string
}

// Pool is one [pools.NAME] table: host resources a primary may be given.
type Pool struct {
	PF        []string // physical functions; their VFs are found from sysfs virtfn* links
	Addresses []string // VF PCI addresses, DDDD:BB:SS.F, lowercase
	Networks  []string // libvirt networks or bridges, one resource each
}

// Storage is one [[storage]] entry: an assigned storage device and the host path of its LUN.
type Storage struct {
	Device string // PCI address, DDDD:BB:SS.F, lowercase
	LUN    string // absolute path
}

// Rewrite is the [rewrite.*] tables: names an incoming definition uses that are different on this
// host. Both maps are never nil.
type Rewrite struct {
	Networks map[string]string // <source network='KEY'/> becomes VALUE
	Bridges  map[string]string // <source bridge='KEY'/> becomes VALUE
}

// Lint is the [lint] table.
type Lint struct {
	RequireMigratable bool     // a PCI hostdev without teaming is an error, not a warning
	StandbyNetworks   []string // networks or bridges a standby may use; empty: any
	Disable           []string // rule IDs like "VF003"
}

// State is the [state] table: where claims are kept and how long they live.
type State struct {
	Dir      string
	ClaimTTL time.Duration
	// LockTimeout bounds the wait for the claims ledger's lock: libvirtd waits for the hook, so a
	// lock held by a stuck process must not hold the daemon.
	LockTimeout time.Duration
}

// Log is the [log] table.
type Log struct {
	File string
}

// Orchestrate is the [orchestrate] table: the orchestrator's timeouts and what happens when a guest
// arrives with devices parked for the migration (docs/metadata.md#parked).
type Orchestrate struct {
	// Replug is ReplugAuto (the hook starts a detached replug worker at started) or ReplugOff.
	Replug string
	// Connect is the libvirt URI the replug worker connects to, this host's own daemon.
	Connect string
	// ReplugTimeout bounds the re-plug of one device: its attach until the device is in the live
	// definition, retries included.
	ReplugTimeout time.Duration
	// UnplugTimeout bounds the unplug of one device before a migration: its detach until libvirt
	// reports it removed, and QEMU's own wait for the guest to release a teaming primary.
	UnplugTimeout time.Duration
}

// Watch is the [watch] table: where "virt-failover watch" listens and when it calls a guest degraded.
type Watch struct {
	// Listen is the address of its HTTP endpoints (/metrics, /healthz, /guests); "status" asks it
	// there.
	Listen string
	// DegradedAfter is how long a guest may run on its emulated devices (a device parked, a
	// failover primary unplugged) before watch calls it degraded.
	DegradedAfter time.Duration
}

// Default returns the built-in policy: what applies when no policy file exists, and the value of
// every key a file leaves out.
func Default() *Policy {
	return &Policy{
		Host: Host{
			Enabled:        true,
			AcceptIncoming: true,
			OnError:        OnErrorRefuse,
			Enforce:        EnforceWarn,
			SysfsRoot:      "/sys",
		},
		Standby: Standby{Network: "default"},
		Pools:   map[string]Pool{},
		Rewrite: Rewrite{Networks: map[string]string{}, Bridges: map[string]string{}},
		State:   State{Dir: "/var/lib/virt-failover", ClaimTTL: 10 * time.Minute, LockTimeout: 5 * time.Second},
		Log:     Log{File: "/var/log/libvirt/virt-failover.log"},
		Orchestrate: Orchestrate{Replug: ReplugAuto, Connect: "qemu:///system",
			ReplugTimeout: 60 * time.Second, UnplugTimeout: 30 * time.Second},
		Watch: Watch{Listen: "127.0.0.1:9478", DegradedAfter: 10 * time.Minute},
	}
}

// Error is one problem in a policy file. Callers print Error() and then, when Hint is set, a
// separate "hint: " line.
type Error struct {
	File string
	Line int // 1-based; 0 when the problem has no line
	Col  int // 1-based byte column; 0 when unknown
	Msg  string
	Hint string
}

// Error renders "FILE:LINE:COL: MSG", leaving out COL, or LINE and COL, when they are 0.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and validates the policy file at path. When the file does not exist, Load returns
// Default() with Source = path and Missing = true. Any other read error is returned as it is; a
// file that does not validate gives [Parse]'s errors.
func Load(path string) (*Policy, error) {
	// Opened without blocking: a FIFO in the policy's place would otherwise hold the hook, and
	// libvirtd with it. Only a regular file is read.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			p := Default()
			p.Source, p.Missing = path, true
			return p, nil
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		// /dev/null stands for an empty policy (the built-in defaults), as in "pair --policy /dev/null".
		if null, err := os.Stat(os.DevNull); err != nil || !os.SameFile(st, null) {
			return nil, &Error{File: path, Msg: "not a regular file", Hint: "the policy is a TOML file; see install/policy.toml"}
		}
		return Parse(path, nil)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse validates a policy file's contents; name is the file name messages use. Keys the file
// leaves out keep their defaults; an empty file gives Default(). On error the policy is nil and the
// error is one *Error, or several joined with errors.Join in file order.
//
// go-toml parses the file and its parse tree gives the positions; the checks against the schema
// are ours, on the decoded values. go-toml's strict decoding into structs
// (Decoder.DisallowUnknownFields) does not carry them: it stops at the first value of a wrong type,
// reports no unknown key once a type is wrong, and matches keys to fields ignoring case, so
// "[Host] Enabled = false" would turn the hook off without a word.
func Parse(name string, data []byte) (*Policy, error) {
	// A byte-order mark is no part of the document; columns on line 1 count after it.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var raw any
	if err := toml.Unmarshal(data, &raw); err != nil {
		return nil, syntaxError(name, err)
	}
	top, _ := raw.(map[string]any)
	p := Default()
	p.Source = name
	c := fileChecker{data: data}
	c.policy(p, top)
	if len(c.problems) > 0 {
		return nil, c.joinedErrors(name)
	}
	return p, nil
}

// syntaxError turns the TOML parser's error into an *Error with line and column.
func syntaxError(name string, err error) error {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &Error{File: name, Msg: "invalid TOML: " + tomlMessage(strings.TrimPrefix(err.Error(), "toml: "))}
	}
	line, col := de.Position()
	msg := tomlMessage(strings.TrimPrefix(de.Error(), "toml: "))
	e := &Error{File: name, Line: line, Col: col, Msg: "invalid TOML: " + msg}
	if strings.Contains(msg, "already defined") || strings.Contains(msg, "already exists") {
		e.Hint = "a key or table may appear only once; merge the two"
	}
	return e
}

// tomlMessage adapts the parser's message to ours: lowercase start, no final period.
func tomlMessage(m string) string {
	m = strings.TrimSuffix(strings.TrimSpace(m), ".")
	if len(m) > 1 && m[0] >= 'A' && m[0] <= 'Z' && m[1] >= 'a' && m[1] <= 'z' {
		m = string(m[0]+'a'-'A') + m[1:]
	}
	return m
}

// schema lists the keys of every table, in documentation order: "" is the top level, "pools.*"
// any pool, "storage" each [[storage]] entry; "pools" and "rewrite.*" have names, not keys.
// Unknown-key hints and the tests use it. It is static data, not a map: a map would be built at
// every process start, the hook's included, for hints only a faulty file needs.
var schema = [...]struct {
	table string
	keys  []string
}{
	{"", []string{"host", "standby", "pools", "storage", "rewrite", "lint", "state", "log", "orchestrate", "watch"}},
	{"host", []string{"enabled", "accept_incoming", "on_error", "enforce", "default_pool", "sysfs_root"}},
	{"standby", []string{"network", "bridge"}},
	{"pools", nil},
	{"pools.*", []string{"pf", "addresses", "networks"}},
	{"storage", []string{"device", "lun"}},
	{"rewrite", []string{"networks", "bridges"}},
	{"rewrite.*", nil},
	{"lint", []string{"require_migratable", "standby_networks", "disable"}},
	{"state", []string{"dir", "claim_ttl", "lock_timeout"}},
	{"log", []string{"file"}},
	{"orchestrate", []string{"replug", "connect", "replug_timeout", "unplug_timeout"}},
	{"watch", []string{"listen", "degraded_after"}},
}

// schemaKeys returns the keys of table, a schema entry; nil for a table of names.
func schemaKeys(table string) []string {
	for _, t := range schema {
		if t.table == table {
			return t.keys
		}
	}
	return nil
}

// A fileProblem is an error whose position is not resolved yet. path names the key it is about, its
// table names being the leading parts; elemMark+"N" is element N of an array (of values or of
// tables).
type fileProblem struct {
	path []string
	msg  string
	hint string
}

// fileChecker walks the decoded TOML against the schema and gathers problems.
type fileChecker struct {
	data      []byte
	problems  []fileProblem
	positions map[string]keyPosition // by joined path; built on first need
	resources []poolResource         // every pool entry, for the cross-pool checks
}

// poolResource is one entry of a pool's pf, addresses or networks.
type poolResource struct {
	pool  string
	kind  string // "pf", "addresses" or "networks"
	value string // normalised
	path  []string
}

func (c *fileChecker) add(path []string, hint, format string, args ...any) {
	c.problems = append(c.problems, fileProblem{path: path, msg: fmt.Sprintf(format, args...), hint: hint})
}

// joinedErrors resolves the problems' positions and joins them in file order.
func (c *fileChecker) joinedErrors(name string) error {
	errs := make([]*Error, len(c.problems))
	for i, pr := range c.problems {
		pos := c.position(pr.path)
		errs[i] = &Error{File: name, Line: pos.line, Col: pos.col, Msg: pr.msg, Hint: pr.hint}
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		if a.Col != b.Col {
			return a.Col - b.Col
		}
		return strings.Compare(a.Msg, b.Msg)
	})
	if len(errs) == 1 {
		return errs[0]
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return errors.Join(joined...)
}

// position finds where path is written, falling back to its closest enclosing key or table.
func (c *fileChecker) position(path []string) keyPosition {
	if c.positions == nil {
		c.positions = scanKeys(c.data)
	}
	for n := len(path); n > 0; n-- {
		if pos, ok := c.positions[joinPath(path[:n])]; ok {
			return pos
		}
	}
	return keyPosition{}
}

// joinPath makes a path a map key. Its separator, 0xff, and elemMark, 0xfe, are bytes no TOML key
// holds: keys are UTF-8.
func joinPath(path []string) string { return strings.Join(path, "\xff") }

const elemMark = "\xfe"

// subPath returns path extended by more, never sharing path's backing array.
func subPath(path []string, more ...string) []string {
	out := make([]string, 0, len(path)+len(more))
	return append(append(out, path...), more...)
}

// elemPath returns the path of element i of the array at path.
func elemPath(path []string, i int) []string {
	if i < len(elemParts) {
		return subPath(path, elemParts[i])
	}
	return subPath(path, elemMark+strconv.Itoa(i))
}

var elemParts = [...]string{
	elemMark + "0", elemMark + "1", elemMark + "2", elemMark + "3", elemMark + "4", elemMark + "5",
	elemMark + "6", elemMark + "7", elemMark + "8", elemMark + "9", elemMark + "10", elemMark + "11",
}

func (c *fileChecker) policy(p *Policy, top map[string]any) {
	for k, v := range top {
		path := []string{k}
		switch k {
		case "host":
			if t, ok := c.table(path, v); ok {
				c.host(&p.Host, path, t)
			}
		case "standby":
			if t, ok := c.table(path, v); ok {
				c.standby(&p.Standby, path, t)
			}
		case "pools":
			if t, ok := c.table(path, v); ok {
				c.pools(p.Pools, path, t)
			}
		case "storage":
			c.storage(p, path, v)
		case "rewrite":
			if t, ok := c.table(path, v); ok {
				c.rewrite(&p.Rewrite, path, t)
			}
		case "lint":
			if t, ok := c.table(path, v); ok {
				c.lint(&p.Lint, path, t)
			}
		case "state":
			if t, ok := c.table(path, v); ok {
				c.state(&p.State, path, t)
			}
		case "log":
			if t, ok := c.table(path, v); ok {
				c.log(&p.Log, path, t)
			}
		case "orchestrate":
			if t, ok := c.table(path, v); ok {
				c.orchestrate(&p.Orchestrate, path, t)
			}
		case "watch":
			if t, ok := c.table(path, v); ok {
				c.watch(&p.Watch, path, t)
			}
		default:
			c.unknown(path, v, "")
		}
	}
	c.crossChecks(p)
}

func (c *fileChecker) host(h *Host, path []string, t map[string]any) {
	for k, v := range t {
		kp := subPath(path, k)
		switch k {
		case "enabled":
			c.boolean(&h.Enabled, kp, v)
		case "accept_incoming":
			c.boolean(&h.AcceptIncoming, kp, v)
		case "on_error":
			c.oneOf(&h.OnError, kp, v, "refuse stops migrate, restore and prepare with a message; pass lets the definition through unchanged",
				OnErrorRefuse, OnErrorPass)
		case "enforce":
			c.oneOf(&h.Enforce, kp, v, "off skips linting in prepare; warn logs lint errors; refuse refuses a definition with lint errors",
				EnforceOff, EnforceWarn, EnforceRefuse)
		case "default_pool":
			c.str(&h.DefaultPool, kp, v) // checked against [pools] in crossChecks
		case "sysfs_root":
			c.absPath(&h.SysfsRoot, kp, v)
		default:
			c.unknown(kp, v, "host")
		}
	}
}

func (c *fileChecker) standby(s *Standby, path []string, t map[string]any) {
	*s = Standby{} // a [standby] table replaces the default network
	before := len(c.problems)
	for k, v := range t {
		kp := subPath(path, k)
		switch k {
		case "network":
			if c.str(&s.Network, kp, v) && s.Network != "" {
				c.netName(kp, s.Network)
			}
		case "bridge":
			if c.str(&s.Bridge, kp, v) && s.Bridge != "" {
				c.ifName(kp, s.Bridge)
			}
		default:
			c.unknown(kp, v, "standby")
		}
	}
	switch {
	case len(c.problems) > before:
		// A bad network or bridge is reported already.
	case s.Network != "" && s.Bridge != "":
		c.add(subPath(path, "bridge"), "keep network for a libvirt network, or bridge for a host bridge",
			"[standby] sets both network and bridge; a standby has one source")
	case s.Network == "" && s.Bridge == "":
		c.add(path, `set network = "default" (a libvirt network) or bridge = "br0" (a host bridge)`,
			"[standby] sets neither network nor bridge; a new standby needs a source")
	}
}

// isPoolName reports whether name matches [A-Za-z0-9_.-]+.
func isPoolName(name string) bool {
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '.' || b == '-') {
			return false
		}
	}
	return name != ""
}

func (c *fileChecker) pools(pools map[string]Pool, path []string, t map[string]any) {
	for name, v := range t {
		pp := subPath(path, name)
		if !isPoolName(name) {
			c.add(pp, "use letters, digits, '_', '.' and '-', like [pools.fabric-a]",
				"pool name %q has characters other than letters, digits, '_', '.' and '-'", name)
		}
		pt, ok := v.(map[string]any)
		if !ok {
			c.add(pp, fmt.Sprintf("write the pool as a table: [pools.%s] with pf, addresses or networks", tomlKey(name)),
				"%s must be a table, not %s", keyLabel(pp), tomlTypeName(v))
			continue
		}
		var pool Pool
		for k, v := range pt {
			kp := subPath(pp, k)
			switch k {
			case "pf":
				if c.strs(&pool.PF, kp, v) {
					for i, pf := range pool.PF {
						if c.ifName(elemPath(kp, i), pf) {
							c.resources = append(c.resources, poolResource{name, k, pf, elemPath(kp, i)})
						}
					}
				}
			case "addresses":
				if c.strs(&pool.Addresses, kp, v) {
					for i, a := range pool.Addresses {
						if n, ok := c.pciAddress(elemPath(kp, i), a); ok {
							pool.Addresses[i] = n
							c.resources = append(c.resources, poolResource{name, k, n, elemPath(kp, i)})
						}
					}
				}
			case "networks":
				if c.strs(&pool.Networks, kp, v) {
					for i, n := range pool.Networks {
						if c.netName(elemPath(kp, i), n) {
							c.resources = append(c.resources, poolResource{name, k, n, elemPath(kp, i)})
						}
					}
				}
			default:
				c.unknown(kp, v, "pools.*")
			}
		}
		pools[name] = pool
	}
}

func (c *fileChecker) storage(p *Policy, path []string, v any) {
	var entries []map[string]any
	switch v := v.(type) {
	case []map[string]any:
		entries = v
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				c.add(elemPath(path, i), "write each entry as a [[storage]] table with device and lun",
					"storage entry %d must be a table, not %s", i+1, tomlTypeName(e))
				continue
			}
			entries = append(entries, m)
		}
	default:
		c.add(path, "write each entry as a [[storage]] table (double brackets) with device and lun",
			"storage must be an array of tables ([[storage]]), not %s", tomlTypeName(v))
		return
	}
	seen := map[string][]string{} // device -> path of its first listing
	for i, m := range entries {
		ep := elemPath(path, i)
		var s Storage
		var hasDevice, hasLUN bool
		for k, v := range m {
			kp := subPath(ep, k)
			switch k {
			case "device":
				hasDevice = true
				var dev string
				if c.str(&dev, kp, v) {
					if n, ok := c.pciAddress(kp, dev); ok {
						s.Device = n
						if first, dup := seen[n]; dup {
							c.add(kp, "list each device once", "[[storage]] device %s is already listed at line %d", n, c.position(first).line)
						} else {
							seen[n] = kp
						}
					}
				}
			case "lun":
				hasLUN = true
				c.absPath(&s.LUN, kp, v)
			default:
				c.unknown(kp, v, "storage")
			}
		}
		if !hasDevice {
			c.add(ep, `add device = "DDDD:BB:SS.F", the PCI address of the assigned storage device`, "[[storage]] entry has no device")
		}
		if !hasLUN {
			c.add(ep, `add lun = "/dev/disk/by-id/...", the host path of the device's LUN`, "[[storage]] entry has no lun")
		}
		p.Storage = append(p.Storage, s)
	}
}

func (c *fileChecker) rewrite(r *Rewrite, path []string, t map[string]any) {
	for k, v := range t {
		kp := subPath(path, k)
		var m map[string]string
		var what string
		switch k {
		case "networks":
			m, what = r.Networks, "network"
		case "bridges":
			m, what = r.Bridges, "bridge"
		default:
			c.unknown(kp, v, "rewrite")
			continue
		}
		tt, ok := c.table(kp, v)
		if !ok {
			continue
		}
		for from, v := range tt {
			ep := subPath(kp, from)
			var to string
			if !c.str(&to, ep, v) {
				continue
			}
			ok := true
			switch {
			case from == "":
				c.add(ep, fmt.Sprintf(`write "incoming-%s" = "local-%s"`, what, what), "%s has an empty key", tableLabel(kp))
				ok = false
			case to == "":
				c.add(ep, fmt.Sprintf("name the local %s the incoming %s %q becomes, or remove the line", what, what, from),
					"%s maps %q to an empty name", tableLabel(kp), from)
				ok = false
			case from == to:
				c.add(ep, "remove the line: a name that stays the same needs no rewrite",
					"%s maps %q to itself", tableLabel(kp), from)
				ok = false
			}
			if ok && what == "bridge" {
				ok = c.ifName(ep, from) && c.ifName(ep, to)
			} else if ok {
				ok = c.netName(ep, from) && c.netName(ep, to)
			}
			if ok {
				m[from] = to
			}
		}
	}
}

// isRuleID reports whether id matches ^VF[0-9]{3}$.
func isRuleID(id string) bool {
	return len(id) == 5 && id[:2] == "VF" && isDigit(id[2]) && isDigit(id[3]) && isDigit(id[4])
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func (c *fileChecker) lint(l *Lint, path []string, t map[string]any) {
	for k, v := range t {
		kp := subPath(path, k)
		switch k {
		case "require_migratable":
			c.boolean(&l.RequireMigratable, kp, v)
		case "standby_networks":
			if c.strs(&l.StandbyNetworks, kp, v) {
				for i, n := range l.StandbyNetworks {
					c.netName(elemPath(kp, i), n)
				}
			}
		case "disable":
			if c.strs(&l.Disable, kp, v) {
				for i, id := range l.Disable {
					if !isRuleID(id) {
						c.add(elemPath(kp, i), `rule IDs are "VF" and three digits, like "VF003"; "virt-failover lint" prints them`,
							"[lint] disable: %q is not a rule ID", id)
					}
				}
			}
		default:
			c.unknown(kp, v, "lint")
		}
	}
}

func (c *fileChecker) state(s *State, path []string, t map[string]any) {
	for k, v := range t {
		kp := subPath(path, k)
		switch k {
		case "dir":
			c.absPath(&s.Dir, kp, v)
		case "claim_ttl":
			c.duration(&s.ClaimTTL, kp, v, "10m", `a claim must live a while: "10m" is the default`)
		case "lock_timeout":
			c.duration(&s.LockTimeout, kp, v, "5s", `the hook must be able to wait for the lock: "5s" is the default`)
		default:
			c.unknown(kp, v, "state")
		}
	}
}

// duration decodes a positive Go duration written as a quoted string, like "10m".
func (c *fileChecker) duration(dst *time.Duration, kp []string, v any, example, positiveHint string) {
	k := tomlKey(kp[len(kp)-1])
	str, ok := v.(string)
	if !ok {
		c.add(kp, fmt.Sprintf(`write a quoted Go duration: %s = %q ("90s", "1h30m" work too)`, k, example),
			"%s must be a duration string like %q, not %s", keyLabel(kp), example, tomlTypeName(v))
		return
	}
	d, err := time.ParseDuration(str)
	switch {
	case err != nil:
		c.add(kp, `write a Go duration: "90s", "10m", "1h30m"`, "%s: %q is not a duration", keyLabel(kp), str)
	case d <= 0:
		c.add(kp, positiveHint, "%s must be positive, not %q", keyLabel(kp), str)
	default:
		*dst = d
	}
}

func (c *fileChecker) log(l *Log, path []string, t map[string]any) {
	for k, v := range t {
		kp := subPath(path, k)
		switch k {
		case "file":
			c.absPath(&l.File, kp, v)
		default:
			c.unknown(kp, v, "log")
		}
	}
}

func (c *fileChecker) orchestrate(o *Orchestrate, path []string, t map[string]any) {
	for k, v := range t {
		kp := subPath(path, k)
		switch k {
		case "replug":
			c.oneOf(&o.Replug, kp, v, `auto starts a replug worker when a guest arrives with devices parked for its migration; off leaves them to "virt-failover repair"`,
				ReplugAuto, ReplugOff)
		case "connect":
			var s string
			if c.str(&s, kp, v) {
				if why := badLibvirtURI(s); why != "" {
					c.add(kp, `write a libvirt URI, like "qemu:///system" or "qemu+ssh://root@host-a/system"`,
						"%s: %q is not a libvirt URI: %s", keyLabel(kp), s, why)
				} else {
					o.Connect = s
				}
			}
		case "replug_timeout":
			c.duration(&o.ReplugTimeout, kp, v, "60s", `a re-plug needs time to attach the device: "60s" is the default`)
		case "unplug_timeout":
			c.duration(&o.UnplugTimeout, kp, v, "30s", `the guest needs time to release a device: "30s" is the default`)
		default:
			c.unknown(kp, v, "orchestrate")
		}
	}
}

func (c *fileChecker) watch(w *Watch, path []string, t map[string]any) {
	for k, v := range t {
		kp := subPath(path, k)
		switch k {
		case "listen":
			var s string
			if c.str(&s, kp, v) {
				if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
					c.add(kp, `write HOST:PORT, like "127.0.0.1:9478" (the default) or "[::1]:9478"`,
						"%s: %q is not an address to listen on", keyLabel(kp), s)
				} else {
					w.Listen = s
				}
			}
		case "degraded_after":
			c.duration(&w.DegradedAfter, kp, v, "10m", `a guest is on its emulated devices for a while during every migration: "10m" is the default`)
		default:
			c.unknown(kp, v, "watch")
		}
	}
}

// badLibvirtURI says why s is not a libvirt connection URI (DRIVER[+TRANSPORT]://[HOST]/PATH, like
// qemu:///system), "" when it is one.
func badLibvirtURI(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	switch {
	case s == "":
		return "it is empty"
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return "it has whitespace"
	case !ok || scheme == "":
		return "it has no DRIVER:// part"
	case !isURIScheme(scheme):
		return fmt.Sprintf("%q is not a driver name", scheme)
	case !strings.Contains(rest, "/"):
		return "it has no path (qemu:///system, qemu:///session)"
	}
	return ""
}

// isURIScheme reports whether s is a URI scheme: a letter, then letters, digits, '+', '-' or '.'.
func isURIScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		letter := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
		if !letter && (i == 0 || !(b >= '0' && b <= '9' || b == '+' || b == '-' || b == '.')) {
			return false
		}
	}
	return s != ""
}

// crossChecks runs the rules that relate keys of different tables.
func (c *fileChecker) crossChecks(p *Policy) {
	if name := p.Host.DefaultPool; name != "" {
		if _, ok := p.Pools[name]; !ok {
			hint := fmt.Sprintf("define [pools.%s], or leave default_pool empty", tomlKey(name))
			if near := ClosestName(name, sortedKeys(p.Pools)); near != "" {
				hint = fmt.Sprintf("did you mean '%s'?", near)
			}
			c.add([]string{"host", "default_pool"}, hint, "[host] default_pool %q names no pool in [pools]", name)
		}
	}

	// One resource in two pools, or twice in one: every listing after the first is an error.
	type resourceKey struct{ kind, value string }
	groups := map[resourceKey][]poolResource{}
	var order []resourceKey
	for _, r := range c.resources {
		key := resourceKey{r.kind, r.value}
		if groups[key] == nil {
			order = append(order, key)
		}
		groups[key] = append(groups[key], r)
	}
	for _, key := range order {
		g := groups[key]
		if len(g) < 2 {
			continue
		}
		slices.SortStableFunc(g, func(a, b poolResource) int {
			pa, pb := c.position(a.path), c.position(b.path)
			if pa.line != pb.line {
				return pa.line - pb.line
			}
			return pa.col - pb.col
		})
		f := g[0]
		line := c.position(f.path).line
		for _, r := range g[1:] {
			if r.pool == f.pool {
				c.add(r.path, "list it once", "[pools.%s] %s: %q is listed twice (first at line %d)",
					tomlKey(r.pool), r.kind, r.value, line)
				continue
			}
			c.add(r.path, "a resource belongs to one pool; remove it from one of them",
				"[pools.%s] %s: %q is already in pool '%s' (line %d)", tomlKey(r.pool), r.kind, r.value, f.pool, line)
		}
	}

	// A pool's networks are remapped by the pool, so [rewrite] must not also name them.
	for _, key := range order {
		r := groups[key][0]
		if r.kind != "networks" {
			continue
		}
		for _, rw := range []struct {
			table string
			m     map[string]string
		}{{"networks", p.Rewrite.Networks}, {"bridges", p.Rewrite.Bridges}} {
			if _, ok := rw.m[r.value]; ok {
				c.add([]string{"rewrite", rw.table, r.value},
					fmt.Sprintf("remove %q from [rewrite.%s]: the pool remaps it", r.value, rw.table),
					"[rewrite.%s] maps %q, a network of pool '%s' (line %d); a pool's primaries are remapped by the pool, not by [rewrite]",
					rw.table, r.value, r.pool, c.position(r.path).line)
			}
		}
	}
}

// Type checks. Each reports a problem and returns false when v has the wrong type.

func (c *fileChecker) table(path []string, v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, fmt.Sprintf("write it as a table: %s", tableLabel(path)),
			"%s must be a table, not %s", keyLabel(path), tomlTypeName(v))
	}
	return m, ok
}

func (c *fileChecker) boolean(dst *bool, path []string, v any) bool {
	b, ok := v.(bool)
	if !ok {
		k := tomlKey(path[len(path)-1])
		c.add(path, fmt.Sprintf("write %s = true or %s = false, without quotes", k, k),
			"%s must be a boolean (true or false), not %s", keyLabel(path), tomlTypeName(v))
		return false
	}
	*dst = b
	return true
}

func (c *fileChecker) str(dst *string, path []string, v any) bool {
	s, ok := v.(string)
	if !ok {
		c.add(path, fmt.Sprintf(`quote the value: %s = "..."`, tomlKey(path[len(path)-1])),
			"%s must be a string, not %s", keyLabel(path), tomlTypeName(v))
		return false
	}
	*dst = s
	return true
}

// strs decodes an array of strings; an empty array gives nil.
func (c *fileChecker) strs(dst *[]string, path []string, v any) bool {
	arr, ok := v.([]any)
	if !ok {
		k := tomlKey(path[len(path)-1])
		c.add(path, fmt.Sprintf(`write %s = ["..."], an array of quoted strings`, k),
			"%s must be an array of strings, not %s", keyLabel(path), tomlTypeName(v))
		return false
	}
	var out []string
	good := true
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			c.add(elemPath(path, i), "quote every element", "%s must be an array of strings; element %d is %s",
				keyLabel(path), i+1, tomlTypeName(e))
			good = false
			continue
		}
		out = append(out, s)
	}
	if good {
		*dst = out
	}
	return good
}

func (c *fileChecker) oneOf(dst *string, path []string, v any, hint string, allowed ...string) {
	var s string
	if !c.str(&s, path, v) {
		return
	}
	if !slices.Contains(allowed, s) {
		c.add(path, hint, "%s must be %s, not %q", keyLabel(path), joinOr(allowed), s)
		return
	}
	*dst = s
}

func (c *fileChecker) absPath(dst *string, path []string, v any) {
	var s string
	if !c.str(&s, path, v) {
		return
	}
	if !strings.HasPrefix(s, "/") {
		c.add(path, "write the full path, starting with /", "%s must be an absolute path, not %q", keyLabel(path), s)
		return
	}
	*dst = s
}

// Value checks. Each reports a problem and returns false when s is not acceptable.

// ifName checks a Linux interface name: 1 to 15 bytes, no '/', no whitespace, not "." or "..".
func (c *fileChecker) ifName(path []string, s string) bool {
	var bad string
	switch {
	case s == "":
		bad = "it is empty"
	case len(s) > 15:
		bad = fmt.Sprintf("it is %d bytes long; Linux allows 15", len(s))
	case s == "." || s == "..":
		bad = "Linux reserves it"
	case strings.ContainsAny(s, "/:") || strings.IndexFunc(s, unicode.IsSpace) >= 0:
		bad = "it has '/', ':' or whitespace"
	default:
		return true
	}
	c.add(path, `use the name "ip link" shows: 1 to 15 characters, no '/', ':' or whitespace`,
		"%s: %q is not an interface name: %s", keyLabel(path), s, bad)
	return false
}

// netName checks a libvirt network (or bridge) name: not empty, no '/'.
func (c *fileChecker) netName(path []string, s string) bool {
	if s != "" && !strings.ContainsRune(s, '/') {
		return true
	}
	c.add(path, `use the name "virsh net-list" or "ip link" shows`,
		"%s: %q is not a network or bridge name", keyLabel(path), s)
	return false
}

// pciAddress checks a full PCI address, DDDD:BB:SS.F in hex, and returns it in lowercase.
func (c *fileChecker) pciAddress(path []string, s string) (string, bool) {
	if n, ok := NormalPCIAddress(s); ok {
		return n, true
	}
	c.add(path, `write the full address as "lspci -D" shows it: DDDD:BB:SS.F in hex, like "0000:03:02.1"`,
		"%s: %q is not a full PCI address", keyLabel(path), s)
	return "", false
}

// unknown reports a key the schema does not have. table is the schema entry of its table.
func (c *fileChecker) unknown(path []string, v any, table string) {
	key := path[len(path)-1]
	known := schemaKeys(table)
	var hint string
	if near := ClosestName(key, known); near != "" {
		hint = fmt.Sprintf("did you mean '%s'?", near)
	} else if home := tableOfKey(key, table); home != "" {
		hint = fmt.Sprintf("'%s' is a key of %s", key, home)
	} else {
		hint = "the keys here are " + strings.Join(known, ", ")
	}
	_, isTable := v.(map[string]any)
	switch {
	case isTable:
		c.add(path, hint, "unknown table %s", tableLabel(path))
	case table == "":
		c.add(path, hint, "unknown top-level key '%s'", key)
	default:
		c.add(path, hint, "unknown key '%s' in %s", key, tableLabel(path[:len(path)-1]))
	}
}

// tableOfKey names the table that has key, when it is not table.
func tableOfKey(key, table string) string {
	for _, t := range schema {
		if t.table == "" || t.table == table || !slices.Contains(t.keys, key) {
			continue
		}
		switch t.table {
		case "pools.*":
			return "[pools.NAME]"
		case "storage":
			return "[[storage]]"
		}
		return "[" + t.table + "]"
	}
	return ""
}

// ClosestName returns the candidate closest to s by edit distance, ignoring case, when it is close
// enough to be a likely typo; "" otherwise. Ties go to the earlier candidate. It makes the
// "did you mean" hints of the policy file and of the linter.
func ClosestName(s string, candidates []string) string {
	best, bestD := "", min(3, 1+len(s)/4)+1
	ls := strings.ToLower(s)
	for _, cand := range candidates {
		if d := editDistance(ls, strings.ToLower(cand)); d < bestD {
			best, bestD = cand, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Rendering of paths and types for messages.

// tableLabel renders a table path as its header: [pools.fabric], [[storage]].
func tableLabel(path []string) string {
	path = withoutElems(path)
	if len(path) == 0 {
		return "the top level"
	}
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = tomlKey(p)
	}
	if path[0] == "storage" {
		return "[[" + strings.Join(parts, ".") + "]]"
	}
	return "[" + strings.Join(parts, ".") + "]"
}

// keyLabel renders a key as "[table] key", or just "key" at the top level.
func keyLabel(path []string) string {
	path = withoutElems(path)
	if len(path) <= 1 {
		return tomlKey(strings.Join(path, ""))
	}
	return tableLabel(path[:len(path)-1]) + " " + tomlKey(path[len(path)-1])
}

// withoutElems removes the array-element parts of a path.
func withoutElems(path []string) []string {
	out := path[:0:0]
	for _, p := range path {
		if !strings.HasPrefix(p, elemMark) {
			out = append(out, p)
		}
	}
	return out
}

// tomlKey writes a key as TOML does: bare when it can be, quoted otherwise.
func tomlKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		b := k[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return strconv.Quote(k)
		}
	}
	return k
}

func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case time.Time, toml.LocalDateTime:
		return "a date-time"
	case toml.LocalDate:
		return "a date"
	case toml.LocalTime:
		return "a time"
	}
	return fmt.Sprintf("a %T", v)
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// keyPosition is where a key, table header or array element starts: 1-based line and byte column.
type keyPosition struct{ line, col int }

// scanKeys finds where every key, table header and array element of a TOML document is written,
// by path (parts joined with joinPath; elemMark+"N" for element N of an array or array of
// tables), from go-toml's parse tree. A path also maps to the position of its first descendant,
// so implicit tables ([pools] of [pools.fabric]) have a place too. The document has parsed
// already; should the parser stop early, the scan simply finds less.
func scanKeys(data []byte) map[string]keyPosition {
	ks := &keyScan{pos: map[string]keyPosition{}, arrays: map[string]int{}}
	ks.p.Reset(data)
	var table []string
	for ks.p.NextExpression() {
		e := ks.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			first := e.Key()
			if !first.Next() {
				continue
			}
			at := ks.header(first.Node())
			parts := ks.keyParts(e.Key())
			table = append(ks.resolve(parts[:len(parts)-1]), parts[len(parts)-1])
			if e.Kind == unstable.ArrayTable {
				k := joinPath(table)
				n := 0
				if last, ok := ks.arrays[k]; ok {
					n = last + 1
				}
				ks.arrays[k] = n
				ks.record(table, at)
				table = elemPath(table, n)
			}
			ks.record(table, at)
		case unstable.KeyValue:
			ks.keyValue(table, e)
		}
	}
	return ks.pos
}

type keyScan struct {
	p      unstable.Parser
	pos    map[string]keyPosition
	arrays map[string]int // array-of-tables path -> index of its last element
}

func (ks *keyScan) record(path []string, p keyPosition) {
	for n := 1; n <= len(path); n++ {
		k := joinPath(path[:n])
		if _, ok := ks.pos[k]; !ok {
			ks.pos[k] = p
		}
	}
}

// at is where a node's own bytes start.
func (ks *keyScan) at(n *unstable.Node) keyPosition {
	sh := ks.p.Shape(n.Raw)
	return keyPosition{line: sh.Start.Line, col: sh.Start.Column}
}

// header is where a table header starts: its opening bracket, before the first key part.
func (ks *keyScan) header(first *unstable.Node) keyPosition {
	data := ks.p.Data()
	off := int(first.Raw.Offset)
	for off > 0 && (data[off-1] == ' ' || data[off-1] == '\t' || data[off-1] == '[') {
		off--
	}
	sh := ks.p.Shape(unstable.Range{Offset: uint32(off)})
	return keyPosition{line: sh.Start.Line, col: sh.Start.Column}
}

// arrayStart is where a nested array's opening bracket is: the parser keeps no bytes for an
// array, so look back from its first element (an empty one has no place of its own).
func (ks *keyScan) arrayStart(arr *unstable.Node) (keyPosition, bool) {
	it := arr.Children()
	if !it.Next() {
		return keyPosition{}, false
	}
	first := it.Node()
	if first.Kind == unstable.Array || first.Kind == unstable.Comment {
		return keyPosition{}, false
	}
	data := ks.p.Data()
	off := int(first.Raw.Offset)
	for off > 0 && strings.IndexByte(" \t\r\n", data[off-1]) >= 0 {
		off--
	}
	if off == 0 || data[off-1] != '[' {
		return keyPosition{}, false
	}
	sh := ks.p.Shape(unstable.Range{Offset: uint32(off - 1)})
	return keyPosition{line: sh.Start.Line, col: sh.Start.Column}, true
}

func (ks *keyScan) keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// resolve puts the element index after every part of a header's parent that is an array of
// tables: [storage.x] after [[storage]] is in the last storage element.
func (ks *keyScan) resolve(parts []string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p)
		if n, ok := ks.arrays[joinPath(out)]; ok {
			out = elemPath(out, n)
		}
	}
	return out
}

// keyValue records "key = value" inside table, and what its value holds.
func (ks *keyScan) keyValue(table []string, kv *unstable.Node) {
	first := kv.Key()
	if !first.Next() {
		return
	}
	path := subPath(table, ks.keyParts(kv.Key())...)
	ks.record(path, ks.at(first.Node()))
	ks.value(path, kv.Value())
}

func (ks *keyScan) value(path []string, v *unstable.Node) {
	switch v.Kind {
	case unstable.Array:
		n := 0
		for it := v.Children(); it.Next(); {
			e := it.Node()
			if e.Kind == unstable.Comment {
				continue
			}
			ep := elemPath(path, n)
			if e.Kind != unstable.Array {
				ks.record(ep, ks.at(e))
			} else if at, ok := ks.arrayStart(e); ok {
				ks.record(ep, at)
			}
			ks.value(ep, e)
			n++
		}
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				ks.keyValue(path, c)
			}
		}
	}
}
