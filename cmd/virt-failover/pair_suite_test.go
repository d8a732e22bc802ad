package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/policy/lint"
)

// TestPairLibvirtSuite runs "pair" and "pair --check" over libvirt's own test domains: the
// qemuxml2argvdata and qemuxml2xmloutdata folders of the tests/ directory of a libvirt source tree
// named by VF_LIBVIRT_TESTS (Debian: apt-get source libvirt; skipped when unset). Plain, with
// --emulated-primary and with --adopt, every file must give one of: no change, a paired output
// that lints without error and passes virt-xml-validate (unless the input itself fails it), or a
// refusal with its reason and a hint; and --check must agree. go test -v prints the counts.
func TestPairLibvirtSuite(t *testing.T) {
	dir := os.Getenv("VF_LIBVIRT_TESTS")
	if dir == "" {
		t.Skip("set VF_LIBVIRT_TESTS to the tests/ directory of a libvirt source tree to run pair over its domains")
	}
	var files []string
	for _, sub := range []string{"qemuxml2argvdata", "qemuxml2xmloutdata"} {
		m, err := filepath.Glob(filepath.Join(dir, sub, "*.xml"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 100 {
		t.Fatalf("%s: only %d domains in qemuxml2argvdata and qemuxml2xmloutdata", dir, len(files))
	}
	validator, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Fatal("virt-xml-validate is not installed (Debian: libvirt-clients, with libxml2-utils)")
	}
	linter, err := lint.New(lint.Config{})
	if err != nil {
		t.Fatal(err)
	}
	schemaOK := func(name string, src []byte) bool {
		f := filepath.Join(t.TempDir(), filepath.Base(name))
		if err := os.WriteFile(f, src, 0o644); err != nil {
			t.Fatal(err)
		}
		return exec.Command(validator, f, "domain").Run() == nil
	}
	run := func(args ...string) (int, []byte, string) {
		var stdout, stderr bytes.Buffer
		code := runCLI(context.Background(), append([]string{programName, "pair", "--policy", "/dev/null"}, args...),
			strings.NewReader(""), &stdout, &stderr)
		return code, stdout.Bytes(), stderr.String()
	}
	t.Logf("%d domains", len(files))
	for _, mode := range [][]string{nil, {"--emulated-primary"}, {"--adopt"}, {"--bond", "--emulated-primary"}} {
		name := strings.Join(mode, " ")
		if name == "" {
			name = "plain"
		}
		t.Run(strings.ReplaceAll(strings.TrimPrefix(name, "--"), " --", "+"), func(t *testing.T) {
			counts := map[string]int{}
			for _, f := range files {
				label := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
				in, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				code, out, stderr := run(append(slices.Clone(mode), f)...)
				checkCode, _, checkErr := run(append(append(slices.Clone(mode), "--check", "-q"), f)...)
				switch {
				case code == exitOK && bytes.Equal(out, in):
					switch {
					case strings.Contains(stderr, ": nothing to pair: "):
						counts["unchanged: nothing to pair"]++
					case strings.Contains(stderr, "without a virt-failover record"):
						counts["unchanged: paired, without a record"]++
					default:
						counts["unchanged: paired, recorded"]++
					}
					if checkCode != exitOK {
						t.Errorf("%s: pair changes nothing, but --check exits %d:\n%s", label, checkCode, checkErr)
					}
				case code == exitOK:
					findings, err := linter.Check(label, out)
					if err != nil {
						t.Fatal(err)
					}
					for _, x := range findings {
						if x.Severity >= lint.Error {
							t.Errorf("%s: the paired output has a lint error: %s", label, x.String())
						}
					}
					switch {
					case schemaOK(label, out):
						counts["paired"]++
					case schemaOK(label, in):
						t.Errorf("%s: the paired output fails virt-xml-validate, the input passes", label)
					default:
						counts["paired, the input failing virt-xml-validate itself"]++
					}
					if checkCode != exitFailed {
						t.Errorf("%s: pair changes it, but --check exits %d", label, checkCode)
					}
				case code == exitFailed:
					reason, ok := refusalReason(f, stderr)
					if !ok {
						t.Errorf("%s: a refusal without its reason and hint:\n%s", label, stderr)
					}
					counts["refused: "+reason]++
					if checkCode != exitFailed || checkErr != stderr {
						t.Errorf("%s: pair refuses, but --check exits %d with\n%s", label, checkCode, checkErr)
					}
				default:
					t.Errorf("%s: exit %d:\n%s", label, code, stderr)
				}
			}
			keys := make([]string, 0, len(counts))
			for k := range counts {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			var b strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&b, "%5d  %s\n", counts[k], k)
			}
			t.Logf("pair %s over %d domains:\n%s", name, len(files), b.String())
		})
	}
}

var (
	refusalLine = regexp.MustCompile(`^virt-failover: pair: (.*?)(:\d+:\d+)?: (.+)\n`)
	// What varies between refusals of one kind: quoted names, addresses, MACs, numbers.
	refusalDetail = regexp.MustCompile(`'[^'\s]*'|"[^"\s]*"|[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]|([0-9a-f]{2}:){5}[0-9a-f]{2}|\d+`)
)

// refusalReason returns the kind of a refusal (its message without the details) and whether it
// names the file and carries a hint.
func refusalReason(file, stderr string) (string, bool) {
	m := refusalLine.FindStringSubmatch(stderr)
	if m == nil || m[1] != file {
		return "(unreadable) " + strings.SplitN(stderr, "\n", 2)[0], false
	}
	reason := refusalDetail.ReplaceAllString(m[3], "…")
	if r := []rune(reason); len(r) > 140 {
		reason = string(r[:140]) + "…"
	}
	return reason, strings.Contains(stderr, "\nhint: ")
}
