package hooks

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/hostpaths"
)

func TestIsHookPath(t *testing.T) {
	for _, tc := range []struct {
		argv0 string
		want  bool
	}{
		{"/etc/libvirt/hooks/qemu", true},
		{"/usr/local/etc/libvirt/hooks/qemu", true},
		{"/etc/libvirt/hooks/qemu.d/50-virt-failover", true},
		{"/etc/libvirt/hooks/qemu.d/virt-failover", true},
		{"/usr/bin/virt-failover", false},
		{"virt-failover", false},
		{"/etc/libvirt/hooks/network", false},
		{"/tmp/qemu", false},
		{"./hooks/qemu", true},
	} {
		if got := IsHookPath(tc.argv0); got != tc.want {
			t.Errorf("IsHookPath(%q) = %t, want %t", tc.argv0, got, tc.want)
		}
	}
}

func TestParseArgs(t *testing.T) {
	inv, err := ParseArgs("qemu", []string{"web-01", "release", "end", "migrated"})
	if err != nil || inv != (Invocation{"qemu", "web-01", "release", "end", "migrated"}) {
		t.Fatalf("got %+v, %v", inv, err)
	}
	inv, err = ParseArgs("qemu", []string{"web-01", "prepare"})
	if err != nil || inv.SubOp != "-" || inv.Extra != "-" {
		t.Fatalf("missing trailing args should be '-': %+v, %v", inv, err)
	}
	for name, args := range map[string][]string{
		"too-few":  {"web-01"},
		"too-many": {"a", "b", "c", "d", "e"},
	} {
		if _, err := ParseArgs("qemu", args); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := ParseArgs("lxc", []string{"a", "prepare"}); err == nil {
		t.Error("lxc driver: want an error")
	}
}

// env is one hook run's surroundings: a policy file, a log file, the domain on stdin.
type env struct {
	t      *testing.T
	dir    string
	policy string
	log    string
}

func newEnv(t *testing.T, policyBody string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, policy: filepath.Join(dir, "policy.toml"), log: filepath.Join(dir, "log", "virt-failover.log")}
	body := policyBody + "\n"
	if !strings.Contains(body, "[state]") {
		// Claims stay in the test's directory, never in the system's state directory.
		body += "[state]\ndir = \"" + filepath.Join(dir, "state") + "\"\n"
	}
	if err := os.WriteFile(e.policy, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

type result struct {
	code   int
	stdout string
	stderr string
}

func (e *env) run(op, subop string, stdin []byte) result {
	e.t.Helper()
	var out, errb bytes.Buffer
	code := Run(Invocation{"qemu", "web-01", op, subop, "-"}, Options{
		PolicyPath: e.policy,
		LogFile:    e.log,
		Stdin:      bytes.NewReader(stdin),
		Stdout:     &out,
		Stderr:     &errb,
		Timeout:    30 * time.Second, // slack for a loaded machine; TestWholeCallHasADeadline tests the deadline
	})
	return result{code, out.String(), errb.String()}
}

func (e *env) records() []Record {
	e.t.Helper()
	f, err := os.Open(e.log)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	var recs []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			e.t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

func (e *env) last() Record {
	recs := e.records()
	if len(recs) == 0 {
		e.t.Fatal("no log line")
	}
	return recs[len(recs)-1]
}

func domain(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/hooks/web-01.xml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEveryOperationPassesSilently(t *testing.T) {
	e := newEnv(t, "")
	dom := domain(t)
	for _, op := range [][2]string{
		{"prepare", "begin"}, {"start", "begin"}, {"started", "begin"}, {"stopped", "end"},
		{"release", "end"}, {"migrate", "begin"}, {"restore", "begin"}, {"reconnect", "begin"},
		{"attach", "begin"}, {"some-future-op", "begin"},
	} {
		r := e.run(op[0], op[1], dom)
		if r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("%s %s: code %d stdout %q stderr %q; want 0 and silence", op[0], op[1], r.code, r.stdout, r.stderr)
		}
		if rec := e.last(); rec.Op != op[0] || rec.Decision != Pass || rec.Domain != "web-01" {
			t.Errorf("%s: log record %+v", op[0], rec)
		}
	}
	if n := len(e.records()); n != 10 {
		t.Errorf("want one log line per invocation (10), got %d", n)
	}
}

func TestRewriteNetworksAndBridges(t *testing.T) {
	e := newEnv(t, `[rewrite.networks]
"lan" = "lan-b"
[rewrite.bridges]
"br-a" = "br-b"`)
	dom := domain(t)
	for _, op := range []string{"migrate", "restore"} {
		r := e.run(op, "begin", dom)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: code %d stderr %q", op, r.code, r.stderr)
		}
		want := strings.ReplaceAll(string(dom), "<source network='lan'/>", "<source network='lan-b'/>")
		want = strings.Replace(want, "<source bridge='br-a'/>", "<source bridge='br-b'/>", 1)
		if r.stdout != want {
			t.Errorf("%s: output differs from the input beyond the sources:\n%s", op, r.stdout)
		}
		rec := e.last()
		if rec.Decision != Rewrite || len(rec.Changes) != 3 {
			t.Errorf("%s: record %+v", op, rec)
		}
		if !strings.Contains(strings.Join(rec.Changes, "\n"), "interface ua-sby0: source network 'lan' -> 'lan-b'") {
			t.Errorf("changes do not name the device: %q", rec.Changes)
		}
	}
	// Other operations never print, even when a mapping matches: libvirt ignores their stdout.
	if r := e.run("prepare", "begin", dom); r.stdout != "" || r.code != 0 {
		t.Errorf("prepare printed %q", r.stdout)
	}
}

func TestNoMatchingMappingPrintsNothing(t *testing.T) {
	e := newEnv(t, `[rewrite.networks]
"fabric-a" = "fabric-b"`)
	r := e.run("migrate", "begin", domain(t))
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("code %d stdout %q: an unchanged definition must print nothing (libvirt would taint the domain)", r.code, r.stdout)
	}
}

func TestAcceptIncomingFalseRefusesMigration(t *testing.T) {
	e := newEnv(t, "[host]\naccept_incoming = false")
	r := e.run("migrate", "begin", domain(t))
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("code %d stdout %q", r.code, r.stdout)
	}
	first, _, _ := strings.Cut(r.stderr, "\n")
	want := "virt-failover: qemu web-01 migrate begin: refused: this host does not accept incoming migrations ([host] accept_incoming = false in " + e.policy + ")"
	if first != want {
		t.Errorf("first stderr line\n got %q\nwant %q", first, want)
	}
	if !strings.Contains(r.stderr, "\nvirt-failover: hint: ") {
		t.Errorf("no hint line: %q", r.stderr)
	}
	if rec := e.last(); rec.Decision != Refuse || !strings.Contains(rec.Message, "accept_incoming") {
		t.Errorf("record %+v", rec)
	}
	// Restores and starts are not incoming migrations.
	if r := e.run("restore", "begin", domain(t)); r.code != 0 {
		t.Errorf("restore refused: %q", r.stderr)
	}
}

