// Command demo shows virt-failover at work on this machine, for a newcomer: two libvirt hosts in
// private namespaces, the hook installed on both, a guest whose NIC is a virtio-net failover pair,
// and a live migration A -> B -> A with the hook rewriting the guest network on the way; then the
// same guest with one plain virtio NIC (no failover), booted beside it at the start, migrated the
// same way: the yardstick the failover figures are read against; last, a guest that bonds its
// NICs itself, migrated A -> B by the orchestrator (virt-failover migrate) with its phase table.
//
// Run it as root from the module root: go run ./e2e/demo (or make demo). It stops everything it
// started when it ends or on Ctrl-C and keeps the logs, whose place it prints.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/virt-failover/virt-failover/e2e/guest"
	"github.com/virt-failover/virt-failover/e2e/harness"
)

var start = time.Now()

func say(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func detail(format string, args ...any) {
	fmt.Printf("         %s\n", fmt.Sprintf(format, args...))
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Geteuid() != 0 {
		return errors.New("run me as root: I start libvirtd and QEMU in private namespaces")
	}
	ctx := context.Background()
	root, err := harness.ModuleRoot()
	if err != nil {
		return err
	}
	outRoot := filepath.Join(root, "e2e", "out")
	harness.SweepStale(outRoot, say)
	runDir := filepath.Join(outRoot, "demo-"+time.Now().Format("20060102-150405"))
	if err := harness.ClaimRunDir(runDir); err != nil {
		return err
	}
	harness.StopOnSignal(func(sig os.Signal) {
		fmt.Println()
		say("%v: stopping both hosts (domains, libvirtd, virtlogd, QEMU); logs stay in %s", sig, runDir)
	})

	fmt.Println("virt-failover demo: two libvirt hosts on this machine, one guest with a failover NIC,")
	fmt.Println("live migration A -> B -> A with virt-failover as the libvirt QEMU hook on both hosts; then")
	fmt.Println("the same guest with one plain virtio NIC migrated the same way, the yardstick; last, a guest")
	fmt.Println("that bonds a VF's stand-in itself, migrated by the orchestrator: virt-failover migrate.")
	fmt.Println()

	hook := os.Getenv("VF_BIN")
	if hook == "" {
		hook = filepath.Join(runDir, "virt-failover")
		say("building the hook: CGO_ENABLED=0 go build -o %s ./cmd/virt-failover", rel(root, hook))
		cmd := exec.Command("go", "build", "-trimpath", "-o", hook, "./cmd/virt-failover")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building the hook: %v\n%s", err, out)
		}
	} else {
		say("hook under test: %s (VF_BIN)", hook)
	}

	say("building the guest (Debian kernel + busybox initramfs; cached in %s)", rel(root, guest.DefaultCacheDir(root)))
	img, err := guest.Build(ctx, guest.DefaultCacheDir(root), func(f string, a ...any) { detail(f, a...) })
	if err != nil {
		return err
	}

	say("starting host A and host B: libvirtd + virtlogd, each in its own mount/UTS/network namespaces")
	detail("the hook is copied to /etc/libvirt/hooks/qemu on both BEFORE libvirtd starts (libvirt looks once)")
	detail("migration link: veth %s (A) <-> %s (B); guest network: bridge %s with gateway %s on both",
		harness.MigIPA, harness.MigIPB, harness.Bridge, harness.GuestGW)
	pair, err := harness.StartPair(ctx, harness.PairConfig{Dir: runDir, Hook: hook})
	if err != nil {
		return err
	}
	defer pair.Stop()
	say("hosts up; A has the libvirt network \"lan\", B calls the same bridge \"lan-b\"")
	if pair.A.KVM() {
		detail("libvirt offers KVM here; the guests run under TCG (<domain type='qemu'>) all the same")
	} else {
		detail("libvirt offers no KVM here; the guests run under TCG (<domain type='qemu'>), as they would with it")
	}

	policies := map[*harness.Host]string{
		pair.B: "[rewrite.networks]\n\"lan\" = \"lan-b\"\n",
		pair.A: "[rewrite.networks]\n\"lan-b\" = \"lan\"\n",
	}
	for _, h := range []*harness.Host{pair.A, pair.B} {
		// The bonded guest's primary draws its network from pool 'fabric'; the orchestrator's
		// replug worker reaches the host's own daemon.
		if err := h.DefineFabric(ctx); err != nil {
			return err
		}
		if err := h.WritePolicy(policies[h] + h.OrchestrationPolicy()); err != nil {
			return err
		}
		detail("host %s /etc/virt-failover/policy.toml: %s; pool fabric = %s", strings.ToUpper(h.Name),
			strings.ReplaceAll(strings.TrimSpace(policies[h]), "\n", "  "), strings.Join(harness.FabricNetworks[h.Name], ", "))
	}

	serial := harness.NewSerial(filepath.Join(runDir, "serial", "guest.log"))
	g := harness.DefaultGuest(img.Kernel, img.Initrd, serial.Path)

	// The yardstick: the same guest without a primary, migrated the same way after the failover
	// guest, so the table shows what failover costs against plain virtio. It boots now, beside the
	// failover guest, and idles on A until its turn, as the failover guest idles during its own.
	plainSerial := harness.NewSerial(filepath.Join(runDir, "serial", "plain.log"))
	pg := harness.YardstickGuest(img.Kernel, img.Initrd, plainSerial.Path)
	say("booting the yardstick on A in the background: guest %q with ONE plain virtio NIC (no primary, nothing to fail over)", pg.Name)
	detail("address %s; it idles on A until the failover guest's migrations are done", harness.PlainIP)
	plainUp := make(chan error, 1)
	go func() {
		_, err := pair.A.Boot(ctx, pg, plainSerial)
		plainUp <- err
	}()

	// The bonded guest: no net_failover, its e1000e primary stands in for a VF the guest bonds
	// with a virtio NIC; the orchestrator unplugs it, migrates, plugs it back. It boots now too.
	bondSerial := harness.NewSerial(filepath.Join(runDir, "serial", "bond.log"))
	bg := harness.BondGuest(img.Kernel, img.ModesInitrd, bondSerial.Path)
	bondXML, err := harness.OrchestratedBondXML(hook, bg, harness.FabricPool, "fabric-a1")
	if err != nil {
		return err
	}
	say("booting the bonded guest on A in the background: %q bonds an e1000e (a VF's stand-in, network fabric-a1 of pool fabric) and a virtio NIC itself, no net_failover", bg.Name)
	bondUp := make(chan error, 1)
	go func() {
		what, ready := bg.Ready()
		_, err := pair.A.DefineAndStart(ctx, bg.Name, bondXML, bondSerial, what, ready)
		bondUp <- err
	}()

	var migrations []*harness.Migration
	for attempt := 1; ; attempt++ {
		migrations, err = demoRun(ctx, pair, g, serial)
		var crash *harness.GuestCrash
		if errors.As(err, &crash) && attempt == 1 {
			say("the GUEST KERNEL crashed (%s): a known rare guest-side flake, not a failover failure; once more from a fresh boot", crash.Line)
			continue
		}
		if err != nil {
			return err
		}
		break
	}

	if err := <-plainUp; err != nil {
		return fmt.Errorf("the yardstick guest: %w", err)
	}
	plain, err := plainRun(ctx, pair, pg, plainSerial)
	if err != nil {
		return err
	}

	if err := <-bondUp; err != nil {
		return fmt.Errorf("the bonded guest: %w", err)
	}
	orch, err := orchestratedRun(ctx, pair, hook, bg.Name, bondSerial)
	if err != nil {
		return err
	}

	fmt.Println()
	report(pair, migrations, plain, orch)
	pair.Stop()
	fmt.Println()
	say("both hosts stopped. Logs kept in %s:", runDir)
	for _, h := range pair.Hosts() {
		detail("host %s: hook log %s", strings.ToUpper(h.Name), rel(runDir, h.HookLogPath()))
		detail("        libvirtd %s, guest QEMU log %s", rel(runDir, h.DaemonLogPath()), rel(runDir, h.DomainLogPath(g.Name)))
	}
	detail("guest serial consoles: %s (failover), %s (plain virtio), %s (bonded)", rel(runDir, serial.Path), rel(runDir, plainSerial.Path),
		rel(runDir, bondSerial.Path))
	return nil
}

