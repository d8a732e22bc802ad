// Command hookbench measures whole-process latency of the hook as libvirt runs it (fork, exec,
// stdin, exit) against baselines in the same run: /bin/true and a minimal static Go binary.
//
//	go run ./internal/hookbench -bin bin/virt-failover [-n 300] [-pools]
//
// It prints a Markdown table for docs/benchmarks.md. With -pools it measures the pool cases
// instead: a 64-VF PF in a fake sysfs, claims in a real ledger (fsync included).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/virt-failover", "the virt-failover binary to measure")
	n := flag.Int("n", 300, "runs per case")
	pools := flag.Bool("pools", false, "measure the pool cases (64-VF pool, claims ledger)")
	flag.Parse()
	do := run
	if *pools {
		do = runPools
	}
	if err := do(*bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "hookbench:", err)
		os.Exit(1)
	}
}

type benchCase struct {
	name  string
	path  string
	args  []string
	stdin []byte
	reset func() error // before every run, not timed
	exit  int          // the exit code the case expects
}

func run(bin string, n int) error {
	dir, err := os.MkdirTemp("", "hookbench")
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
	// libvirt runs the hook by its path; the binary picks its hook personality from it.
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
	policy := filepath.Join(dir, "etc", "virt-failover", "policy.toml")
	if err := os.MkdirAll(filepath.Dir(policy), 0o755); err != nil {
		return err
	}
	logFile := filepath.Join(dir, "virt-failover.log")
	// Nothing to map: the same log, no [rewrite] table.
	nomap := filepath.Join(dir, "nomap.toml")
	if err := os.WriteFile(nomap, []byte(fmt.Sprintf("[log]\nfile = %q\n", logFile)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("[rewrite.networks]\n\"lan\" = \"lan-b\"\n[log]\nfile = %q\n", logFile)), 0o644); err != nil {
		return err
	}
	// Installed as DIR/etc/libvirt/hooks/qemu, the hook reads DIR/etc/virt-failover/policy.toml.
	small := domainXML(2 << 10)
	large := domainXML(10 << 10)
	cases := []benchCase{
		{"/bin/true", "/bin/true", nil, small, nil, 0},
		{"minimal static Go binary (reads stdin)", minimal, nil, large, nil, 0},
		{"virt-failover hook: started begin (no-op), 10 KB", abs, []string{"hook", "--policy", policy, "qemu", "web-01", "started", "begin", "-"}, large, nil, 0},
		{"virt-failover hook: migrate begin, no mapping, 10 KB", abs, []string{"hook", "--policy", nomap, "qemu", "web-01", "migrate", "begin", "-"}, large, nil, 0},
		{"virt-failover hook: migrate begin, rewrite, 10 KB", abs, []string{"hook", "--policy", policy, "qemu", "web-01", "migrate", "begin", "-"}, large, nil, 0},
		{"as libvirt runs it (hooks/qemu): started begin, 10 KB", hook, []string{"web-01", "started", "begin", "-"}, large, nil, 0},
		{"as libvirt runs it (hooks/qemu): migrate begin, 10 KB", hook, []string{"web-01", "migrate", "begin", "-"}, large, nil, 0},
	}
	return printTable("case", cases, n)
}

// printTable measures every case and prints the Markdown table; cases[1] is the baseline the
// ratios are taken against (the minimal static Go binary). The runs are paired: each round runs
// every case once, in an order that rotates, so a load that comes and goes weighs on all cases
// alike; the ratio is the median of the per-round ratios to the baseline.
func printTable(heading string, cases []benchCase, n int) error {
	fmt.Printf("%d rounds of paired runs, %s/%s, %d CPUs, %s\n\n", n, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	times := make([][]time.Duration, len(cases))
	for round := 0; round < n+n/10; round++ {
		for k := range cases {
			i := (k + round) % len(cases)
			d, err := runOnce(cases[i])
			if err != nil {
				return fmt.Errorf("%s: %w", cases[i].name, err)
			}
			if round >= n/10 { // the first tenth warms the page cache and is not counted
				times[i] = append(times[i], d)
			}
		}
	}
	fmt.Printf("| %s | median | p95 | vs minimal Go (paired) |\n", heading)
	fmt.Println("|---|---|---|---|")
	for i, c := range cases {
		ratio := "—"
		if i >= 1 {
			rs := make([]float64, len(times[i]))
			for r := range rs {
				rs[r] = float64(times[i][r]) / float64(times[1][r])
			}
			slices.Sort(rs)
			ratio = fmt.Sprintf("%.2fx", rs[len(rs)/2])
		}
		sorted := slices.Clone(times[i])
		slices.Sort(sorted)
		fmt.Printf("| %s | %s | %s | %s |\n", c.name, fmtDur(sorted[len(sorted)/2]), fmtDur(sorted[len(sorted)*95/100]), ratio)
	}
	return nil
}

// runOnce runs a case once and returns its wall time.
func runOnce(c benchCase) (time.Duration, error) {
	if c.reset != nil {
		if err := c.reset(); err != nil {
			return 0, err
		}
	}
	cmd := exec.Command(c.path, c.args...)
	cmd.Stdin = bytes.NewReader(c.stdin)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code, err = ee.ExitCode(), nil
	}
	if err != nil || code != c.exit {
		return 0, fmt.Errorf("exit %d, %v: %s", code, err, stderr.String())
	}
	return d, nil
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}

// domainXML makes a realistic domain of about size bytes: a failover pair plus disks and the usual
// devices, padded with more virtio disks.
func domainXML(size int) []byte {
	var b strings.Builder
	b.WriteString(`<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web-01</name>
  <uuid>5f1c2c8e-2b0a-4f4e-9a57-1d0e6f0c9a11</uuid>
  <memory unit='KiB'>4194304</memory>
  <currentMemory unit='KiB'>4194304</currentMemory>
  <vcpu placement='static'>4</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features><acpi/><apic/></features>
  <cpu mode='host-passthrough' check='none' migratable='on'/>
  <clock offset='utc'/>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='pci' index='0' model='pcie-root'/>
    <interface type='network'>
      <mac address='52:54:00:6d:90:02'/>
      <source network='lan'/>
      <model type='virtio'/>
      <alias name='ua-sby0'/>
      <teaming type='persistent'/>
    </interface>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:6d:90:02'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x03' slot='0x07' function='0x1'/>
      </source>
      <teaming type='transient' persistent='ua-sby0'/>
    </interface>
`)
	for i := 0; b.Len() < size-400; i++ {
		fmt.Fprintf(&b, `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io='native'/>
      <source file='/var/lib/libvirt/images/web-01-disk%d.qcow2'/>
      <target dev='vd%c' bus='virtio'/>
      <serial>web01-disk-%04d</serial>
    </disk>
`, i, 'a'+rune(i%26), i)
	}
	b.WriteString(`    <serial type='pty'><target type='isa-serial' port='0'/></serial>
    <graphics type='vnc' port='-1' autoport='yes'/>
    <memballoon model='virtio'/>
  </devices>
</domain>
`)
	return []byte(b.String())
}
