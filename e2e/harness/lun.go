package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// LUN is the multipath guest's disk on the host: a loop device over a sparse file, the one block
// device both its SCSI paths open (as an assigned HBA and a virtio-scsi path reach one LUN).
// A loop device is the host kernel's, not a namespace's: every host of a pair sees it at the same
// path, and only Close (or SweepStale, after a killed run) detaches it.
type LUN struct {
	File string // the backing file
	Dev  string // /dev/loopN
}

// NewLUN creates a sparse file of size bytes and a loop device over it.
func NewLUN(ctx context.Context, file string, size int64) (*LUN, error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	// losetup --find would pick the device, but not make its node where /dev is a copy (a
	// private tmpfs, as a machine made to look without KVM may have): pick, make, then bind.
	var errs []error
	for range 5 {
		dev, err := freeLoop()
		if err != nil {
			return nil, err
		}
		out, err := exec.CommandContext(ctx, "losetup", dev, file).CombinedOutput()
		if err == nil {
			return &LUN{File: file, Dev: dev}, nil
		}
		// Another process may have taken the same free device meanwhile: try the next one.
		errs = append(errs, fmt.Errorf("losetup %s %s: %v: %s", dev, file, err, strings.TrimSpace(string(out))))
	}
	return nil, errors.Join(errs...)
}

// freeLoop asks the loop driver for a free device (creating one if none is free) and makes its
// node in /dev if it is missing.
func freeLoop() (string, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		return "", fmt.Errorf("/dev/loop-control: LOOP_CTL_GET_FREE: %w", err)
	}
	dev := fmt.Sprintf("/dev/loop%d", n)
	if _, err := os.Stat(dev); err == nil {
		return dev, nil
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(readTrim(fmt.Sprintf("/sys/block/loop%d/dev", n)), "%d:%d", &major, &minor); err != nil {
		return "", fmt.Errorf("loop%d: no device number in sysfs: %w", n, err)
	}
	if err := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(major, minor))); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("mknod %s: %w", dev, err)
	}
	return dev, nil
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// Close detaches the loop device. One still open (by a QEMU) is detached when it is last closed.
func (l *LUN) Close() error {
	if l == nil {
		return nil
	}
	if out, err := exec.Command("losetup", "--detach", l.Dev).CombinedOutput(); err != nil {
		return fmt.Errorf("losetup --detach %s: %v: %s", l.Dev, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// loopsUnder lists the loop devices (sysRoot/block/loopN, as /dev/loopN) whose backing file is
// under dir.
func loopsUnder(sysRoot, dir string) []string {
	files, _ := filepath.Glob(filepath.Join(sysRoot, "block", "loop*", "loop", "backing_file"))
	prefix := filepath.Clean(dir) + "/"
	var devs []string
	for _, f := range files {
		if strings.HasPrefix(readTrim(f), prefix) {
			devs = append(devs, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(f))))
		}
	}
	return devs
}
