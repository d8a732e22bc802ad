// Package guest builds the small Linux guest that the end-to-end harness boots: the Debian kernel
// and an initramfs holding busybox, the failover modules (in dependency order) and an init script
// that brings up the net_failover master, pings a gateway and prints a heartbeat on the console.
// A second initramfs, for the guests that bond their NICs (vfo.bond=1) or run dm-multipath
// (vfo.mpath=1), adds those modes' modules and the multipath helper (package mpath, built here).
//
// Nothing is installed on the machine: the kernel and busybox packages are fetched with
// "apt-get download" and unpacked into the cache directory. A build is reused until the cache
// is removed or the inputs of the initramfs (init script, module list, packages) change.
package guest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
)

//go:embed init.sh
var initScript []byte

// helperSource is the multipath helper's source: it is part of the modes initramfs's inputs.
//
//go:embed mpath/*.go
var helperSource embed.FS

// helperPackage is the multipath helper, built for the guest as /bin/vfo-mpath.
const helperPackage = "github.com/virt-failover/virt-failover/e2e/guest/mpath"

// Modules are the kernel modules the guest needs; their dependencies are added from modules.dep.
var Modules = []string{"virtio_pci", "virtio_net", "e1000e"}

// Mode is a guest mode that needs modules of its own: init.sh loads /modules.NAME, after the
// default modules, when the kernel command line has vfo.NAME=1.
type Mode struct {
	Name    string
	Modules []string // their dependencies are added from modules.dep
}

// Modes are in the modes initramfs only, so the default guest's initramfs and boot stay as they
// are. The CRC modules are the generic implementations sd_mod's integrity code asks the crypto
// API for; loading them first spares the kernel a modprobe the guest cannot answer.
var Modes = []Mode{
	{Name: "bond", Modules: []string{"bonding"}},
	{Name: "mpath", Modules: []string{"crct10dif_generic", "crc64_rocksoft_generic", "vmw_pvscsi",
		"virtio_scsi", "sd_mod", "dm_round_robin"}},
}

// Image is a built guest.
type Image struct {
	Dir    string // the cache directory
	Kernel string // vmlinuz
	Initrd string // initramfs (gzip-compressed newc cpio)
	// ModesInitrd is Initrd plus the Modes' modules and /bin/vfo-mpath: the initramfs of the
	// bonded and the multipath guests.
	ModesInitrd   string
	KernelVersion string // for example 6.1.0-56-amd64
	ModuleOrder   []string
}

// DefaultCacheDir is where a module checkout keeps the guest: <module root>/.cache/guest.
func DefaultCacheDir(moduleRoot string) string {
	return filepath.Join(moduleRoot, ".cache", "guest")
}

