package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rogpeppe/go-internal/diff"
	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/internal/shell"
	"github.com/virt-failover/virt-failover/policy"
	"github.com/virt-failover/virt-failover/policy/pair"
	"github.com/virt-failover/virt-failover/xmlxform"
)

func pairCommand() *cli.Command {
	return &cli.Command{
		Name:      "pair",
		Usage:     "add failover pairing to a domain definition, changing nothing else",
		ArgsUsage: "FILE|-",
		Description: "For every assigned NIC without a standby (an <interface type='hostdev'>, an <interface type='network'>\n" +
			"on a network a policy pool lists, a PCI <hostdev> given with --nic) it adds a virtio standby <interface>,\n" +
			"the <teaming> of both, user aliases and one MAC (with --bond: no <teaming>, the guest bonds them); for an\n" +
			"assigned storage device ([[storage]], --storage) a virtio-scsi path to the same LUN; --detach marks a device\n" +
			"to unplug for migrations; and it records the pairs under <metadata>. Every byte it does not\n" +
			"add or edit stays as it was. A paired definition comes out byte for byte the same, also one paired by\n" +
			"hand or by other tools (QEMU fails it over as it is): --adopt records such pairs too.\n\n" +
			"It prints the result on stdout; -w rewrites FILE in place, -o writes OUT, --diff prints a diff.\n" +
			"--check exits 1 when the definition is not fully paired. docs/pair.md tells the whole story.",
		Flags: []cli.Flag{
			policyFlag(),
			&cli.BoolFlag{Name: "write", Aliases: []string{"w"}, Usage: "rewrite FILE in place (atomically; untouched on any error)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the result to `OUT` (- for stdout)", TakesFile: true},
			&cli.BoolFlag{Name: "diff", Usage: "print a unified diff instead of the document"},
			&cli.BoolFlag{Name: "check", Usage: "change nothing; exit 1 when pairing would change FILE"},
			&cli.StringSliceFlag{Name: "nic", Usage: "the PCI <hostdev> at host address `PCIADDR` is a NIC: pair it (repeatable)"},
			&cli.StringFlag{Name: "standby-network", Usage: "new standbys connect to libvirt network `NAME` (default: [standby] of the policy)"},
			&cli.StringFlag{Name: "standby-bridge", Usage: "new standbys connect to host bridge `NAME`"},
			&cli.StringFlag{Name: "pool", Usage: "record pool `NAME` for the primaries (default: their record's, their network's or VF's pool, [host] default_pool)"},
			&cli.StringSliceFlag{Name: "storage", Usage: "the PCI <hostdev> at `DEVICE=LUNPATH` is a storage device reaching that LUN; DEVICE may be the user alias of an emulated SCSI <disk> standing in for one (tests) (repeatable)"},
			&cli.BoolFlag{Name: "emulated-primary", Usage: "pair the virtio NIC of a domain without assigned devices with an emulated e1000e primary (a stand-in for a VF, for tests)"},
			&cli.BoolFlag{Name: "bond", Usage: "the --nic NICs (and the --emulated-primary one) get a virtio standby without <teaming>, for a guest that bonds them itself (active-backup); the orchestrator unplugs the primary for migrations"},
			&cli.StringSliceFlag{Name: "detach", Usage: "the orchestrator unplugs the device with user alias `ALIAS` for migrations and plugs it back after, without a standby (repeatable)"},
			&cli.BoolFlag{Name: "adopt", Usage: "record pairs QEMU fails over as they are but pair did not write (aliases, metadata): needed only for the hook's pools"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "report only warnings and errors"},
		},
		Action: runPair,
	}
}

