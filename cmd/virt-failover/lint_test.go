package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
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
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/urfave/cli", "github.com/digitalocean/go-libvirt", "libvirt.org/go/libvirt", "os/exec"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("policy/lint depends on %s", dep)
			}
		}
	}
}
