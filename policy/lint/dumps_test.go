package lint

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files (testdata/lint/dumps/findings.txt, docs/rules.md)")

// TestCanonicalDumps lints what libvirt itself writes: `virsh dumpxml` (live) and `dumpxml
// --inactive` of valid pairs and of domains without assigned devices, made by
// internal/gendumps with a private libvirt 9.0 and QEMU 7.2. None may give an error; the other
// findings are pinned in findings.txt (-update rewrites it).
func TestCanonicalDumps(t *testing.T) {
	dir := filepath.Join(fixtureRoot, "dumps")
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	if len(files) == 0 {
		t.Fatal("no dumps")
	}
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
		fs, err := l.Check(filepath.Base(file), src)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.Severity == Error {
				t.Errorf("false error on a canonical dump:\n%s", render(&f))
			}
			b.WriteString(f.String() + "\n")
		}
	}
	golden := filepath.Join(dir, "findings.txt")
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
		t.Errorf("findings on the dumps changed (go test -run TestCanonicalDumps -update rewrites %s):\ngot:\n%s\nwant:\n%s", golden, b.String(), want)
	}
}
