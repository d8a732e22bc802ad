package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/e2e/libvirtsrc"
)

// corpusDirs are the directories of libvirt's test suite that hold domain definitions for the
// QEMU driver (and a few generic ones the QEMU driver may take too). libvirt decides which files
// count: only the definitions it accepts are linted.
var corpusDirs = []string{
	"qemuxml2argvdata", "qemuxml2xmloutdata", "qemuhotplugtestdomains", "qemuhotplugtestcpus",
	"qemumemlockdata", "qemuagentdata", "genericxml2xmlindata", "genericxml2xmloutdata",
	"domainschemadata", "securityselinuxlabeldata",
}

// TestLibvirtCorpus holds lint to its first promise on libvirt's own test suite: no error on a
// domain libvirt's QEMU driver defines. It fetches the suite of the installed libvirt (Debian's
// source package, cached in .cache/libvirt-src; VF_LIBVIRT_SRC names another cache), defines
// every *.xml of corpusDirs in an embedded QEMU driver (qemu:///embed, no daemon), lints the
// files libvirt accepted and libvirt's own rendering of each (dumpxml --inactive), and fails on
// any error finding. It logs the counts: files, defined, linted, findings by rule.
func TestLibvirtCorpus(t *testing.T) {
	if ok, why := enabled(); !ok {
		t.Skip(why)
	}
	for _, tool := range []string{"virsh", "apt-get", "tar", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make deps installs what the end-to-end tests need)", tool)
		}
	}
	ctx := context.Background()
	root, run := runDir(t, "corpus")
	bin := hookUnderTest(t, root, run)
	if strings.HasSuffix(bin, ".sh") {
		bin = buildBinary(t, root, run)
	}
	cache := os.Getenv("VF_LIBVIRT_SRC")
	if cache == "" {
		cache = libvirtsrc.DefaultCacheDir(root)
	}
	start := time.Now()
	tests, err := libvirtsrc.Fetch(ctx, cache, t.Logf)
	if err != nil {
		t.Fatalf("fetching libvirt's test suite: %v", err)
	}
	t.Logf("libvirt's test suite: %s (%.1f s)", tests, time.Since(start).Seconds())

	var files []string
	for _, d := range corpusDirs {
		got, _ := filepath.Glob(filepath.Join(tests, d, "*.xml"))
		files = append(files, got...)
	}
	if len(files) < 1500 {
		t.Fatalf("only %d *.xml files in %s", len(files), tests)
	}

	start = time.Now()
	drv, err := newEmbedDriver(ctx, filepath.Join(run, "embed"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	res, err := drv.defineAll(ctx, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.retryAsQEMU(ctx, drv, filepath.Join(run, "as-qemu"), t.Logf); err != nil {
		t.Fatal(err)
	}
	t.Logf("virsh define: %d of %d files accepted by libvirt's QEMU driver (%.1f s)", len(res.defined), len(files), time.Since(start).Seconds())
	if len(res.defined) < len(files)/2 {
		t.Fatalf("libvirt accepted only %d of %d files; rejections by reason:\n%s", len(res.defined), len(files), res.reasons(20))
	}
	t.Logf("rejections by reason (the most common):\n%s", res.reasons(8))

	// Lint through a directory of links, one per accepted file: the files keep their own names
	// in the report (lint follows links), and libvirt's renderings sit beside them.
	linkDir := filepath.Join(run, "accepted")
	dumpDir := filepath.Join(run, "dumpxml")
	want := map[string]string{} // path lint reports -> the file it stands for
	for _, f := range res.defined {
		rel, _ := filepath.Rel(tests, f)
		link := filepath.Join(linkDir, rel)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(f, link); err != nil {
			t.Fatal(err)
		}
		want[link] = rel
		dump := filepath.Join(dumpDir, rel)
		if err := os.MkdirAll(filepath.Dir(dump), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dump, []byte(res.dumps[f]), 0o644); err != nil {
			t.Fatal(err)
		}
		want[dump] = rel + " (dumpxml)"
	}
	start = time.Now()
	rep, err := lintJSON(ctx, bin, linkDir, dumpDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lint: %d files in %.2f s", rep.Files, time.Since(start).Seconds())
	if rep.Files != len(want) || len(rep.Errors) > 0 {
		t.Errorf("lint read %d files, want %d (the %d accepted and libvirt's dumpxml of each); unread: %v", rep.Files, len(want), len(res.defined), rep.Errors)
	}

	type key struct{ rule, severity string }
	counts := map[key]int{}
	var errors []string
	for _, f := range rep.Findings {
		counts[key{f.Rule, f.Severity}]++
		if f.Severity == "error" {
			errors = append(errors, fmt.Sprintf("%s:%d:%d: error %s: %s", want[f.File], f.Line, f.Column, f.Rule, f.Message))
		}
	}
	var keys []key
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].rule < keys[j].rule || keys[i].rule == keys[j].rule && keys[i].severity < keys[j].severity
	})
	var b strings.Builder
	fmt.Fprintf(&b, "libvirt test suite: %d files, %d defined by libvirt, %d linted (the files and their dumpxml), %d findings\n",
		len(files), len(res.defined), rep.Files, len(rep.Findings))
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s %-7s %5d\n", k.rule, k.severity, counts[k])
	}
	t.Log(b.String())
	_ = os.WriteFile(filepath.Join(run, "summary.txt"), []byte(b.String()), 0o644)
	if len(errors) > 0 {
		t.Errorf("%d error findings on domains libvirt defines:\n%s", len(errors), strings.Join(errors, "\n"))
	}
}