func TestDisabledPassesEverything(t *testing.T) {
	e := newEnv(t, "[host]\nenabled = false\naccept_incoming = false\n[rewrite.networks]\n\"lan\" = \"lan-b\"")
	r := e.run("migrate", "begin", domain(t))
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("kill switch: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if rec := e.last(); rec.Decision != Pass || !strings.Contains(rec.Message, "enabled = false") {
		t.Errorf("record %+v", rec)
	}
}

func TestBadPolicyFollowsOnErrorPerOperation(t *testing.T) {
	e := newEnv(t, "[host]\nenable = true")
	dom := domain(t)
	for _, tc := range []struct {
		op, subop string
		code      int
	}{
		{"migrate", "begin", 1}, {"restore", "begin", 1}, {"prepare", "begin", 1},
		{"reconnect", "begin", 0}, {"stopped", "end", 0}, {"release", "end", 0}, {"started", "begin", 0},
	} {
		r := e.run(tc.op, tc.subop, dom)
		if r.code != tc.code || r.stdout != "" {
			t.Errorf("%s: code %d (want %d) stdout %q", tc.op, r.code, tc.code, r.stdout)
		}
		first, _, _ := strings.Cut(r.stderr, "\n")
		if !strings.HasPrefix(first, "virt-failover: qemu web-01 "+tc.op+" "+tc.subop+": ") ||
			!strings.Contains(first, "policy: "+e.policy+":2") {
			t.Errorf("%s: first stderr line %q should name the policy file and line", tc.op, first)
		}
		if rec := e.last(); rec.Decision != Error {
			t.Errorf("%s: decision %q, want error", tc.op, rec.Decision)
		}
	}
}

