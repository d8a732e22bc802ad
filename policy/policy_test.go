package policy

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"
)

const (
	policyFixtures   = "../testdata/policy"
	policySamplePath = "../install/policy.toml"
	policyDocPath    = "../docs/policy.md"
)

// policyErrors returns the *Errors of a Parse or Load error, failing the test on anything else.
func policyErrors(t testing.TB, err error) []*Error {
	t.Helper()
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []*Error
	for _, e := range errs {
		pe, ok := e.(*Error)
		if !ok {
			t.Fatalf("error %q is a %T, want *policy.Error", e, e)
		}
		out = append(out, pe)
	}
	return out
}

func readPolicyFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDefaultIsDocumented(t *testing.T) {
	// The defaults as docs/policy.md states them; TestDocsMatchDefaults keeps the page honest.
	want := &Policy{
		Host: Host{
			Enabled:        true,
			AcceptIncoming: true,
			OnError:        "refuse",
			Enforce:        "warn",
			DefaultPool:    "",
			SysfsRoot:      "/sys",
		},
		Standby: Standby{Network: "default"},
		Pools:   map[string]Pool{},
		Storage: nil,
		Rewrite: Rewrite{Networks: map[string]string{}, Bridges: map[string]string{}},
		Lint:    Lint{},
		State:   State{Dir: "/var/lib/virt-failover", ClaimTTL: 10 * time.Minute, LockTimeout: 5 * time.Second},
		Log:     Log{File: "/var/log/libvirt/virt-failover.log"},
		Orchestrate: Orchestrate{Replug: "auto", Connect: "qemu:///system",
			ReplugTimeout: 60 * time.Second, UnplugTimeout: 30 * time.Second},
		Watch: Watch{Listen: "127.0.0.1:9478", DegradedAfter: 10 * time.Minute},
	}
	if diff := cmp.Diff(want, Default()); diff != "" {
		t.Errorf("Default() (-want +got):\n%s", diff)
	}
	if DefaultPath != "/etc/virt-failover/policy.toml" {
		t.Errorf("DefaultPath = %q", DefaultPath)
	}
	// Each call is a fresh value: a caller's change does not leak into the next.
	Default().Pools["x"] = Pool{}
	if len(Default().Pools) != 0 {
		t.Error("Default() shares its Pools map between calls")
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	for _, data := range []string{"", "\n", "# only a comment\n", "\ufeff"} {
		p, err := Parse("empty.toml", []byte(data))
		if err != nil {
			t.Fatalf("Parse(%q): %v", data, err)
		}
		want := Default()
		want.Source = "empty.toml"
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", data, diff)
		}
	}
}

func TestSampleIsDefault(t *testing.T) {
	p, err := Parse("policy.toml", readPolicyFile(t, policySamplePath))
	if err != nil {
		t.Fatalf("install/policy.toml: %v", err)
	}
	want := Default()
	want.Source = "policy.toml"
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("install/policy.toml does not give Default() (-want +got):\n%s", diff)
	}
}

// TestSampleListsEveryKey checks that install/policy.toml shows every key of the schema, as a
// line "key = ..." or "# key = ...", and every table header.
func TestSampleListsEveryKey(t *testing.T) {
	sample := string(readPolicyFile(t, policySamplePath))
	for _, e := range schema {
		table, keys := e.table, e.keys
		for _, k := range keys {
			var re *regexp.Regexp
			switch table {
			case "":
				re = regexp.MustCompile(`(?m)^(# )?\[\[?` + regexp.QuoteMeta(k) + `[.\]]`)
			case "rewrite":
				re = regexp.MustCompile(`(?m)^(# )?\[rewrite\.` + regexp.QuoteMeta(k) + `\]`)
			default:
				re = regexp.MustCompile(`(?m)^(# )?` + regexp.QuoteMeta(k) + ` = `)
			}
			if !re.MatchString(sample) {
				t.Errorf("install/policy.toml does not show %s key %q", schemaTableLabel(table), k)
			}
		}
	}
}

func schemaTableLabel(table string) string {
	if table == "" {
		return "top-level"
	}
	return "[" + table + "]"
}

