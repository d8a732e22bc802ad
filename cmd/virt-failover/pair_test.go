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
	t.Chdir("../..")
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

// A pair QEMU fails over as it stands (here libvirt's own test domain) is paired: --check passes
// and says that only --adopt would record it; --adopt --check fails, since adopting changes it.
func TestPairCheckUnrecorded(t *testing.T) {
	in := "../../testdata/pair/libvirt-teaming/in.xml"
	var stdout, stderr bytes.Buffer
	if code := runCLI(context.Background(), []string{programName, "pair", "--policy", "/dev/null", "--check", in},
		strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("pair --check: exit %d, want %d: %s", code, exitOK, stderr.String())
	}
	for _, want := range []string{
		"libvirt-teaming/in.xml:34:5: interface type='hostdev' 0000:03:07.1 + standby ua-backup0: paired (QEMU fails it over as it is), without a virt-failover record\n",
		"libvirt-teaming/in.xml:41:5: interface type='hostdev' 0000:03:07.2 + standby ua-backup1: paired",
		"\thint: \"virt-failover pair --adopt\" adds user aliases and a metadata record to such pairs; only the hook's pools need them",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := runCLI(context.Background(), []string{programName, "pair", "--policy", "/dev/null", "--check", "--adopt", in},
		strings.NewReader(""), &stdout, &stderr); code != exitFailed {
		t.Fatalf("pair --check --adopt: exit %d, want %d: %s", code, exitFailed, stderr.String())
	}
	if !strings.Contains(stderr.String(), "(ua-pri0) + standby ua-backup0: alias ua-pri0, metadata record") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

// A refusal (here a domain that is not QEMU/KVM) exits 1 with the reason at its place and a hint,
// and -w leaves the file as it was.
func TestPairRefusalExit(t *testing.T) {
	src, err := os.ReadFile("../../testdata/pair/libvirt-xen-refused/in.xml")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "xen.xml")
	if err := os.WriteFile(f, src, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-w"}, {"--check"}, {}} {
		var stdout, stderr bytes.Buffer
		code := runCLI(context.Background(), append(append([]string{programName, "pair", "--policy", "/dev/null", "--nic", "0000:01:1a.1"}, args...), f),
			strings.NewReader(""), &stdout, &stderr)
		want := "virt-failover: pair: " + f + ":1:1: a <domain type='xen'> cannot fail over: only QEMU/KVM guests can"
		if code != exitFailed || !strings.HasPrefix(stderr.String(), want) || !strings.Contains(stderr.String(), "\nhint: ") || stdout.Len() > 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr:\n%s\nwant exit %d and %q", args, code, stdout.String(), stderr.String(), exitFailed, want)
		}
	}
	if got, _ := os.ReadFile(f); !bytes.Equal(got, src) {
		t.Error("pair -w changed a file it refused")
	}
}

// docs/pair.md shows what pair prints for a pair without a record and for an output the linter
// rejects, as it prints them (with the built-in policy; the examples are run from the repository).
func TestPairDocNotes(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pair.md")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir("../..")
	for _, tc := range []struct {
		args   []string
		indent string
	}{
		{[]string{"--check", "testdata/pair/libvirt-teaming/in.xml"}, ""},
		{[]string{"testdata/pair/q35-primary-on-pcie-root-refused/in.xml"}, "  "},
	} {
		var stdout, stderr bytes.Buffer
		runCLI(context.Background(), append([]string{programName, "pair", "--policy", "/dev/null"}, tc.args...),
			strings.NewReader(""), &stdout, &stderr)
		want := tc.indent + "$ virt-failover pair " + strings.Join(tc.args, " ") + "\n" + tc.indent +
			strings.ReplaceAll(strings.TrimSuffix(stderr.String(), "\n"), "\n", "\n"+tc.indent) + "\n"
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("docs/pair.md does not show what pair %s prints:\n%s", strings.Join(tc.args, " "), want)
		}
	}
}
