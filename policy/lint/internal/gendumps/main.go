// Command gendumps makes the canonical libvirt dumps the linter's tests read: it starts a throwaway
// private libvirtd (the e2e harness's host: its own mount, UTS and network namespaces, nothing
// written to the system's /etc/libvirt, /run/libvirt or /var/lib/libvirt), defines the domains in
// domains/, and writes `virsh dumpxml --inactive` of each, and `virsh dumpxml` of each one QEMU can
// start here (no SR-IOV on a test machine: a domain with a VF cannot start), into the output
// directory. Everything it started is stopped before it exits.
//
//	go run ./policy/lint/internal/gendumps -out testdata/lint/dumps
//
// Run as root on a machine with libvirt and QEMU (make deps installs them).
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
)

//go:embed domains/*.xml
var domains embed.FS

func main() {
	out := flag.String("out", "testdata/lint/dumps", "directory for the dumps")
	work := flag.String("work", "", "directory for the private host (default: a new one under /tmp)")
	flag.Parse()
	if err := run(*out, *work); err != nil {
		fmt.Fprintln(os.Stderr, "gendumps:", err)
		os.Exit(1)
	}
}

func run(out, work string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if work == "" {
		d, err := os.MkdirTemp("/tmp", "vfo-dumps-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	harness.StopOnSignal(nil)
	h, err := harness.NewHost(ctx, harness.HostConfig{
		Name: "d", Dir: filepath.Join(work, "h"), UUID: "6d3f5c0e-0a0a-4a1e-9e2e-0000000000dd",
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	defer h.Stop()
	if _, err := h.NS(ctx, "sh", "-c", "set -e; ip link add vfbr0 type bridge; ip link set vfbr0 up"); err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		return err
	}
	if err := h.DefineNetwork(ctx, "lan"); err != nil {
		return err
	}
	// A hostdev network: a pool of the VFs of a PF that libvirt hands out (docs/failover.md#teaming-xml).
	// Defined, not started: there is no such PF here.
	pool := "<network>\n  <name>fabric</name>\n  <forward mode='hostdev' managed='yes'>\n" +
		"    <pf dev='enp3s0f0'/>\n" +
		"  </forward>\n</network>\n"
	poolPath := filepath.Join(h.Dir, "net-fabric.xml")
	if err := os.WriteFile(poolPath, []byte(pool), 0o644); err != nil {
		return err
	}
	if _, err := h.Virsh(ctx, "net-define", poolPath); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	ents, err := domains.ReadDir("domains")
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".xml")
		b, err := domains.ReadFile("domains/" + e.Name())
		if err != nil {
			return err
		}
		path := filepath.Join(h.Dir, e.Name())
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		if _, err := h.Virsh(ctx, "define", "--validate", path); err != nil {
			return err
		}
		inactive, err := h.Virsh(ctx, "dumpxml", "--inactive", name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name+".inactive.xml"), []byte(inactive), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: inactive\n", name)
		if !strings.HasPrefix(name, "run-") {
			continue
		}
		if _, err := h.Virsh(ctx, "start", name); err != nil {
			return err
		}
		live, err := h.Virsh(ctx, "dumpxml", name)
		if err != nil {
			return err
		}
		if _, err := h.Virsh(ctx, "destroy", name); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name+".live.xml"), []byte(live), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: live\n", name)
	}
	return nil
}