// TestDocsMatchDefaults reads the key tables of docs/policy.md: every key of the schema has a row,
// every row is a key of the schema, and the Default column is Default()'s value.
func TestDocsMatchDefaults(t *testing.T) {
	f, err := os.Open(policyDocPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	heading := regexp.MustCompile("^## `\\[\\[?([a-z.A-Z]+)\\]\\]?`")
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| ([a-z ]+) \\| ([^|]+) \\| ([^|]+) \\|")
	documented := map[string]bool{}
	table := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := heading.FindStringSubmatch(line); m != nil {
			table = strings.Replace(m[1], "pools.NAME", "pools.*", 1)
			continue
		}
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key, typ, def, status := m[1], m[2], strings.TrimSpace(m[3]), strings.TrimSpace(m[4])
		full := table + "." + key
		if !slices.Contains(schemaKeys(table), key) {
			t.Errorf("docs/policy.md documents %s, which is not in the schema", full)
			continue
		}
		documented[full] = true
		if status == "" {
			t.Errorf("docs/policy.md: %s has no status", full)
		}
		want, ok := defaultsByKey[full]
		if !ok {
			t.Errorf("test table defaultsByKey has no %s", full)
			continue
		}
		if def == "required" {
			if want != nil {
				t.Errorf("docs/policy.md: %s is documented as required but has default %v", full, want)
			}
			continue
		}
		var v struct{ V any }
		if err := toml.Unmarshal([]byte("V = "+strings.Trim(def, "`")), &v); err != nil {
			t.Errorf("docs/policy.md: %s default %s is not a TOML value: %v", full, def, err)
			continue
		}
		got := v.V
		if s, ok := got.(string); ok && isDuration(want) {
			d, err := time.ParseDuration(s)
			if err != nil {
				t.Errorf("docs/policy.md: %s default %s: %v", full, def, err)
			}
			got = d
		}
		if !cmp.Equal(want, got) {
			t.Errorf("docs/policy.md: %s default is %s (%#v); Default() has %#v", full, def, got, want)
		}
		if wantType := tomlTypeOf(want); typ != wantType {
			t.Errorf("docs/policy.md: %s has type %q, want %q", full, typ, wantType)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, e := range schema {
		table, keys := e.table, e.keys
		if table == "" {
			continue
		}
		for _, k := range keys {
			if !documented[table+"."+k] {
				t.Errorf("docs/policy.md has no row for %s key %q", schemaTableLabel(table), k)
			}
		}
	}
}

// defaultsByKey is the value of every schema key in Default(), as TOML decodes it (arrays as []any,
// tables as map[string]any); nil for a key that has no default because it is required.
var defaultsByKey = func() map[string]any {
	d := Default()
	strs := func(s []string) []any {
		out := []any{}
		for _, x := range s {
			out = append(out, x)
		}
		return out
	}
	table := func(m map[string]string) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	var empty Pool
	return map[string]any{
		"host.enabled":               d.Host.Enabled,
		"host.accept_incoming":       d.Host.AcceptIncoming,
		"host.on_error":              d.Host.OnError,
		"host.enforce":               d.Host.Enforce,
		"host.default_pool":          d.Host.DefaultPool,
		"host.sysfs_root":            d.Host.SysfsRoot,
		"standby.network":            d.Standby.Network,
		"standby.bridge":             d.Standby.Bridge,
		"pools.*.pf":                 strs(empty.PF),
		"pools.*.addresses":          strs(empty.Addresses),
		"pools.*.networks":           strs(empty.Networks),
		"storage.device":             nil,
		"storage.lun":                nil,
		"rewrite.networks":           table(d.Rewrite.Networks),
		"rewrite.bridges":            table(d.Rewrite.Bridges),
		"lint.require_migratable":    d.Lint.RequireMigratable,
		"lint.standby_networks":      strs(d.Lint.StandbyNetworks),
		"lint.disable":               strs(d.Lint.Disable),
		"state.dir":                  d.State.Dir,
		"state.claim_ttl":            d.State.ClaimTTL,
		"state.lock_timeout":         d.State.LockTimeout,
		"log.file":                   d.Log.File,
		"orchestrate.replug":         d.Orchestrate.Replug,
		"orchestrate.connect":        d.Orchestrate.Connect,
		"orchestrate.replug_timeout": d.Orchestrate.ReplugTimeout,
		"orchestrate.unplug_timeout": d.Orchestrate.UnplugTimeout,
		"watch.listen":               d.Watch.Listen,
		"watch.degraded_after":       d.Watch.DegradedAfter,
	}
}()

func isDuration(v any) bool {
	_, ok := v.(time.Duration)
	return ok
}

func tomlTypeOf(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case []any:
		return "array of strings"
	case map[string]any:
		return "table of strings"
	}
	return "string" // strings, and durations written as strings
}

func TestParseFull(t *testing.T) {
	p, err := Parse("full.toml", readPolicyFile(t, filepath.Join(policyFixtures, "full.toml")))
	if err != nil {
		t.Fatalf("full.toml: %v", err)
	}
	want := &Policy{
		Host: Host{
			Enabled:        false,
			AcceptIncoming: false,
			OnError:        OnErrorPass,
			Enforce:        EnforceRefuse,
			DefaultPool:    "fabric",
			SysfsRoot:      "/tmp/sysfs",
		},
		Standby: Standby{Bridge: "br-standby"},
		Pools: map[string]Pool{
			"fabric": {
				PF:        []string{"enp3s0f0", "enp3s0f1"},
				Addresses: []string{"0000:03:02.0", "0000:0a:1f.7"},
			},
			"rack-2.nets": {Networks: []string{"fabric-c", "br-fabric"}},
		},
		Storage: []Storage{
			{Device: "0000:81:00.0", LUN: "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"},
			{Device: "0000:82:00.0", LUN: "/dev/disk/by-id/wwn-0x5000c500a1b2c3d5"},
		},
		Rewrite: Rewrite{
			Networks: map[string]string{"fabric-a": "fabric-b", "default": "standby-net"},
			Bridges:  map[string]string{"br-a": "br-b"},
		},
		Lint: Lint{
			RequireMigratable: true,
			StandbyNetworks:   []string{"default", "br-standby"},
			Disable:           []string{"VF003", "VF010"},
		},
		State: State{Dir: "/srv/virt-failover", ClaimTTL: 90 * time.Minute, LockTimeout: 5 * time.Second},
		Log:   Log{File: "/var/log/virt-failover/hook.log"},
		Orchestrate: Orchestrate{Replug: ReplugOff, Connect: "qemu+ssh://root@host-a/system?socket=/run/libvirt/libvirt-sock",
			ReplugTimeout: 2 * time.Minute, UnplugTimeout: 45 * time.Second},
		Watch:  Watch{Listen: "192.0.2.7:9100", DegradedAfter: 30 * time.Minute},
		Source: "full.toml",
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("full.toml (-want +got):\n%s", diff)
	}
}

// roundTripCases set one key each (or a few that belong together) and say what changes from
// Default(). TestRoundTripCoversSchema checks that together they set every key of the schema.
var roundTripCases = []struct {
	name   string
	toml   string
	change func(p *Policy)
}{
	{"host-enabled", "[host]\nenabled = false\n", func(p *Policy) { p.Host.Enabled = false }},
	{"host-accept-incoming", "[host]\naccept_incoming = false\n", func(p *Policy) { p.Host.AcceptIncoming = false }},
	{"host-on-error-pass", "[host]\non_error = \"pass\"\n", func(p *Policy) { p.Host.OnError = OnErrorPass }},
	{"host-on-error-refuse", "[host]\non_error = \"refuse\"\n", func(p *Policy) {}},
	{"host-enforce-off", "[host]\nenforce = \"off\"\n", func(p *Policy) { p.Host.Enforce = EnforceOff }},
	{"host-enforce-refuse", "[host]\nenforce = \"refuse\"\n", func(p *Policy) { p.Host.Enforce = EnforceRefuse }},
	{"host-default-pool-names-a-pool", "[host]\ndefault_pool = \"a\"\n[pools.a]\npf = [\"eth0\"]\n", func(p *Policy) {
		p.Host.DefaultPool = "a"
		p.Pools["a"] = Pool{PF: []string{"eth0"}}
	}},
	{"host-sysfs-root", "[host]\nsysfs_root = \"/tmp/fake-sys\"\n", func(p *Policy) { p.Host.SysfsRoot = "/tmp/fake-sys" }},
	{"standby-network", "[standby]\nnetwork = \"standby\"\n", func(p *Policy) { p.Standby.Network = "standby" }},
	{"standby-bridge-replaces-default-network", "[standby]\nbridge = \"br0\"\n", func(p *Policy) { p.Standby = Standby{Bridge: "br0"} }},
	{"standby-empty-network-with-bridge", "[standby]\nnetwork = \"\"\nbridge = \"br0\"\n", func(p *Policy) { p.Standby = Standby{Bridge: "br0"} }},
	{"pool-pf", "[pools.p]\npf = [\"enp3s0f0\", \"eno1\"]\n", func(p *Policy) { p.Pools["p"] = Pool{PF: []string{"enp3s0f0", "eno1"}} }},
	{"pool-addresses-lowercased", "[pools.p]\naddresses = [\"0000:AF:1F.7\"]\n", func(p *Policy) { p.Pools["p"] = Pool{Addresses: []string{"0000:af:1f.7"}} }},
	{"pool-networks", "[pools.p]\nnetworks = [\"fabric-a\"]\n", func(p *Policy) { p.Pools["p"] = Pool{Networks: []string{"fabric-a"}} }},
	{"pool-empty-arrays-are-nil", "[pools.p]\npf = []\naddresses = []\nnetworks = []\n", func(p *Policy) { p.Pools["p"] = Pool{} }},
	{"pool-name-with-dot-and-underscore", "[pools.\"a.b_c-1\"]\npf = [\"eth0\"]\n", func(p *Policy) { p.Pools["a.b_c-1"] = Pool{PF: []string{"eth0"}} }},
	{"storage-entries-in-order", "[[storage]]\ndevice = \"0000:81:00.0\"\nlun = \"/dev/a\"\n[[storage]]\ndevice = \"0000:81:00.1\"\nlun = \"/dev/b\"\n", func(p *Policy) {
		p.Storage = []Storage{{"0000:81:00.0", "/dev/a"}, {"0000:81:00.1", "/dev/b"}}
	}},
	{"storage-inline-array", "storage = [{ device = \"0000:81:00.0\", lun = \"/dev/a\" }]\n", func(p *Policy) {
		p.Storage = []Storage{{"0000:81:00.0", "/dev/a"}}
	}},
	{"storage-device-lowercased", "[[storage]]\ndevice = \"0000:8A:00.0\"\nlun = \"/dev/a\"\n", func(p *Policy) { p.Storage = []Storage{{"0000:8a:00.0", "/dev/a"}} }},
	{"storage-empty-array", "storage = []\n", func(p *Policy) {}},
	{"rewrite-networks", "[rewrite.networks]\n\"fabric-a\" = \"fabric-b\"\n", func(p *Policy) { p.Rewrite.Networks["fabric-a"] = "fabric-b" }},
	{"rewrite-bridges", "[rewrite.bridges]\n\"br-a\" = \"br-b\"\n", func(p *Policy) { p.Rewrite.Bridges["br-a"] = "br-b" }},
	{"rewrite-chain-is-one-step", "[rewrite.networks]\na = \"b\"\nb = \"c\"\n", func(p *Policy) { p.Rewrite.Networks["a"], p.Rewrite.Networks["b"] = "b", "c" }},
	{"lint-require-migratable", "[lint]\nrequire_migratable = true\n", func(p *Policy) { p.Lint.RequireMigratable = true }},
	{"lint-standby-networks", "[lint]\nstandby_networks = [\"default\", \"br0\"]\n", func(p *Policy) { p.Lint.StandbyNetworks = []string{"default", "br0"} }},
	{"lint-disable", "[lint]\ndisable = [\"VF003\", \"VF999\"]\n", func(p *Policy) { p.Lint.Disable = []string{"VF003", "VF999"} }},
	{"state-dir", "[state]\ndir = \"/run/vf\"\n", func(p *Policy) { p.State.Dir = "/run/vf" }},
	{"state-claim-ttl", "[state]\nclaim_ttl = \"90s\"\n", func(p *Policy) { p.State.ClaimTTL = 90 * time.Second }},
	{"state-lock-timeout", "[state]\nlock_timeout = \"2s\"\n", func(p *Policy) { p.State.LockTimeout = 2 * time.Second }},
	{"log-file", "[log]\nfile = \"/tmp/vf.log\"\n", func(p *Policy) { p.Log.File = "/tmp/vf.log" }},
	{"orchestrate-replug-off", "[orchestrate]\nreplug = \"off\"\n", func(p *Policy) { p.Orchestrate.Replug = ReplugOff }},
	{"orchestrate-replug-auto", "[orchestrate]\nreplug = \"auto\"\n", func(p *Policy) {}},
	{"orchestrate-connect-socket", "[orchestrate]\nconnect = \"qemu:///system?socket=/run/libvirt/virtqemud-sock\"\n", func(p *Policy) {
		p.Orchestrate.Connect = "qemu:///system?socket=/run/libvirt/virtqemud-sock"
	}},
	{"orchestrate-connect-tcp", "[orchestrate]\nconnect = \"qemu+tcp://192.0.2.1/system\"\n", func(p *Policy) {
		p.Orchestrate.Connect = "qemu+tcp://192.0.2.1/system"
	}},
	{"orchestrate-replug-timeout", "[orchestrate]\nreplug_timeout = \"90s\"\n", func(p *Policy) { p.Orchestrate.ReplugTimeout = 90 * time.Second }},
	{"orchestrate-unplug-timeout", "[orchestrate]\nunplug_timeout = \"1m\"\n", func(p *Policy) { p.Orchestrate.UnplugTimeout = time.Minute }},
	{"watch-listen", "[watch]\nlisten = \"[::1]:9100\"\n", func(p *Policy) { p.Watch.Listen = "[::1]:9100" }},
	{"watch-degraded-after", "[watch]\ndegraded_after = \"30m\"\n", func(p *Policy) { p.Watch.DegradedAfter = 30 * time.Minute }},
	{"dotted-keys", "host.enabled = false\nlog.file = \"/tmp/vf.log\"\n", func(p *Policy) {
		p.Host.Enabled = false
		p.Log.File = "/tmp/vf.log"
	}},
	{"inline-tables", "standby = { bridge = \"br0\" }\npools = { p = { pf = [\"eth0\"] } }\n", func(p *Policy) {
		p.Standby = Standby{Bridge: "br0"}
		p.Pools["p"] = Pool{PF: []string{"eth0"}}
	}},
}

func TestParseRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("policy.toml", []byte(tc.toml))
			if err != nil {
				for _, e := range policyErrors(t, err) {
					t.Errorf("%v (hint: %s)", e, e.Hint)
				}
				return
			}
			want := Default()
			want.Source = "policy.toml"
			tc.change(want)
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTripCoversSchema(t *testing.T) {
	set := map[string]bool{}
	for _, tc := range roundTripCases {
		var raw any
		if err := toml.Unmarshal([]byte(tc.toml), &raw); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, k := range decodedKeys(nil, raw) {
			if len(k) >= 2 && k[0] == "pools" {
				k = append([]string{"pools", "*"}, k[2:]...)
			}
			if len(k) >= 3 && k[0] == "rewrite" {
				k = k[:2]
			}
			set[strings.Join(k, ".")] = true
		}
	}
	for _, e := range schema {
		table, keys := e.table, e.keys
		if table == "" {
			continue
		}
		for _, k := range keys {
			if !set[table+"."+k] {
				t.Errorf("no round-trip case sets %s key %q", schemaTableLabel(table), k)
			}
		}
	}
}

type wantPolicyError struct {
	at   string // "file:line:col"
	msg  string // substring of the message
	hint string // substring of the hint; "" for no check
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // a fixture under testdata/policy; or "" for toml
		toml string
		want []wantPolicyError
	}{
		// Syntax.
		{name: "syntax-error-has-line-and-column", file: "bad-syntax.toml", want: []wantPolicyError{
			{"bad-syntax.toml:3:19", "invalid TOML: basic strings cannot have new lines", ""},
		}},
		{name: "syntax-error-bare-word", toml: "[host]\nenabled = tru\n", want: []wantPolicyError{
			{"policy.toml:2:11", "invalid TOML", ""},
		}},
		{name: "duplicate-key-is-a-syntax-error", toml: "[host]\nenabled = true\nenabled = false\n", want: []wantPolicyError{
			{"policy.toml:3:1", "invalid TOML: key enabled is already defined", "only once"},
		}},
		{name: "duplicate-table-is-a-syntax-error", toml: "[host]\n[log]\n[host]\n", want: []wantPolicyError{
			{"policy.toml:3:", "table host already exists", "only once"},
		}},

		// Unknown keys and tables.
		{name: "unknown-keys-in-file-order", file: "bad-unknown.toml", want: []wantPolicyError{
			{"bad-unknown.toml:2:1", "unknown top-level key 'enabled'", "'enabled' is a key of [host]"},
			{"bad-unknown.toml:5:1", "unknown key 'enable' in [host]", "did you mean 'enabled'?"},
			{"bad-unknown.toml:6:1", "unknown key 'on_eror' in [host]", "did you mean 'on_error'?"},
			{"bad-unknown.toml:7:1", "unknown key 'Enforce' in [host]", "did you mean 'enforce'?"},
			{"bad-unknown.toml:9:1", "unknown table [hosts]", "did you mean 'host'?"},
			{"bad-unknown.toml:13:1", "unknown key 'pfs' in [pools.fabric]", "did you mean 'pf'?"},
			{"bad-unknown.toml:18:1", "unknown key 'path' in [[storage]]", "the keys here are device, lun"},
			{"bad-unknown.toml:20:1", "unknown table [rewrite.network]", "did you mean 'networks'?"},
			{"bad-unknown.toml:24:1", "unknown key 'claim-ttl' in [state]", "did you mean 'claim_ttl'?"},
			{"bad-unknown.toml:25:1", "unknown key 'colour' in [state]", "the keys here are dir, claim_ttl"},
		}},
		{name: "unknown-key-with-no-close-match", toml: "[log]\nlevel = \"debug\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", "unknown key 'level' in [log]", "the keys here are file"},
		}},
		{name: "key-of-another-table", toml: "[state]\nsysfs_root = \"/sys\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", "unknown key 'sysfs_root' in [state]", "'sysfs_root' is a key of [host]"},
		}},
		{name: "unknown-key-in-inline-table-has-its-column", toml: "standby = { network = \"default\", bridg = \"x\" }\n", want: []wantPolicyError{
			{"policy.toml:1:34", "unknown key 'bridg' in [standby]", "did you mean 'bridge'?"},
		}},
		{name: "unknown-dotted-key", toml: "host.enabld = true\n", want: []wantPolicyError{
			{"policy.toml:1:1", "unknown key 'enabld' in [host]", "did you mean 'enabled'?"},
		}},
		{name: "pool-name-like-an-array-element", toml: "[pools.\"#0\"]\n", want: []wantPolicyError{
			{"policy.toml:1:1", `pool name "#0" has characters other than`, ""},
		}},
		{name: "keys-are-case-sensitive", toml: "[Host]\nEnabled = false\n", want: []wantPolicyError{
			{"policy.toml:1:1", "unknown table [Host]", "did you mean 'host'?"},
		}},
		{name: "unknown-key-and-wrong-type-reported-together", toml: "[host]\nenable = true\n[state]\nclaim_ttl = 10\n", want: []wantPolicyError{
			{"policy.toml:2:1", "unknown key 'enable' in [host]", "did you mean 'enabled'?"},
			{"policy.toml:4:1", `[state] claim_ttl must be a duration string like "10m", not an integer`, `claim_ttl = "10m"`},
		}},
		{name: "unknown-sub-table-of-a-pool", toml: "[pools.a]\npf = [\"eth0\"]\n[pools.a.extra]\nx = 1\n", want: []wantPolicyError{
			{"policy.toml:3:1", "unknown table [pools.a.extra]", ""},
		}},

		// Types.
		{name: "wrong-types-in-file-order", file: "bad-types.toml", want: []wantPolicyError{
			{"bad-types.toml:2:1", `[host] enabled must be a boolean (true or false), not a string`, "enabled = true or enabled = false"},
			{"bad-types.toml:3:1", `[host] accept_incoming must be a boolean (true or false), not an integer`, ""},
			{"bad-types.toml:4:1", `[host] on_error must be a string, not a boolean`, `on_error = "..."`},
			{"bad-types.toml:7:1", `[standby] network must be a string, not an array`, ""},
			{"bad-types.toml:10:1", `[pools] fabric must be a table, not an array`, "[pools.fabric]"},
			{"bad-types.toml:13:1", `[pools.other] pf must be an array of strings, not a string`, `pf = ["..."]`},
			{"bad-types.toml:14:30", `[pools.other] addresses must be an array of strings; element 2 is an integer`, "quote"},
			{"bad-types.toml:16:1", `storage must be an array of tables ([[storage]]), not a table`, "[[storage]]"},
			{"bad-types.toml:20:1", `[rewrite.networks] a must be a string, not an integer`, ""},
			{"bad-types.toml:23:1", `[lint] require_migratable must be a boolean (true or false), not a string`, ""},
			{"bad-types.toml:24:1", `[lint] disable must be an array of strings, not a string`, ""},
			{"bad-types.toml:27:1", `[state] claim_ttl must be a duration string like "10m", not an integer`, `claim_ttl = "10m"`},
			{"bad-types.toml:28:1", `[state] dir must be a string, not a date`, ""},
			{"bad-types.toml:31:1", `[log] file must be a string, not a float`, ""},
		}},
		{name: "table-given-a-value", toml: "host = true\n", want: []wantPolicyError{
			{"policy.toml:1:1", "host must be a table, not a boolean", "[host]"},
		}},
		{name: "rewrite-given-a-value", toml: "[rewrite]\nnetworks = \"a\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", "[rewrite] networks must be a table, not a string", "[rewrite.networks]"},
		}},
		{name: "storage-element-not-a-table", toml: "storage = [\"0000:81:00.0\"]\n", want: []wantPolicyError{
			{"policy.toml:1:12", "storage entry 1 must be a table, not a string", "[[storage]]"},
		}},

		// Values.
		{name: "bad-values-in-file-order", file: "bad-values.toml", want: []wantPolicyError{
			{"bad-values.toml:2:1", `[host] on_error must be refuse or pass, not "ignore"`, "pass lets the definition through"},
			{"bad-values.toml:3:1", `[host] enforce must be off, warn or refuse, not "strict"`, "warn logs"},
			{"bad-values.toml:4:1", `[host] default_pool "fabrik" names no pool in [pools]`, "did you mean 'fabric'?"},
			{"bad-values.toml:5:1", `[host] sysfs_root must be an absolute path, not "sys"`, "starting with /"},
			{"bad-values.toml:9:1", "[standby] sets both network and bridge", "keep network"},
			{"bad-values.toml:11:1", `pool name "bad name" has characters other than letters, digits`, "[pools.fabric-a]"},
			{"bad-values.toml:12:7", `[pools."bad name"] pf: "enp3s0f0/1" is not an interface name: it has '/'`, "1 to 15 characters"},
			{"bad-values.toml:12:21", `"a-very-long-interface-name" is not an interface name: it is 26 bytes long; Linux allows 15`, ""},
			{"bad-values.toml:12:51", `"" is not an interface name: it is empty`, ""},
			{"bad-values.toml:13:14", `[pools."bad name"] addresses: "03:02.0" is not a full PCI address`, "DDDD:BB:SS.F in hex"},
			{"bad-values.toml:13:25", `"0000:03:20.0" is not a full PCI address`, ""},
			{"bad-values.toml:13:41", `"0000:03:02.8" is not a full PCI address`, ""},
			{"bad-values.toml:16:13", `[pools.fabric] networks: "fab/ric" is not a network or bridge name`, ""},
			{"bad-values.toml:19:1", `[[storage]] device: "81:00.0" is not a full PCI address`, `"0000:03:02.1"`},
			{"bad-values.toml:20:1", `[[storage]] lun must be an absolute path, not "dev/sdb"`, ""},
			{"bad-values.toml:22:1", "[[storage]] entry has no device", `device = "DDDD:BB:SS.F"`},
			{"bad-values.toml:26:1", `[rewrite.networks] maps "same" to itself`, "needs no rewrite"},
			{"bad-values.toml:27:1", `[rewrite.networks] maps "gone" to an empty name`, ""},
			{"bad-values.toml:30:1", `[rewrite.bridges] br-a: "br with space" is not an interface name`, ""},
			{"bad-values.toml:33:12", `[lint] disable: "VF3" is not a rule ID`, `"VF003"`},
			{"bad-values.toml:33:19", `[lint] disable: "vf003" is not a rule ID`, ""},
			{"bad-values.toml:34:21", `[lint] standby_networks: "" is not a network or bridge name`, ""},
			{"bad-values.toml:37:1", `[state] dir must be an absolute path, not "var/lib/virt-failover"`, ""},
			{"bad-values.toml:38:1", `[state] claim_ttl must be positive, not "-5m"`, ""},
			{"bad-values.toml:41:1", `[log] file must be an absolute path, not "virt-failover.log"`, ""},
		}},
		{name: "standby-table-with-neither", toml: "[standby]\n", want: []wantPolicyError{
			{"policy.toml:1:1", "[standby] sets neither network nor bridge", `network = "default"`},
		}},
		{name: "standby-both-empty", toml: "[log]\n\n[standby]\nnetwork = \"\"\nbridge = \"\"\n", want: []wantPolicyError{
			{"policy.toml:3:1", "[standby] sets neither network nor bridge", ""},
		}},
		{name: "standby-bridge-too-long", toml: "[standby]\nbridge = \"br-standby-network\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[standby] bridge: "br-standby-network" is not an interface name: it is 18 bytes long`, ""},
		}},
		{name: "pf-dot-dot", toml: "[pools.a]\npf = [\"..\"]\n", want: []wantPolicyError{
			{"policy.toml:2:7", `".." is not an interface name: Linux reserves it`, ""},
		}},
		{name: "pf-with-colon", toml: "[pools.a]\npf = [\"eth0:1\"]\n", want: []wantPolicyError{
			{"policy.toml:2:7", `"eth0:1" is not an interface name`, ""},
		}},
		{name: "address-with-non-hex", toml: "[pools.a]\naddresses = [\"0000:0g:02.0\"]\n", want: []wantPolicyError{
			{"policy.toml:2:14", `"0000:0g:02.0" is not a full PCI address`, ""},
		}},
		{name: "address-with-spaces", toml: "[pools.a]\naddresses = [\" 0000:03:02.0\"]\n", want: []wantPolicyError{
			{"policy.toml:2:14", `" 0000:03:02.0" is not a full PCI address`, ""},
		}},
		{name: "default-pool-without-pools", toml: "[host]\ndefault_pool = \"fabric\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[host] default_pool "fabric" names no pool in [pools]`, "define [pools.fabric], or leave default_pool empty"},
		}},
		{name: "storage-entry-without-keys", toml: "[[storage]]\n", want: []wantPolicyError{
			{"policy.toml:1:1", "[[storage]] entry has no device", ""},
			{"policy.toml:1:1", "[[storage]] entry has no lun", "/dev/disk/by-id/"},
		}},
		{name: "rewrite-empty-key", toml: "[rewrite.networks]\n\"\" = \"b\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", "[rewrite.networks] has an empty key", ""},
		}},
		{name: "rewrite-bridge-to-itself", toml: "[rewrite.bridges]\nbr0 = \"br0\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[rewrite.bridges] maps "br0" to itself`, ""},
		}},
		{name: "lock-timeout-zero", toml: "[state]\nlock_timeout = \"0s\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[state] lock_timeout must be positive, not "0s"`, `"5s" is the default`},
		}},
		{name: "watch-listen-no-port", toml: "[watch]\nlisten = \"localhost\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[watch] listen: "localhost" is not an address to listen on`, "HOST:PORT"},
		}},
		{name: "watch-degraded-after-zero", toml: "[watch]\ndegraded_after = \"0s\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[watch] degraded_after must be positive, not "0s"`, "emulated devices"},
		}},
		{name: "orchestrate-replug-unknown", toml: "[orchestrate]\nreplug = \"always\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[orchestrate] replug must be auto or off, not "always"`, "auto starts a replug worker"},
		}},
		{name: "orchestrate-replug-boolean", toml: "[orchestrate]\nreplug = true\n", want: []wantPolicyError{
			{"policy.toml:2:1", "[orchestrate] replug must be a string, not a boolean", `replug = "..."`},
		}},
		{name: "orchestrate-connect-not-a-uri", toml: "[orchestrate]\nconnect = \"system\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[orchestrate] connect: "system" is not a libvirt URI: it has no DRIVER:// part`, "qemu:///system"},
		}},
		{name: "orchestrate-connect-without-path", toml: "[orchestrate]\nconnect = \"qemu://\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[orchestrate] connect: "qemu://" is not a libvirt URI: it has no path`, ""},
		}},
		{name: "orchestrate-connect-bad-driver", toml: "[orchestrate]\nconnect = \"1qemu:///system\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[orchestrate] connect: "1qemu:///system" is not a libvirt URI: "1qemu" is not a driver name`, ""},
		}},
		{name: "orchestrate-connect-with-space", toml: "[orchestrate]\nconnect = \"qemu:///system \"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[orchestrate] connect: "qemu:///system " is not a libvirt URI: it has whitespace`, ""},
		}},
		{name: "orchestrate-connect-empty", toml: "[orchestrate]\nconnect = \"\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[orchestrate] connect: "" is not a libvirt URI: it is empty`, ""},
		}},
		{name: "orchestrate-timeouts", toml: "[orchestrate]\nreplug_timeout = \"0s\"\nunplug_timeout = 30\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[orchestrate] replug_timeout must be positive, not "0s"`, `"60s" is the default`},
			{"policy.toml:3:1", `[orchestrate] unplug_timeout must be a duration string like "30s", not an integer`, `unplug_timeout = "30s"`},
		}},
		{name: "orchestrate-unknown-key", toml: "[orchestrate]\nreplug_timout = \"1m\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", "unknown key 'replug_timout' in [orchestrate]", "did you mean 'replug_timeout'?"},
		}},
		{name: "claim-ttl-zero", toml: "[state]\nclaim_ttl = \"0s\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[state] claim_ttl must be positive, not "0s"`, ""},
		}},
		{name: "claim-ttl-not-a-duration", toml: "[state]\nclaim_ttl = \"10 minutes\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[state] claim_ttl: "10 minutes" is not a duration`, `"10m"`},
		}},
		{name: "claim-ttl-without-unit", toml: "[state]\nclaim_ttl = \"10\"\n", want: []wantPolicyError{
			{"policy.toml:2:1", `[state] claim_ttl: "10" is not a duration`, ""},
		}},

		// Duplicates and conflicts.
		{name: "conflicts-in-file-order", file: "bad-conflicts.toml", want: []wantPolicyError{
			{"bad-conflicts.toml:9:7", `[pools.b] pf: "enp3s0f0" is already in pool 'a' (line 4)`, "one pool"},
			{"bad-conflicts.toml:12:3", `[pools.b] addresses: "0000:03:02.0" is already in pool 'a' (line 5)`, ""},
			{"bad-conflicts.toml:13:3", `[pools.b] addresses: "0000:03:02.2" is listed twice (first at line 11)`, "list it once"},
			{"bad-conflicts.toml:22:1", "[[storage]] device 0000:8a:00.0 is already listed at line 18", "once"},
			{"bad-conflicts.toml:26:1", `[rewrite.networks] maps "fabric-b", a network of pool 'b' (line 15)`, `remove "fabric-b" from [rewrite.networks]`},
		}},
		{name: "same-network-in-two-pools", toml: "[pools.a]\nnetworks = [\"fab\"]\n[pools.b]\nnetworks = [\"fab\"]\n", want: []wantPolicyError{
			{"policy.toml:4:13", `[pools.b] networks: "fab" is already in pool 'a' (line 2)`, ""},
		}},
		{name: "same-address-in-two-pools-after-lowercasing", toml: "[pools.z]\naddresses = [\"0000:0A:00.1\"]\n[pools.a]\naddresses = [\"0000:0a:00.1\"]\n", want: []wantPolicyError{
			{"policy.toml:4:14", `[pools.a] addresses: "0000:0a:00.1" is already in pool 'z' (line 2)`, ""},
		}},
		{name: "same-address-in-three-pools", toml: "[pools.a]\naddresses = [\"0000:03:02.0\"]\n[pools.b]\naddresses = [\"0000:03:02.0\"]\n[pools.c]\naddresses = [\"0000:03:02.0\"]\n", want: []wantPolicyError{
			{"policy.toml:4:14", `[pools.b] addresses: "0000:03:02.0" is already in pool 'a' (line 2)`, ""},
			{"policy.toml:6:14", `[pools.c] addresses: "0000:03:02.0" is already in pool 'a' (line 2)`, ""},
		}},
		{name: "pool-network-is-a-rewrite-bridge", toml: "[pools.a]\nnetworks = [\"br-a\"]\n[rewrite.bridges]\nbr-a = \"br-b\"\n", want: []wantPolicyError{
			{"policy.toml:4:1", `[rewrite.bridges] maps "br-a", a network of pool 'a' (line 2)`, ""},
		}},
		{name: "network-in-two-pools-and-rewritten-is-reported-once-each", toml: "[pools.a]\nnetworks = [\"fab\"]\n[pools.b]\nnetworks = [\"fab\"]\n[rewrite.networks]\nfab = \"x\"\n", want: []wantPolicyError{
			{"policy.toml:4:13", `[pools.b] networks: "fab" is already in pool 'a' (line 2)`, ""},
			{"policy.toml:6:1", `[rewrite.networks] maps "fab", a network of pool 'a' (line 2)`, ""},
		}},
		{name: "storage-duplicate-in-inline-array", toml: "storage = [\n  { device = \"0000:81:00.0\", lun = \"/dev/a\" },\n  { device = \"0000:81:00.0\", lun = \"/dev/b\" },\n]\n", want: []wantPolicyError{
			{"policy.toml:3:5", "[[storage]] device 0000:81:00.0 is already listed at line 2", ""},
		}},

		// Positions survive what a line scanner would trip on.
		{name: "multi-line-string-hides-fake-keys", toml: "[log]\nfile = \"\"\"/var/log/x\n[host]\nenable = true\"\"\"\n[state]\ncolour = 1\n", want: []wantPolicyError{
			{"policy.toml:6:1", "unknown key 'colour' in [state]", ""},
		}},
		{name: "literal-multi-line-string-and-comments", toml: "# [host]\n[lint]\ndisable = [ # comment ]\n  '''VF001''', # , ]\n  \"VF02\",\n]\n", want: []wantPolicyError{
			{"policy.toml:5:3", `[lint] disable: "VF02" is not a rule ID`, ""},
		}},
		{name: "quoted-and-escaped-keys", toml: "[\"host\"]\n\"enabl\\u0065d\" = 1\n'on_error' = 'x'\n", want: []wantPolicyError{
			{"policy.toml:2:1", "[host] enabled must be a boolean", ""},
			{"policy.toml:3:1", `[host] on_error must be refuse or pass, not "x"`, ""},
		}},
		{name: "spaces-around-dots-and-crlf", toml: "[ pools . a ]\r\npf = [ \"eth0\" ,\r\n \"eth0\" ]\r\n", want: []wantPolicyError{
			{"policy.toml:3:2", `[pools.a] pf: "eth0" is listed twice (first at line 2)`, ""},
		}},
		{name: "byte-order-mark", toml: "\ufeff[host]\nenable = true\n", want: []wantPolicyError{
			{"policy.toml:2:1", "unknown key 'enable' in [host]", ""},
		}},
		{name: "tab-indented-key", toml: "[log]\n\tfile = \"x\"\n", want: []wantPolicyError{
			{"policy.toml:2:2", `[log] file must be an absolute path, not "x"`, ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, data := "policy.toml", []byte(tc.toml)
			if tc.file != "" {
				name, data = tc.file, readPolicyFile(t, filepath.Join(policyFixtures, tc.file))
			}
			p, err := Parse(name, data)
			if err == nil {
				t.Fatalf("Parse succeeded, want %d error(s)", len(tc.want))
			}
			if p != nil {
				t.Errorf("Parse returned a policy with its error")
			}
			got := policyErrors(t, err)
			for i := 0; i < max(len(got), len(tc.want)); i++ {
				switch {
				case i >= len(got):
					t.Errorf("missing error %d: %s: ...%s...", i+1, tc.want[i].at, tc.want[i].msg)
					continue
				case i >= len(tc.want):
					t.Errorf("unexpected error %d: %v (hint: %s)", i+1, got[i], got[i].Hint)
					continue
				}
				g, w := got[i], tc.want[i]
				if g.File != name {
					t.Errorf("error %d: File = %q, want %q", i+1, g.File, name)
				}
				if s := g.Error(); !strings.HasPrefix(s, w.at) || !strings.Contains(s, w.msg) {
					t.Errorf("error %d:\n got %s\nwant %s: ...%s...", i+1, s, w.at, w.msg)
				}
				if !strings.Contains(g.Hint, w.hint) {
					t.Errorf("error %d (%v): hint %q, want it to contain %q", i+1, g, g.Hint, w.hint)
				}
			}
		})
	}
}

