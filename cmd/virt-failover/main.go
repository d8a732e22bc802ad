// Command virt-failover makes live migration of libvirt guests with assigned devices work through
// transparent failover. Run as /etc/libvirt/hooks/qemu (or from hooks/qemu.d/) it is the libvirt
// QEMU hook; under any other name it is the operator's command line.
package main

import (
	"os"
	"path/filepath"

	"github.com/virt-failover/virt-failover/hooks"
)

func main() {
	// The hook personality is chosen before anything else runs: libvirt waits for every hook call,
	// so this path stays free of the command-line machinery.
	if hooks.IsHookPath(os.Args[0]) {
		os.Exit(hookMain(os.Args))
	}
	os.Exit(cliMain(os.Args))
}

// hookMain runs the hook as libvirt calls it: argv[0] = .../hooks/qemu or .../hooks/qemu.d/NAME,
// then OBJECT OPERATION SUB-OPERATION EXTRA, the domain definition on stdin.
func hookMain(args []string) int {
	inv, err := hooks.ParseArgs("qemu", args[1:])
	if err != nil {
		// Unknown call shapes must not break guests: say so and let libvirt go on.
		os.Stderr.WriteString("virt-failover: " + filepath.Base(args[0]) + ": ignored: " + err.Error() + "\n")
		return 0
	}
	return hooks.Run(inv, hooks.Options{Paths: hooks.PathsFor(args[0]), Version: version()})
}
