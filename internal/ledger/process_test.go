package ledger

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/internal/racegate"
)

// The tests below run real processes: the test binary re-executed with LEDGER_WORKER set.
func TestMain(m *testing.M) {
	switch os.Getenv("LEDGER_WORKER") {
	case "race":
		os.Exit(raceWorker())
	case "crash":
		os.Exit(crashWorker())
	}
	os.Exit(m.Run())
}

func pool(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("0000:03:02.%d", i))
	}
	return out
}

// claimFree takes the first resource of res that no live claim holds.
func claimFree(tx *Tx, res []string, o Owner, st State) (string, bool, error) {
	for _, r := range res {
		if _, held := tx.Holder("fabric", r); held {
			continue
		}
		_, err := tx.Take("fabric", r, o, st, time.Minute)
		return r, err == nil, err
	}
	return "", false, nil
}

// raceWorker waits for the start time, then tries once to claim a resource of a pool of 4.
// It prints "won R" or "refused" and exits 0; anything else is a failure.
func raceWorker() int {
	dir, id, gate := os.Getenv("LEDGER_DIR"), os.Getenv("LEDGER_ID"), os.Getenv("LEDGER_GATE")
	// Every process is loaded and waiting before any of them races.
	if err := racegate.Wait(gate, id, 30*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	l := Open(dir)
	var won string
	err := l.Update(func(tx *Tx) error {
		r, ok, err := claimFree(tx, pool(4), Owner{UUID: "uuid-" + id, Domain: "dom-" + id, Alias: "ua-pri0"}, Pending)
		if ok {
			won = r
		}
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if won == "" {
		fmt.Println("refused: no free resource in pool 'fabric'")
	} else {
		fmt.Println("won", won)
	}
	return 0
}

// TestFiftyProcessesRaceForFour: 50 processes race for a pool of 4; exactly 4 win, each a
// different resource, and the other 46 refuse cleanly.
func TestFiftyProcessesRaceForFour(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 50 processes")
	}
	base := t.TempDir()
	dir, gate := filepath.Join(base, "state"), filepath.Join(base, "gate")
	must(t, os.Mkdir(gate, 0o755))
	const n = 50
	cmds := make([]*exec.Cmd, n)
	outs := make([]*bytes.Buffer, n)
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "LEDGER_WORKER=race", "LEDGER_DIR="+dir, "LEDGER_ID="+strconv.Itoa(i),
			"LEDGER_GATE="+gate)
		outs[i] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		cmds[i] = cmd
	}
	start, err := racegate.Start(gate, cmds, time.Minute)
	must(t, err)
	winners := map[string]int{}
	refused := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v: %s", i, err, outs[i])
			continue
		}
		out := strings.TrimSpace(outs[i].String())
		switch {
		case strings.HasPrefix(out, "won "):
			winners[strings.TrimPrefix(out, "won ")]++
		case out == "refused: no free resource in pool 'fabric'":
			refused++
		default:
			t.Errorf("process %d: %q", i, out)
		}
	}
	elapsed := time.Since(start)
	if len(winners) != 4 || refused != n-4 {
		t.Fatalf("winners %v, %d refused; want 4 distinct winners and %d refusals", winners, refused, n-4)
	}
	for r, k := range winners {
		if k != 1 {
			t.Errorf("%s won %d times", r, k)
		}
	}
	claims := all(t, Open(dir))
	if len(claims) != 4 {
		t.Fatalf("ledger has %d claims: %+v", len(claims), claims)
	}
	t.Logf("%d processes, pool of 4: %d won (%d distinct), %d refused; all %d done %.0f ms after the gate opened",
		n, len(winners), len(winners), refused, n, float64(elapsed.Microseconds())/1000)
}

// The crash test's workers loop claim/release, writing an acknowledgement log: "c K" before the
// claim transaction, "C K R" after it committed, "r K" before the release, "R K" after it.
// Restarted after a kill, a worker recovers as the hook's reconnect does: it drops its claims the
// log does not acknowledge, then goes on.

type ack struct {
	op  string // c, C, r, R
	k   int
	res string
}