func TestBadInputFollowsOnError(t *testing.T) {
	broken := []byte("<domain type='qemu'><name>web-01</name><devices>")
	for _, tc := range []struct {
		name, policy string
		code         int
	}{
		{"on-error-refuse", "", 1},
		{"on-error-pass", "[host]\non_error = \"pass\"", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.policy)
			r := e.run("migrate", "begin", broken)
			if r.code != tc.code || r.stdout != "" {
				t.Fatalf("code %d stdout %q", r.code, r.stdout)
			}
			if !strings.Contains(r.stderr, "domain definition on stdin: line 1:") {
				t.Errorf("stderr %q should name the position", r.stderr)
			}
			// reconnect always exits 0: a failing reconnect makes libvirt kill the guest.
			if r := e.run("reconnect", "begin", broken); r.code != 0 {
				t.Errorf("reconnect exited %d", r.code)
			}
		})
	}
}

func TestOversizedInput(t *testing.T) {
	e := newEnv(t, "")
	var out, errb bytes.Buffer
	code := Run(Invocation{"qemu", "web-01", "migrate", "begin", "-"}, Options{
		PolicyPath: e.policy, LogFile: e.log, Stdin: bytes.NewReader(make([]byte, 2<<20)), Stdout: &out, Stderr: &errb, MaxInput: 1 << 20,
	})
	if code != 1 || !strings.Contains(errb.String(), "larger than 1 MiB") {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
}

func TestStalledInputTimesOut(t *testing.T) {
	e := newEnv(t, "")
	pr, pw := io.Pipe()
	defer pw.Close()
	var out, errb bytes.Buffer
	code := Run(Invocation{"qemu", "web-01", "prepare", "begin", "-"}, Options{
		PolicyPath: e.policy, LogFile: e.log, Stdin: pr, Stdout: &out, Stderr: &errb, Timeout: 50 * time.Millisecond,
	})
	if code != 1 || !strings.Contains(errb.String(), "no end of input within 50ms") {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
}

func TestStalledPipeTimesOut(t *testing.T) {
	e := newEnv(t, "")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	var out, errb bytes.Buffer
	code := Run(Invocation{"qemu", "web-01", "migrate", "begin", "-"}, Options{
		PolicyPath: e.policy, LogFile: e.log, Stdin: pr, Stdout: &out, Stderr: &errb, Timeout: 50 * time.Millisecond,
	})
	if code != 1 || !strings.Contains(errb.String(), "no end of input") {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
}

func TestPanicIsAnInternalError(t *testing.T) {
	ops["test-panic"] = opSpec{filter: true, onError: true, decide: func(*run) outcome { panic("boom") }}
	defer delete(ops, "test-panic")
	e := newEnv(t, "")
	r := e.run("test-panic", "begin", domain(t))
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("code %d stdout %q", r.code, r.stdout)
	}
	first, _, _ := strings.Cut(r.stderr, "\n")
	if first != "virt-failover: qemu web-01 test-panic begin: refused: internal error: panic: boom" {
		t.Errorf("first line %q", first)
	}
	if rec := e.last(); rec.Decision != Error {
		t.Errorf("record %+v", rec)
	}
}

func TestLogFileModeAndNoSecrets(t *testing.T) {
	e := newEnv(t, "[rewrite.networks]\n\"lan\" = \"lan-b\"")
	e.run("migrate", "begin", domain(t))
	fi, err := os.Stat(e.log)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("log mode %v, want 0640", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(e.log)
	if bytes.Contains(b, []byte("s3cret-vnc")) || bytes.Contains(b, []byte("<domain")) {
		t.Errorf("the log carries domain XML: %s", b)
	}
	rec := e.last()
	if rec.Time == "" || rec.DurationMS < 0 || rec.PID == 0 || rec.Policy != e.policy {
		t.Errorf("record %+v", rec)
	}
}

func TestDryRunPrintsADiffAndLogsNothing(t *testing.T) {
	e := newEnv(t, "[rewrite.networks]\n\"lan\" = \"lan-b\"")
	var out, errb bytes.Buffer
	code := Run(Invocation{"qemu", "web-01", "migrate", "begin", "-"}, Options{
		PolicyPath: e.policy, LogFile: e.log, Stdin: bytes.NewReader(domain(t)), Stdout: &out, Stderr: &errb, DryRun: true,
	})
	if code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "-      <source network='lan'/>") || !strings.Contains(out.String(), "+      <source network='lan-b'/>") {
		t.Errorf("not a diff of the sources:\n%s", out.String())
	}
	if _, err := os.Stat(e.log); !os.IsNotExist(err) {
		t.Errorf("dry run wrote a log: %v", err)
	}
}

// The hook must never open a libvirt connection (docs/failover.md#hook-protocol), and keeps the
// command-line machinery off its path.
func TestHooksDoNotImportTheLibvirtClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/digitalocean/go-libvirt", "libvirt.org/go/libvirt", "github.com/urfave/cli"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("hooks depends on %s", dep)
			}
		}
	}
}

