package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

// Usage mistakes exit 2 at every depth with one line and a did-you-mean, never the whole help: exit 1
// means findings or a refusal to a script that runs lint or pair.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		first string // the first line of stderr
		hint  string // a hint line that must follow
	}{
		{"lint-mistyped-flag", []string{"lint", "--fromat", "json", "x.xml"},
			"virt-failover: lint: unknown flag --fromat", "hint: did you mean --format?"},
		{"pair-mistyped-flag", []string{"pair", "--dif", "x.xml"},
			"virt-failover: pair: unknown flag --dif", "hint: did you mean --diff?"},
		{"policy-mistyped-subcommand", []string{"policy", "chek"},
			`virt-failover: policy: unknown command "chek"`, `hint: did you mean "virt-failover policy check"?`},
		{"claims-mistyped-subcommand", []string{"claims", "relese", "web-01"},
			`virt-failover: claims: unknown command "relese"`, `hint: did you mean "virt-failover claims release"?`},
		{"top-mistyped-command", []string{"lnit"},
			`virt-failover: unknown command "lnit"`, `hint: did you mean "virt-failover lint"?`},
		{"subcommand-mistyped-flag", []string{"policy", "check", "--polcy", "x.toml"},
			"virt-failover: policy check: unknown flag --polcy", "hint: did you mean --policy?"},
		{"top-unknown-flag", []string{"--bogus"},
			"virt-failover: unknown flag --bogus", `hint: "virt-failover --help" lists the flags`},
		{"flag-without-value", []string{"lint", "--format"},
			"virt-failover: lint: flag needs an argument: --format", `hint: "virt-failover lint --help" lists the flags`},
		{"no-close-name", []string{"status", "--zzzzzzzz"},
			"virt-failover: status: unknown flag --zzzzzzzz", `hint: "virt-failover status --help" lists the flags`},
		{"help-unknown-topic", []string{"help", "lnit"},
			`virt-failover: unknown command "lnit"`, `hint: did you mean "virt-failover lint"?`},
		{"help-unknown-subtopic", []string{"help", "policy", "chek"},
			`virt-failover: policy: unknown command "chek"`, `hint: did you mean "virt-failover policy check"?`},
		{"group-help-unknown-topic", []string{"claims", "help", "relese"},
			`virt-failover: claims: unknown command "relese"`, `hint: did you mean "virt-failover claims release"?`},
		// One letter is too little to guess from: -Z is not "did you mean -j?"; -W is -w.
		{"one-letter-no-guess", []string{"lint", "-Z", "x.xml"},
			"virt-failover: lint: unknown flag -Z", `hint: "virt-failover lint --help" lists the flags`},
		{"one-letter-other-case", []string{"pair", "-W", "x.xml"},
			"virt-failover: pair: unknown flag -W", "hint: did you mean -w?"},
		{"bool-flag-value", []string{"status", "--json=maybe"},
			`virt-failover: status: invalid value "maybe" for --json: want true or false`, `hint: "virt-failover status --help" lists the flags`},
		{"completion-unknown-shell", []string{"completion", "bahs"},
			`virt-failover: completion: unknown command "bahs"`, `hint: did you mean "virt-failover completion bash"?`},
		{"int-flag-value", []string{"lint", "-j", "many", "x.xml"},
			`virt-failover: lint: invalid value "many" for -j: want a whole number`, `hint: "virt-failover lint --help" lists the flags`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runCLI(context.Background(), append([]string{programName}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if lines[0] != tc.first {
				t.Errorf("first line %q, want %q", lines[0], tc.first)
			}
			if !strings.Contains(stderr.String(), tc.hint+"\n") {
				t.Errorf("stderr lacks %q:\n%s", tc.hint, stderr.String())
			}
			if strings.Contains(stderr.String(), "did you mean") && strings.Contains(tc.hint, "lists the") {
				t.Errorf("a guess where none is close:\n%s", stderr.String())
			}
			if len(lines) > 3 || strings.Contains(stderr.String(), "USAGE:") || stdout.Len() > 0 {
				t.Errorf("help text printed:\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			}
		})
	}
}

// Every command, at every depth, follows the contract: a command added later cannot forget it.
func TestEveryCommandHasTheUsageContract(t *testing.T) {
	var walk func(c *cli.Command)
	walk = func(c *cli.Command) {
		if c.OnUsageError == nil {
			t.Errorf("%q has no usage-error handler", fullName(c))
		}
		for _, sub := range c.Commands {
			walk(sub)
		}
	}
	walk(newApp(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}))
}

// A command that only groups others shows its help when called bare, and the help lists exit codes.
func TestHelpListsExitCodes(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"lint", "--help"}} {
		var stdout, stderr bytes.Buffer
		if code := runCLI(context.Background(), append([]string{programName}, args...), strings.NewReader(""), &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "Exit status: 0") || !strings.Contains(stdout.String(), "2 usage or I/O errors") {
			t.Errorf("%v: help does not list the exit codes:\n%s", args, stdout.String())
		}
	}
	// "help COMMAND..." shows what "COMMAND... --help" shows.
	for _, path := range [][]string{{}, {"lint"}, {"policy"}, {"policy", "check"}, {"claims", "release"}} {
		var viaHelp, viaFlag, stderr bytes.Buffer
		hc := runCLI(context.Background(), append([]string{programName, "help"}, path...), strings.NewReader(""), &viaHelp, &stderr)
		fc := runCLI(context.Background(), append(append([]string{programName}, path...), "--help"), strings.NewReader(""), &viaFlag, &stderr)
		if hc != exitOK || fc != exitOK || viaHelp.String() != viaFlag.String() || viaHelp.Len() == 0 {
			t.Errorf("help %v: exit %d, --help exit %d:\n%s\n--- --help:\n%s\n%s", path, hc, fc, viaHelp.String(), viaFlag.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runCLI(context.Background(), []string{programName, "policy"}, strings.NewReader(""), &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "check") {
		t.Errorf("bare 'policy': exit %d, stdout:\n%s", code, stdout.String())
	}
}
