// Command fetch downloads the test suite of the installed libvirt into <module root>/.cache/
// libvirt-src (or -dir) and prints its tests directory. make libvirt-tests runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/virt-failover/virt-failover/e2e/harness"
	"github.com/virt-failover/virt-failover/e2e/libvirtsrc"
)

func main() {
	dir := flag.String("dir", "", "cache directory (default <module root>/.cache/libvirt-src)")
	flag.Parse()
	if *dir == "" {
		root, err := harness.ModuleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "libvirt-tests:", err)
			os.Exit(1)
		}
		*dir = libvirtsrc.DefaultCacheDir(root)
	}
	tests, err := libvirtsrc.Fetch(context.Background(), *dir, func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, f+"\n", a...)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "libvirt-tests:", err)
		os.Exit(1)
	}
	fmt.Println(tests)
}