// demoRun boots the guest on A and migrates it to B and back.
func demoRun(ctx context.Context, pair *harness.Pair, g harness.Guest, serial *harness.Serial) ([]*harness.Migration, error) {
	for _, h := range pair.Hosts() {
		if st, _ := h.DomState(ctx, g.Name); st != "" {
			_, _ = h.Virsh(ctx, "destroy", g.Name)
		}
	}
	say("booting guest %q on A: virtio-net standby + e1000e primary (stands in for a VF), same MAC %s", g.Name, g.MAC)
	detail("<teaming type='persistent'/> on the virtio NIC, failover_pair_id on the e1000e; TCG, no disk")
	hb, err := pair.A.Boot(ctx, g, serial)
	if err != nil {
		return nil, err
	}
	m, _ := hb.Master()
	p, _ := hb.Primary()
	s, _ := hb.Standby()
	say("guest up: %s is the failover master, %s (virtio) the standby, %s (e1000e) the primary; pinging %s every 0.5 s",
		m.Name, s.Name, p.Name, harness.GuestGW)

	var ms []*harness.Migration
	for _, hop := range [][2]*harness.Host{{pair.A, pair.B}, {pair.B, pair.A}} {
		from, to := hop[0], hop[1]
		say("migrating %s -> %s: virsh migrate --live --p2p %s qemu+unix:///system?socket=... tcp://%s",
			strings.ToUpper(from.Name), strings.ToUpper(to.Name), g.Name, to.MigIP)
		mig, err := harness.MigrateObserved(ctx, g.Name, from, to, serial)
		if err != nil {
			return ms, err
		}
		if mig.Err != nil {
			return ms, fmt.Errorf("migration %s failed: %v\n%s", mig.Direction(), mig.Err, mig.Output)
		}
		ms = append(ms, mig)
		narrate(ctx, mig)
	}
	return ms, nil
}

