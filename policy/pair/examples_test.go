package pair

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/internal/golden"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/policy/lint"
	"github.com/virt-failover/virt-failover/xmlxform"
)

// exampleArgs are the options docs/pair.md pairs each examples/pair/*.xml with. (They live in a
// folder of their own: they are unpaired by design, and the linter's own example test expects
// every examples/*.xml to lint clean.)
var exampleArgs = map[string]string{
	"vf.xml":       "--standby-network lan --pool fabric",
	"emulated.xml": "--emulated-primary",
	"storage.xml":  "--storage 0000:81:00.0=/dev/disk/by-id/wwn-0x5000c500a1b2c3d4",
}

// TestExamples runs every examples/pair/*.xml as the docs do: it pairs, changes something, passes
// the schema and lint, and pairing the result changes nothing.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/pair/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples (%v)", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".xml"), func(t *testing.T) {
			args, ok := exampleArgs[name]
			if !ok {
				t.Fatalf("%s has no entry in exampleArgs: say how docs/pair.md pairs it", name)
			}
			opt, err := parseArgs(args)
			if err != nil {
				t.Fatal(err)
			}
			opt.Version = testVersion
			in := golden.Read(t, f)
			r, err := plan(t, in, policy.Default(), opt)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Changed() || len(r.Pairs) == 0 {
				t.Fatalf("pairing %s changes nothing", name)
			}
			out, err := r.Transform.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			checkOutside(t, in, out, r.Transform.Edits())
			doc, err := xmlxform.Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			if r2, err := Plan(doc, policy.Default(), opt); err != nil || r2.Changed() {
				t.Fatalf("pairing the output: %v, changed %t", err, r2 != nil && r2.Changed())
			}
			validate(t, name, out)
			l, err := lint.New(lint.Config{})
			if err != nil {
				t.Fatal(err)
			}
			findings, err := l.Check(name, out)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				if f.Severity >= lint.Error {
					t.Errorf("%s", f.String())
				}
			}
		})
	}
}
