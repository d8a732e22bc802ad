package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/install"
	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/internal/hostpaths"
	"github.com/virt-failover/virt-failover/internal/shell"
	"github.com/virt-failover/virt-failover/internal/trust"
	"github.com/virt-failover/virt-failover/policy"
)

const (
	defaultBin = "/usr/local/bin/virt-failover"
	hookName   = "virt-failover" // the entry in hooks/qemu.d/
	modulePath = "github.com/virt-failover/virt-failover"
)

func binFlag() cli.Flag {
	return &cli.StringFlag{Name: "bin", Usage: "where the binary is installed", Value: defaultBin, TakesFile: true}
}

func installCommand() *cli.Command {
	return &cli.Command{
		Name:  "install",
		Usage: "install the binary and the libvirt QEMU hook, a sample policy, and the claims of running guests",
		Description: "Copies this binary to --bin and links it into libvirt's hooks: as hooks/qemu.d/" + hookName + "\n" +
			"(libvirt >= 6.5), or as hooks/qemu when libvirt has no qemu.d and no hook yet. An existing hook is\n" +
			"never replaced: with qemu.d libvirt runs it first and virt-failover after it (chained); without\n" +
			"qemu.d the install refuses. Writes a commented sample policy when there is none, records the claims\n" +
			"of the guests already running (the daemon's reload brings no reconnect), and says what libvirtd\n" +
			"needs to notice a new hook; --reload sends it the SIGHUP.",
		Flags: []cli.Flag{
			rootFlag(), binFlag(),
			&cli.StringFlag{Name: "policy", Usage: "policy file (default DIR/etc/virt-failover/policy.toml)", TakesFile: true},
			&cli.BoolFlag{Name: "reload", Usage: "send libvirtd (or virtqemud) the SIGHUP it needs to notice a first hook"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print what install would do, and change nothing"},
		},
		Action: runInstall,
	}
}

func uninstallCommand() *cli.Command {
	return &cli.Command{
		Name:  "uninstall",
		Usage: "remove the hook and the binary; keep the policy, the claims and the log",
		Flags: []cli.Flag{rootFlag(), binFlag(),
			&cli.BoolFlag{Name: "keep-bin", Usage: "leave the binary where it is (the Debian package's prerm: dpkg removes it)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			paths, err := rootPaths(cmd)
			if err != nil {
				return err
			}
			out := cmd.Root().Writer
			hooksDir := paths.HooksDir()
			removed := 0
			for _, p := range []string{filepath.Join(hooksDir, "qemu.d", hookName), filepath.Join(hooksDir, "qemu")} {
				if _, err := os.Lstat(p); err != nil {
					continue
				}
				if !isOurs(p) {
					fmt.Fprintf(out, "kept %s: not virt-failover\n", p)
					continue
				}
				if err := os.Remove(p); err != nil {
					return &cliError{err: err, code: exitFailed}
				}
				fmt.Fprintf(out, "removed the hook %s\n", p)
				removed++
			}
			if removed == 0 {
				fmt.Fprintln(out, "no virt-failover hook installed")
			}
			bin := paths.Under(cmd.String("bin"))
			if _, err := os.Lstat(bin); err == nil && !cmd.Bool("keep-bin") {
				if isOurs(bin) {
					if err := os.Remove(bin); err != nil {
						return &cliError{err: err, code: exitFailed}
					}
					fmt.Fprintf(out, "removed %s\n", bin)
				} else {
					fmt.Fprintf(out, "kept %s: not virt-failover\n", bin)
				}
			}
			fmt.Fprintf(out, "kept the policy (%s), the claims and the decision log\n", paths.PolicyFile())
			if removed > 0 {
				fmt.Fprintln(out, "libvirt stops running the hook from its next call; nothing to reload")
			}
			return nil
		},
	}
}

func runInstall(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Present() {
		return usageError("install: takes no arguments")
	}
	paths, err := rootPaths(cmd)
	if err != nil {
		return err
	}
	out := cmd.Root().Writer
	libvirtEtc := paths.LibvirtEtc()
	if st, err := os.Stat(libvirtEtc); err != nil || !st.IsDir() {
		hint := "apt-get install libvirt-daemon-system, or give --root the tree to install into"
		if !paths.System() {
			hint = "--root names a host's tree, which must hold libvirt's configuration; for a test tree: mkdir -p " +
				shell.Quote(filepath.Join(paths.HooksDir(), "qemu.d")) + " (libvirt >= 6.5 layout), or mkdir -p " + shell.Quote(paths.HooksDir())
		}
		return &cliError{err: fmt.Errorf("install: %s does not exist: is libvirt installed?", libvirtEtc), code: exitFailed,
			hints: []string{hint}}
	}

	plan, err := planInstall(cmd, paths)
	if err != nil {
		return err
	}
	if cmd.Bool("dry-run") {
		for _, st := range plan {
			if st.line != "" {
				fmt.Fprintf(out, "dry run: %s\n", st.line)
			}
		}
		return nil
	}
	for _, st := range plan {
		if st.do != nil {
			if err := st.do(); err != nil {
				return err
			}
		}
		if st.line != "" {
			fmt.Fprintln(out, st.line)
		}
	}
	return nil
}

// installStep is one thing install does: the line that reports it, and the change (nil when
// there is nothing to change). The whole plan is worked out, and every refusal found, before the
// first change: --dry-run prints the same plan install carries out.
type installStep struct {
	line string
	do   func() error
}

func planInstall(cmd *cli.Command, paths hostpaths.Paths) ([]installStep, error) {
	var plan []installStep
	step := func(line string, do func() error) { plan = append(plan, installStep{line: line, do: do}) }
	failed := func(err error) error { return &cliError{err: fmt.Errorf("install: %w", err), code: exitFailed} }

	// The policy first: a hook with a broken policy would refuse every migration.
	polPath := paths.PolicyFile()
	if cmd.IsSet("policy") {
		polPath = cmd.String("policy")
	}
	var pol *policy.Policy
	var err error
	policyLine := fmt.Sprintf("policy: %s (kept; it validates)", polPath)
	var writePolicy func() error
	if _, serr := os.Stat(polPath); errors.Is(serr, os.ErrNotExist) {
		pol, err = policy.Parse(polPath, install.SamplePolicy)
		policyLine = fmt.Sprintf("policy: %s (a commented sample: every key at its default; define [pools.*] to remap VFs)", polPath)
		writePolicy = func() error {
			if err := os.MkdirAll(filepath.Dir(polPath), 0o755); err != nil {
				return failed(err)
			}
			if err := replaceFile(polPath, install.SamplePolicy, nil); err != nil {
				return failed(err)
			}
			return nil
		}
	} else {
		pol, err = policy.Load(polPath)
	}
	if err == nil {
		// A policy the hook would not trust would make it refuse every migration too.
		err = trust.Check(polPath, os.Geteuid() == 0)
	}
	if err != nil {
		ce := policyError(err).(*cliError)
		ce.hints = append(ce.hints, "fix the policy and run install again: nothing was installed")
		return nil, ce
	}
	if writePolicy != nil {
		step("", writePolicy)
	}

	// The binary.
	self, err := os.Executable()
	if err != nil {
		return nil, &cliError{err: err, code: exitFailed}
	}
	bin := paths.Under(cmd.String("bin"))
	if same, _ := sameFile(self, bin); same {
		step(fmt.Sprintf("binary: %s (already there)", bin), nil)
	} else {
		if _, err := os.Lstat(bin); err == nil && !isOurs(bin) {
			return nil, &cliError{err: fmt.Errorf("install: %s exists and is not virt-failover", bin), code: exitFailed,
				hints: []string{"choose another place with --bin"}}
		}
		step(fmt.Sprintf("binary: %s", bin), func() error {
			if err := copyExecutable(self, bin); err != nil {
				return failed(err)
			}
			return nil
		})
	}

	// The hook.
	hooksDir := paths.HooksDir()
	main := filepath.Join(hooksDir, "qemu")
	qemuD := filepath.Join(hooksDir, "qemu.d")
	hadHook := hasQemuHook(hooksDir)
	useD, why := qemuDLayout(paths.System(), qemuD)
	mainExists := exists(main)
	link := func(entry string) func() error {
		return func() error {
			if err := os.MkdirAll(filepath.Dir(entry), 0o755); err != nil {
				return failed(err)
			}
			if err := relink(entry, bin); err != nil {
				return &cliError{err: err, code: exitFailed}
			}
			return nil
		}
	}
	switch {
	case mainExists && isOurs(main):
		step(fmt.Sprintf("hook: %s (already installed)", main), nil)
	case useD:
		entry := filepath.Join(qemuD, hookName)
		switch {
		case exists(entry) && isOurs(entry):
			step(fmt.Sprintf("hook: %s -> %s (already installed)", entry, bin), link(entry))
		case exists(entry):
			return nil, &cliError{err: fmt.Errorf("install: %s exists and is not virt-failover; refusing to replace it", entry), code: exitFailed}
		default:
			step(fmt.Sprintf("hook: %s -> %s (%s)", entry, bin, why), link(entry))
		}
		if mainExists {
			step(fmt.Sprintf("chained: libvirt runs the existing %s first and virt-failover after it, with its output as our input", main), nil)
		}
	case mainExists:
		return nil, &cliError{err: fmt.Errorf("install: %s exists and is not virt-failover, and %s; refusing to replace it", main, why), code: exitFailed,
			hints: []string{
				"with libvirt >= 6.5, create " + qemuD + " and run install again: libvirt then runs both hooks",
				"else call virt-failover from your hook: " + shell.Quote(cmd.String("bin")) + ` hook qemu "$@" (the domain XML on its stdin)`,
			}}
	default:
		step(fmt.Sprintf("hook: %s -> %s (%s)", main, bin, why), link(main))
	}
	step(policyLine, nil)

	// Claims of the guests already running: planned from a snapshot now, taken when carried out.
	paths.MapPolicy(pol)
	statusDir := paths.StatusDir()
	planned, problems, _ := claims.Seed(pol, statusDir, time.Now(), false)
	seed := func() error {
		_, _, err := claims.Seed(pol, statusDir, time.Now(), true)
		if err != nil {
			return failed(err)
		}
		return nil
	}
	for i, c := range planned {
		if i == 0 {
			step("", seed)
		}
		step(fmt.Sprintf("seeded %s: a running guest", c), nil)
	}
	for _, p := range problems {
		step("warning: "+p, nil)
	}
	if len(planned) == 0 {
		step(fmt.Sprintf("claims: no running guest uses a pool resource (%s)", statusDir), nil)
	}

	// What the daemon needs.
	switch {
	case hadHook:
		step("libvirt already runs QEMU hooks: it runs virt-failover from its next call; nothing to reload", nil)
	case !cmd.Bool("reload"):
		step("libvirtd loaded no QEMU hook when it started, so it ignores this one until it re-reads its hooks:", nil)
		step("  systemctl reload libvirtd   (SIGHUP; virtqemud on modular daemons; guests keep running), or install --reload", nil)
	default:
		name, pid, err := findDaemon(paths)
		if err != nil {
			return nil, &cliError{err: fmt.Errorf("install --reload: %w", err), code: exitFailed,
				hints: []string{"nothing was installed; install without --reload, then run systemctl reload libvirtd (or virtqemud)"}}
		}
		step(fmt.Sprintf("sent SIGHUP to %s (pid %d): it now runs the hook", name, pid), func() error {
			if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
				return &cliError{err: fmt.Errorf("install --reload: SIGHUP to %s (pid %d): %w", name, pid, err), code: exitFailed}
			}
			return nil
		})
	}
	return plan, nil
}

// isOurs reports whether path (followed through links) is a virt-failover binary: the build
// information Go writes into every binary ("go version -m") names this module as its main one.
// (A byte search, not debug/buildinfo: that package would add 0.7 MB to a binary every hook
// call loads.)
func isOurs(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte("\nmod\t"+modulePath+"\t"))
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// hasQemuHook reports whether libvirt has a QEMU hook to run: an executable hooks/qemu or an
// executable entry in hooks/qemu.d (docs/failover.md#hook-protocol).
func hasQemuHook(hooksDir string) bool {
	executable := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
	}
	if executable(filepath.Join(hooksDir, "qemu")) {
		return true
	}
	ents, _ := os.ReadDir(filepath.Join(hooksDir, "qemu.d"))
	for _, e := range ents {
		if executable(filepath.Join(hooksDir, "qemu.d", e.Name())) {
			return true
		}
	}
	return false
}

var versionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\) (\d+)\.(\d+)\.`) })

// qemuDLayout decides whether the hook goes into hooks/qemu.d (libvirt >= 6.5): yes when the
// directory exists, else by the daemon's version when it can be asked (a real root only).
func qemuDLayout(system bool, qemuD string) (bool, string) {
	if st, err := os.Stat(qemuD); err == nil && st.IsDir() {
		return true, "hooks/qemu.d exists"
	}
	if !system {
		return false, "no hooks/qemu.d in the tree"
	}
	for _, d := range []string{"libvirtd", "virtqemud"} {
		b, err := exec.Command(d, "--version").Output()
		if err != nil {
			continue
		}
		m := versionRE().FindSubmatch(b)
		if m == nil {
			continue
		}
		maj, _ := strconv.Atoi(string(m[1]))
		min, _ := strconv.Atoi(string(m[2]))
		v := fmt.Sprintf("libvirt %d.%d", maj, min)
		if maj > 6 || (maj == 6 && min >= 5) {
			return true, v + " runs hooks/qemu.d"
		}
		return false, v + " has no hooks/qemu.d (6.5 added it)"
	}
	return false, "libvirt's version is unknown"
}

// relink points link at target, replacing an older link atomically.
func relink(link, target string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	tmp := link + ".vf-new"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

func copyExecutable(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	tmp := to + ".vf-new"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(dst, src)
	serr := dst.Sync()
	if err := errors.Join(cerr, serr, dst.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, to) // a running hook keeps its old inode
}

// findDaemon finds the running libvirtd or virtqemud from its pid file in the host's tree.
func findDaemon(paths hostpaths.Paths) (string, int, error) {
	var looked []string
	for _, f := range paths.DaemonPIDFiles() {
		looked = append(looked, f.Path)
		b, err := os.ReadFile(f.Path)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || !bytes.Equal(bytes.TrimSpace(comm), []byte(f.Daemon)) {
			continue
		}
		return f.Daemon, pid, nil
	}
	return "", 0, fmt.Errorf("no running libvirtd or virtqemud (looked for %s)", strings.Join(looked, ", "))
}