func readAcks(path string) []ack {
	b, _ := os.ReadFile(path)
	var out []ack
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue // a line cut by the kill is never whole: it was not acknowledged
		}
		k, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		a := ack{op: f[0], k: k}
		if len(f) > 2 {
			a.res = f[2]
		}
		out = append(out, a)
	}
	return out
}

func crashWorker() int {
	dir, id, logPath := os.Getenv("LEDGER_DIR"), os.Getenv("LEDGER_ID"), os.Getenv("LEDGER_ACKS")
	res := pool(4)
	l := Open(dir)
	acks := readAcks(logPath)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	write := func(format string, args ...any) {
		if _, err := logf.WriteString(fmt.Sprintf(format, args...) + "\n"); err != nil {
			os.Exit(2)
		}
	}
	alias := func(k int) string { return "k" + strconv.Itoa(k) }
	own := func(k int) Owner { return Owner{UUID: "uuid-w" + id, Domain: "w" + id, Alias: alias(k)} }

	// Recover.
	k, held := 0, false
	if n := len(acks); n > 0 {
		last := acks[n-1]
		k, held = last.k, last.op == "C"
	}
	err = l.Update(func(tx *Tx) error {
		tx.Remove(func(c Claim) bool { return c.UUID == own(0).UUID && !(held && c.Alias == alias(k)) })
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if n := len(acks); n > 0 && (acks[n-1].op == "c" || acks[n-1].op == "r") {
		write("R %d", k) // recovery released whatever the interrupted transaction did
	}
	for {
		if held {
			write("r %d", k)
			err = l.Update(func(tx *Tx) error {
				tx.Remove(func(c Claim) bool { return c.Owner.Same(own(k)) })
				return nil
			})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			write("R %d", k)
			held = false
			continue
		}
		k++
		write("c %d", k)
		var got string
		for got == "" {
			err = l.Update(func(tx *Tx) error {
				r, ok, err := claimFree(tx, res, own(k), Confirmed)
				if ok {
					got = r
				}
				return err
			})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			if got == "" {
				time.Sleep(time.Millisecond)
			}
		}
		write("C %d %s", k, got)
		held = true
	}
}

// checkInvariants checks the ledger against every worker's acknowledgements.
func checkInvariants(t *testing.T, dir string, workers int, ackPath func(int) string) (claims []Claim) {
	t.Helper()
	l := Open(dir)
	var err error
	if err = l.View(func(tx *Tx) error { claims = tx.Claims(); return nil }); err != nil {
		t.Fatalf("the ledger does not read after the kills: %v", err)
	}
	byRes := map[string]Claim{}
	byWorker := map[string][]Claim{}
	for _, c := range claims {
		if !slices.Contains(pool(4), c.Resource) {
			t.Errorf("claim on %q, not a pool resource", c.Resource)
		}
		if o, dup := byRes[c.Resource]; dup {
			t.Errorf("duplicate: %s held by %s/%s and %s/%s", c.Resource, o.Domain, o.Alias, c.Domain, c.Alias)
		}
		byRes[c.Resource] = c
		byWorker[c.Domain] = append(byWorker[c.Domain], c)
	}
	for w := range workers {
		name := "w" + strconv.Itoa(w)
		acks := readAcks(ackPath(w))
		got := byWorker[name]
		if len(acks) == 0 {
			if len(got) > 1 {
				t.Errorf("%s: no acknowledgement but claims %+v", name, got)
			}
			continue
		}
		last := acks[len(acks)-1]
		var heldRes string
		for i := len(acks) - 1; i >= 0; i-- {
			if acks[i].op == "C" && acks[i].k == last.k {
				heldRes = acks[i].res
				break
			}
		}
		want := "k" + strconv.Itoa(last.k)
		switch last.op {
		case "C": // acknowledged claim: it must be there, alone
			if len(got) != 1 || got[0].Alias != want || got[0].Resource != last.res {
				t.Errorf("%s: acknowledged claim %s on %s LOST or changed; ledger has %+v", name, want, last.res, got)
			}
		case "R": // acknowledged release: nothing of it may remain
			if len(got) != 0 {
				t.Errorf("%s: released %s, but the ledger still has %+v", name, want, got)
			}
		case "c": // claim in flight: committed or not
			if len(got) > 1 || (len(got) == 1 && got[0].Alias != want) {
				t.Errorf("%s: claim %s in flight, ledger has %+v", name, want, got)
			}
		case "r": // release in flight
			if len(got) > 1 || (len(got) == 1 && (got[0].Alias != want || got[0].Resource != heldRes)) {
				t.Errorf("%s: release of %s in flight, ledger has %+v", name, want, got)
			}
		}
	}
	return claims
}

// TestKillNineDuringClaimsAndReleases kills workers with SIGKILL at random points of their
// claim/release loops, restarts them, and checks after every round that no acknowledged claim
// was lost, no released one survived and no resource is held twice.
func TestKillNineDuringClaimsAndReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes for seconds")
	}
	duration := 4 * time.Second
	if v := os.Getenv("LEDGER_CRASH_SECONDS"); v != "" {
		s, _ := strconv.Atoi(v)
		duration = time.Duration(s) * time.Second
	}
	base := t.TempDir()
	dir := filepath.Join(base, "state")
	const workers = 6
	ackPath := func(w int) string { return filepath.Join(base, fmt.Sprintf("w%d.acks", w)) }

	procs := make([]*exec.Cmd, workers)
	stderr := make([]*bytes.Buffer, workers)
	startWorker := func(w int) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "LEDGER_WORKER=crash", "LEDGER_DIR="+dir, "LEDGER_ID="+strconv.Itoa(w),
			"LEDGER_ACKS="+ackPath(w))
		stderr[w] = &bytes.Buffer{}
		cmd.Stderr = stderr[w]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[w] = cmd
	}
	for w := range workers {
		startWorker(w)
	}
	stopAll := func() {
		for w, p := range procs {
			if p == nil {
				continue
			}
			_ = p.Process.Signal(syscall.SIGKILL)
			err := p.Wait()
			if ws, ok := p.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Errorf("worker %d ended by itself (%v): %s", w, err, stderr[w])
			}
			procs[w] = nil
		}
	}
	defer stopAll()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills, rounds, tempLeft := 0, 0, 0
	deadline := time.Now().Add(duration)
	for time.Now().Before(deadline) {
		// Kill one worker at a random moment, restart it.
		time.Sleep(time.Duration(rng.IntN(15000)) * time.Microsecond)
		w := rng.IntN(workers)

		p := procs[w]
		_ = p.Process.Signal(syscall.SIGKILL)
		_ = p.Wait()
		if ws, ok := p.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("worker %d ended by itself: %s", w, stderr[w])
		}
		kills++
		startWorker(w)

		// Every tenth kill, stop everything and check the ledger against the acknowledgements.
		if kills%10 == 0 {
			stopAll()
			rounds++
			if left, _ := filepath.Glob(filepath.Join(dir, tempName+"-*")); len(left) > 0 {
				tempLeft++
			}
			checkInvariants(t, dir, workers, ackPath)
			if t.Failed() {
				t.FailNow()
			}
			for w := range workers {
				startWorker(w)
			}
		}
	}
	stopAll()
	rounds++
	claims := checkInvariants(t, dir, workers, ackPath)
	var claimed, released, cut int
	for w := range workers {
		for _, a := range readAcks(ackPath(w)) {
			switch a.op {
			case "C":
				claimed++
			case "R":
				released++
			}
		}
		b, _ := os.ReadFile(ackPath(w))
		if len(b) > 0 && b[len(b)-1] != '\n' {
			cut++
		}
	}
	t.Logf("%d workers, pool of 4, %s: %d kill -9 (+%d at the %d checks), %d claims and %d releases acknowledged, "+
		"%d checks passed (a killed writer's temp file was left at %d of them), %d claims in the final ledger",
		workers, duration, kills, workers*rounds, rounds, claimed, released, rounds, tempLeft, len(claims))
}
