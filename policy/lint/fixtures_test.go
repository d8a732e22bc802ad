package lint

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/policy/lint/xmlvalidate"
)

const fixtureRoot = "../../testdata/lint"

// want is one expectation of a fixture: `<!-- want "VF007" -->` (any severity) or
// `<!-- want "VF027:error" -->` on the line the finding is on.
type want struct {
	line     int
	rule     string
	severity string
}

var (
	wantComment = regexp.MustCompile(`<!--\s*want((?:\s+"[^"]*")+)\s*-->`)
	wantItem    = regexp.MustCompile(`"([^"]*)"`)
)

func parseWants(src []byte) []want {
	var out []want
	for i, line := range strings.Split(string(src), "\n") {
		for _, m := range wantComment.FindAllStringSubmatch(line, -1) {
			for _, it := range wantItem.FindAllStringSubmatch(m[1], -1) {
				rule, sev, _ := strings.Cut(it[1], ":")
				out = append(out, want{line: i + 1, rule: rule, severity: sev})
			}
		}
	}
	return out
}

// fixtureDir is a directory of fixtures for one rule: testdata/lint/VF007-teaming-persistent-unknown-alias.
type fixtureDir struct {
	path string
	rule *Rule
}

func fixtureDirs(t *testing.T) []fixtureDir {
	ents, err := os.ReadDir(fixtureRoot)
	if err != nil {
		t.Fatal(err)
	}
	var out []fixtureDir
	for _, e := range ents {
		id, _, ok := strings.Cut(e.Name(), "-")
		if !e.IsDir() || !ok || !strings.HasPrefix(id, "VF") {
			continue
		}
		r := Lookup(id)
		if r == nil || e.Name() != r.ID+"-"+r.Name {
			t.Errorf("%s: names no rule (want ID-name, like %s-%s)", e.Name(), registry[0].ID, registry[0].Name)
			continue
		}
		out = append(out, fixtureDir{filepath.Join(fixtureRoot, e.Name()), r})
	}
	return out
}

