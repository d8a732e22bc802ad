// Command build builds the end-to-end test guest into <module root>/.cache/guest (or -dir) and
// prints the paths of the kernel and the two initramfs files (the default guest's and the guest
// modes').
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/virt-failover/virt-failover/e2e/guest"
	"github.com/virt-failover/virt-failover/e2e/harness"
)

func main() {
	dir := flag.String("dir", "", "cache directory (default <module root>/.cache/guest)")
	flag.Parse()
	if *dir == "" {
		root, err := harness.ModuleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "build-guest:", err)
			os.Exit(1)
		}
		*dir = guest.DefaultCacheDir(root)
	}
	img, err := guest.Build(context.Background(), *dir, func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, f+"\n", a...)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-guest:", err)
		os.Exit(1)
	}
	fmt.Printf("kernel %s\ninitrd %s\nmodes-initrd %s\nversion %s\n", img.Kernel, img.Initrd, img.ModesInitrd, img.KernelVersion)
}
