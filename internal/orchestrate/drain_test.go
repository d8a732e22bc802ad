package orchestrate

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/internal/virt/virttest"
)

// drainHosts is a source host a with guests, and destinations to drain it to.
type drainHosts struct {
	cl  *virttest.Cluster
	a   *virttest.Host
	src *virt.Conn
}

// newDrain starts host a with the guests (fixture files, or "plain:NAME" for a plain-virtio
// guest of that name); setup runs before anything connects to a.
func newDrain(t *testing.T, guests []string, setup ...func(*virttest.Host)) *drainHosts {
	t.Helper()
	d := &drainHosts{cl: virttest.New(t)}
	d.a = d.cl.Host("a")
	for _, f := range setup {
		f(d.a)
	}
	for _, g := range guests {
		file, name, plain := strings.Cut(g, ":")
		def, err := os.ReadFile("testdata/" + file + ".xml")
		if err != nil {
			t.Fatal(err)
		}
		if plain {
			def = []byte(strings.Replace(string(def), "<name>vfo-plain</name>", "<name>"+name+"</name>", 1))
		}
		if err := d.a.Add(def, true); err != nil {
			t.Fatal(err)
		}
	}
	d.src = d.dial(t, d.a)
	return d
}

func (d *drainHosts) dial(t *testing.T, h *virttest.Host) *virt.Conn {
	t.Helper()
	c, err := virt.Dial(context.Background(), h.URI())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dest is a destination host of the cluster, connected.
func (d *drainHosts) dest(t *testing.T, name string) (*virttest.Host, Destination) {
	t.Helper()
	h := d.cl.Host(name)
	return h, Destination{URI: h.URI(), Conn: d.dial(t, h)}
}

// unreachable is a destination the drain could not connect to.
func unreachable() Destination {
	return Destination{URI: "qemu:///system?socket=/nonexistent/sock", Unreachable: fmt.Errorf("connect: no such file or directory")}
}

func (d *drainHosts) options(dests ...Destination) DrainOptions {
	return DrainOptions{Source: d.src, Dests: dests, Parallel: 1, UnplugTimeout: 2 * time.Second, ReplugTimeout: 2 * time.Second}
}

// changing lists the changing calls a host served.
func changing(h *virttest.Host) string { return strings.Join(h.Calls(), "\n") }

// The plan lists every guest that runs, by name, with the first destination it would try
// (passing over one that cannot be reached); a guest that cannot migrate anywhere (an assigned
// device nothing fails over, a paused guest) stays, with why. Planning changes nothing.
func TestPlanDrainOrdersGuestsAndChangesNothing(t *testing.T) {
	d := newDrain(t, []string{"team", "plain:vfo-plain", "bond", "plain:vfo-asleep"})
	d.a.Pause("vfo-asleep")
	b, db := d.dest(t, "b")
	plan, err := PlanDrain(context.Background(), d.options(unreachable(), db))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range plan.Guests {
		line := g.Domain + " " + g.State + " -> " + g.Dest
		if g.Stay != "" {
			line = g.Domain + " " + g.State + " stays: " + g.Stay
		}
		got = append(got, line)
	}
	want := []string{
		"vfo-asleep paused stays: vfo-asleep on " + d.a.URI() + " is paused: only a running domain migrates live",
		"vfo-bond running -> " + b.URI(),
		"vfo-plain running -> " + b.URI(),
		"vfo-team running stays: vfo-team has assigned devices nothing fails over: <hostdev> 'ua-gpu0'; pair them (virt-failover pair) or name them with --detach",
	}
	if !slices.Equal(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if g := plan.Guests[1]; len(g.Passed) != 1 || g.Passed[0].Outcome != TriedUnreachable || g.Plan == nil || len(g.Plan.Park) != 1 {
		t.Errorf("vfo-bond's plan: %+v", g)
	}
	if calls := changing(d.a) + changing(b); calls != "" {
		t.Errorf("planning changed something:\n%s", calls)
	}
}

// A destination that cannot be reached is passed over, one whose hook refuses the guest too (the
// guest is rolled back on the source first); the next one takes it.
func TestDrainTriesTheNextDestinationOnARefusal(t *testing.T) {
	d := newDrain(t, []string{"bond"})
	c, dc := d.dest(t, "c")
	b, db := d.dest(t, "b")
	d.a.Script(virttest.OpMigrate, "vfo-bond", "", virttest.Outcome{Err: &virt.Error{Code: 70, Message: "Hook script execution failed: internal error: Child process (/etc/libvirt/hooks/qemu vfo-bond migrate begin -) unexpected exit status 1: virt-failover: qemu vfo-bond migrate begin: refused: no free network in pool 'fabric' on this host\nvirt-failover: hint: free one"}})
	o := d.options(unreachable(), dc, db)
	plan, err := PlanDrain(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	rep := Drain(context.Background(), o, plan)
	g := rep.Guests[0]
	if g.Outcome != DrainMoved || g.Dest != b.URI() || rep.Moved != 1 || rep.NotMoved != 0 {
		t.Fatalf("report %+v", rep)
	}
	var tried []string
	for _, a := range g.Attempts {
		tried = append(tried, a.Dest+" "+a.Outcome+": "+a.Why)
	}
	want := []string{
		unreachable().URI + " unreachable: connect: no such file or directory",
		c.URI() + " refused: no free network in pool 'fabric' on this host",
		b.URI() + " migrated: ",
	}
	if !slices.Equal(tried, want) {
		t.Errorf("attempts:\n%s\nwant:\n%s", strings.Join(tried, "\n"), strings.Join(want, "\n"))
	}
	calls := changing(d.a)
	toC, back, toB := strings.Index(calls, "migrate vfo-bond to "+c.URI()), strings.Index(calls, "attach vfo-bond ua-pri0"), strings.Index(calls, "migrate vfo-bond to "+b.URI())
	if toC < 0 || back < toC || toB < back {
		t.Errorf("want the refused migration to c, the primary plugged back on a, then the migration to b:\n%s", calls)
	}
	hasAll(t, "b live", b.LiveXML("vfo-bond"), "ua-pri0", "ua-sby0")
	if _, ok := c.State("vfo-bond"); ok {
		t.Error("c has the guest")
	}
}

// A guest whose migration fails otherwise than by a refusal is not tried elsewhere: it stays on
// the source with every device, with why; the other guests move.
func TestDrainKeepsAGuestThatCannotMove(t *testing.T) {
	d := newDrain(t, []string{"bond", "plain:vfo-plain"})
	b, db := d.dest(t, "b")
	c, dc := d.dest(t, "c")
	d.a.Script(virttest.OpMigrate, "vfo-bond", "", virttest.Outcome{Err: &virt.Error{Code: 1, Message: "internal error: qemu unexpectedly closed the monitor"}})
	o := d.options(db, dc)
	plan, err := PlanDrain(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	rep := Drain(context.Background(), o, plan)
	if rep.Moved != 1 || rep.NotMoved != 1 {
		t.Fatalf("report %+v", rep)
	}
	g := rep.Guests[0]
	if g.Domain != "vfo-bond" || g.Outcome != DrainStayed || !strings.Contains(g.Why, "qemu unexpectedly closed the monitor") ||
		g.State != "runs on "+d.a.URI()+" with every device" || g.Dest != "" || len(g.Attempts) != 1 {
		t.Errorf("vfo-bond: %+v", g)
	}
	hasAll(t, "a live", d.a.LiveXML("vfo-bond"), "ua-pri0", "ua-sby0")
	hasAll(t, "a config", d.a.InactiveXML("vfo-bond"), "ua-pri0", "ua-sby0")
	if n := strings.Count(changing(d.a), "migrate vfo-bond to"); n != 1 {
		t.Errorf("vfo-bond was migrated %d times, want once:\n%s", n, changing(d.a))
	}
	if _, ok := c.State("vfo-bond"); ok {
		t.Error("c has vfo-bond")
	}
	if p := rep.Guests[1]; p.Outcome != DrainMoved || p.Dest != b.URI() || b.LiveXML("vfo-plain") == nil {
		t.Errorf("vfo-plain: %+v", p)
	}
}

// --parallel N: at most N migrations at once, and with N > 1 they do overlap; with 1 the guests go
// one after the other in the plan's order.
func TestDrainMovesParallelGuestsAtATime(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("parallel-%d", n), func(t *testing.T) {
			var mu sync.Mutex
			running, most := 0, 0
			guests := []string{"plain:vm-d", "plain:vm-b", "plain:vm-a", "plain:vm-c", "plain:vm-e"}
			d := newDrain(t, guests, func(a *virttest.Host) {
				a.MigrateTime = 150 * time.Millisecond
				a.OnMigrate = func(dom string, _ *virttest.Host, phase string) {
					mu.Lock()
					defer mu.Unlock()
					switch phase {
					case "setup":
						running++
						most = max(most, running)
					case "completed":
						running--
					}
				}
			})
			b, db := d.dest(t, "b")
			o := d.options(db)
			o.Parallel = n
			plan, err := PlanDrain(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			rep := Drain(context.Background(), o, plan)
			if rep.Moved != len(guests) {
				t.Fatalf("report %+v", rep)
			}
			if most != n {
				t.Errorf("at most %d migrations at once, want %d", most, n)
			}
			var order []string
			for _, c := range d.a.Calls() {
				if dom, ok := strings.CutPrefix(c, "migrate "); ok {
					order = append(order, strings.Fields(dom)[0])
				}
			}
			if want := []string{"vm-a", "vm-b", "vm-c", "vm-d", "vm-e"}; n == 1 && !slices.Equal(order, want) {
				t.Errorf("migration order %v, want %v", order, want)
			}
			for i, g := range rep.Guests {
				if g.Domain != fmt.Sprintf("vm-%c", 'a'+i) || b.LiveXML(g.Domain) == nil {
					t.Errorf("guest %d: %+v", i, g)
				}
			}
		})
	}
}
