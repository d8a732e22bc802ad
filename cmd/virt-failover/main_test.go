package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("update", false, "rewrite the scripts' expected output files")

// argv0 is the path the test binary was run by; testscript replaces os.Args[0] with the
// command's bare name, but the hook personality depends on the full path.
var argv0 string

func TestMain(m *testing.M) {
	argv0 = os.Args[0]
	testscript.Main(m, map[string]func(){
		"virt-failover": func() { os.Exit(cliMain(os.Args)) },
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
				b, err := os.ReadFile(exe)
				ts.Check(err)
				ts.Check(os.WriteFile(filepath.Join(dir, "qemu"), b, 0o755))
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
