package lint

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestRulesDocUpToDate fails when docs/rules.md is not what the registry generates.
// Regenerate with: go generate ./policy/lint (or go test ./policy/lint -run TestRulesDoc -update).
func TestRulesDocUpToDate(t *testing.T) {
	const path = "../../docs/rules.md"
	want := Markdown()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it: go generate ./policy/lint)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is stale: regenerate it with go generate ./policy/lint", path)
	}
}

// TestCitationsResolve: every docs/failover.md#ANCHOR a rule cites is an anchor of that file
// (<a id="ANCHOR"></a>), every link inside failover.md to one of its own sections resolves, and
// no rule cites notes that are not in the repository.
func TestCitationsResolve(t *testing.T) {
	doc, err := os.ReadFile("../../docs/failover.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`<a id="([a-z0-9-]+)"></a>`).FindAllStringSubmatch(string(doc), -1) {
		if anchors[m[1]] {
			t.Errorf("docs/failover.md: anchor %q twice", m[1])
		}
		anchors[m[1]] = true
	}
	if len(anchors) < 10 {
		t.Fatalf("docs/failover.md has only %d anchors", len(anchors))
	}
	for _, m := range regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(string(doc), -1) {
		if !anchors[m[1]] {
			t.Errorf("docs/failover.md links to #%s, which it does not define", m[1])
		}
	}
	cited := map[string]bool{}
	for _, r := range registry {
		for _, text := range []string{r.Summary, r.Doc.What, r.Doc.Why} {
			for _, m := range citation().FindAllStringSubmatch(text, -1) {
				cited[m[1]] = true
				if !anchors[m[1]] {
					t.Errorf("%s cites docs/failover.md#%s, which is no anchor of docs/failover.md", r.ID, m[1])
				}
			}
			for _, bad := range []string{"failover-stack", "peers.md", "e2e-recipe", "§"} {
				if strings.Contains(text, bad) {
					t.Errorf("%s cites %q, which is not in the repository", r.ID, bad)
				}
			}
		}
	}
	t.Logf("rules cite %d of the %d sections", len(cited), len(anchors))
}
