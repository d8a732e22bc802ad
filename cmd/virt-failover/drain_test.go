package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/internal/virt/virttest"
)

// drainHosts is orchestrationHosts with a plain-virtio guest beside the bonded one on a, and a
// policy file the operator wrote with comments.
func drainHosts(t *testing.T) (a, b *virttest.Host, policyFile, policyText string) {
	t.Helper()
	a, b, policyFile = orchestrationHosts(t)
	def, err := os.ReadFile("../../internal/orchestrate/testdata/plain.xml")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(def, true); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	policyText = "# this host's policy\n[host]   # kept as it is\nenabled = true # the hook acts\n\n" + string(base)
	if err := os.WriteFile(policyFile, []byte(policyText), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(policyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	return a, b, policyFile, policyText
}

const nowhere = "qemu:///system?socket=/nonexistent/libvirt-sock"

// drain plans, cordons the host in its policy file (nothing else in the file changes, its mode
// neither), moves every guest past a destination that cannot be reached, and ends with the table;
// uncordon gives the file back byte for byte.
func TestDrainCommandCordonsMovesAndUncordonRestores(t *testing.T) {
	a, b, pol, text := drainHosts(t)
	code, out, errs := run("drain", "--policy", pol, "--connect", a.URI(), "--to", nowhere+","+b.URI(), "--parallel", "2")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("drain:\n%s", out)
	for _, want := range []string{
		"drain " + a.URI() + " to " + nowhere + ", " + b.URI() + ", 2 at a time\n",
		"  destination " + nowhere + " cannot be reached: ",
		"vfo-bond   running  -> " + b.URI() + "  unplug ua-pri0 (bond)\n",
		"vfo-plain  running  -> " + b.URI() + "  no assigned device to unplug\n",
		"cordon: added accept_incoming = false to [host] in " + pol + "\n",
		"] vfo-bond: unplug ua-pri0 (bond) from vfo-bond\n",
		"guest      destination",
		"\nvfo-bond   " + b.URI() + "  migrated  ",
		"\nvfo-plain  " + b.URI() + "  migrated  ",
		"drained: 2 of 2 guests moved; " + a.URI() + " refuses incoming migrations until \"virt-failover uncordon\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if plan, cordon, moved := strings.Index(out, "-> "+b.URI()), strings.Index(out, "cordon: "), strings.Index(out, "] vfo-"); plan > cordon || cordon > moved {
		t.Errorf("want the plan, the cordon, then the moves")
	}
	cordoned, _ := os.ReadFile(pol)
	want := strings.Replace(text, "# kept as it is\n", "# kept as it is\naccept_incoming = false # added by \"virt-failover drain\"; \"virt-failover uncordon\" removes it\n", 1)
	if string(cordoned) != want {
		t.Errorf("cordoned policy:\n%s\nwant:\n%s", cordoned, want)
	}
	if st, _ := os.Stat(pol); st.Mode().Perm() != 0o640 {
		t.Errorf("the policy's mode is %v now", st.Mode())
	}
	if a.LiveXML("vfo-bond") != nil || a.LiveXML("vfo-plain") != nil || b.LiveXML("vfo-bond") == nil || b.LiveXML("vfo-plain") == nil {
		t.Errorf("the guests are not all on b")
	}

	code, out, errs = run("uncordon", "--policy", pol)
	if back, _ := os.ReadFile(pol); code != 0 || string(back) != text || !strings.Contains(out, "removed the accept_incoming = false that drain added") {
		t.Errorf("uncordon: exit %d\n%s%s\npolicy:\n%s", code, out, errs, back)
	}
	if code, out, _ = run("uncordon", "--policy", pol); code != 0 || !strings.Contains(out, "incoming migrations are accepted") {
		t.Errorf("uncordon again: exit %d %s", code, out)
	}
}

// --dry-run prints the same plan and what the cordon would do, and changes nothing: not the
// policy file, not a guest.
func TestDrainDryRunChangesNothing(t *testing.T) {
	a, b, pol, text := drainHosts(t)
	st, _ := os.Stat(pol)
	code, out, errs := run("drain", "--dry-run", "--policy", pol, "--connect", a.URI(), "--to", b.URI())
	if code != 0 || !strings.Contains(out, "vfo-bond   running  -> "+b.URI()) ||
		!strings.Contains(out, "cordon (dry run, nothing written): would have added accept_incoming = false to [host] in "+pol) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	after, _ := os.Stat(pol)
	if now, _ := os.ReadFile(pol); string(now) != text || !after.ModTime().Equal(st.ModTime()) {
		t.Errorf("the dry run wrote the policy:\n%s", now)
	}
	if calls := strings.Join(append(a.Calls(), b.Calls()...), "\n"); calls != "" {
		t.Errorf("the dry run changed guests:\n%s", calls)
	}
	code, out, _ = run("drain", "--dry-run", "--json", "--policy", pol, "--connect", a.URI(), "--to", b.URI())
	var plan struct {
		Guests []struct {
			Domain, Destination string
		} `json:"guests"`
	}
	if err := json.Unmarshal([]byte(out), &plan); code != 0 || err != nil || len(plan.Guests) != 2 || plan.Guests[0].Destination != b.URI() {
		t.Errorf("dry run --json: exit %d, %v:\n%s", code, err, out)
	}
}

// A guest that cannot move is listed with why and where it runs, the others move, and the
// command exits 1; the host stays cordoned.
func TestDrainCommandListsTheGuestsThatStay(t *testing.T) {
	a, b, pol, _ := drainHosts(t)
	a.Script(virttest.OpMigrate, "vfo-bond", "", virttest.Outcome{Err: &virt.Error{Code: 70,
		Message: "Hook script execution failed: internal error: Child process (/etc/libvirt/hooks/qemu vfo-bond migrate begin -) unexpected exit status 1: virt-failover: qemu vfo-bond migrate begin: refused: no free network in pool 'fabric' on this host (1 of 1 taken)"}})
	code, out, errs := run("drain", "--json", "--policy", pol, "--connect", a.URI(), "--to", b.URI())
	if code != exitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("stderr:\n%s", errs)
	if !strings.Contains(errs, "\nvirt-failover: drain: 1 of 2 guests did not move: vfo-bond (") ||
		!strings.Contains(errs, "\nnot moved: vfo-bond: no destination took it: "+b.URI()+" refused (no free network in pool 'fabric' on this host (1 of 1 taken)); runs on "+a.URI()+" with every device\n") {
		t.Errorf("stderr does not list vfo-bond with why and where it runs")
	}
	var rep struct {
		Cordon   string `json:"cordon"`
		Moved    int    `json:"moved"`
		NotMoved int    `json:"not_moved"`
		Guests   []struct {
			Domain, Outcome, State string
			Attempts               []struct{ Destination, Outcome, Why string }
		} `json:"guests"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if rep.Moved != 1 || rep.NotMoved != 1 || rep.Guests[0].Outcome != "stayed" || rep.Guests[0].Attempts[0].Outcome != "refused" ||
		rep.Guests[1].Outcome != "migrated" || !strings.Contains(rep.Cordon, "accept_incoming = false") {
		t.Errorf("report %+v", rep)
	}
	if a.LiveXML("vfo-bond") == nil || b.LiveXML("vfo-plain") == nil {
		t.Error("vfo-bond left a, or vfo-plain did not")
	}
}

func TestDrainUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"drain", "--to", "x,y", "--migrate-uri", "tcp://1"}, "drain: 1 --migrate-uri for 2 --to destinations"},
		{[]string{"drain", "--to", "x", "--parallel", "0"}, "drain: --parallel 0: want 1 or more"},
		{[]string{"drain", "--to", "x", "guest"}, "drain: takes no arguments"},
		{[]string{"drain"}, `"to"`},
	} {
		code, _, errs := run(tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %s", tc.args, code, errs)
		}
	}
}
