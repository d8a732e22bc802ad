package lint

import (
	"flag"
	"path/filepath"
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
	checkNoErrors(t, "a canonical dump", dir, files, filepath.Join(dir, "findings.txt"))
}