func runPair(ctx context.Context, cmd *cli.Command) error {
	args := cmd.Args().Slice()
	if len(args) != 1 {
		return &cliError{err: errors.New("pair: want one FILE (or - for stdin)"),
			hints: []string{`"` + programName + ` pair --help" shows the options`}, code: exitUsage}
	}
	name := args[0]
	write, output, showDiff, check := cmd.Bool("write"), cmd.String("output"), cmd.Bool("diff"), cmd.Bool("check")
	switch {
	case write && name == "-":
		return usageError("pair: -w rewrites a file; stdin has none (use -o OUT)")
	case write && output != "":
		return usageError("pair: -w and -o both say where the result goes; give one")
	case check && (write || output != ""):
		return usageError("pair: --check changes nothing; drop -w and -o")
	case cmd.String("standby-network") != "" && cmd.String("standby-bridge") != "":
		return usageError("pair: a standby connects to a network or to a bridge; give one of --standby-network and --standby-bridge")
	}
	opt := pair.Options{
		NICs:            cmd.StringSlice("nic"),
		StandbyNetwork:  cmd.String("standby-network"),
		StandbyBridge:   cmd.String("standby-bridge"),
		Pool:            cmd.String("pool"),
		EmulatedPrimary: cmd.Bool("emulated-primary"),
		Bond:            cmd.Bool("bond"),
		Detach:          cmd.StringSlice("detach"),
		Adopt:           cmd.Bool("adopt"),
		Version:         version(),
	}
	for _, s := range cmd.StringSlice("storage") {
		dev, lun, ok := strings.Cut(s, "=")
		if !ok || dev == "" || lun == "" {
			return &cliError{err: fmt.Errorf("pair: --storage %q: want DEVICE=LUNPATH", s),
				hints: []string{"for example --storage 0000:81:00.0=/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"}, code: exitUsage}
		}
		opt.Storage = append(opt.Storage, policy.Storage{Device: dev, LUN: lun})
	}

	pol, err := policy.Load(cmd.String("policy"))
	if err != nil {
		return policyError(err)
	}
	label := name
	var src []byte
	var info fs.FileInfo
	if name == "-" {
		label = "<stdin>"
		src, err = io.ReadAll(cmd.Root().Reader)
	} else {
		if info, err = os.Stat(name); err == nil && !info.Mode().IsRegular() {
			err = fmt.Errorf("%s is not a regular file", name)
		}
		if err == nil {
			src, err = os.ReadFile(name)
		}
	}
	if err != nil {
		return &cliError{err: fmt.Errorf("pair: %w", err), code: exitUsage}
	}
	doc, err := xmlxform.Parse(src)
	if err != nil {
		return &cliError{err: fmt.Errorf("pair: %s:%v", label, err),
			hints: []string{"the file must be one well-formed domain definition, as virsh dumpxml writes it"}, code: exitFailed}
	}
	res, err := pair.Plan(doc, pol, opt)
	if err != nil {
		return pairError(label, err)
	}
	out, err := res.Transform.Bytes()
	if err != nil {
		return &cliError{err: fmt.Errorf("pair: %s: internal error: %w", label, err), code: exitFailed}
	}
	stderr := cmd.Root().ErrWriter
	printPairResult(stderr, label, res, cmd.Bool("quiet"))
	stdout := cmd.Root().Writer
	if showDiff {
		stdout.Write(diff.Diff(label, src, label+" (paired)", out))
	}
	switch {
	case check:
		if res.Changed() {
			hint := `"` + programName + ` pair -w ` + shell.Quote(name) + `" makes the change; add --diff to see it`
			if name == "-" {
				hint = `"` + programName + ` pair - > FILE" writes the paired definition; add --diff to see the change`
			}
			return &cliError{err: fmt.Errorf("pair: %s is not fully paired: pairing would change it", label),
				hints: []string{hint}, code: exitFailed}
		}
	case write:
		if res.Changed() {
			if err := replaceFile(name, out, info); err != nil {
				return &cliError{err: fmt.Errorf("pair: %w", err), hints: []string{name + " is unchanged"}, code: exitUsage}
			}
		}
	case output == "-":
		stdout.Write(out)
	case output != "":
		if err := replaceFile(output, out, info); err != nil {
			return &cliError{err: fmt.Errorf("pair: %w", err), code: exitUsage}
		}
	case !showDiff:
		stdout.Write(out)
	}
	return nil
}

