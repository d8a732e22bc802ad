package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/virt-failover/virt-failover/internal/ledger"
	"github.com/virt-failover/virt-failover/internal/sysfs/sysfstest"
)

// runPools measures the hook with a pool of 64 VFs (one PF in a fake sysfs), as libvirt runs it
// (DIR/etc/libvirt/hooks/qemu), the claims ledger on the temporary directory's file system.
func runPools(bin string, n int) error {
	dir, err := os.MkdirTemp("", "hookbench-pools")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	minimal := filepath.Join(dir, "minimal")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", minimal, "./internal/hookbench/minimal")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the baseline: %v\n%s", err, out)
	}
	sys := filepath.Join(dir, "sys")
	pf := sysfstest.PFWithVFs("ens1f0", 0x81, 64, "ice", "iavf")
	if err := sysfstest.Build(sys, sysfstest.Tree{PFs: []sysfstest.PF{pf}}); err != nil {
		return err
	}
	hookDir := filepath.Join(dir, "etc", "libvirt", "hooks")
	if err := os.MkdirAll(hookDir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	hook := filepath.Join(hookDir, "qemu")
	if err := os.Symlink(abs, hook); err != nil {
		return err
	}
	state := filepath.Join(dir, "state")
	pol := filepath.Join(dir, "etc", "virt-failover", "policy.toml")
	if err := os.MkdirAll(filepath.Dir(pol), 0o755); err != nil {
		return err
	}
	body := fmt.Sprintf("[host]\nsysfs_root = %q\ndefault_pool = \"fabric\"\n[pools.fabric]\npf = [\"ens1f0\"]\n[state]\ndir = %q\n[log]\nfile = %q\n",
		sys, state, filepath.Join(dir, "virt-failover.log"))
	if err := os.WriteFile(pol, []byte(body), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "run", "libvirt", "qemu"), 0o755); err != nil {
		return err
	}
	incoming := domainXML(10 << 10)                                                                                                       // a VF of another host: 0000:03:07.1
	local := bytes.Replace(incoming, []byte("bus='0x03' slot='0x07' function='0x1'"), []byte("bus='0x81' slot='0x09' function='0x7'"), 1) // VF 63
	owner := ledger.Owner{UUID: "5f1c2c8e-2b0a-4f4e-9a57-1d0e6f0c9a11", Domain: "web-01", Alias: "primary of ua-sby0"}                    // its primary has no alias: claimed by its standby
	// withClaims rewrites the ledger to hold others' claims on the first k VFs, and web-01's own
	// claim on VF 63 in state st ("" for none).
	withClaims := func(k int, st ledger.State) func() error {
		return func() error {
			if err := os.RemoveAll(state); err != nil {
				return err
			}
			l := ledger.Open(state)
			return l.Update(func(tx *ledger.Tx) error {
				for i := range k {
					o := ledger.Owner{UUID: fmt.Sprintf("uuid-%d", i), Domain: fmt.Sprintf("g%d", i), Alias: "ua-pri0"}
					if _, err := tx.Take("fabric", pf.VFs[i].Addr, o, ledger.Confirmed, 0); err != nil {
						return err
					}
				}
				if st != "" {
					_, err := tx.Take("fabric", pf.VFs[63].Addr, owner, st, 10*time.Minute)
					return err
				}
				return nil
			})
		}
	}
	args := func(op, sub string) []string { return []string{"web-01", op, sub, "-"} }
	cases := []benchCase{
		{"/bin/true", "/bin/true", nil, incoming[:2<<10], nil, 0},
		{"minimal static Go binary (reads stdin)", minimal, nil, incoming, nil, 0},
		{"started begin (no-op), 64-VF pool in the policy", hook, args("started", "begin"), incoming, nil, 0},
		{"migrate begin: a VF of another host -> VF 0 of 64, claim pending", hook, args("migrate", "begin"), incoming, withClaims(0, ""), 0},
		{"migrate begin: 63 of 64 claimed -> VF 63, claim pending", hook, args("migrate", "begin"), incoming, withClaims(63, ""), 0},
		{"migrate begin: pool exhausted (64 of 64) -> refusal", hook, args("migrate", "begin"), incoming, withClaims(64, ""), 1},
		{"prepare begin: confirm the pending claim (63 others)", hook, args("prepare", "begin"), local, withClaims(63, ledger.Pending), 0},
		{"release end: free the claim (63 others)", hook, args("release", "end"), local, withClaims(63, ledger.Confirmed), 0},
	}
	return printTable("case (as libvirt runs it, 10 KB domain)", cases, n)
}
