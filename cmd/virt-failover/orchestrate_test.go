package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/internal/virt/virttest"
)

// orchestrationHosts starts two fake hosts; a runs the bonded guest of the orchestrator's tests.
func orchestrationHosts(t *testing.T) (a, b *virttest.Host, policyFile string) {
	t.Helper()
	cl := virttest.New(t)
	a, b = cl.Host("a"), cl.Host("b")
	def, err := os.ReadFile("../../internal/orchestrate/testdata/bond.xml")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(def, true); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	policyFile = filepath.Join(dir, "policy.toml")
	state := filepath.Join(dir, "state")
	if err := os.WriteFile(policyFile, []byte("[state]\ndir = '"+state+"'\n[log]\nfile = '"+filepath.Join(dir, "hook.log")+"'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return a, b, policyFile
}

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = runCLI(context.Background(), append([]string{programName}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// migrate prints its plan before it acts, progress, the phase table and where the guest runs;
// --json gives the same report as JSON.
func TestMigrateCommandReports(t *testing.T) {
	a, b, pol := orchestrationHosts(t)
	code, out, errs := run("migrate", "--policy", pol, "--connect", a.URI(), "vfo-bond", b.URI())
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("output:\n%s", out)
	for _, want := range []string{
		"migrate vfo-bond from " + a.URI() + " to " + b.URI(),
		"check    migratable",
		"park     ua-pri0        bond, standby ua-sby0, pool fabric",
		"] unplug ua-pri0 (bond) from vfo-bond",
		"] attached ua-pri0 (bond)",
		"phase", "preflight", "unplug", "migration", "downtime", "replug", "total",
		"migrated: runs on " + b.URI() + " with every device",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "park     ua-pri0") > strings.Index(out, "] unplug ua-pri0") {
		t.Errorf("the plan came after the first action:\n%s", out)
	}
	code, out, errs = run("migrate", "--json", "--policy", pol, "--connect", b.URI(), "vfo-bond", a.URI())
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var rep struct {
		Outcome string `json:"outcome"`
		Phases  []struct {
			Phase string `json:"phase"`
			MS    int64  `json:"ms"`
		} `json:"phases"`
		Plugged []string `json:"plugged"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if rep.Outcome != "migrated" || len(rep.Phases) < 5 || len(rep.Plugged) != 1 {
		t.Errorf("report %+v", rep)
	}
}

// A migration that fails exits 1, and the one line says where the guest runs and what it has.
func TestMigrateCommandFailureSaysWhereTheGuestIs(t *testing.T) {
	a, b, pol := orchestrationHosts(t)
	a.Script(virttest.OpMigrate, "vfo-bond", "", virttest.Outcome{Err: &virt.Error{Code: 1, Message: "internal error: hook refused"}})
	code, out, errs := run("migrate", "--policy", pol, "--connect", a.URI(), "vfo-bond", b.URI())
	if code != exitFailed {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	first := strings.SplitN(errs, "\n", 2)[0]
	if first != "virt-failover: migrate vfo-bond: rolled-back: runs on "+a.URI()+" with every device" {
		t.Errorf("first line %q", first)
	}
	if !strings.Contains(errs, "hint: why: ") || !strings.Contains(errs, "hook refused") {
		t.Errorf("no cause:\n%s", errs)
	}
}

// switch --to emulated and back, and a dry run that changes nothing.
func TestSwitchCommand(t *testing.T) {
	a, _, pol := orchestrationHosts(t)
	code, out, errs := run("switch", "--policy", pol, "--connect", a.URI(), "--to", "emulated", "--dry-run", "vfo-bond")
	if code != 0 || !strings.Contains(out, "park     ua-pri0") || strings.Contains(strings.Join(a.Calls(), "\n"), "detach") {
		t.Fatalf("dry run: exit %d\n%s\n%s\n%v", code, out, errs, a.Calls())
	}
	code, out, errs = run("switch", "--policy", pol, "--connect", a.URI(), "--to", "emulated", "vfo-bond")
	if code != 0 || !strings.Contains(out, "unplugged ua-pri0") || !strings.Contains(out, "parked: ua-pri0 (switch)") {
		t.Fatalf("to emulated: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run("repair", "--policy", pol, "--connect", a.URI(), "vfo-bond")
	if code != 0 || !strings.Contains(out, "left      ua-pri0 parked") {
		t.Fatalf("repair: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run("switch", "--policy", pol, "--connect", a.URI(), "--to", "assigned", "vfo-bond")
	if code != 0 || !strings.Contains(out, "plugged   ua-pri0") || !strings.Contains(out, "with every device") {
		t.Fatalf("to assigned: exit %d\n%s\n%s", code, out, errs)
	}
	if code, _, errs := run("switch", "--policy", pol, "--to", "sideways", "vfo-bond"); code != exitUsage || !strings.Contains(errs, "want emulated or assigned") {
		t.Errorf("bad --to: exit %d %s", code, errs)
	}
}

// With --json, stdout carries the report alone, and the command still says what it will do before
// it acts and shows its progress: on stderr.
func TestMigrateJSONShowsPlanAndProgressOnStderr(t *testing.T) {
	a, b, pol := orchestrationHosts(t)
	code, out, errs := run("migrate", "--json", "--policy", pol, "--connect", a.URI(), "vfo-bond", b.URI())
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	var rep struct {
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Outcome != "migrated" {
		t.Fatalf("stdout is not the report alone (%v):\n%s", err, out)
	}
	plan, act := strings.Index(errs, "park     ua-pri0"), strings.Index(errs, "] unplug ua-pri0 (bond) from vfo-bond")
	if plan < 0 || act < 0 || plan > act || !strings.Contains(errs, "] attached ua-pri0 (bond)") {
		t.Errorf("stderr does not show the plan, then the actions:\n%s", errs)
	}
	code, out, errs = run("migrate", "--json", "--dry-run", "--policy", pol, "--connect", b.URI(), "vfo-bond", a.URI())
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Outcome != "planned" || !strings.Contains(errs, "park     ua-pri0") {
		t.Errorf("dry run: exit %d, %v, outcome %q\nstdout:\n%s\nstderr:\n%s", code, err, rep.Outcome, out, errs)
	}
}

// repair says what it will do with each parked device before it does it, and a plan of a
// plug-back names no device to park.
func TestRepairPrintsItsPlanFirst(t *testing.T) {
	a, b, pol := orchestrationHosts(t)
	// A migration that fails and whose rollback cannot plug the device back: it stays parked for
	// the migration.
	a.Script(virttest.OpMigrate, "vfo-bond", "", virttest.Outcome{Err: &virt.Error{Code: 1, Message: "internal error: destination refused"}})
	a.Script(virttest.OpAttach, "vfo-bond", "ua-pri0", virttest.Outcome{Err: &virt.Error{Code: 1, Message: "internal error: no room"}})
	if code, out, errs := run("migrate", "--policy", pol, "--connect", a.URI(), "vfo-bond", b.URI()); code != exitFailed || !strings.Contains(errs, "not every device is back") {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs := run("repair", "--policy", pol, "--connect", a.URI(), "vfo-bond")
	if code != 0 {
		t.Fatalf("repair: exit %d\n%s\n%s", code, out, errs)
	}
	plan, act := strings.Index(out, "  plug back ua-pri0 "), strings.Index(out, "] attach ua-pri0")
	if !strings.HasPrefix(out, "repair vfo-bond on "+a.URI()+"\n") || plan < 0 || act < 0 || plan > act || strings.Contains(out, "park     ") {
		t.Errorf("repair does not print its plan, then act:\n%s", out)
	}
	t.Logf("repair:\n%s", out)
	code, out, errs = run("repair", "--policy", pol, "--connect", a.URI(), "vfo-bond")
	if code != 0 || !strings.Contains(out, "nothing parked") || strings.Contains(out, "park     ") {
		t.Errorf("repair of a whole guest: exit %d\n%s\n%s", code, out, errs)
	}
}

// repair's "done in" is the whole command's time, the wait for a migration job included (its
// plan's dry run waits for the job; it said the plug-back's time alone).
func TestRepairDoneInCountsTheWaitForTheJob(t *testing.T) {
	a, b, pol := orchestrationHosts(t)
	a.Script(virttest.OpMigrate, "vfo-bond", "", virttest.Outcome{Hang: true})
	c, err := virt.Dial(context.Background(), a.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	migrated := make(chan error, 1)
	go func() {
		_, err := c.Migrate(ctx, "vfo-bond", b.URI(), virt.MigrateOptions{})
		migrated <- err
	}()
	for {
		if st, err := c.JobStats(context.Background(), "vfo-bond"); err == nil && st.Type != virt.JobNone {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out, errs := run("repair", "--policy", pol, "--connect", a.URI(), "vfo-bond")
	if code != 0 || !strings.Contains(out, "waiting for the ") {
		t.Fatalf("repair: exit %d\n%s\n%s", code, out, errs)
	}
	if err := <-migrated; !errors.Is(err, virt.ErrAborted) {
		t.Fatalf("the migration: %v", err)
	}
	m := regexp.MustCompile(`done in (\S+): `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no done line:\n%s", out)
	}
	if took, err := time.ParseDuration(m[1]); err != nil || took < 500*time.Millisecond {
		t.Errorf("done in %s, though repair waited for the job (aborted after 1s):\n%s", m[1], out)
	}
}