// plainRun migrates the plain-virtio guest, up on A, to B and back while the failover guest idles
// on A: the yardstick for the failover rows.
func plainRun(ctx context.Context, pair *harness.Pair, g harness.Guest, serial *harness.Serial) ([]*harness.Migration, error) {
	say("the yardstick: guest %q (plain virtio, up on A) migrated the same way, same probes; the failover guest idles on A", g.Name)
	var ms []*harness.Migration
	for _, hop := range [][2]*harness.Host{{pair.A, pair.B}, {pair.B, pair.A}} {
		from, to := hop[0], hop[1]
		mig, err := harness.MigratePlain(ctx, g.Name, from, to, serial)
		if err != nil {
			return ms, err
		}
		if mig.Err != nil {
			return ms, fmt.Errorf("plain migration %s failed: %v\n%s", mig.Direction(), mig.Err, mig.Output)
		}
		ms = append(ms, mig)
		say("plain virtio %s -> %s: virsh migrate took %.1fs, %d of %d probes lost", strings.ToUpper(from.Name), strings.ToUpper(to.Name),
			mig.Duration.Seconds(), mig.Lost, mig.Probes())
	}
	return ms, nil
}

// orchestrated is the bonded guest's migration by virt-failover migrate, as the demo saw it.
type orchestrated struct {
	took        time.Duration // the command, start to end
	back        time.Duration // from its start to the bond whole again on B
	lost, count int
	decision    string // of B's hook at migrate begin
}

