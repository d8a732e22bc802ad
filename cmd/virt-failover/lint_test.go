package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runLintCLI(t *testing.T, args ...string) (stdout string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runCLI(context.Background(), append([]string{"virt-failover", "lint"}, args...), strings.NewReader(""), &out, &errb)
	if code == exitUsage {
		t.Fatalf("lint %v: usage error: %s", args, errb.String())
	}
	return out.String(), code
}

// TestLintSARIF checks the SARIF output against what the SARIF 2.1.0 schema requires
// (sarif-schema-2.1.0.json: sarifLog needs version and runs; run needs tool; tool needs driver;
// toolComponent needs name; reportingDescriptor needs id; result needs message; message needs
// text; physicalLocation needs artifactLocation here; region lines and columns are >= 1; levels
// are none, note, warning or error) and what GitHub code scanning reads besides (ruleId, rules
// with help text, relative artifact URIs).
func TestLintSARIF(t *testing.T) {
	out, code := runLintCLI(t, "--format", "sarif", "../../testdata/lint")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1 (the fixtures have errors)", code)
	}
	var log map[string]any
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	obj := func(v any, path string) map[string]any {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object", path)
		}
		return m
	}
	arr := func(v any, path string) []any {
		a, ok := v.([]any)
		if !ok {
			t.Fatalf("%s: not an array", path)
		}
		return a
	}
	str := func(m map[string]any, key, path string) string {
		s, ok := m[key].(string)
		if !ok || s == "" {
			t.Fatalf("%s.%s: missing or not a non-empty string", path, key)
		}
		return s
	}
	if str(log, "version", "sarifLog") != "2.1.0" {
		t.Fatal("version is not 2.1.0")
	}
	runs := arr(log["runs"], "runs")
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	run := obj(runs[0], "runs[0]")
	driver := obj(obj(run["tool"], "tool")["driver"], "tool.driver")
	str(driver, "name", "driver")
	ruleIDs := map[string]int{}
	for i, r := range arr(driver["rules"], "driver.rules") {
		rule := obj(r, "rule")
		ruleIDs[str(rule, "id", "rule")] = i
		str(obj(rule["shortDescription"], "shortDescription"), "text", "shortDescription")
		str(obj(rule["help"], "help"), "text", "help")
		switch obj(rule["defaultConfiguration"], "defaultConfiguration")["level"] {
		case "none", "note", "warning", "error":
		default:
			t.Errorf("rule %v: bad default level", rule["id"])
		}
	}
	results := arr(run["results"], "results")
	if len(results) == 0 {
		t.Fatal("no results")
	}
	location := func(l map[string]any, path string) {
		pl := obj(l["physicalLocation"], path+".physicalLocation")
		uri := str(obj(pl["artifactLocation"], "artifactLocation"), "uri", path+".artifactLocation")
		if strings.HasPrefix(uri, "/") || strings.Contains(uri, "://") {
			t.Errorf("%s: uri %q is not relative", path, uri)
		}
		if reg, ok := pl["region"]; ok {
			r := obj(reg, "region")
			if l, _ := r["startLine"].(float64); l < 1 {
				t.Errorf("%s: startLine %v", path, r["startLine"])
			}
			if c, ok := r["startColumn"].(float64); ok && c < 1 {
				t.Errorf("%s: startColumn %v", path, c)
			}
		}
	}
	for i, r := range results {
		res := obj(r, "result")
		id := str(res, "ruleId", "result")
		if idx, ok := ruleIDs[id]; !ok || int(res["ruleIndex"].(float64)) != idx {
			t.Errorf("result %d: ruleId %s / ruleIndex %v do not match the rules", i, id, res["ruleIndex"])
		}
		str(obj(res["message"], "message"), "text", "message")
		switch res["level"] {
		case "none", "note", "warning", "error":
		default:
			t.Errorf("result %d: level %v", i, res["level"])
		}
		locs := arr(res["locations"], "locations")
		if len(locs) != 1 {
			t.Errorf("result %d: %d locations", i, len(locs))
		}
		for _, l := range locs {
			location(obj(l, "location"), "location")
		}
		if rel, ok := res["relatedLocations"]; ok {
			for _, l := range arr(rel, "relatedLocations") {
				lm := obj(l, "relatedLocation")
				location(lm, "relatedLocation")
				str(obj(lm["message"], "message"), "text", "relatedLocation.message")
			}
		}
	}
}

