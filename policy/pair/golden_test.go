package pair

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/internal/golden"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/xmlxform"
)

var update = flag.Bool("update", false, "rewrite the golden out.xml (and warnings.txt) files")

const goldenDir = "../../testdata/pair"

// testVersion is the version the goldens' metadata carries.
const testVersion = "v0.1.0"

// minGoldenCases guards against a glob that finds nothing.
const minGoldenCases = 15

// A golden case is a folder under testdata/pair with:
//
//	in.xml        the input
//	args          optional: the pair command's options, as on the command line (see parseArgs)
//	policy.toml   optional: the policy (default: the built-in one)
//	out.xml       the expected output; absent means the output equals in.xml
//	error.txt     instead of out.xml: text the error must contain
//	warnings.txt  optional: the warnings, one per line
type goldenCase struct {
	name, dir string
	in        []byte
	pol       *policy.Policy
	opt       Options
}

func goldenCases(t testing.TB) []goldenCase {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(goldenDir, "*", "in.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	for _, in := range dirs {
		dir := filepath.Dir(in)
		c := goldenCase{name: filepath.Base(dir), dir: dir, in: golden.Read(t, in), pol: policy.Default()}
		if b, ok := golden.ReadOptional(t, filepath.Join(dir, "policy.toml")); ok {
			if c.pol, err = policy.Parse("policy.toml", b); err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
		}
		args, _ := golden.ReadOptional(t, filepath.Join(dir, "args"))
		if c.opt, err = parseArgs(string(args)); err != nil {
			t.Fatalf("%s/args: %v", dir, err)
		}
		c.opt.Version = testVersion
		cases = append(cases, c)
	}
	return cases
}

// parseArgs reads the options the pair command takes, separated by blanks or lines.
func parseArgs(s string) (Options, error) {
	var o Options
	words := strings.Fields(s)
	for i := 0; i < len(words); i++ {
		w := words[i]
		val := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("%s needs a value", w)
			}
			i++
			return words[i], nil
		}
		var err error
		switch w {
		case "--emulated-primary":
			o.EmulatedPrimary = true
		case "--adopt":
			o.Adopt = true
		case "--bond":
			o.Bond = true
		case "--detach":
			var v string
			v, err = val()
			o.Detach = append(o.Detach, v)
		case "--nic":
			var v string
			v, err = val()
			o.NICs = append(o.NICs, v)
		case "--standby-network":
			o.StandbyNetwork, err = val()
		case "--standby-bridge":
			o.StandbyBridge, err = val()
		case "--pool":
			o.Pool, err = val()
		case "--storage":
			var v string
			if v, err = val(); err == nil {
				dev, lun, _ := strings.Cut(v, "=")
				o.Storage = append(o.Storage, policy.Storage{Device: dev, LUN: lun})
			}
		default:
			err = fmt.Errorf("unknown option %q", w)
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

func plan(t testing.TB, in []byte, pol *policy.Policy, opt Options) (*Result, error) {
	t.Helper()
	doc, err := xmlxform.Parse(in)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return Plan(doc, pol, opt)
}

func TestGolden(t *testing.T) {
	cases := goldenCases(t)
	if len(cases) < minGoldenCases {
		t.Fatalf("found only %d golden cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := plan(t, c.in, c.pol, c.opt)
			wantErr, hasErr := golden.ReadOptional(t, filepath.Join(c.dir, "error.txt"))
			if hasErr {
				want := strings.TrimSpace(string(wantErr))
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error = %v, want one containing %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.Transform.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			checkOutside(t, c.in, out, r.Transform.Edits())
			outName := filepath.Join(c.dir, "out.xml")
			warnName := filepath.Join(c.dir, "warnings.txt")
			warnings := warningLines(r)
			if *update {
				writeOrRemove(t, outName, out, bytes.Equal(out, c.in))
				writeOrRemove(t, warnName, []byte(warnings), warnings == "")
			}
			want, ok := golden.ReadOptional(t, outName)
			if !ok {
				want = c.in
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("output differs from %s:\n%s", outName, golden.LineDiff(want, out))
			}
			if wantW, _ := golden.ReadOptional(t, warnName); string(wantW) != warnings {
				t.Errorf("warnings differ from %s:\ngot:\n%s", warnName, warnings)
			}
			if r.Changed() != !bytes.Equal(out, c.in) {
				t.Errorf("Changed() = %t, but the output differs: %t", r.Changed(), !bytes.Equal(out, c.in))
			}
			for _, pr := range r.Pairs {
				if bytes.Equal(out, c.in) && len(pr.Changes) > 0 {
					t.Errorf("the output is the input, but the pair of %s reports changes %q", pr.Primary, pr.Changes)
				}
			}
			// Twice from the same input: the same bytes.
			r2, err := plan(t, c.in, c.pol, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := r2.Transform.Bytes(); !bytes.Equal(again, out) {
				t.Fatal("a second run on in.xml gave different output")
			}
			// Over its own output pairing changes nothing, and the output is what libvirt takes.
			r3, err := plan(t, out, c.pol, c.opt)
			if err != nil {
				t.Fatalf("pairing out.xml: %v", err)
			}
			if r3.Changed() {
				again, _ := r3.Transform.Bytes()
				t.Fatalf("pairing out.xml changes it:\n%s", golden.LineDiff(out, again))
			}
			for _, pr := range r3.Pairs {
				if len(pr.Changes) > 0 {
					t.Errorf("pairing out.xml reports changes for %s: %q", pr.Primary, pr.Changes)
				}
			}
			validate(t, outName, out)
		})
	}
}

func warningLines(r *Result) string {
	var b strings.Builder
	for _, w := range r.Warnings {
		if w.Pos.Line > 0 {
			b.WriteString(w.Pos.String() + ": ")
		}
		b.WriteString(w.Msg + "\n")
		if w.Hint != "" {
			b.WriteString("\thint: " + w.Hint + "\n")
		}
	}
	return b.String()
}

// checkOutside checks that pairing only inserts elements and edits start tags: every byte of the
// input outside an edit is in the output, in order, and every replaced span lies inside one start
// tag.
func checkOutside(t *testing.T, in, out []byte, edits []xmlxform.Edit) {
	t.Helper()
	doc, err := xmlxform.Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(edits)
	slices.SortStableFunc(sorted, func(a, b xmlxform.Edit) int {
		if a.Span.Start != b.Span.Start {
			return a.Span.Start - b.Span.Start
		}
		return a.Span.End - b.Span.End
	})
	inPos, outPos := 0, 0
	for _, e := range sorted {
		keep := in[inPos:e.Span.Start]
		if !bytes.Equal(out[outPos:outPos+len(keep)], keep) {
			t.Fatalf("input bytes %d-%d are not in the output unchanged", inPos, e.Span.Start)
		}
		outPos += len(keep) + len(e.Text)
		inPos = e.Span.End
		if e.Span.Len() == 0 {
			continue
		}
		inTag := false
		for el := range doc.Elements() {
			st := el.Start
			if e.Span.Start > st.Start && e.Span.End < st.End {
				inTag = true
				break
			}
			if el.SelfClosing && e.Span.End == st.End && e.Span.Start == st.End-2 {
				inTag = true // a self-closing parent opened to take children
				break
			}
		}
		if !inTag {
			t.Fatalf("an edit replaces %q, which is not inside a start tag", in[e.Span.Start:e.Span.End])
		}
	}
	if !bytes.Equal(out[outPos:], in[inPos:]) {
		t.Fatalf("the input's tail from byte %d is not the output's", inPos)
	}
}

// validate runs virt-xml-validate (libvirt's RelaxNG schemas, through xmllint) on a document. The
// Makefile installs both (libvirt-clients, libxml2-utils): without them the test fails, it does not
// pass unchecked.
func validate(t testing.TB, name string, doc []byte) {
	t.Helper()
	path, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		t.Fatal("virt-xml-validate is not installed (Debian: libvirt-clients; \"make deps\" installs it): the output cannot be checked against libvirt's schemas")
	}
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Fatal("xmllint is not installed (Debian: libxml2-utils; \"make deps\" installs it): virt-xml-validate needs it")
	}
	f := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, f, "domain").CombinedOutput(); err != nil {
		t.Errorf("virt-xml-validate %s: %v\n%s", name, err, out)
	}
}