// Build returns the guest in cacheDir, building what is missing. logf reports progress.
func Build(ctx context.Context, cacheDir string, logf func(format string, args ...any)) (*Image, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	// One build at a time (a test and the demo may start together).
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	img := &Image{
		Dir:    cacheDir,
		Kernel: filepath.Join(cacheDir, "vmlinuz"),
		Initrd: filepath.Join(cacheDir, "initramfs.gz"),

		ModesInitrd: filepath.Join(cacheDir, "initramfs-modes.gz"),
	}
	stampPath := filepath.Join(cacheDir, "stamp")
	if stamp, err := os.ReadFile(stampPath); err == nil {
		// A stamp names the kernel version and the hash of everything in the initramfs.
		fields := strings.Fields(string(stamp))
		if len(fields) >= 2 && fields[1] == inputsHash(fields[0]) && exists(img.Kernel) && exists(img.Initrd) &&
			exists(img.ModesInitrd) {
			img.KernelVersion = fields[0]
			img.ModuleOrder = fields[2:]
			return img, nil
		}
	}

	root := filepath.Join(cacheDir, "root")
	kver, err := installedKernel(root)
	if err != nil {
		logf("guest: fetching the kernel and busybox packages with apt-get download")
		if err := fetch(ctx, cacheDir, root, logf); err != nil {
			return nil, err
		}
		if kver, err = installedKernel(root); err != nil {
			return nil, err
		}
	}
	img.KernelVersion = kver
	modDir := filepath.Join(root, "lib", "modules", kver)
	if !exists(filepath.Join(modDir, "modules.dep")) {
		if err := run(ctx, "", "depmod", "-b", root, kver); err != nil {
			return nil, err
		}
	}
	order, err := moduleOrder(filepath.Join(modDir, "modules.dep"), Modules)
	if err != nil {
		return nil, err
	}
	img.ModuleOrder = order
	logf("guest: kernel %s, modules %s", kver, strings.Join(baseNames(order), " "))
	modes, err := modeOrders(filepath.Join(modDir, "modules.dep"), order)
	if err != nil {
		return nil, err
	}
	for _, m := range Modes {
		logf("guest: vfo.%s=1 adds %s", m.Name, strings.Join(baseNames(modes[m.Name]), " "))
	}
	helper, err := buildHelper(ctx, cacheDir)
	if err != nil {
		return nil, err
	}

	if err := copyFile(filepath.Join(root, "boot", "vmlinuz-"+kver), img.Kernel, 0o644); err != nil {
		return nil, err
	}
	build := func() (initrd, modesInitrd []byte, err error) {
		if initrd, err = initramfs(root, kver, defaultContents(order)); err != nil {
			return nil, nil, err
		}
		modesInitrd, err = initramfs(root, kver, modesContents(order, modes, helper))
		return initrd, modesInitrd, err
	}
	initrd, modesInitrd, err := build()
	if errors.Is(err, os.ErrNotExist) {
		// An earlier build pruned a module that is wanted now: fetch the packages again.
		logf("guest: %v; fetching the packages again", err)
		if err := fetch(ctx, cacheDir, root, logf); err != nil {
			return nil, err
		}
		if err := run(ctx, "", "depmod", "-b", root, kver); err != nil {
			return nil, err
		}
		initrd, modesInitrd, err = build()
	}
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(img.Initrd, initrd, 0o644); err != nil {
		return nil, err
	}
	if err := writeAtomic(img.ModesInitrd, modesInitrd, 0o644); err != nil {
		return nil, err
	}
	logf("guest: wrote %s (%d KiB), %s (%d KiB) and %s", img.Initrd, len(initrd)/1024,
		img.ModesInitrd, len(modesInitrd)/1024, img.Kernel)
	stamp := kver + " " + inputsHash(kver) + " " + strings.Join(order, " ") + "\n"
	if err := writeAtomic(stampPath, []byte(stamp), 0o644); err != nil {
		return nil, err
	}
	keep := append([]string(nil), order...)
	for _, m := range Modes {
		keep = append(keep, modes[m.Name]...)
	}
	if err := prune(cacheDir, root, kver, keep); err != nil {
		return nil, err
	}
	return img, nil
}

// modeOrders returns each mode's modules in load order, without those of the default guest
// (base), which init.sh has loaded before.
func modeOrders(depFile string, base []string) (map[string][]string, error) {
	loaded := map[string]bool{}
	for _, m := range base {
		loaded[m] = true
	}
	out := map[string][]string{}
	for _, mode := range Modes {
		order, err := moduleOrder(depFile, mode.Modules)
		if err != nil {
			return nil, err
		}
		for _, m := range order {
			if !loaded[m] {
				out[mode.Name] = append(out[mode.Name], m)
			}
		}
	}
	return out, nil
}

// buildHelper builds the multipath helper for the guest (static, linux/amd64, stripped) and
// returns it. The go command runs in the working directory, which must be inside this module
// (as it is for go test, go run and the Makefile).
func buildHelper(ctx context.Context, cacheDir string) ([]byte, error) {
	out := filepath.Join(cacheDir, "vfo-mpath")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, helperPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("guest: building the multipath helper: %v: %s", err, lastLines(b, 5))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	return b, os.Remove(out)
}