// TestLintJUnit: the JUnit report parses and has one testcase per file.
func TestLintJUnit(t *testing.T) {
	out, _ := runLintCLI(t, "--format", "junit", "../../testdata/lint/VF016-pair-mac-mismatch")
	var doc junitSuites
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../testdata/lint/VF016-pair-mac-mismatch/*.xml")
	if len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != len(files) || doc.Failures != 2 {
		t.Fatalf("suites %d, cases %d for %d files, failures %d", len(doc.Suites), len(doc.Suites[0].Cases), len(files), doc.Failures)
	}
}

// TestExamples lints every domain in examples/: web-01.xml is clean, and web-01-broken.xml gives
// exactly the output docs/lint.md shows.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.xml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	doc, err := os.ReadFile("../../docs/lint.md")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir("../.."); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := "examples/" + filepath.Base(f)
		out, code := runLintCLI(t, name)
		switch {
		case strings.HasSuffix(name, "-broken.xml"):
			if code != exitFailed {
				t.Errorf("%s: exit %d, want 1", name, code)
			}
			if !bytes.Contains(doc, []byte("$ virt-failover lint "+name+"\n"+out)) {
				t.Errorf("docs/lint.md does not show the output of lint %s:\n%s", name, out)
			}
		default:
			if code != exitOK || out != "1 file: no findings\n" {
				t.Errorf("%s: exit %d:\n%s", name, code, out)
			}
		}
	}
}

// TestLintPackageStaysLight: the rules run in the hook, so policy/lint must not pull in the
// command line or a libvirt client.
func TestLintPackageStaysLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../../policy/lint").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/urfave/cli", "github.com/digitalocean/go-libvirt", "libvirt.org/go/libvirt", "os/exec"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("policy/lint depends on %s", dep)
			}
		}
	}
}

// runLintRaw runs lint and returns stdout, stderr and the exit status, usage errors included.
func runLintRaw(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = runCLI(context.Background(), append([]string{"virt-failover", "lint"}, args...), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

const cleanDomain = "<domain type='kvm'><name>ok</name></domain>\n"

// TestLintFollowsLinks: a directory of links (libvirt's autostart directory) is linted through
// them, each path under its own name, links to directories are walked, and a link back up the
// tree is reported once instead of being walked forever.
func TestLintFollowsLinks(t *testing.T) {
	dir := t.TempDir()
	mustWrite := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustLink := func(target, p string) {
		t.Helper()
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(filepath.Join(dir, "qemu", "web.xml"), cleanDomain)
	mustWrite(filepath.Join(dir, "qemu", "db.xml"), strings.Replace(cleanDomain, "ok", "db", 1))
	mustWrite(filepath.Join(dir, "qemu", "notes.txt"), "not a domain")
	if err := os.MkdirAll(filepath.Join(dir, "qemu", "autostart"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustLink("../web.xml", filepath.Join(dir, "qemu", "autostart", "web.xml"))
	mustLink("../notes.txt", filepath.Join(dir, "qemu", "autostart", "notes.xml.bak"))
	mustLink("qemu", filepath.Join(dir, "current"))

	// Only links: before, "0 files: no findings" and exit 0.
	out, stderr, code := runLintRaw(filepath.Join(dir, "qemu", "autostart"))
	if code != exitOK || out != "1 file: no findings\n" || stderr != "" {
		t.Errorf("autostart: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	out, stderr, code = runLintRaw("--format", "junit", dir)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var doc junitSuites
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range doc.Suites[0].Cases {
		names = append(names, strings.TrimPrefix(c.Name, dir+"/"))
	}
	want := []string{"current/autostart/web.xml", "current/db.xml", "current/web.xml", "qemu/autostart/web.xml", "qemu/db.xml", "qemu/web.xml"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("linted %q, want %q", names, want)
	}

	// A link back up the tree: walked until it meets a directory above it (twice here: up/qemu
	// and up/current lead back to qemu), reported there, the rest still linted.
	mustLink("..", filepath.Join(dir, "qemu", "up"))
	out, stderr, code = runLintRaw(filepath.Join(dir, "qemu"))
	if code != exitUsage || out != "3 files: no findings; 2 not read\n" ||
		!strings.Contains(stderr, filepath.Join(dir, "qemu", "up", "qemu")+": a directory link loop") ||
		!strings.Contains(stderr, filepath.Join(dir, "qemu", "up", "current")+": a directory link loop") {
		t.Errorf("loop: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestLintUnreadPaths: a path that cannot be read is an error (exit 2) and the summary never
// contradicts it: no "0 files: no findings" beside "no such file".
func TestLintUnreadPaths(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.xml")
	if err := os.WriteFile(good, []byte(cleanDomain), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.xml")
	out, stderr, code := runLintRaw(missing)
	if code != exitUsage || out != "" || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("missing: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	out, _, code = runLintRaw(good, missing)
	if code != exitUsage || out != "1 file: no findings; 1 not read\n" {
		t.Errorf("good+missing: exit %d, stdout %q", code, out)
	}
	out, _, _ = runLintRaw("--format", "json", good, missing)
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Files != 1 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], missing) {
		t.Errorf("json: %+v", rep)
	}
	out, _, _ = runLintRaw("--format", "sarif", missing)
	if !strings.Contains(out, `"executionSuccessful": false`) || !strings.Contains(out, missing) {
		t.Errorf("sarif does not report the unread path:\n%s", out)
	}
	out, _, _ = runLintRaw("--format", "junit", missing)
	if !strings.Contains(out, `errors="1"`) || !strings.Contains(out, "<error message=") {
		t.Errorf("junit does not report the unread path:\n%s", out)
	}
	out, _, _ = runLintRaw("--format", "github", missing)
	if !strings.HasPrefix(out, "::error title=not read::") || strings.Contains(out, "0 files") {
		t.Errorf("github: %q", out)
	}
}

// status, claims and install read and change claims through internal/claims only: the hook
// package is the hook's, and its decisions reach them through the one planning code.
func TestHostCommandsDoNotImportTheHook(t *testing.T) {
	fset := token.NewFileSet()
	for _, f := range []string{"status.go", "claims.go", "install.go"} {
		file, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			if strings.Trim(imp.Path.Value, `"`) == "github.com/virt-failover/virt-failover/hooks" {
				t.Errorf("%s imports the hooks package", f)
			}
		}
	}
}
