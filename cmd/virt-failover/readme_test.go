package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlock is one ```console block of README.md.
type readmeBlock struct {
	line     int      // 1-based line of the opening fence
	body     []string // the lines between the fences
	notRun   string   // the reason of a <!-- readme not run: REASON --> comment before the block
	from, to int      // body's line range in the file (0-based, to exclusive)
}

var readmeComment = regexp.MustCompile(`(?s)^<!-- readme not run:(.*)-->$`)

// readmeBlocks parses README.md's console blocks and the comments that exempt some.
func readmeBlocks(t *testing.T, lines []string) []readmeBlock {
	var blocks []readmeBlock
	var comment []string // the lines of the comment that ends just before a block
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "<!-- readme ") {
			j := i
			for j < len(lines) && !strings.HasSuffix(lines[j], "-->") {
				j++
			}
			if j == len(lines) {
				t.Fatalf("README.md:%d: unterminated readme comment", i+1)
			}
			comment = lines[i : j+1]
			i = j
			continue
		}
		if l != "```console" {
			if strings.TrimSpace(l) != "" {
				comment = nil
			}
			continue
		}
		b := readmeBlock{line: i + 1, from: i + 1}
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			b.body = append(b.body, lines[i])
		}
		b.to = i
		if comment != nil {
			m := readmeComment.FindStringSubmatch(strings.Join(comment, "\n"))
			if m == nil {
				t.Fatalf("README.md:%d: a readme comment is <!-- readme not run: REASON -->", b.line-1)
			}
			b.notRun = strings.TrimSpace(m[1])
			comment = nil
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// readmeScript turns a block into a bash script that prints the block as it should read: each
// "# command" line, then what the command prints on stdout and stderr.
func readmeScript(b readmeBlock) (string, error) {
	var s strings.Builder
	s.WriteString("set -u\n")
	commands := 0
	for _, l := range b.body {
		cmd, ok := strings.CutPrefix(l, "# ")
		if !ok {
			continue
		}
		commands++
		fmt.Fprintf(&s, "printf '%%s\\n' %s\n( %s\n) 2>&1 || true\n", shellQuote(l), cmd)
	}
	if commands == 0 {
		return "", fmt.Errorf("README.md:%d: a console block without a '# command' line; mark it <!-- readme not run: REASON -->", b.line)
	}
	return s.String(), nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// readmeNormal masks what differs from run to run in a block's text, and nothing else: in the hook's
// log line its time, duration, process ID and the build's version; in status, the age of a claim
// just taken (0s on a quick run, 1s on a slow one). The run's directory reads $PWD (see TestREADME).
var readmeVarying = []struct {
	re   *regexp.Regexp
	mask string
}{
	{regexp.MustCompile(`"time":"[^"]*"`), `"time":"…"`},
	{regexp.MustCompile(`"duration_ms":[0-9.]+`), `"duration_ms":…`},
	{regexp.MustCompile(`"pid":[0-9]+`), `"pid":…`},
	{regexp.MustCompile(`"version":"[^"]*"`), `"version":"…"`},
	{regexp.MustCompile(`(\s)\d+s(\s)`), "${1}Ns$2"},
}

func readmeNormal(s string) string {
	for _, v := range readmeVarying {
		s = v.re.ReplaceAllString(s, v.mask)
	}
	return s
}

// Every console block of README.md is run by the binary under test as bin/virt-failover, in a fresh
// directory holding a copy of the repository's examples/, install/ and testdata/sysfs/, and must
// print what README shows: an operator who copies the walkthrough into a clone gets what it
// promises. A block the test cannot run follows <!-- readme not run: REASON -->.
// `go test ./cmd/virt-failover -run README -update` rewrites the blocks from a real run.
func TestREADME(t *testing.T) {
	const readme = "../../README.md"
	src, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath(programName)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	blocks := readmeBlocks(t, lines)
	if len(blocks) < 5 {
		t.Fatalf("README.md has %d console blocks; the walkthrough has more", len(blocks))
	}
	replaced := map[int][]string{} // block start -> new body
	for _, b := range blocks {
		if b.notRun != "" {
			continue
		}
		t.Run(fmt.Sprintf("line-%d", b.line), func(t *testing.T) {
			script, err := readmeScript(b)
			if err != nil {
				t.Fatal(err)
			}
			work := t.TempDir()
			for _, dir := range []string{"examples", "install", "testdata/sysfs"} {
				if err := copyTree(filepath.Join(repo, dir), filepath.Join(work, dir)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(bin, filepath.Join(work, "bin", programName)); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "HOME="+work, "TZ=UTC", "LC_ALL=C")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("README.md:%d: %v\n%s", b.line, err, stderr.String())
			}
			got := strings.TrimSuffix(strings.ReplaceAll(string(out), work, "$PWD"), "\n")
			want := strings.Join(b.body, "\n")
			if readmeNormal(got) == readmeNormal(want) {
				return
			}
			if *update {
				replaced[b.from] = strings.Split(got, "\n")
				return
			}
			t.Errorf("README.md:%d: the block does not show what its commands print (go test ./cmd/virt-failover -run README -update rewrites it):\n--- README\n%s\n--- run\n%s", b.line, want, got)
		})
	}
	if *update && len(replaced) > 0 {
		var out []string
		for i := 0; i < len(lines); i++ {
			out = append(out, lines[i])
			if body, ok := replaced[i+1]; ok {
				out = append(out, body...)
				for i+1 < len(lines) && lines[i+1] != "```" {
					i++
				}
			}
		}
		if err := os.WriteFile(readme, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