// bondWord names a bond pair's standby as such in the report.
func bondWord(kind string) string {
	if kind == pair.KindBond {
		return "bond "
	}
	return ""
}

// pairError renders a refusal with its position and hint.
func pairError(label string, err error) error {
	var pe *pair.Error
	if errors.As(err, &pe) {
		msg := label + ": " + pe.Msg
		if pe.Pos.Line > 0 {
			msg = label + ":" + pe.Pos.String() + ": " + pe.Msg
		}
		ce := &cliError{err: errors.New("pair: " + msg), code: exitFailed}
		if pe.Hint != "" {
			ce.hints = []string{pe.Hint}
		}
		return ce
	}
	return &cliError{err: fmt.Errorf("pair: %s: %w", label, err), code: exitFailed}
}

// printPairResult tells what was paired (unless quiet) and every warning, on stderr.
func printPairResult(w io.Writer, label string, res *pair.Result, quiet bool) {
	at := func(p xmlxform.Pos) string {
		if p.Line > 0 {
			return label + ":" + p.String()
		}
		return label
	}
	if !quiet {
		unrecorded := false
		for _, p := range res.Pairs {
			switch {
			case p.Unrecorded:
				unrecorded = true
				primary := ""
				if p.Primary != "" {
					primary = " (" + p.Primary + ")"
				}
				fmt.Fprintf(w, "%s: %s%s + standby %s: paired (QEMU fails it over as it is), without a virt-failover record\n",
					at(p.Pos), p.Device, primary, p.Standby)
			case len(p.Changes) > 0 && p.Kind == pair.KindDetach:
				fmt.Fprintf(w, "%s: %s (%s), unplugged for migrations: %s\n", at(p.Pos), p.Device, p.Primary, strings.Join(p.Changes, ", "))
			case len(p.Changes) > 0:
				fmt.Fprintf(w, "%s: %s (%s) + %sstandby %s: %s\n", at(p.Pos), p.Device, p.Primary, bondWord(p.Kind), p.Standby, strings.Join(p.Changes, ", "))
			}
		}
		if unrecorded {
			fmt.Fprintf(w, "\thint: \"%s pair --adopt\" adds user aliases and a metadata record to such pairs; only the hook's pools need them (the record names the pool a primary's VF or network is claimed from)\n", programName)
		}
		if len(res.Pairs) == 0 {
			fmt.Fprintf(w, "%s: nothing to pair: no <interface type='hostdev'>, pool network interface, --nic, storage device or --detach\n", label)
		}
	}
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "%s: warning: %s\n", at(warn.Pos), warn.Msg)
		if warn.Hint != "" {
			fmt.Fprintf(w, "\thint: %s\n", warn.Hint)
		}
	}
}

// replaceFile replaces path with data: a temporary file in the same directory, written, synced
// and renamed over it, so a reader sees the old file or the new one and a failure leaves the old
// one. The file keeps the mode (and, for root, the owner) of like, when given; a symbolic link is
// followed, not replaced.
func replaceFile(path string, data []byte, like fs.FileInfo) (err error) {
	defer func() {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temporary file's name says nothing to the operator
		}
		if err != nil {
			err = fmt.Errorf("cannot write %s: %w", path, err)
		}
	}()
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	mode := fs.FileMode(0o644)
	if cur, err := os.Stat(path); err == nil {
		like = cur
	}
	if like != nil {
		mode = like.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".vf-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if like != nil && os.Geteuid() == 0 {
		if st, ok := like.Sys().(*syscall.Stat_t); ok {
			if err = f.Chown(int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		// The rename is durable once the directory is; a failure here cannot be undone.
		_ = d.Sync()
		d.Close()
	}
	return nil
}