// The libvirt client has one importer in the whole module: internal/virt (its tests included).
// Everything else that talks to libvirt goes through it.
func TestOnlyInternalVirtImportsTheLibvirtClient(t *testing.T) {
	const module = "github.com/virt-failover/virt-failover"
	out, err := exec.Command("go", "list", "-f",
		"{{.ImportPath}} {{join .Imports \" \"}} {{join .TestImports \" \"}} {{join .XTestImports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var importers []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if imp == "github.com/digitalocean/go-libvirt" || strings.HasPrefix(imp, "github.com/digitalocean/go-libvirt/") ||
				strings.HasPrefix(imp, "libvirt.org/go/libvirt") && !strings.HasPrefix(imp, "libvirt.org/go/libvirtxml") {
				importers = append(importers, fields[0]+" imports "+imp)
			}
		}
	}
	allowed := module + "/internal/virt "
	found := false
	for _, imp := range importers {
		if strings.HasPrefix(imp, allowed) {
			found = true
			continue
		}
		t.Errorf("%s: only internal/virt may import the libvirt client", imp)
	}
	if !found {
		t.Errorf("go list shows no import of go-libvirt by internal/virt: the check sees nothing")
	}
}

// A hook reads the policy, and finds libvirt's status files, of the tree it is installed in.
func TestPathsFor(t *testing.T) {
	const def = "/etc/virt-failover/policy.toml"
	for argv0, want := range map[string]string{
		"/etc/libvirt/hooks/qemu":                  "/etc/virt-failover/policy.toml",
		"/etc/libvirt/hooks/qemu.d/50-failover":    "/etc/virt-failover/policy.toml",
		"/srv/hostA/etc/libvirt/hooks/qemu":        "/srv/hostA/etc/virt-failover/policy.toml",
		"/usr/local/etc/libvirt/hooks/qemu":        "/usr/local/etc/virt-failover/policy.toml",
		"/usr/bin/virt-failover":                   def,
		"/opt/hooks/qemu":                          def,
		"/srv/x/etc/libvirt/hooks/qemu.d/failover": "/srv/x/etc/virt-failover/policy.toml",
	} {
		if got := PathsFor(argv0).PolicyFile(); got != want {
			t.Errorf("PathsFor(%q).PolicyFile() = %q, want %q", argv0, got, want)
		}
	}
	for argv0, want := range map[string]string{
		"/etc/libvirt/hooks/qemu":           "/run/libvirt/qemu",
		"/srv/hostA/etc/libvirt/hooks/qemu": "/srv/hostA/run/libvirt/qemu",
	} {
		if got := PathsFor(argv0).StatusDir(); got != want {
			t.Errorf("PathsFor(%q).StatusDir() = %q, want %q", argv0, got, want)
		}
	}
}

func TestPolicyNamesTheLogFile(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "sub", "decisions.log")
	pol := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(pol, []byte("[log]\nfile = \""+logFile+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Run(Invocation{"qemu", "web-01", "started", "begin", "-"}, Options{
		PolicyPath: pol, Stdin: bytes.NewReader(domain(t)), Stdout: &out, Stderr: &errb,
	})
	if code != 0 || errb.Len() != 0 {
		t.Fatalf("code %d stderr %q", code, errb.String())
	}
	b, err := os.ReadFile(logFile)
	if err != nil || bytes.Count(b, []byte("\n")) != 1 || !bytes.Contains(b, []byte(`"op":"started"`)) {
		t.Fatalf("log %q, %v", b, err)
	}
}

// libvirt hands the hook a blocking pipe: the deadline must hold on one too.
func TestStalledBlockingPipeTimesOut(t *testing.T) {
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "w")
	defer r.Close()
	defer w.Close()
	if r.SetReadDeadline(time.Now()) == nil {
		t.Skip("this platform polls blocking pipes already")
	}
	if _, err := w.Write([]byte("<domain")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := readInput(r, 1<<20, time.Now().Add(100*time.Millisecond), 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no end of input within 100ms") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the deadline did not hold: %v", d)
	}
	// And a complete document on a blocking pipe is read whole.
	var fds2 [2]int
	if err := syscall.Pipe(fds2[:]); err != nil {
		t.Fatal(err)
	}
	r2, w2 := os.NewFile(uintptr(fds2[0]), "stdin"), os.NewFile(uintptr(fds2[1]), "w")
	defer r2.Close()
	go func() { w2.Write([]byte("<domain/>")); w2.Close() }()
	b, err := readInput(r2, 1<<20, time.Now().Add(5*time.Second), 5*time.Second)
	if err != nil || string(b) != "<domain/>" {
		t.Fatalf("%q, %v", b, err)
	}
}

