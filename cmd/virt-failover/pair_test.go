package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPairDocExample: docs/pair.md shows what "virt-failover pair --diff examples/pair/vf.xml"
// prints, under the policy it names (the document's version aside).
func TestPairDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pair.md")
	if err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(pol, []byte("[standby]\nnetwork = \"lan\"\n\n[pools.fabric]\naddresses = [\"0000:3b:02.1\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir("../.."); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runCLI(context.Background(), []string{programName, "pair", "--policy", pol, "--diff", "examples/pair/vf.xml"},
		strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := "$ virt-failover pair --diff examples/pair/vf.xml\n" +
		strings.ReplaceAll(stdout.String(), "version='"+version()+"'", "version='v0.1.0'") + stderr.String()
	if !bytes.Contains(doc, []byte(want)) {
		t.Errorf("docs/pair.md does not show the output of the example:\n%s", want)
	}
}
