package xmlxform

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden out.xml files")

const goldenDir = "../testdata/xmlxform"

// A golden case is a folder under testdata/xmlxform with:
//
//	in.xml     the input
//	edits.txt  one operation per line (see runScript); # starts a comment
//	out.xml    the expected output; absent means the output equals in.xml
//	error.txt  instead of out.xml: text the script's error must contain
//	*.frag     fragments that insert operations name
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(goldenDir, "*", "edits.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d golden cases", len(dirs))
	}
	for _, script := range dirs {
		dir := filepath.Dir(script)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			in := golden.Read(t, filepath.Join(dir, "in.xml"))
			wantErr, hasErr := golden.ReadOptional(t, filepath.Join(dir, "error.txt"))
			outName := filepath.Join(dir, "out.xml")
			out, edits, onlyValues, err := runScript(dir, in)
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
			checkOutside(t, in, out, edits)
			if *update {
				if bytes.Equal(out, in) {
					err = os.Remove(outName)
					if errors.Is(err, os.ErrNotExist) {
						err = nil
					}
				} else {
					err = os.WriteFile(outName, out, 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			want, ok := golden.ReadOptional(t, outName)
			if !ok {
				want = in
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("output differs from %s:\n%s", outName, golden.LineDiff(want, out))
			}
			// Twice from the same input: the same bytes.
			again, _, _, err := runScript(dir, in)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("a second run on in.xml gave different output (err %v)", err)
			}
			if _, err := Parse(out); err != nil {
				t.Fatalf("the output does not parse: %v", err)
			}
			// Setting values is idempotent: over out.xml nothing changes.
			if onlyValues {
				again, edits, _, err := runScript(dir, out)
				if err != nil {
					t.Fatalf("a second pass over out.xml: %v", err)
				}
				if len(edits) > 0 || !bytes.Equal(again, out) {
					t.Fatalf("a second pass over out.xml changed it:\n%s", golden.LineDiff(out, again))
				}
			}
		})
	}
}

// runScript applies dir/edits.txt to src. It returns the output, the edits,
// and whether the script only sets values (set, unset, text), which makes
// it idempotent. Operations:
//
//	set PATH NAME VALUE            VALUE is the rest of the line, or a Go string if it starts with "
//	unset PATH NAME
//	text PATH VALUE
//	remove PATH
//	insert PARENT FRAGFILE         after the last child
//	insert PARENT after CHILD FRAGFILE
//	before SIBLING FRAGFILE
//	replace START END TEXT         raw bytes
func runScript(dir string, src []byte) (out []byte, edits []Edit, onlyValues bool, err error) {
	d, err := Parse(src)
	if err != nil {
		return nil, nil, false, err
	}
	tr := NewTransform(d)
	f, err := os.Open(filepath.Join(dir, "edits.txt"))
	if err != nil {
		return nil, nil, false, err
	}
	defer f.Close()
	onlyValues = true
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := runOp(tr, d, dir, line, &onlyValues); err != nil {
			return nil, nil, false, fmt.Errorf("edits.txt:%d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, false, err
	}
	out, err = tr.Bytes()
	return out, tr.Edits(), onlyValues, err
}

func runOp(tr *Transform, d *Doc, dir, line string, onlyValues *bool) error {
	op, rest, _ := strings.Cut(line, " ")
	arg := func() string {
		var a string
		a, rest, _ = strings.Cut(strings.TrimLeft(rest, " "), " ")
		return a
	}
	value := func() (string, error) {
		v := strings.TrimLeft(rest, " ")
		if strings.HasPrefix(v, `"`) {
			return strconv.Unquote(v)
		}
		return v, nil
	}
	elem := func(path string) (*Element, error) {
		e := d.Find(path)
		if e == nil {
			return nil, fmt.Errorf("no element %s", path)
		}
		return e, nil
	}
	frag := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return string(b), err
	}
	switch op {
	case "set", "unset", "text":
		e, err := elem(arg())
		if err != nil {
			return err
		}
		switch op {
		case "set":
			name := arg()
			v, err := value()
			if err != nil {
				return err
			}
			tr.SetAttr(e, name, v)
		case "unset":
			tr.RemoveAttr(e, arg())
		case "text":
			v, err := value()
			if err != nil {
				return err
			}
			tr.SetText(e, v)
		}
		return nil
	}
	*onlyValues = false
	switch op {
	case "remove":
		e, err := elem(arg())
		if err != nil {
			return err
		}
		tr.Remove(e)
	case "insert":
		parent, err := elem(arg())
		if err != nil {
			return err
		}
		var after *Element
		name := arg()
		if name == "after" {
			if after, err = elem(arg()); err != nil {
				return err
			}
			name = arg()
		}
		fr, err := frag(name)
		if err != nil {
			return err
		}
		return tr.InsertChild(parent, after, fr)
	case "before":
		sib, err := elem(arg())
		if err != nil {
			return err
		}
		fr, err := frag(arg())
		if err != nil {
			return err
		}
		return tr.InsertBefore(sib, fr)
	case "replace":
		start, err1 := strconv.Atoi(arg())
		end, err2 := strconv.Atoi(arg())
		v, err3 := value()
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		tr.Replace(Span{start, end}, v)
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	return nil
}