func TestRootFor(t *testing.T) {
	for argv0, want := range map[string]string{
		"/etc/libvirt/hooks/qemu":                  "",
		"/etc/libvirt/hooks/qemu.d/virt-failover":  "",
		"/srv/hostA/etc/libvirt/hooks/qemu":        "/srv/hostA",
		"/srv/x/etc/libvirt/hooks/qemu.d/failover": "/srv/x",
		"/usr/bin/virt-failover":                   "",
	} {
		if got := RootFor(argv0); got != want {
			t.Errorf("RootFor(%q) = %q, want %q", argv0, got, want)
		}
	}
}

// A hook in a tree whose policy cannot be read logs inside the tree, not to the system's log.
func TestTreeHookLogsInTheTree(t *testing.T) {
	root := t.TempDir()
	pol := filepath.Join(root, "etc", "virt-failover", "policy.toml")
	if err := os.MkdirAll(filepath.Dir(pol), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pol, []byte("[host]\nenable = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Run(Invocation{"qemu", "web-01", "release", "end", "-"}, Options{
		Paths: hostpaths.Paths{Root: root}, Stdin: bytes.NewReader(domain(t)), Stdout: &out, Stderr: &errb,
	})
	if code != 0 {
		t.Fatalf("code %d", code)
	}
	if _, err := os.Stat(filepath.Join(root, "var", "log", "libvirt", "virt-failover.log")); err != nil {
		t.Fatalf("no log in the tree: %v (stderr %q)", err, errb.String())
	}
	// Given only the tree, the hook read the tree's (broken) policy.
	if !strings.Contains(errb.String(), "policy: "+pol+":2:") {
		t.Errorf("stderr %q does not name the tree's policy", errb.String())
	}
}

