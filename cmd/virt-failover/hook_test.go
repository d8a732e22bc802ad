package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The host files a hook on the system writes: after "hook --root DIR" they are as they were.
var hostFiles = []string{
	"/var/log/libvirt/virt-failover.log",
	"/var/lib/virt-failover",
	"/var/lib/virt-failover/claims.json",
	"/var/lib/virt-failover/claims.lock",
}

type fileState struct {
	exists bool
	size   int64
	mtime  time.Time
}

func statAll(paths []string) map[string]fileState {
	out := map[string]fileState{}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			out[p] = fileState{true, fi.Size(), fi.ModTime()}
		} else {
			out[p] = fileState{}
		}
	}
	return out
}

// hook --root DIR is the hook of the host whose tree is DIR: the policy's default log and state
// directory, sysfs and libvirt's status files are all DIR's, at every operation and in a dry run,
// and nothing of the host outside DIR is written.
func TestHookRootWritesNothingOutsideTheTree(t *testing.T) {
	root := t.TempDir()
	if err := copyTree(filepath.Join("..", "..", "testdata", "sysfs", "host-a"), filepath.Join(root, "sys")); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(root, "etc", "virt-failover", "policy.toml")
	if err := os.MkdirAll(filepath.Dir(pol), 0o755); err != nil {
		t.Fatal(err)
	}
	// No [log], no [state], no sysfs_root: the defaults, /var/log/libvirt, /var/lib/virt-failover
	// and /sys, are the tree's.
	if err := os.WriteFile(pol, []byte("[pools.fabric]\npf = [\"enp3s0f0\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	incoming, err := os.ReadFile(filepath.Join("..", "..", "examples", "web-01.xml"))
	if err != nil {
		t.Fatal(err)
	}
	incoming = bytes.Replace(incoming, []byte("bus='0x03' slot='0x02' function='0x1'"), []byte("bus='0x81' slot='0x10' function='0x1'"), 1)
	before := statAll(hostFiles)
	run := func(stdin []byte, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code := runCLI(context.Background(), append([]string{"virt-failover", "hook", "--root", root}, args...), bytes.NewReader(stdin), &out, &errb)
		if code != 0 {
			t.Fatalf("hook %q: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	run(incoming, "--dry-run", "qemu", "web-01", "migrate", "begin", "-")
	if _, err := os.Stat(filepath.Join(root, "var")); !os.IsNotExist(err) {
		t.Errorf("the dry run created %s/var: %v", root, err)
	}
	rewritten := run(incoming, "qemu", "web-01", "migrate", "begin", "-")
	if !bytes.Contains([]byte(rewritten), []byte("bus='0x03' slot='0x10' function='0x2'")) {
		t.Fatalf("migrate begin did not take the tree's first free VF:\n%s", rewritten)
	}
	run([]byte(rewritten), "qemu", "web-01", "prepare", "begin", "-")
	run([]byte(rewritten), "qemu", "web-01", "reconnect", "begin", "-")
	run([]byte(rewritten), "qemu", "web-01", "release", "end", "-")
	for _, p := range []string{"var/log/libvirt/virt-failover.log", "var/lib/virt-failover/claims.json"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("the tree has no %s: %v", p, err)
		}
	}
	after := statAll(hostFiles)
	for _, p := range hostFiles {
		if before[p] != after[p] {
			t.Errorf("hook --root changed the host's %s: %+v -> %+v", p, before[p], after[p])
		}
	}
}
