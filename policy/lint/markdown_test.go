package lint

import (
	"os"
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