func writeOrRemove(t *testing.T, name string, b []byte, remove bool) {
	t.Helper()
	var err error
	if remove {
		if err = os.Remove(name); errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	} else {
		err = os.WriteFile(name, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// recorder is a testing.TB that records failures; Fatal ends the goroutine, as it does a test's.
type recorder struct {
	testing.TB
	dir    string
	failed []string
}

func (r *recorder) Helper()             {}
func (r *recorder) TempDir() string     { return r.dir }
func (r *recorder) Log(...any)          {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(f string, a ...any) {
	r.failed = append(r.failed, fmt.Sprintf(f, a...))
}
func (r *recorder) Fatal(a ...any) {
	r.failed = append(r.failed, fmt.Sprint(a...))
	runtime.Goexit()
}
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed = append(r.failed, fmt.Sprintf(f, a...))
	runtime.Goexit()
}

// run calls f with r in a goroutine of its own and waits for it.
func (r *recorder) run(f func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
}

// Without virt-xml-validate on PATH, validate fails the test instead of skipping the check.
func TestValidateNeedsTheValidator(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := &recorder{TB: t, dir: t.TempDir()}
	r.run(func(tb testing.TB) { validate(tb, "x.xml", []byte("<domain type='kvm'/>")) })
	if len(r.failed) == 0 || !strings.Contains(r.failed[0], "virt-xml-validate is not installed") {
		t.Fatalf("validate without virt-xml-validate: failures %q, want one naming the missing tool", r.failed)
	}
}

// And with it, validate fails an invalid domain.
func TestValidateRejects(t *testing.T) {
	r := &recorder{TB: t, dir: t.TempDir()}
	r.run(func(tb testing.TB) {
		validate(tb, "x.xml", []byte("<domain type='kvm'><name>x</name><bogus/></domain>"))
	})
	if len(r.failed) == 0 {
		t.Fatal("validate passed a domain libvirt's schema rejects")
	}
}
