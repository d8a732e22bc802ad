package virt_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/internal/virt/virttest"
)

const dom = "vm1"

// guestXML is a running guest's live definition: a teaming pair (ua-sby0, ua-pri0) and a bonded
// e1000e (ua-vf1) that QEMU does not fail over.
func guestXML(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/guest.xml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// host starts a fake host running the guest (persistent or not) and connects to it.
func host(t *testing.T, cl *virttest.Cluster, name string, persistent bool) (*virttest.Host, *virt.Conn) {
	t.Helper()
	h := cl.Host(name)
	if err := h.Add(guestXML(t), persistent); err != nil {
		t.Fatal(err)
	}
	return h, dial(t, h)
}

func dial(t *testing.T, h *virttest.Host) *virt.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := virt.Dial(ctx, h.URI())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDomainLooksUpAndSaysWhichHostLacksIt(t *testing.T) {
	_, c := host(t, virttest.New(t), "a", false)
	info, err := c.Domain(ctx(t), dom)
	if err != nil {
		t.Fatal(err)
	}
	want := virt.DomainInfo{Name: dom, UUID: "c7a5fdbd-cdaf-9455-926a-d65c16db1809", ID: 1, State: virt.StateRunning, Reason: 1}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Domain (-want +got):\n%s", diff)
	}
	_, err = c.Domain(ctx(t), "nope")
	if !errors.Is(err, virt.ErrNoDomain) {
		t.Fatalf("err = %v, want ErrNoDomain", err)
	}
	for _, s := range []string{"domain nope on " + c.URI(), "no domain with matching name 'nope'"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if virt.Code(err) != 42 {
		t.Errorf("Code = %d, want libvirt's VIR_ERR_NO_DOMAIN (42)", virt.Code(err))
	}
}

func TestLiveXMLIsByteForByteAndTypedViewReadsIt(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", true)
	got, err := c.LiveXML(ctx(t), dom)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(guestXML(t)) {
		t.Errorf("LiveXML differs from the definition")
	}
	if inactive, err := c.InactiveXML(ctx(t), dom); err != nil || string(inactive) != string(h.InactiveXML(dom)) {
		t.Errorf("InactiveXML = %d bytes, %v", len(inactive), err)
	}
	d, err := virt.LiveDomain(ctx(t), c, dom)
	if err != nil {
		t.Fatal(err)
	}
	var aliases []string
	for _, itf := range d.Devices.Interfaces {
		aliases = append(aliases, itf.Alias.Name)
	}
	if want := []string{"ua-sby0", "ua-pri0", "ua-vf1"}; !slices.Equal(aliases, want) {
		t.Errorf("typed view: interface aliases %q, want %q", aliases, want)
	}
	if d.Devices.Interfaces[1].Teaming == nil || d.Devices.Interfaces[1].Teaming.Persistent != "ua-sby0" {
		t.Errorf("typed view: ua-pri0's teaming = %+v", d.Devices.Interfaces[1].Teaming)
	}
	if _, err := virt.LiveDomain(ctx(t), c, "nope"); !errors.Is(err, virt.ErrNoDomain) {
		t.Errorf("LiveDomain of a missing domain: %v", err)
	}
}

// Detach returns only once the guest released the device: the fake removes it from the live
// definition when it sends DEVICE_REMOVED, not before.
func TestDetachWaitsForDeviceRemoved(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", true)
	h.RemoveDelay = 50 * time.Millisecond
	if err := c.Detach(ctx(t), dom, "ua-vf1", virt.Live, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if has, _ := virt.HasDevice(h.LiveXML(dom), "ua-vf1"); has {
		t.Error("Detach returned before the guest released ua-vf1")
	}
	if has, _ := virt.HasDevice(h.InactiveXML(dom), "ua-vf1"); !has {
		t.Error("a live detach changed the persistent definition")
	}
	if got, want := h.Calls(), []string{"detach vm1 ua-vf1 live"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// The event may reach the client before the call's reply (libvirt removes a device QEMU no longer
// has at once): Detach subscribed before calling, so it does not miss it.
func TestDetachCatchesAnEventThatOutrunsTheReply(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", false)
	h.RemoveDelay = -1
	// No timeout to fall back on: only the event can end the wait.
	dctx, cancel := context.WithTimeout(ctx(t), 5*time.Second)
	defer cancel()
	if err := c.Detach(dctx, dom, "ua-vf1", virt.Live, time.Hour); err != nil {
		t.Fatal(err)
	}
}

func TestDetachFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		alias   string
		impact  virt.Impact
		script  *virttest.Outcome
		failure virt.DeviceFailure
		is      error
		says    []string
		stays   bool
	}{
		{name: "guest-never-releases", alias: "ua-vf1", impact: virt.Live, script: &virttest.Outcome{Hang: true},
			failure: virt.Timeout, is: virt.ErrTimeout, stays: true,
			says: []string{"detach ua-vf1 from vm1 on ", "no DEVICE_REMOVED within 200ms", "may still go later"}},
		{name: "guest-refuses", alias: "ua-vf1", impact: virt.Live, script: &virttest.Outcome{Refuse: true},
			failure: virt.RemovalFailed, is: virt.ErrRemovalFailed, stays: true,
			says: []string{"detach ua-vf1 from vm1", "refused to release the device (DEVICE_REMOVAL_FAILED)"}},
		{name: "no-such-alias", alias: "ua-nope", impact: virt.Live,
			failure: virt.CallFailed, stays: true,
			says: []string{"detach ua-nope from vm1", "no device found with alias ua-nope"}},
		{name: "libvirt-refuses", alias: "ua-vf1", impact: virt.Live, script: &virttest.Outcome{Err: &virt.Error{Code: 9, Message: "operation failed: cannot hot unplug"}},
			failure: virt.CallFailed, stays: true,
			says: []string{"detach ua-vf1 from vm1", "cannot hot unplug"}},
		{name: "config-of-a-transient-domain", alias: "ua-vf1", impact: virt.Config,
			failure: virt.CallFailed, stays: true,
			says: []string{"transient domain"}},
		{name: "no-impact", alias: "ua-vf1", impact: 0,
			failure: virt.CallFailed, stays: true,
			says: []string{"want live, config or both"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, c := host(t, virttest.New(t), "a", false)
			if tc.script != nil {
				h.Script(virttest.OpDetach, dom, tc.alias, *tc.script)
			}
			err := c.Detach(ctx(t), dom, tc.alias, tc.impact, 200*time.Millisecond)
			var de *virt.DeviceError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DeviceError", err)
			}
			if de.Failure != tc.failure || de.Domain != dom || de.Alias != tc.alias || de.Op != "detach" {
				t.Errorf("DeviceError %+v", de)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			for _, other := range []error{virt.ErrTimeout, virt.ErrRemovalFailed} {
				if other != tc.is && errors.Is(err, other) {
					t.Errorf("%v matches %v", err, other)
				}
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if has, _ := virt.HasDevice(h.LiveXML(dom), "ua-vf1"); has != tc.stays {
				t.Errorf("ua-vf1 in the live definition: %v, want %v", has, tc.stays)
			}
		})
	}
}

// A timeout reads the live definition once more: a removal whose event went missing is no failure.
func TestDetachTimeoutChecksTheLiveDefinition(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", false)
	h.Script(virttest.OpDetach, dom, "ua-vf1", virttest.Outcome{NoEvent: true})
	if err := c.Detach(ctx(t), dom, "ua-vf1", virt.Live, 200*time.Millisecond); err != nil {
		t.Fatalf("the device is gone, but Detach says %v", err)
	}
}

func TestDetachConfigOnlyNeedsNoGuest(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", true)
	h.Script(virttest.OpDetach, dom, "ua-vf1", virttest.Outcome{Hang: true})
	if err := c.Detach(ctx(t), dom, "ua-vf1", virt.Config, time.Hour); err != nil {
		t.Fatal(err)
	}
	if has, _ := virt.HasDevice(h.InactiveXML(dom), "ua-vf1"); has {
		t.Error("ua-vf1 still in the persistent definition")
	}
	if has, _ := virt.HasDevice(h.LiveXML(dom), "ua-vf1"); !has {
		t.Error("a config detach removed ua-vf1 from the live definition")
	}
}

const vf1 = `<interface type='network'>
      <mac address='52:54:00:5f:00:20'/>
      <source network='lan'/>
      <model type='e1000e'/>
      <alias name='ua-vf1'/>
    </interface>`

func TestAttachPutsTheDeviceBackAndRefusesDoubles(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", true)
	events, err := c.Events(ctx(t), dom, virt.EventDeviceAdded, virt.EventDeviceRemoved)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Detach(ctx(t), dom, "ua-vf1", virt.Live|virt.Config, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Attach(ctx(t), dom, []byte(vf1), virt.Live|virt.Config, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, x := range [][]byte{h.LiveXML(dom), h.InactiveXML(dom)} {
		if has, _ := virt.HasDevice(x, "ua-vf1"); !has {
			t.Errorf("ua-vf1 not back in:\n%s", x)
		}
	}
	var got []string
	for len(got) < 2 {
		e := <-events
		got = append(got, e.Kind.String()+" "+e.Alias)
	}
	if want := []string{"device-removed ua-vf1", "device-added ua-vf1"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}

	err = c.Attach(ctx(t), dom, []byte(vf1), virt.Live, time.Second)
	var de *virt.DeviceError
	if !errors.As(err, &de) || de.Failure != virt.CallFailed || !strings.Contains(err.Error(), "attach ua-vf1 to vm1") ||
		!strings.Contains(err.Error(), "non unique alias") {
		t.Errorf("attaching ua-vf1 twice: %v", err)
	}
	noAlias := strings.Replace(vf1, "<alias name='ua-vf1'/>", "", 1)
	if err := c.Attach(ctx(t), dom, []byte(noAlias), virt.Live, time.Second); !errors.Is(err, virt.ErrNoAlias) {
		t.Errorf("attaching a device without alias: %v, want ErrNoAlias", err)
	}
	if got := h.Calls(); len(got) != 3 {
		t.Errorf("calls %q: the device without alias reached libvirt", got)
	}
}

func TestMetadataFoundNotFoundAndRemoved(t *testing.T) {
	const uri = "https://virt-failover.example/parked/1"
	h, c := host(t, virttest.New(t), "a", true)
	if _, found, err := c.Metadata(ctx(t), dom, uri, virt.Live); err != nil || found {
		t.Fatalf("no metadata yet: found %v, err %v", found, err)
	}
	rec := []byte(`<parked><device alias="ua-vf1" reason="migration"/></parked>`)
	if err := c.SetMetadata(ctx(t), dom, uri, "vfo", rec, virt.Live|virt.Config); err != nil {
		t.Fatal(err)
	}
	for _, i := range []virt.Impact{virt.Live, virt.Config} {
		got, found, err := c.Metadata(ctx(t), dom, uri, i)
		if err != nil || !found || string(got) != string(rec) {
			t.Errorf("%s: %q, %v, %v", i, got, found, err)
		}
	}
	if _, _, err := c.Metadata(ctx(t), dom, uri, virt.Live|virt.Config); err == nil || !strings.Contains(err.Error(), "want live or config") {
		t.Errorf("reading live+config: %v", err)
	}
	if err := c.SetMetadata(ctx(t), dom, uri, "vfo", nil, virt.Live); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.Metadata(ctx(t), dom, uri, virt.Live); err != nil || found {
		t.Errorf("after removal (live): found %v, %v", found, err)
	}
	if _, found, _ := c.Metadata(ctx(t), dom, uri, virt.Config); !found {
		t.Error("removing the live record removed the persistent one")
	}
	h.Script(virttest.OpMetadata, dom, uri, virttest.Outcome{Err: &virt.Error{Code: 1, Message: "internal error: boom"}})
	if _, found, err := c.Metadata(ctx(t), dom, uri, virt.Config); err == nil || found || !strings.Contains(err.Error(), "metadata "+uri+" of vm1 (config) on") {
		t.Errorf("a failing read: found %v, %v", found, err)
	}
	if err := c.SetMetadata(ctx(t), dom, uri, "vfo", []byte("<unclosed>"), virt.Live); err == nil || !strings.Contains(err.Error(), "set metadata") {
		t.Errorf("malformed metadata: %v", err)
	}
}

func TestInterfaceAddressesSaysNoAgent(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", false)
	_, err := c.InterfaceAddresses(ctx(t), dom)
	if !errors.Is(err, virt.ErrNoAgent) || !strings.Contains(err.Error(), "guest agent is not configured") {
		t.Errorf("no agent: %v", err)
	}
	h.Script(virttest.OpAgent, dom, "", virttest.Outcome{Err: &virt.Error{Code: 86, Message: "Guest agent is not responding: QEMU guest agent is not connected"}})
	if _, err := c.InterfaceAddresses(ctx(t), dom); !errors.Is(err, virt.ErrNoAgent) {
		t.Errorf("an agent that does not answer: %v", err)
	}
	want := []virt.Interface{
		{Name: "lo", Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
		{Name: "bond0", MAC: "52:54:00:5f:00:10", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24"), netip.MustParsePrefix("fe80::1/64")}},
	}
	h.SetAgent(dom, want)
	got, err := c.InterfaceAddresses(ctx(t), dom)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("interfaces (-want +got):\n%s", diff)
	}
}

func TestMigrateMovesTheGuestWithProgressAndStats(t *testing.T) {
	cl := virttest.New(t)
	a, ca := host(t, cl, "a", true)
	b := cl.Host("b")
	cb := dial(t, b)
	a.MigrateTime = 300 * time.Millisecond
	const uri = "https://virt-failover.example/parked/1"
	if err := ca.SetMetadata(ctx(t), dom, uri, "vfo", []byte("<parked/>"), virt.Live|virt.Config); err != nil {
		t.Fatal(err)
	}
	// The destination's view: watched before the domain exists there.
	arrivals, err := cb.Events(ctx(t), dom, virt.EventLifecycle)
	if err != nil {
		t.Fatal(err)
	}
	negotiated, err := cb.QEMUEvents(ctx(t), dom, "FAILOVER_NEGOTIATED")
	if err != nil {
		t.Fatal(err)
	}
	a.OnMigrate = func(name string, dest *virttest.Host, phase string) {
		if phase == "completed" {
			dest.EmitQEMU(name, "FAILOVER_NEGOTIATED", `{"device-id":"ua-sby0"}`)
		}
	}
	var mu sync.Mutex
	var progress []virt.Progress
	res, err := ca.Migrate(ctx(t), dom, b.URI(), virt.MigrateOptions{
		MigrateURI: "tcp://192.0.2.2", Flags: virt.PersistDest | virt.UndefineSource, ProgressInterval: 20 * time.Millisecond,
		Dest: cb,
		Progress: func(p virt.Progress) {
			mu.Lock()
			progress = append(progress, p)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	for _, p := range res.Phases {
		phases = append(phases, p.Status)
	}
	if want := []string{"setup", "active", "completed"}; !slices.Equal(phases, want) {
		t.Errorf("phases %q, want %q", phases, want)
	}
	if d, ok := res.PhaseTime("active"); !ok || d <= 0 {
		t.Errorf("PhaseTime(active) = %v, %v", d, ok)
	}
	if !res.HaveStats || res.Stats.Type != virt.JobCompleted || res.Stats.Downtime != 7*time.Millisecond || res.Stats.DataTotal != 64<<20 {
		t.Errorf("final stats %+v (have %v)", res.Stats, res.HaveStats)
	}
	mu.Lock()
	sawData := false
	for _, p := range progress {
		sawData = sawData || (p.DataTotal == 64<<20 && p.Phase != "")
	}
	mu.Unlock()
	if !sawData {
		t.Errorf("no progress with data and phase: %+v", progress)
	}

	if st, ok := b.State(dom); !ok || st != virt.StateRunning {
		t.Errorf("on b: %v %v, want running", st, ok)
	}
	if _, ok := a.State(dom); ok {
		t.Error("a still knows the guest (UndefineSource)")
	}
	if has, _ := virt.HasDevice(b.InactiveXML(dom), "ua-vf1"); !has {
		t.Error("b has no persistent definition (PersistDest)")
	}
	if rec, found, err := cb.Metadata(ctx(t), dom, uri, virt.Live); err != nil || !found || string(rec) != "<parked/>" {
		t.Errorf("the record did not travel: %q %v %v", rec, found, err)
	}
	e := <-arrivals
	if e.Lifecycle.Type != virt.Started || !e.Lifecycle.Migrated() || e.Lifecycle.String() != "started (migrated)" {
		t.Errorf("first event on b: %v", e.Lifecycle)
	}
	if e := <-negotiated; e.Name != "FAILOVER_NEGOTIATED" || e.Field("device-id") != "ua-sby0" || e.Domain != dom {
		t.Errorf("FAILOVER_NEGOTIATED on b: %+v", e)
	}
	if got, want := a.Calls(), []string{"set-metadata vm1 " + uri + " live+config", "migrate vm1 to " + b.URI()}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// The orchestrator's supervision: past its unplug timeout in wait-unplug it cancels the context
// with a cause; Migrate aborts the job and reports the abort with the cause.
func TestMigrateAbortsWhenTheContextEnds(t *testing.T) {
	cl := virttest.New(t)
	a, ca := host(t, cl, "a", false)
	b := cl.Host("b")
	a.Script(virttest.OpMigrate, dom, "", virttest.Outcome{Hang: true, Phases: []string{"setup", "wait-unplug"}})
	mctx, cancel := context.WithCancelCause(ctx(t))
	unplugTimeout := errors.New("the guest did not release its primary within 30s")
	res, err := ca.Migrate(mctx, dom, b.URI(), virt.MigrateOptions{
		ProgressInterval: 10 * time.Millisecond,
		Progress: func(p virt.Progress) {
			if p.Phase == "wait-unplug" {
				cancel(unplugTimeout)
			}
		},
	})
	if !errors.Is(err, virt.ErrAborted) {
		t.Fatalf("err = %v, want ErrAborted", err)
	}
	var me *virt.MigrateError
	if !errors.As(err, &me) || !me.Aborted || me.Cause != unplugTimeout {
		t.Errorf("MigrateError %+v", me)
	}
	for _, s := range []string{"migrate vm1 from " + a.URI() + " to " + b.URI(), "aborted (" + unplugTimeout.Error() + ")", "canceled by client"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if d, ok := res.PhaseTime("wait-unplug"); !ok || d < 0 {
		t.Errorf("wait-unplug time %v %v; phases %+v", d, ok, res.Phases)
	}
	if st, _ := a.State(dom); st != virt.StateRunning {
		t.Errorf("on a the guest is %v, want running", st)
	}
	if _, ok := b.State(dom); ok {
		t.Error("b kept the guest of an aborted migration")
	}
	if calls := a.Calls(); !slices.Contains(calls, "abort vm1") {
		t.Errorf("no abort in %q", calls)
	}
}

// An abort from elsewhere (virsh domjobabort, another client) is an abort too.
func TestMigrateReportsAnAbortByAnotherClient(t *testing.T) {
	cl := virttest.New(t)
	a, ca := host(t, cl, "a", false)
	b := cl.Host("b")
	a.Script(virttest.OpMigrate, dom, "", virttest.Outcome{Hang: true})
	other := dial(t, a)
	go func() {
		for {
			if st, err := other.JobStats(ctx(t), dom); err == nil && st.Type == virt.JobUnbounded {
				_ = other.AbortJob(ctx(t), dom)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	_, err := ca.Migrate(ctx(t), dom, b.URI(), virt.MigrateOptions{})
	var me *virt.MigrateError
	if !errors.Is(err, virt.ErrAborted) || !errors.As(err, &me) || me.Cause != nil {
		t.Fatalf("err = %v (%+v), want an abort without a cause of ours", err, me)
	}
	if err := other.AbortJob(ctx(t), dom); err == nil || !strings.Contains(err.Error(), "no job is active") {
		t.Errorf("aborting with no job: %v", err)
	}
}

func TestMigrateFailureKeepsTheGuest(t *testing.T) {
	cl := virttest.New(t)
	a, ca := host(t, cl, "a", true)
	b := cl.Host("b")
	a.Script(virttest.OpMigrate, dom, "", virttest.Outcome{Err: &virt.Error{Code: 1, Message: "internal error: hook script refused"}})
	_, err := ca.Migrate(ctx(t), dom, b.URI(), virt.MigrateOptions{})
	if err == nil || errors.Is(err, virt.ErrAborted) || !strings.Contains(err.Error(), "hook script refused") {
		t.Fatalf("err = %v", err)
	}
	_, err = ca.Migrate(ctx(t), dom, "qemu:///system?socket=/nonexistent", virt.MigrateOptions{})
	if err == nil || !strings.Contains(err.Error(), "failed to connect to destination") {
		t.Errorf("unreachable destination: %v", err)
	}
	if st, _ := a.State(dom); st != virt.StateRunning {
		t.Errorf("on a: %v", st)
	}
	// A migration that leaves the persistent source defined keeps its completed job's statistics.
	if _, err := ca.Migrate(ctx(t), dom, b.URI(), virt.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := ca.CompletedJobStats(ctx(t), dom)
	if err != nil || st.Type != virt.JobCompleted || st.Downtime != 7*time.Millisecond || st.Params["downtime"] != uint64(7) {
		t.Errorf("completed stats on a: %+v, %v", st, err)
	}
	if info, err := ca.Domain(ctx(t), dom); err != nil || info.State != virt.StateShutoff || info.ID != -1 {
		t.Errorf("a after the migration: %+v %v", info, err)
	}
}

// A destination hook's refusal comes back from libvirt as VIR_ERR_HOOK_SCRIPT_FAILED: it matches
// ErrHookFailed through the migration's error; other failures do not.
func TestMigrateTellsAHookRefusalApart(t *testing.T) {
	cl := virttest.New(t)
	a, ca := host(t, cl, "a", true)
	b := cl.Host("b")
	refusal := "Hook script execution failed: internal error: Child process (/etc/libvirt/hooks/qemu vm1 migrate begin -) unexpected exit status 1: virt-failover: qemu vm1 migrate begin: refused: no"
	a.Script(virttest.OpMigrate, dom, "", virttest.Outcome{Err: &virt.Error{Code: 70, Message: refusal}},
		virttest.Outcome{Err: &virt.Error{Code: 1, Message: "internal error: something else"}})
	_, err := ca.Migrate(ctx(t), dom, b.URI(), virt.MigrateOptions{})
	if !errors.Is(err, virt.ErrHookFailed) || errors.Is(err, virt.ErrAborted) || !strings.Contains(err.Error(), "refused: no") {
		t.Errorf("a hook's refusal: %v", err)
	}
	if _, err = ca.Migrate(ctx(t), dom, b.URI(), virt.MigrateOptions{}); err == nil || errors.Is(err, virt.ErrHookFailed) {
		t.Errorf("another failure: %v", err)
	}
}

// ActiveDomains lists what runs, paused guests too, by name; a domain defined but shut off (here
// left by a migration that kept the source's definition) is not listed.
func TestActiveDomainsListsWhatRuns(t *testing.T) {
	cl := virttest.New(t)
	a, ca := host(t, cl, "a", true)
	b := cl.Host("b")
	for _, name := range []string{"vm3", "vm0"} {
		def := strings.Replace(string(guestXML(t)), "<name>vm1</name>", "<name>"+name+"</name>", 1)
		def = strings.Replace(def, "<uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>\n", "", 1)
		if err := a.Add([]byte(def), name == "vm3"); err != nil {
			t.Fatal(err)
		}
	}
	a.Pause("vm0")
	if _, err := ca.Migrate(ctx(t), "vm3", b.URI(), virt.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := ca.ActiveDomains(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range got {
		names = append(names, d.Name+" "+d.State.String())
	}
	if want := []string{"vm0 paused", "vm1 running"}; !slices.Equal(names, want) {
		t.Errorf("active domains %q, want %q", names, want)
	}
	if got[1].Persistent != true || got[0].Persistent != false || got[1].UUID != "c7a5fdbd-cdaf-9455-926a-d65c16db1809" {
		t.Errorf("active domains %+v", got)
	}
	if st, ok := a.State("vm3"); !ok || st != virt.StateShutoff {
		t.Errorf("vm3 on a: %v %v, want shut off (defined)", st, ok)
	}
	empty, err := dial(t, b).ActiveDomains(ctx(t))
	if err != nil || len(empty) != 1 || empty[0].Name != "vm3" {
		t.Errorf("b: %+v %v", empty, err)
	}
}

func TestEventsFilterAndClose(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", false)
	other := []byte(strings.Replace(strings.Replace(string(guestXML(t)), "<name>vm1</name>", "<name>vm2</name>", 1),
		"<uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>", "", 1))
	if err := h.Add(other, false); err != nil {
		t.Fatal(err)
	}
	ectx, cancel := context.WithCancel(ctx(t))
	mine, err := c.Events(ectx, dom, virt.EventDeviceRemoved)
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.Events(ectx, "")
	if err != nil {
		t.Fatal(err)
	}
	qemu, err := c.QEMUEvents(ectx, dom, "UNPLUG_PRIMARY")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Detach(ctx(t), "vm2", "ua-vf1", virt.Live, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Detach(ctx(t), dom, "ua-pri0", virt.Live, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h.EmitQEMU(dom, "MIGRATION", `{"status":"setup"}`)
	h.EmitQEMU(dom, "UNPLUG_PRIMARY", `{"device-id":"ua-pri0"}`)
	if e := <-mine; e.Domain != dom || e.Alias != "ua-pri0" {
		t.Errorf("vm1's events gave %+v", e)
	}
	var seen []string
	for len(seen) < 2 {
		e := <-all
		seen = append(seen, e.Domain+" "+e.Alias)
	}
	if want := []string{"vm2 ua-vf1", "vm1 ua-pri0"}; !slices.Equal(seen, want) {
		t.Errorf("all domains' events %q, want %q", seen, want)
	}
	if e := <-qemu; e.Name != "UNPLUG_PRIMARY" || e.Field("device-id") != "ua-pri0" || e.Field("nope") != "" || e.Time.IsZero() {
		t.Errorf("QEMU event %+v", e)
	}
	cancel()
	for _, ch := range []<-chan virt.Event{mine, all} {
		for range ch {
		}
	}
	for range qemu {
	}
	if _, err := c.QEMUEvents(ctx(t), "", "X"); err == nil {
		t.Error("QEMU events of no domain")
	}
}

// A lost connection ends a wait with ErrConnectionLost, not with a timeout.
func TestLostConnectionEndsAWait(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", false)
	h.Script(virttest.OpDetach, dom, "ua-vf1", virttest.Outcome{Hang: true})
	go func() {
		time.Sleep(100 * time.Millisecond)
		h.Disconnect()
	}()
	err := c.Detach(ctx(t), dom, "ua-vf1", virt.Live, time.Minute)
	if !errors.Is(err, virt.ErrConnectionLost) || errors.Is(err, virt.ErrTimeout) {
		t.Fatalf("err = %v, want ErrConnectionLost", err)
	}
	select {
	case <-c.Disconnected():
	case <-time.After(5 * time.Second):
		t.Error("Disconnected not closed")
	}
	if _, err := c.Domain(ctx(t), dom); err == nil {
		t.Error("a call on a lost connection succeeded")
	}
	// The host serves new connections.
	if _, err := dial(t, h).Domain(ctx(t), dom); err != nil {
		t.Error(err)
	}
}

func TestDialSaysWhatFailed(t *testing.T) {
	for uri, want := range map[string]string{
		"qemu+ext:///system":                     `transport "ext" is not supported (supported: unix, tcp, tls, ssh, libssh, libssh2)`,
		"/system":                                "no driver",
		"qemu:///system?socket=/nonexistent/x":   "connect to qemu:///system?socket=/nonexistent/x:",
		"qemu+tcp://%zz/system":                  "libvirt URI",
		"qemu+ssh://u@host/system?sshauth=agent": "connect to",
	} {
		_, err := virt.Dial(ctx(t), uri)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Dial(%q) = %v, want it to say %q", uri, err, want)
		}
	}
	cctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("operator gave up"))
	if _, err := virt.Dial(cctx, "qemu+tcp://192.0.2.77/system"); err == nil || !strings.Contains(err.Error(), "operator gave up") {
		t.Errorf("Dial with an ended context: %v", err)
	}
}

// qemu+tcp goes through go-libvirt's TCP dialer to the daemon's port; a migration can name the
// destination that way too.
func TestDialOverTCP(t *testing.T) {
	cl := virttest.New(t)
	a := cl.Host("a")
	if err := a.Add(guestXML(t), false); err != nil {
		t.Fatal(err)
	}
	b := cl.Host("b")
	c, err := virt.Dial(ctx(t), a.TCPURI())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.URI() != a.TCPURI() {
		t.Errorf("URI() = %q", c.URI())
	}
	if _, err := c.Migrate(ctx(t), dom, b.TCPURI(), virt.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.State(dom); st != virt.StateRunning {
		t.Errorf("on b: %v", st)
	}
	cctx, cancel := context.WithCancelCause(ctx(t))
	cancel(errors.New("the operator pressed ^C"))
	if _, err := c.Migrate(cctx, dom, b.URI(), virt.MigrateOptions{}); err == nil || !strings.Contains(err.Error(), "not started: the operator pressed ^C") {
		t.Errorf("Migrate with an ended context: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
}

// libvirt takes one registration per event and domain filter on a connection; subscribers share
// it: both get every event, one leaving (or not reading) does not end or hold up the other.
func TestSubscribersShareOneRegistration(t *testing.T) {
	h, c := host(t, virttest.New(t), "a", false)
	slow, err := c.QEMUEvents(ctx(t), dom) // never read until the end
	if err != nil {
		t.Fatal(err)
	}
	lctx, leave := context.WithCancel(ctx(t))
	leaving, err := c.QEMUEvents(lctx, dom, "UNPLUG_PRIMARY")
	if err != nil {
		t.Fatal(err)
	}
	staying, err := c.QEMUEvents(ctx(t), dom, "UNPLUG_PRIMARY")
	if err != nil {
		t.Fatal(err)
	}
	h.EmitQEMU(dom, "UNPLUG_PRIMARY", `{"device-id":"ua-pri0"}`)
	for _, ch := range []<-chan virt.QEMUEvent{leaving, staying} {
		if e := <-ch; e.Field("device-id") != "ua-pri0" {
			t.Errorf("got %+v", e)
		}
	}
	leave()
	for range leaving {
	}
	h.EmitQEMU(dom, "UNPLUG_PRIMARY", `{"device-id":"ua-pri1"}`)
	if e := <-staying; e.Field("device-id") != "ua-pri1" {
		t.Errorf("after the other left: %+v", e)
	}
	for _, want := range []string{"ua-pri0", "ua-pri1"} {
		if e := <-slow; e.Field("device-id") != want {
			t.Errorf("the slow reader got %+v, want %s", e, want)
		}
	}
}

func TestActiveDomainsLeavesOutWhatMigratedAway(t *testing.T) {
	cl := virttest.New(t)
	a, ca := host(t, cl, "a", true)
	other := strings.Replace(strings.Replace(string(guestXML(t)), "<name>vm1</name>", "<name>vm0</name>", 1),
		"c7a5fdbd", "00000000", 1)
	if err := a.Add([]byte(other), false); err != nil {
		t.Fatal(err)
	}
	b := cl.Host("b")
	cb := dial(t, b)
	names := func(c *virt.Conn) []string {
		t.Helper()
		infos, err := c.ActiveDomains(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, i := range infos {
			if i.State != virt.StateRunning || i.ID < 1 {
				t.Errorf("%s: %+v", c.URI(), i)
			}
			out = append(out, i.Name)
		}
		return out
	}
	if got := names(ca); !slices.Equal(got, []string{"vm0", "vm1"}) {
		t.Errorf("on a: %q", got)
	}
	if got := names(cb); len(got) != 0 {
		t.Errorf("on b: %q", got)
	}
	// A persistent domain migrated away stays defined on a, shut off: not listed.
	if _, err := ca.Migrate(ctx(t), dom, b.URI(), virt.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := names(ca); !slices.Equal(got, []string{"vm0"}) {
		t.Errorf("on a after the migration: %q", got)
	}
	if got := names(cb); !slices.Equal(got, []string{"vm1"}) {
		t.Errorf("on b after the migration: %q", got)
	}
}

// Reading the completed job's statistics leaves them for the next reader: watch and the
// orchestrator both read them after a migration (libvirt drops them at the first read unless
// asked to keep them).
func TestCompletedJobStatsCanBeReadTwice(t *testing.T) {
	cl := virttest.New(t)
	_, ca := host(t, cl, "a", true)
	b := cl.Host("b")
	cb := dial(t, b)
	if _, err := ca.Migrate(ctx(t), dom, b.URI(), virt.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*virt.Conn{ca, ca, cb, cb} {
		st, err := c.CompletedJobStats(ctx(t), dom)
		if err != nil || st.Type != virt.JobCompleted || st.Downtime != 7*time.Millisecond {
			t.Errorf("%s: %+v, %v", c.URI(), st, err)
		}
	}
}

// Setting and removing a metadata element is announced (METADATA_CHANGE) with its namespace: the
// event watch follows parked records by.
func TestMetadataChangeIsAnnounced(t *testing.T) {
	const uri = "https://virt-failover.example/parked/1"
	_, c := host(t, virttest.New(t), "a", true)
	ectx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	events, err := c.Events(ectx, dom, virt.EventMetadataChange)
	if err != nil {
		t.Fatal(err)
	}
	for _, element := range [][]byte{[]byte(`<parked/>`), nil} {
		if err := c.SetMetadata(ctx(t), dom, uri, "vfo", element, virt.Live|virt.Config); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-events:
			if e.Kind != virt.EventMetadataChange || e.Domain != dom || e.Namespace != uri {
				t.Errorf("event %+v", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no metadata-change event after setting %q", element)
		}
	}
}
