package pair

import (
	"path/filepath"
	"testing"

	"github.com/virt-failover/virt-failover/internal/golden"
	"github.com/virt-failover/virt-failover/policy/lint"
)

// TestGoldenLint: what pair writes has no lint errors, under the policy it was paired with.
func TestGoldenLint(t *testing.T) {
	for _, c := range goldenCases(t) {
		if _, bad := golden.ReadOptional(t, filepath.Join(c.dir, "error.txt")); bad {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			out, ok := golden.ReadOptional(t, filepath.Join(c.dir, "out.xml"))
			if !ok {
				out = c.in
			}
			l, err := lint.New(lint.Config{Policy: c.pol})
			if err != nil {
				t.Fatal(err)
			}
			findings, err := l.Check(c.name+"/out.xml", out)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				if f.Severity >= lint.Error {
					t.Errorf("%s", f.String())
				} else {
					t.Logf("%s", f.String())
				}
			}
		})
	}
}
