package lint

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/policy"
)

// FuzzLint: no input makes the linter panic, and every finding is well formed: a known rule, a
// severity, a position inside the file.
func FuzzLint(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(fixtureRoot, "*", "*.xml"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("<domain><devices><interface type='hostdev'><teaming type='transient' persistent=''/></interface></devices></domain>"))
	f.Add([]byte("\xff\xfe<\x00d\x00"))
	pol := policy.Default()
	pol.Pools["p"] = policy.Pool{Networks: []string{"fabric"}, Addresses: []string{"0000:03:07.3"}}
	pol.Storage = []policy.Storage{{Device: "0000:81:00.0", LUN: "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"}}
	pol.Lint.StandbyNetworks = []string{"lan"}
	l, err := New(Config{Policy: pol})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := l.Check("fuzz.xml", data)
		if err != nil {
			t.Fatal(err)
		}
		checkWellFormed(t, data, fs)
	})
}

func checkWellFormed(t *testing.T, data []byte, fs []Finding) {
	t.Helper()
	lines := bytes.Count(data, []byte("\n")) + 1
	for _, f := range fs {
		if r := Lookup(f.Rule); r == nil || r.Name != f.Name {
			t.Fatalf("finding of unknown rule %s %s", f.Rule, f.Name)
		}
		if f.Severity < Info || f.Severity > Error || f.Message == "" {
			t.Fatalf("bad finding %+v", f)
		}
		if f.Line < 0 || f.Line > lines || f.Line > 0 && f.Col < 1 {
			t.Fatalf("position %d:%d outside a %d-line file: %s", f.Line, f.Col, lines, f.String())
		}
	}
}

// TestHostileInputs: the inputs a fuzzer does not reach give one clean finding, quickly.
func TestHostileInputs(t *testing.T) {
	// The biggest domain of this shape within xmlxform.MaxElements.
	big := func() []byte {
		var b bytes.Buffer
		b.WriteString("<domain type='kvm'><name>big</name><devices>\n")
		for b.Len() < 2<<20 {
			b.WriteString("<interface type='bridge'><source bridge='br0'/><model type='virtio'/></interface>\n")
		}
		b.WriteString("</devices></domain>\n")
		return b.Bytes()
	}()
	cases := []struct {
		name  string
		data  []byte
		rules []string // expected rule of each finding
	}{
		{"empty", nil, []string{"VF001"}},
		{"2-MB-domain", big, nil},
		{"2-MB-unclosed", big[:len(big)-10], []string{"VF001"}},
		{"deeply-nested", []byte(strings.Repeat("<a>", 100000) + strings.Repeat("</a>", 100000)), []string{"VF001"}},
		{"nested-within-limit", []byte("<domain>" + strings.Repeat("<a>", 998) + strings.Repeat("</a>", 998) + "</domain>"), nil},
		{"latin-1", []byte("<domain><name>caf\xe9</name></domain>"), []string{"VF001"}},
		{"utf-16", []byte("\xff\xfe<\x00d\x00o\x00m\x00/\x00>\x00"), []string{"VF001"}},
		{"binary", bytes.Repeat([]byte{0, 1, 2, 0xff, 0x7f, '<', '>'}, 1<<16), []string{"VF001"}},
		{"not-a-domain", []byte("<network><name>x</name></network>"), []string{"VF002"}},
		{"namespaced-domain", []byte("<d:domain xmlns:d='urn:x'/>"), []string{"VF002"}},
	}
	l, _ := New(Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, err := l.Check(c.name, c.data)
			if err != nil {
				t.Fatal(err)
			}
			checkWellFormed(t, c.data, fs)
			var got []string
			for _, f := range fs {
				got = append(got, f.Rule)
			}
			if strings.Join(got, " ") != strings.Join(c.rules, " ") {
				t.Errorf("rules %v, want %v", got, c.rules)
			}
		})
	}
}