// defineResult is what the embedded QEMU driver made of the corpus.
type defineResult struct {
	defined  []string          // files libvirt accepted, in the order given
	dumps    map[string]string // file -> virsh dumpxml --inactive of its domain
	rejected map[string]string // file -> libvirt's error
}

// retryAsQEMU defines a type='qemu' copy of every file libvirt refused only because this machine
// has no KVM (harness.NoKVM), so a machine without KVM checks the same domains as one with it.
// The copies count as their originals; lint still reads the original files.
func (r *defineResult) retryAsQEMU(ctx context.Context, drv *embedDriver, dir string, logf func(string, ...any)) error {
	copyOf := map[string]string{}
	var copies []string
	for f, why := range r.rejected {
		if !strings.Contains(why, harness.NoKVM) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		q, changed := harness.AsQEMU(b)
		if !changed {
			continue
		}
		c := filepath.Join(dir, fmt.Sprint(len(copies)), filepath.Base(f))
		if err := os.MkdirAll(filepath.Dir(c), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(c, q, 0o644); err != nil {
			return err
		}
		copyOf[c] = f
		copies = append(copies, c)
	}
	if len(copies) == 0 {
		return nil
	}
	logf("libvirt offers no KVM on this machine: defining %d <domain type='kvm'> files as type='qemu' copies", len(copies))
	sort.Strings(copies)
	again, err := drv.defineAll(ctx, copies)
	if err != nil {
		return err
	}
	for _, c := range again.defined {
		f := copyOf[c]
		delete(r.rejected, f)
		r.defined = append(r.defined, f)
		r.dumps[f] = again.dumps[c]
	}
	for c, why := range again.rejected {
		r.rejected[copyOf[c]] = why
	}
	return nil
}

// reasons lists the n most common rejection messages with their counts.
func (r *defineResult) reasons(n int) string {
	count := map[string]int{}
	for _, msg := range r.rejected {
		// Drop what names one file or device: "unsupported configuration: ..." is the reason.
		if i := strings.IndexAny(msg, "'\""); i > 0 {
			msg = msg[:i]
		}
		count[msg]++
	}
	var msgs []string
	for m := range count {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool {
		return count[msgs[i]] > count[msgs[j]] || count[msgs[i]] == count[msgs[j]] && msgs[i] < msgs[j]
	})
	var b strings.Builder
	for i, m := range msgs {
		if i == n {
			fmt.Fprintf(&b, "  ... and %d other reasons\n", len(msgs)-n)
			break
		}
		fmt.Fprintf(&b, "  %4d %s\n", count[m], m)
	}
	return b.String()
}

// embedDriver is libvirt's QEMU driver embedded in virsh (qemu:///embed, no daemon), rooted at
// root, and how virsh runs against it.
type embedDriver struct {
	root string
	wrap []string // argv before virsh's: harness.WithoutKVM when /dev/kvm is there but unusable
}

// newEmbedDriver configures an embedded QEMU driver at root and asks it whether it offers KVM.
// When it does not although /dev/kvm exists (harness.KVMUnusable), virsh runs without /dev/kvm
// from then on: otherwise libvirt would probe QEMU again for every file.
func newEmbedDriver(ctx context.Context, root string, logf func(string, ...any)) (*embedDriver, error) {
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		return nil, err
	}
	// QEMU as root: the driver's default user (libvirt-qemu on Debian) may not open /dev/kvm, and
	// then every lookup finds the probed capabilities stale ("KVM was enabled when probing, but
	// it is not available now") and probes QEMU again, about a minute per domain.
	conf := "# written by virt-failover's e2e corpus test\nuser = \"root\"\ngroup = \"root\"\n"
	if err := os.WriteFile(filepath.Join(root, "etc", "qemu.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	d := &embedDriver{root: root}
	var stderr bytes.Buffer
	cmd := d.virsh(ctx, "capabilities")
	cmd.Stderr = &stderr
	caps, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("virsh capabilities: %v\n%s", err, stderr.String())
	}
	if harness.KVMUnusable(string(caps)) {
		d.wrap = harness.WithoutKVM(root + "-dev")
		logf("libvirt offers no KVM on this machine although /dev/kvm exists: virsh runs with /dev/kvm hidden")
	}
	return d, nil
}

// virsh returns the command that runs a virsh script (commands separated by ";") against the driver.
func (d *embedDriver) virsh(ctx context.Context, script string) *exec.Cmd {
	argv := append(append([]string{}, d.wrap...), "virsh", "-c", "qemu:///embed?root="+d.root, script)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// defineAll defines each file in the embedded driver, keeps libvirt's rendering of the domain
// and undefines it again (test domains share names and UUIDs). virsh runs a batch of files per
// process: the embedded driver starts, and looks up QEMU's capabilities, once per process, and
// one argument may not exceed 128 KiB.
func (d *embedDriver) defineAll(ctx context.Context, files []string) (*defineResult, error) {
	res := &defineResult{dumps: map[string]string{}, rejected: map[string]string{}}
	const batch = 250
	for lo := 0; lo < len(files); lo += batch {
		part := files[lo:min(lo+batch, len(files))]
		var script strings.Builder
		for i, f := range part {
			name := domainName(f)
			fmt.Fprintf(&script, "echo %s; define %s; ", marker(i), virshQuote(f))
			if name != "" {
				fmt.Fprintf(&script, "dumpxml --inactive %s; undefine --nvram %s; ", virshQuote(name), virshQuote(name))
			}
		}
		fmt.Fprintf(&script, "echo %s", marker(len(part)))
		var stdout, stderr bytes.Buffer
		cmd := d.virsh(ctx, script.String())
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil && stdout.Len() == 0 {
			return nil, fmt.Errorf("virsh: %v\n%s", err, stderr.String())
		}
		out := stdout.String()
		failed := failures(stderr.String())
		for i, f := range part {
			block, ok := between(out, marker(i), marker(i+1))
			if !ok {
				return nil, fmt.Errorf("virsh output has no block for %s:\n%s", f, lastLinesOf(out, 20))
			}
			if !strings.Contains(block, "defined from "+f) {
				res.rejected[f] = failed[f]
				continue
			}
			res.defined = append(res.defined, f)
			if s, e := strings.Index(block, "<domain"), strings.LastIndex(block, "</domain>"); s >= 0 && e > s {
				res.dumps[f] = block[s:e+len("</domain>")] + "\n"
			}
			if !strings.Contains(block, "has been undefined") {
				return nil, fmt.Errorf("%s: defined but not undefined (name %q); the next definitions of its name would fail:\n%s", f, domainName(f), block)
			}
		}
	}
	return res, nil
}

func marker(i int) string { return fmt.Sprintf("@@vfo-corpus-%d@@", i) }

// between returns the text after the line a and before the line b.
func between(s, a, b string) (string, bool) {
	i := strings.Index(s, a+"\n")
	if i < 0 {
		return "", false
	}
	s = s[i+len(a)+1:]
	j := strings.Index(s, b+"\n")
	if j < 0 {
		return "", false
	}
	return s[:j], true
}

// failures reads virsh's stderr: "error: Failed to define domain from FILE" and the line after
// it, libvirt's reason.
func failures(stderr string) map[string]string {
	out := map[string]string{}
	lines := strings.Split(stderr, "\n")
	for i, l := range lines {
		if f, ok := strings.CutPrefix(l, "error: Failed to define domain from "); ok {
			reason := ""
			if i+1 < len(lines) {
				reason = strings.TrimPrefix(lines[i+1], "error: ")
			}
			out[f] = reason
		}
	}
	return out
}

// virshQuote escapes every byte of s that virsh's command parser would otherwise read.
func virshQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+", r)) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// domainName is the <name> of a definition, "" when it has none (libvirt refuses it then).
func domainName(file string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Local == "name" {
				var s string
				if dec.DecodeElement(&s, &t) != nil {
					return ""
				}
				return s
			}
			if depth == 2 {
				if err := dec.Skip(); err != nil {
					return ""
				}
				depth--
			}
		case xml.EndElement:
			depth--
		}
	}
}

// lintReport is the part of lint's JSON report the test reads.
type lintReport struct {
	Files    int `json:"files"`
	Findings []struct {
		Rule     string `json:"rule"`
		Severity string `json:"severity"`
		File     string `json:"file"`
		Line     int    `json:"line"`
		Column   int    `json:"column"`
		Message  string `json:"message"`
	} `json:"findings"`
	Errors []string `json:"errors"`
}

func lintJSON(ctx context.Context, bin string, paths ...string) (*lintReport, error) {
	cmd := exec.CommandContext(ctx, bin, append([]string{"lint", "--format", "json", "--fail-on", "never"}, paths...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("virt-failover lint: %v\n%s", err, stderr.String())
	}
	var rep lintReport
	if err := json.NewDecoder(io.LimitReader(bytes.NewReader(out), 1<<30)).Decode(&rep); err != nil {
		return nil, fmt.Errorf("virt-failover lint: %v\n%s", err, stderr.String())
	}
	return &rep, nil
}

func lastLinesOf(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