// TestErrorsJoined checks the shape of the error: one problem is a bare *Error, several are
// joined, each an *Error that errors.As finds.
func TestErrorsJoined(t *testing.T) {
	_, err := Parse("one.toml", []byte("[host]\nenable = true\n"))
	if _, ok := err.(*Error); !ok {
		t.Errorf("one problem: error is a %T, want *Error", err)
	}
	_, err = Parse("two.toml", []byte("[host]\nenable = true\n[log]\nfile = \"x\"\n"))
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) != 2 {
		t.Fatalf("two problems: error %T %q, want two joined", err, err)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Errorf("errors.As finds %+v, want the first problem", pe)
	}
	if want := "two.toml:2:1: unknown key 'enable' in [host]\ntwo.toml:4:1: [log] file must be an absolute path, not \"x\""; err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"file-line-col", Error{File: "p.toml", Line: 3, Col: 7, Msg: "bad"}, "p.toml:3:7: bad"},
		{"no-col", Error{File: "p.toml", Line: 3, Msg: "bad"}, "p.toml:3: bad"},
		{"no-line", Error{File: "p.toml", Col: 7, Msg: "bad"}, "p.toml: bad"},
		{"no-file", Error{Line: 3, Col: 7, Msg: "bad"}, ":3:7: bad"},
		{"nothing-but-message", Error{Msg: "bad"}, "bad"},
		{"hint-is-not-in-the-message", Error{File: "p.toml", Line: 1, Msg: "bad", Hint: "fix it"}, "p.toml:1: bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("missing-file-gives-defaults", func(t *testing.T) {
		path := filepath.Join(dir, "absent.toml")
		p, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		want := Default()
		want.Source, want.Missing = path, true
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("empty-file-gives-defaults", func(t *testing.T) {
		path := write("empty.toml", "")
		p, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		want := Default()
		want.Source = path
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("file-is-read", func(t *testing.T) {
		path := write("off.toml", "[host]\nenabled = false\n")
		p, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if p.Host.Enabled || p.Source != path || p.Missing {
			t.Errorf("Load = %+v", p)
		}
	})
	t.Run("errors-name-the-path", func(t *testing.T) {
		path := write("bad.toml", "[host]\nenable = true\n")
		_, err := Load(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+":2:1: ") {
			t.Errorf("Load error = %v, want it to start with %s:2:1", err, path)
		}
	})
	t.Run("directory-is-an-error", func(t *testing.T) {
		p, err := Load(dir)
		if err == nil || p != nil {
			t.Errorf("Load(dir) = %v, %v; want an error", p, err)
		}
	})
	t.Run("parent-not-a-directory-is-an-error", func(t *testing.T) {
		// ENOTDIR, not ENOENT: something is wrong with the path, so the defaults do not apply.
		file := write("plain", "")
		if _, err := Load(filepath.Join(file, "policy.toml")); err == nil {
			t.Error("Load under a plain file succeeded, want an error")
		}
	})
	t.Run("unreadable-file-is-an-error", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads any file")
		}
		path := write("secret.toml", "")
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); !errors.Is(err, os.ErrPermission) {
			t.Errorf("Load = %v, want a permission error", err)
		}
	})
}