// prune drops what the next initramfs build does not need (the packages and the other kernel
// modules, about 470 MB), keeping the kernel, busybox, modules.dep and the guest's modules.
func prune(cacheDir, root, kver string, order []string) error {
	keep := map[string]bool{}
	for _, m := range order {
		keep[m] = true
	}
	modRoot := filepath.Join(root, "lib", "modules", kver)
	err := filepath.WalkDir(filepath.Join(modRoot, "kernel"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(modRoot, path)
		if err != nil || keep[rel] {
			return err
		}
		return os.Remove(path)
	})
	if err != nil {
		return err
	}
	for _, p := range []string{filepath.Join(cacheDir, "debs"), filepath.Join(root, "usr"),
		filepath.Join(root, "lib", "firmware")} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// inputsHash identifies the initramfs inputs that are not files from the packages.
func inputsHash(kver string) string {
	h := sha256.New()
	h.Write(initScript)
	fmt.Fprintf(h, "\x00%s\x00%s", kver, strings.Join(Modules, ","))
	for _, m := range Modes {
		fmt.Fprintf(h, "\x00%s=%s", m.Name, strings.Join(m.Modules, ","))
	}
	files, _ := fs.Glob(helperSource, "mpath/*.go")
	for _, f := range files { // sorted
		b, _ := helperSource.ReadFile(f)
		fmt.Fprintf(h, "\x00%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// fetch downloads and unpacks the kernel image package and busybox-static into root.
func fetch(ctx context.Context, cacheDir, root string, logf func(string, ...any)) error {
	pkg, err := kernelPackage(ctx)
	if err != nil {
		logf("guest: apt-cache cannot resolve linux-image-amd64 (%v); running apt-get update", err)
		if err := run(ctx, "", "apt-get", "update"); err != nil {
			return err
		}
		if pkg, err = kernelPackage(ctx); err != nil {
			return err
		}
	}
	debs := filepath.Join(cacheDir, "debs")
	if err := os.RemoveAll(debs); err != nil {
		return err
	}
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	logf("guest: apt-get download %s busybox-static", pkg)
	if err := run(ctx, debs, "apt-get", "download", pkg, "busybox-static"); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(debs, "*.deb"))
	if err != nil {
		return err
	}
	if len(files) != 2 {
		return fmt.Errorf("guest: expected 2 packages in %s, found %d", debs, len(files))
	}
	tmp := root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	for _, f := range files {
		if err := run(ctx, "", "dpkg-deb", "-x", f, tmp); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	return os.Rename(tmp, root)
}

// kernelPackage resolves the ABI package behind linux-image-amd64, like linux-image-6.1.0-56-amd64.
func kernelPackage(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: %v: %s", err, bytes.TrimSpace(out))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends linux-image-amd64: no linux-image dependency in %q", out)
}

// installedKernel finds the single kernel version unpacked in root.
func installedKernel(root string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(root, "lib", "modules"))
	if err != nil {
		return "", err
	}
	var vers []string
	for _, e := range ents {
		if e.IsDir() && exists(filepath.Join(root, "boot", "vmlinuz-"+e.Name())) {
			vers = append(vers, e.Name())
		}
	}
	if len(vers) != 1 {
		return "", fmt.Errorf("guest: want one kernel in %s, found %v", root, vers)
	}
	if !exists(filepath.Join(root, "bin", "busybox")) {
		return "", fmt.Errorf("guest: no busybox in %s", root)
	}
	return vers[0], nil
}

// moduleOrder returns the module paths (relative to the modules dir) in load order: every module
// after all of its dependencies.
func moduleOrder(depFile string, want []string) ([]string, error) {
	data, err := os.ReadFile(depFile)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[modName(mod)] = mod
	}
	var order []string
	seen := map[string]bool{}
	var visit func(mod string, depth int) error
	visit = func(mod string, depth int) error {
		if seen[mod] {
			return nil
		}
		if depth > 64 {
			return fmt.Errorf("guest: module dependency loop at %s", mod)
		}
		ds, ok := deps[mod]
		if !ok {
			return fmt.Errorf("guest: %s is not in %s", mod, depFile)
		}
		for _, d := range ds {
			if err := visit(d, depth+1); err != nil {
				return err
			}
		}
		seen[mod] = true
		order = append(order, mod)
		return nil
	}
	for _, w := range want {
		mod, ok := byName[w]
		if !ok {
			return nil, fmt.Errorf("guest: module %s is not in %s (built in?)", w, depFile)
		}
		if err := visit(mod, 0); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func modName(path string) string {
	n := filepath.Base(path)
	n = n[:strings.Index(n+".ko", ".ko")]
	return strings.ReplaceAll(n, "-", "_")
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = modName(p)
	}
	return out
}

// contents is what an initramfs holds besides busybox and /init.
type contents struct {
	modules []string            // module paths relative to the modules directory
	lists   map[string][]string // /modules.order (the default guest's), /modules.MODE: load orders
	files   map[string][]byte   // more executables, by path
}

func defaultContents(order []string) contents {
	return contents{modules: order, lists: map[string][]string{"modules.order": order}}
}

func modesContents(order []string, modes map[string][]string, helper []byte) contents {
	c := defaultContents(order)
	c.modules = append([]string(nil), order...)
	for _, m := range Modes {
		c.modules = append(c.modules, modes[m.Name]...)
		c.lists["modules."+m.Name] = modes[m.Name]
	}
	c.files = map[string][]byte{"bin/vfo-mpath": helper}
	return c
}

// initramfs builds a gzip-compressed newc archive with fixed metadata, so the same inputs give the
// same bytes.
func initramfs(root, kver string, c contents) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	w := &cpioWriter{w: zw}
	for _, d := range []string{"bin", "dev", "lib", "lib/modules", "proc", "sbin", "sys", "tmp", "usr", "usr/bin", "usr/sbin"} {
		w.dir(d)
	}
	w.node("dev/console", 0o020600, 5, 1)
	busybox, err := os.ReadFile(filepath.Join(root, "bin", "busybox"))
	if err != nil {
		return nil, err
	}
	w.file("bin/busybox", 0o755, busybox)
	for _, name := range slices.Sorted(maps.Keys(c.files)) {
		w.file(name, 0o755, c.files[name])
	}
	w.file("init", 0o755, initScript)
	modRoot := filepath.Join(root, "lib", "modules", kver)
	names := append([]string(nil), c.modules...)
	sort.Strings(names)
	for _, m := range names {
		data, err := os.ReadFile(filepath.Join(modRoot, m))
		if err != nil {
			return nil, err
		}
		w.file("lib/modules/"+filepath.Base(m), 0o644, data)
	}
	for _, name := range slices.Sorted(maps.Keys(c.lists)) {
		var list bytes.Buffer
		for _, m := range c.lists[name] {
			fmt.Fprintln(&list, filepath.Base(m))
		}
		w.file(name, 0o644, list.Bytes())
	}
	w.trailer()
	if w.err != nil {
		return nil, w.err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type cpioWriter struct {
	w   interface{ Write([]byte) (int, error) }
	ino int
	n   int64
	err error
}

func (c *cpioWriter) entry(name string, mode uint32, rmaj, rmin int, data []byte) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmaj, rmin, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) dir(name string)                         { c.entry(name, 0o040755, 0, 0, nil) }
func (c *cpioWriter) file(name string, perm uint32, b []byte) { c.entry(name, 0o100000|perm, 0, 0, b) }
func (c *cpioWriter) node(name string, mode uint32, maj, min int) {
	c.entry(name, mode, maj, min, nil)
}
func (c *cpioWriter) trailer() { c.entry("TRAILER!!!", 0, 0, 0, nil) }

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(out, 5))
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func copyFile(src, dst string, perm os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeAtomic(dst, b, perm)
}

func writeAtomic(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}
