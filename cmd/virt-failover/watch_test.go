package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/watch"
)

// status shows watch's per-guest state when watch answers, and says plainly when it does not.
func TestStatusShowsWatchsGuests(t *testing.T) {
	root := t.TempDir()
	pol := filepath.Join(root, "policy.toml")
	if err := os.WriteFile(pol, []byte("[watch]\nlisten = \"127.0.0.1:1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-12 * time.Minute)
	unplug, replug := 0.25, 1.5
	rep := watch.Report{URI: "qemu:///system", Connected: true, Guests: []watch.Guest{
		{Name: "web-01", State: watch.StateDegraded, EmulatedSince: &since,
			Parked: []watch.Parked{{Alias: "ua-pri0", Kind: "bond", Reason: "switch"}}},
		{Name: "db-01", State: watch.StateNegotiated,
			Migration: &watch.Migration{Direction: "in", Outcome: "completed", Unplug: &unplug, Replug: &replug}},
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != watch.GuestsPath {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(rep)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		argv := append([]string{programName, "status", "--root", root, "--policy", pol}, args...)
		if code := runCLI(context.Background(), argv, strings.NewReader(""), &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	out := run("--watch", addr)
	for _, want := range []string{
		"guests (virt-failover watch at " + addr + "):",
		"  DOMAIN  FAILOVER    EMULATED FOR  LAST MIGRATION",
		"  web-01  degraded    12m           -",
		"  db-01   negotiated  -             in completed, unplug 0.250s, replug 1.500s",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
	var js statusJSON
	if err := json.Unmarshal([]byte(run("--watch", addr, "--json")), &js); err != nil || js.Watch == nil || len(js.Watch.Guests) != 2 || js.Pools == nil {
		t.Errorf("status --json: %+v %v", js, err)
	}

	// Nothing listens at the policy's address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()
	out = run("--watch", free)
	if !strings.Contains(out, "watch: not running at "+free+" (dial tcp "+free+": connect: connection refused): no failover state of the guests") {
		t.Errorf("status without watch:\n%s", out)
	}
	js = statusJSON{}
	if err := json.Unmarshal([]byte(run("--watch", free, "--json")), &js); err != nil || js.Watch != nil || !strings.Contains(js.WatchError, "connection refused") {
		t.Errorf("status --json without watch: %+v %v", js, err)
	}
}