// orchestratedRun migrates the bonded guest, up on A, to B with virt-failover migrate, prints what
// the command printed (its plan, progress and phase table) and follows the guest's bond.
func orchestratedRun(ctx context.Context, pair *harness.Pair, bin, dom string, serial *harness.Serial) (*orchestrated, error) {
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	before, err := serial.WaitHeartbeat(wctx, serial.Len(), "the bond whole with probes answered", harness.Answering(harness.Heartbeat.BondWhole))
	if err != nil {
		return nil, err
	}
	say("the orchestrator: virt-failover migrate %s from A to B (its record makes the e1000e a VF, which libvirt would not migrate: it is unplugged first)", dom)
	skip, _ := pair.B.HookLog()
	c, err := harness.RunCommand(wctx, bin, harness.MigrateArgs(dom, pair.A, pair.B)...)
	if err != nil {
		return nil, err
	}
	o := &orchestrated{took: c.Ended().Sub(c.Started), decision: "-"}
	for _, l := range c.Lines() {
		detail("| %s", l.Text)
	}
	if code, _ := c.Wait(wctx); code != 0 {
		return nil, fmt.Errorf("virt-failover migrate exited %d", code)
	}
	entries, _ := pair.B.HookLog()
	var worker []string
	for _, e := range entries[min(len(skip), len(entries)):] {
		if e.Domain != dom {
			continue
		}
		if e.Call() == "migrate begin" {
			o.decision = e.Decision
			for _, ch := range e.Changes {
				detail("B's hook at migrate begin: %s", ch)
			}
		}
		if e.Op == "replug" {
			worker = append(worker, e.Message)
		}
	}
	if len(worker) > 0 {
		detail("B's replug worker (its hook started it at started and returned; libvirt never waits for it):")
		for _, m := range worker {
			detail("  %s", m)
		}
	}
	standby, err := serial.WaitHeartbeat(wctx, before.Index+1, "the bond on the virtio NIC alone", harness.Heartbeat.BondOnStandby)
	if err != nil {
		return nil, err
	}
	back, err := serial.WaitHeartbeat(wctx, standby.Index+1, "the bond whole again on B", harness.Answering(harness.Heartbeat.BondWhole))
	if err != nil {
		return nil, err
	}
	o.back = serial.SeenAt(back.Index).Sub(c.Started)
	after, err := serial.WaitHeartbeat(wctx, back.Index, "a heartbeat 3 s later", func(h harness.Heartbeat) bool {
		return h.Uptime >= back.Uptime+harness.SettleTime && h.BondWhole()
	})
	if err != nil {
		return nil, err
	}
	o.lost, o.count = after.Lost-before.Lost, (after.Recv+after.Lost)-(before.Recv+before.Lost)
	bond, _ := after.Bond()
	say("done: the guest runs on B; its bond went to the virtio NIC while the primary was out and has both again (active %s, slaves %s): %d of %d probes lost",
		bond.Active, strings.Join(bond.Slaves, ","), o.lost, o.count)
	return o, nil
}

func narrate(ctx context.Context, m *harness.Migration) {
	from, to := strings.ToUpper(m.From.Name), strings.ToUpper(m.To.Name)
	var calls []string
	for _, e := range m.DestHook {
		c := e.Call()
		if e.Call() == "migrate begin" {
			c += " -> " + e.Decision
		}
		calls = append(calls, c)
	}
	detail("%s's hook ran: %s", to, strings.Join(calls, ", "))
	if e, ok := m.HookDecision(); ok && len(e.Changes) > 0 {
		for _, c := range e.Changes {
			detail("  rewrite: %s", c)
		}
	}
	if wu, ok := m.WaitUnplug(); ok {
		detail("QEMU on %s: UNPLUG_PRIMARY, then %.0f ms in wait-unplug while the guest let go of the primary", from,
			float64(wu.Microseconds())/1000)
	}
	detail("guest: %s", strings.TrimSpace(tail(m.Unplugged, "failover")))
	detail("guest on %s: %s", to, strings.TrimSpace(tail(m.Replugged, "failover")))
	if nets, err := m.To.InterfaceNetworks(ctx, m.Domain); err == nil {
		detail("%s's live XML: both interfaces on network %q", to, strings.Join(unique(nets), ","))
	}
	var src []string
	for _, e := range m.SourceHook {
		src = append(src, e.Call())
	}
	detail("%s's hook after it left: %s", from, strings.Join(src, ", "))
	say("done: virsh migrate took %.1fs, the primary was back %.1fs after the start, %d of %d probes lost",
		m.Duration.Seconds(), m.Back.Seconds(), m.Lost, m.Probes())
}