func loadPolicy(t *testing.T, dir string) *policy.Policy {
	t.Helper()
	path := filepath.Join(dir, "policy.toml")
	if _, err := os.Stat(path); err != nil {
		return policy.Default()
	}
	p, err := policy.Load(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// TestFixtures lints every fixture and compares the findings with its want comments: every
// finding must be wanted and every want found, on its line (and with its severity, when the want
// names one). Info findings of rules other than the directory's own are not compared, so fixtures
// need not repeat the notes every assigned primary gets.
func TestFixtures(t *testing.T) {
	haveValidator := xmlvalidate.Available() == nil
	for _, fd := range fixtureDirs(t) {
		files, _ := filepath.Glob(filepath.Join(fd.path, "*.xml"))
		pol := loadPolicy(t, fd.path)
		for _, file := range files {
			t.Run(strings.TrimPrefix(file, fixtureRoot+"/"), func(t *testing.T) {
				cfg := Config{Policy: pol}
				if fd.rule == ruleSchema {
					if !haveValidator {
						t.Skip("virt-xml-validate is not installed")
					}
					cfg.Schema = schemaValidator
				}
				checkFixture(t, file, cfg, fd.rule)
			})
		}
	}
}

func checkFixture(t *testing.T, file string, cfg Config, own *Rule) {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := l.Check(file, src)
	if err != nil {
		t.Fatal(err)
	}
	wants := parseWants(src)
	used := make([]bool, len(wants))
	for _, f := range fs {
		found := false
		for i, w := range wants {
			if !used[i] && w.line == f.Line && w.rule == f.Rule && (w.severity == "" || w.severity == f.Severity.String()) {
				used[i], found = true, true
				break
			}
		}
		if !found && (f.Severity != Info || own == nil || f.Rule == own.ID) {
			t.Errorf("unexpected finding:\n%s", render(&f))
		}
	}
	for i, w := range wants {
		if !used[i] {
			sev := ""
			if w.severity != "" {
				sev = " (" + w.severity + ")"
			}
			t.Errorf("%s:%d: want %s%s, not found", file, w.line, w.rule, sev)
		}
	}
}

func render(f *Finding) string {
	var b strings.Builder
	b.WriteString(f.String())
	for _, r := range f.Related {
		fmt.Fprintf(&b, "\n\t%s: %s", r.Position, r.Message)
	}
	if f.Hint != "" {
		fmt.Fprintf(&b, "\n\thint: %s", f.Hint)
	}
	return b.String()
}

// TestRegistry holds the registry to its promises: IDs in order without gaps, kebab-case names,
// a doc for every rule, and fixtures both ways.
func TestRegistry(t *testing.T) {
	if len(registry) != numRules {
		t.Errorf("numRules = %d, the registry has %d rules", numRules, len(registry))
	}
	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	names := map[string]bool{}
	dirs := map[*Rule]string{}
	for _, fd := range fixtureDirs(t) {
		dirs[fd.rule] = fd.path
	}
	engine := []*Rule{ruleNotWellFormed, ruleRootNotDomain, ruleSuppression, ruleSchema}
	for i, r := range registry {
		if want := fmt.Sprintf("VF%03d", i+1); r.ID != want {
			t.Errorf("registry[%d] is %s, want %s (IDs are allocated in order and never reused)", i, r.ID, want)
		}
		if !kebab.MatchString(r.Name) || names[r.Name] {
			t.Errorf("%s: name %q is not kebab-case or not unique", r.ID, r.Name)
		}
		names[r.Name] = true
		if r.Severity < Info || r.Severity > Error {
			t.Errorf("%s: no severity", r.ID)
		}
		if r.Summary == "" || r.Doc.What == "" || r.Doc.Why == "" || r.Doc.Bad == "" || r.Doc.Good == "" {
			t.Errorf("%s: the doc needs a summary, what, why, a bad and a good snippet", r.ID)
		}
		if !citation().MatchString(r.Doc.Why) && !slices.Contains(engine, r) {
			t.Errorf("%s: the why cites no section of docs/failover.md (docs/failover.md#ANCHOR)", r.ID)
		}
		if (r.check == nil) != slices.Contains(engine, r) {
			t.Errorf("%s: every rule but the engine's own has a check", r.ID)
		}
		dir, ok := dirs[r]
		if !ok {
			t.Errorf("%s: no fixture directory %s/%s-%s", r.ID, fixtureRoot, r.ID, r.Name)
			continue
		}
		var pos, neg int
		files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
		for _, f := range files {
			src, _ := os.ReadFile(f)
			wanted := slices.ContainsFunc(parseWants(src), func(w want) bool { return w.rule == r.ID })
			switch {
			case strings.HasPrefix(filepath.Base(f), "good") && !wanted:
				neg++
			case strings.HasPrefix(filepath.Base(f), "bad") && wanted:
				pos++
			}
		}
		if pos == 0 || neg == 0 {
			t.Errorf("%s: needs a bad*.xml fixture that wants it and a good*.xml that does not (has %d and %d)", r.ID, pos, neg)
		}
	}
}

// TestLibvirtFixtures: domains from libvirt's own test suite (testdata/lint/libvirt, copied
// from libvirt's source) give no error, and their other findings are pinned in findings.txt
// (-update rewrites it).
func TestLibvirtFixtures(t *testing.T) {
	dir := filepath.Join(fixtureRoot, "libvirt")
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".xml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) < 12 {
		t.Fatalf("%d files in %s (%v)", len(files), dir, err)
	}
	checkNoErrors(t, "libvirt's test domain", dir, files, filepath.Join(dir, "findings.txt"))
}

// checkNoErrors lints files (named relative to dir) with the default configuration: none may
// give an error, and every finding's first line must equal the golden file's (-update rewrites
// it).
func checkNoErrors(t *testing.T, what, dir string, files []string, golden string) {
	t.Helper()
	l, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(dir, file)
		fs, err := l.Check(filepath.ToSlash(name), src)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Severity == Error {
				t.Errorf("false error on %s:\n%s", what, render(&f))
			}
			b.WriteString(f.String() + "\n")
		}
	}
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != b.String() {
		t.Errorf("findings changed (go test ./policy/lint -run %s -update rewrites %s):\ngot:\n%s\nwant:\n%s", t.Name(), golden, b.String(), want)
	}
}

func schemaValidator(file string, src []byte) ([]SchemaProblem, error) {
	out, failed, err := xmlvalidate.Run(file, src)
	if err != nil {
		return nil, err
	}
	return ParseValidatorOutput(out, failed), nil
}
