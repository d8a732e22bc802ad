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

// readmeBlock is one ```console block of README.md: its lines and what the comment before it says.
type readmeBlock struct {
	line     int      // 1-based line of the opening fence
	body     []string // the lines between the fences
	setup    []string // shell lines of a <!-- readme setup: ... --> comment before the block
	notRun   string   // the reason of a <!-- readme not run: ... --> comment before the block
	from, to int      // body's line range in the file (0-based, to exclusive)
}

var readmeComment = regexp.MustCompile(`(?s)^<!-- readme (setup|not run):(.*)-->$`)

// readmeBlocks parses README.md's console blocks and the comments that steer them.
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
				t.Fatalf("README.md:%d: a readme comment is <!-- readme setup: SHELL LINES --> or <!-- readme not run: REASON -->", b.line-1)
			}
			if m[1] == "setup" {
				b.setup = strings.Split(strings.TrimSpace(m[2]), "\n")
			} else {
				b.notRun = strings.TrimSpace(m[2])
			}
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
	for _, l := range b.setup {
		fmt.Fprintf(&s, "{ %s ; } >/dev/null 2>&1 || { echo 'readme setup failed: %s' >&2; exit 99; }\n", l, strings.ReplaceAll(l, "'", ""))
	}
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

// readmeNormal masks what differs from run to run in a block's text: the build's version, and the
// age of a claim just taken (0s on a quick run, 1s on a slow one).
var (
	readmeVersion = regexp.MustCompile(`"version":"[^"]*"`)
	readmeAge     = regexp.MustCompile(`(\s)\d+s(\s)`)
)

func readmeNormal(s string) string {
	return readmeAge.ReplaceAllString(readmeVersion.ReplaceAllString(s, `"version":"…"`), "${1}Ns$2")
}

// Every console block of README.md is run, from a copy of the repository's examples, by the binary
// under test, and must print what README shows: an operator who copies the walkthrough gets what it
// promises. `go test ./cmd/virt-failover -run README -update` rewrites the blocks from a real run.
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
			for _, dir := range []string{"examples", "install"} {
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
			cmd.Env = append(os.Environ(), "REPO="+repo, "HOME="+work, "TZ=UTC", "LC_ALL=C")
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