func report(pair *harness.Pair, ms, plain []*harness.Migration, orch *orchestrated) {
	fmt.Println("Migrations (probes: one ping of the gateway every 0.5 s from inside the guest)")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  guest\t\tmigrate\twait-unplug\tprimary back\tprobes lost\thook decision")
	for _, m := range plain {
		fmt.Fprintf(w, "  plain virtio\t%s -> %s\t%.1f s\t-\t-\t%d of %d\t-\n", strings.ToUpper(m.From.Name), strings.ToUpper(m.To.Name),
			m.Duration.Seconds(), m.Lost, m.Probes())
	}
	for _, m := range ms {
		wu := "-"
		if d, ok := m.WaitUnplug(); ok {
			wu = fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000)
		}
		dec := "-"
		if e, ok := m.HookDecision(); ok {
			dec = e.Decision
		}
		fmt.Fprintf(w, "  failover\t%s -> %s\t%.1f s\t%s\t%.1f s\t%d of %d\t%s\n", strings.ToUpper(m.From.Name), strings.ToUpper(m.To.Name),
			m.Duration.Seconds(), wu, m.Back.Seconds(), m.Lost, m.Probes(), dec)
	}
	fmt.Fprintf(w, "  bonded, orchestrated\tA -> B\t%.1f s\t-\t%.1f s\t%d of %d\t%s\n", orch.took.Seconds(), orch.back.Seconds(),
		orch.lost, orch.count, orch.decision)
	w.Flush()
	fl, fs := harness.LostPerMigration(ms)
	pl, ps := harness.LostPerMigration(plain)
	fmt.Printf("  probes lost per migration: failover %.1f of %.1f, plain virtio %.1f of %.1f\n", fl, fs, pl, ps)
	fmt.Println("  (virt-failover's goal: a failover guest loses no more than the same guest with plain virtio;")
	fmt.Println("  e2e/README.md, \"Measured on this machine\", says where the failover guest's probes go)")
	fmt.Println()
	fmt.Println("Hook calls (from both hooks' logs)")
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  host\tcall\tcount\tdecisions\tmedian\tmax")
	for _, h := range pair.Hosts() {
		entries, _ := h.HookLog()
		type agg struct {
			n    int
			lat  []float64
			decs map[string]int
		}
		byCall := map[string]*agg{}
		var order []string
		for _, e := range entries {
			if e.Op == "replug" {
				continue // the replug worker's own records, not hook calls
			}
			a := byCall[e.Call()]
			if a == nil {
				a = &agg{decs: map[string]int{}}
				byCall[e.Call()] = a
				order = append(order, e.Call())
			}
			a.n++
			if e.DurationMS != nil {
				a.lat = append(a.lat, *e.DurationMS)
			}
			a.decs[e.Decision]++
		}
		for _, c := range order {
			a := byCall[c]
			var decs []string
			for d, n := range a.decs {
				decs = append(decs, fmt.Sprintf("%s %d", d, n))
			}
			sort.Strings(decs)
			med, max := "-", "-"
			if len(a.lat) > 0 {
				sort.Float64s(a.lat)
				med = fmt.Sprintf("%.2f ms", a.lat[len(a.lat)/2])
				max = fmt.Sprintf("%.2f ms", a.lat[len(a.lat)-1])
			}
			fmt.Fprintf(w, "  %s\t%s\t%d\t%s\t%s\t%s\n", strings.ToUpper(h.Name), c, a.n, strings.Join(decs, ", "), med, max)
		}
	}
	w.Flush()
}

func tail(s, from string) string {
	if i := strings.Index(s, from); i >= 0 {
		return s[i:]
	}
	return s
}

func unique(xs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func rel(base, path string) string {
	if r, err := filepath.Rel(base, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