func TestNormalPCIAddress(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"0000:03:02.1", "0000:03:02.1", true},
		{"ABCD:EF:1F.7", "abcd:ef:1f.7", true},
		{"0000:03:1f.0", "0000:03:1f.0", true},
		{"0000:03:20.0", "", false}, // slot above 1f
		{"0000:03:02.8", "", false}, // function above 7
		{"03:02.1", "", false},
		{"0000:03:02:1", "", false},
		{"0000:03:02.10", "", false},
		{"0x00:03:02.1", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		got, ok := NormalPCIAddress(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalPCIAddress(%q) = %q, %t; want %q, %t", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestScanKeys(t *testing.T) {
	doc := "a = 1 # b = 2\n" +
		"s = \"\"\"\n[x]\nk = 1\"\"\"\"\n" +
		"[t . 'u.v']\n" +
		"arr = [ [1, 2], { in = 3 } ]\n" +
		"[[list]]\n" +
		"[[list]]\n" +
		"k = 'x'\n" +
		"[list.sub]\n" +
		"deep.er = 1\n"
	got := scanKeys([]byte(doc))
	key := func(parts ...string) string { return joinPath(parts) }
	e := func(i int) string { return elemMark + strconv.Itoa(i) }
	want := map[string]keyPosition{
		key("a"):                               {1, 1},
		key("s"):                               {2, 1},
		key("t"):                               {5, 1},
		key("t", "u.v"):                        {5, 1},
		key("t", "u.v", "arr"):                 {6, 1},
		key("t", "u.v", "arr", e(0)):           {6, 9},
		key("t", "u.v", "arr", e(0), e(1)):     {6, 13},
		key("t", "u.v", "arr", e(1)):           {6, 17},
		key("t", "u.v", "arr", e(1), "in"):     {6, 19},
		key("list"):                            {7, 1},
		key("list", e(0)):                      {7, 1},
		key("list", e(1)):                      {8, 1},
		key("list", e(1), "k"):                 {9, 1},
		key("list", e(1), "sub"):               {10, 1},
		key("list", e(1), "sub", "deep"):       {11, 1},
		key("list", e(1), "sub", "deep", "er"): {11, 1},
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("position of %q = %v (found %t), want %v", k, g, ok, w)
		}
	}
	for _, k := range []string{key("b"), key("x"), key("k"), key("x", "k")} {
		if g, ok := got[k]; ok {
			t.Errorf("found %q at %v inside a comment or string", k, g)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(policyFixtures, "*.toml"))
	files = append(files, policySamplePath)
	for _, file := range files {
		f.Add(readPolicyFile(f, file))
	}
	for _, tc := range roundTripCases {
		f.Add([]byte(tc.toml))
	}
	f.Add([]byte("[pools.\"#0\"]")) // a key that looked like an array element to an early scanner
	f.Fuzz(func(t *testing.T, data []byte) {
		positions := scanKeys(data) // must end, and not panic, on any input
		var raw any
		if err := toml.Unmarshal(data, &raw); err == nil {
			// On valid TOML the scanner finds every key the parser does.
			found := map[string]bool{}
			for k := range positions {
				found[joinPath(withoutElems(strings.Split(k, "\xff")))] = true
			}
			for _, k := range decodedKeys(nil, raw) {
				if !found[joinPath(k)] {
					t.Errorf("scanKeys did not find key %q", k)
				}
			}
		}
		p, err := Parse("fuzz.toml", data)
		if err == nil {
			if p == nil {
				t.Fatal("Parse returned neither a policy nor an error")
			}
			return
		}
		for _, e := range policyErrors(t, err) {
			if e.Line <= 0 && !strings.HasPrefix(e.Msg, "invalid TOML") {
				t.Errorf("error without a line: %v", e)
			}
		}
	})
}

// decodedKeys lists the path of every key in a decoded document, elements of arrays of tables
// without their index.
func decodedKeys(path []string, v any) [][]string {
	var out [][]string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := append(append([]string{}, path...), k)
			out = append(out, p)
			out = append(out, decodedKeys(p, e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, decodedKeys(path, e)...)
		}
	}
	return out
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"sample", policySamplePath},
		{"full", filepath.Join(policyFixtures, "full.toml")},
	} {
		data := readPolicyFile(b, bc.path)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(bc.name, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// /dev/null is the empty policy; a FIFO or a directory is refused, without blocking on the FIFO.
func TestLoadReadsOnlyRegularFiles(t *testing.T) {
	if p, err := Load(os.DevNull); err != nil || p.Host.OnError != Default().Host.OnError {
		t.Fatalf("Load(/dev/null) = %v, %v", p, err)
	}
	fifo := filepath.Join(t.TempDir(), "policy.toml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, t.TempDir()} {
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load(%s): %v", path, err)
		}
	}
}