// Files the hook trusts: the log is never followed through a link, and a FIFO in the place of the
// log or the policy does not hold the hook (and libvirtd with it).
func TestHostileFilesDoNotHoldOrMisleadTheHook(t *testing.T) {
	e := newEnv(t, "")
	decoy := filepath.Join(t.TempDir(), "decoy")
	if err := os.WriteFile(decoy, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(e.log), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(decoy, e.log); err != nil {
		t.Fatal(err)
	}
	if r := e.run("started", "begin", domain(t)); r.code != 0 {
		t.Fatalf("started with a linked log: %+v", r)
	}
	if b, _ := os.ReadFile(decoy); string(b) != "precious\n" {
		t.Errorf("the hook wrote through the link: %q", b)
	}
	os.Remove(e.log)
	if err := syscall.Mkfifo(e.log, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() { done <- e.run("started", "begin", domain(t)) }()
	select {
	case r := <-done:
		if r.code != 0 {
			t.Errorf("started with a FIFO log: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO as the log holds the hook")
	}
	os.Remove(e.policy)
	if err := syscall.Mkfifo(e.policy, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() { done <- e.run("migrate", "begin", domain(t)) }()
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.stderr, "not a regular file") {
			t.Errorf("migrate with a FIFO policy: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO as the policy holds the hook")
	}
}

// nobody is the user and group the ownership tests give files (chown needs root).
const nobody = 65534

// A policy others can change is not obeyed: the hook, run as root by libvirtd, follows on_error
// at migrate, restore and prepare, logs and exits 0 elsewhere, and says why and how to fix it.
func TestUntrustedPolicyIsRefused(t *testing.T) {
	dom := domain(t)
	for _, tc := range []struct {
		name   string
		asRoot bool // chown needs root; the owner is checked only when the hook runs as root
		spoil  func(e *env) error
		why    string // the reason's tail after "policy: "
		hint   string
	}{
		{"world-writable-file", false, func(e *env) error { return os.Chmod(e.policy, 0o666) },
			"{policy}: writable by anyone (mode 0666)", "chmod o-w {policy}"},
		{"world-writable-directory", false, func(e *env) error { return os.Chmod(e.dir, 0o777) },
			"{dir}: writable by anyone (mode 0777), and it holds {policy}", "chmod o-w {dir}"},
		{"sticky-world-writable-directory", false, func(e *env) error { return os.Chmod(e.dir, 0o777|os.ModeSticky) },
			"{dir}: writable by anyone (mode 1777), and it holds {policy}", "chmod o-w {dir}"},
		{"not-owned-by-root", true, func(e *env) error { return os.Chown(e.policy, nobody, -1) },
			"{policy}: owned by uid 65534, not root", "chown root: {policy}"},
		{"group-writable-by-another-group", true, func(e *env) error {
			if err := os.Chown(e.policy, 0, nobody); err != nil {
				return err
			}
			return os.Chmod(e.policy, 0o664)
		}, "{policy}: writable by its group, gid 65534 (mode 0664)", "chmod g-w {policy}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot && os.Geteuid() != 0 {
				t.Skip("not root: chown needs root, and the hook checks the owner only when it runs as root")
			}
			e := newEnv(t, "[rewrite.networks]\n\"lan\" = \"lan-b\"")
			if r := e.run("migrate", "begin", dom); r.code != 0 || r.stdout == "" {
				t.Fatalf("a trusted policy: code %d stderr %q", r.code, r.stderr)
			}
			if err := tc.spoil(e); err != nil {
				t.Fatal(err)
			}
			rep := strings.NewReplacer("{policy}", e.policy, "{dir}", e.dir)
			why, hint := rep.Replace(tc.why), "virt-failover: hint: "+rep.Replace(tc.hint)
			r := e.run("migrate", "begin", dom)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 1 || r.stdout != "" || !strings.HasPrefix(lines[0], "virt-failover: qemu web-01 migrate begin: refused: policy: "+why) ||
				!slices.Contains(lines, hint) {
				t.Fatalf("code %d stdout %d bytes, stderr\n%s\nwant the reason %q and %q", r.code, len(r.stdout), r.stderr, why, hint)
			}
			if rec := e.last(); rec.Decision != Error || !strings.Contains(rec.Message, why) {
				t.Errorf("log record %+v", rec)
			}
			for _, op := range []string{"reconnect", "release"} {
				if r := e.run(op, "begin", dom); r.code != 0 || !strings.Contains(r.stderr, "error (ignored: the "+op+" operation never fails): policy: "+why) {
					t.Errorf("%s: code %d stderr %q", op, r.code, r.stderr)
				}
			}
		})
	}
	t.Run("group-root-and-sticky-parents-are-trusted", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("not root: chown needs root")
		}
		e := newEnv(t, "[rewrite.networks]\n\"lan\" = \"lan-b\"")
		sub := filepath.Join(e.dir, "etc")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(e.policy, filepath.Join(sub, "policy.toml")); err != nil {
			t.Fatal(err)
		}
		e.policy = filepath.Join(sub, "policy.toml")
		// Root's group may write; a sticky directory above the policy's own lets no one replace
		// what root owns in it.
		if err := errors.Join(os.Chown(e.policy, 0, 0), os.Chmod(e.policy, 0o664), os.Chmod(e.dir, 0o777|os.ModeSticky)); err != nil {
			t.Fatal(err)
		}
		if r := e.run("migrate", "begin", dom); r.code != 0 || r.stdout == "" {
			t.Fatalf("code %d stderr %q", r.code, r.stderr)
		}
	})
}

// An existing log more open than 0640 is tightened to it; a tighter one is left alone.
func TestLogModeIsTightened(t *testing.T) {
	e := newEnv(t, "")
	if err := os.MkdirAll(filepath.Dir(e.log), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ before, after os.FileMode }{{0o666, 0o640}, {0o644, 0o640}, {0o600, 0o600}} {
		if err := os.WriteFile(e.log, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(e.log, m.before); err != nil {
			t.Fatal(err)
		}
		e.run("started", "begin", domain(t))
		if fi, err := os.Stat(e.log); err != nil || fi.Mode().Perm() != m.after {
			t.Errorf("a log of mode %#o: now %v (%v), want %#o", m.before, fi.Mode().Perm(), err, m.after)
		}
	}
}
