package main

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/virt-failover/virt-failover/hooks"
)

var update = flag.Bool("update", false, "rewrite the scripts' expected output files")

// argv0 is the path the test binary was run by; testscript replaces os.Args[0] with the
// command's bare name, but the hook personality depends on the full path.
var argv0 string

func TestMain(m *testing.M) {
	argv0 = os.Args[0]
	testscript.Main(m, map[string]func(){
		"virt-failover": func() {
			// Installed as a hook (install links it into hooks/qemu.d), it is the hook, as main does.
			if hooks.IsHookPath(argv0) {
				os.Exit(hookMain(append([]string{argv0}, os.Args[1:]...)))
			}
			os.Exit(cliMain(os.Args))
		},
		// Run by the path $WORK/etc/libvirt/hooks/qemu (see install-hook), as libvirt runs it.
		"qemu": func() {
			args := append([]string{argv0}, os.Args[1:]...)
			if !isHook(argv0) {
				os.Stderr.WriteString("test: qemu was not run by a hook path: " + argv0 + "\n")
				os.Exit(3)
			}
			os.Exit(hookMain(args))
		},
	})
}

// copyTree copies a directory tree, symbolic links as links.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

func isHook(p string) bool { return filepath.Base(filepath.Dir(p)) == "hooks" }

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           "../../testdata/script",
		UpdateScripts: *update,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// install-hook: the test binary as $WORK/etc/libvirt/hooks/qemu, the way an operator
			// installs virt-failover; it then reads $WORK/etc/virt-failover/policy.toml.
			"install-hook": func(ts *testscript.TestScript, neg bool, args []string) {
				exe, err := os.Executable()
				ts.Check(err)
				dir := ts.MkAbs("etc/libvirt/hooks")
				ts.Check(os.MkdirAll(dir, 0o755))
				// A link, not a copy: a copy written while parallel scripts fork can be held open
				// by a child between fork and exec, and then exec fails with ETXTBSY.
				ts.Check(os.Symlink(exe, filepath.Join(dir, "qemu")))
			},
			// sysfs NAME: copy the fake sysfs tree testdata/sysfs/NAME to $WORK/sys.
			"sysfs": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: sysfs NAME")
				}
				ts.Check(copyTree(filepath.Join("..", "..", "testdata", "sysfs", args[0]), ts.MkAbs("sys")))
			},
			// expand FILE...: replace $WORK in the files with the script's work directory.
			"expand": func(ts *testscript.TestScript, neg bool, args []string) {
				for _, a := range args {
					p := ts.MkAbs(a)
					b, err := os.ReadFile(p)
					ts.Check(err)
					ts.Check(os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "$WORK", ts.Getenv("WORK"))), 0o644))
				}
			},
			// logto FILE: send the decision log of policy FILE to $WORK/hook.log.
			"logto": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: logto POLICYFILE")
				}
				p := ts.MkAbs(args[0])
				f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
				ts.Check(err)
				_, err = f.WriteString("\n[log]\nfile = \"" + ts.MkAbs("hook.log") + "\"\n")
				ts.Check(err)
				ts.Check(f.Close())
			},
		},
	})
}
