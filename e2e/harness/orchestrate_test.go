package harness

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A command's lines arrive as it prints them, each tagged with its stream; WaitLine finds one,
// and fails once the command has ended without it.
func TestCommandFollowsOutput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := StartCommand(ctx, "sh", "-c", "echo plan; echo progress >&2; sleep 0.2; echo done; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	i, l, err := c.WaitLine(ctx, regexp.MustCompile(`^done$`))
	if err != nil || l.Stderr || l.Text != "done" {
		t.Fatalf("WaitLine: %d %+v %v", i, l, err)
	}
	code, err := c.Wait(ctx)
	if err != nil || code != 3 {
		t.Errorf("exit %d, %v", code, err)
	}
	if c.Stdout() != "plan\ndone\n" || c.Stderr() != "progress\n" || !strings.Contains(c.Output(), "stderr: progress") {
		t.Errorf("stdout %q, stderr %q", c.Stdout(), c.Stderr())
	}
	if _, _, err := c.WaitLine(ctx, regexp.MustCompile(`never`)); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Errorf("a line never printed: %v", err)
	}
}

// Kill ends a command as kill -9 does, and waits for it.
func TestCommandKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := StartCommand(ctx, "sh", "-c", "echo started; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WaitLine(ctx, regexp.MustCompile(`started`)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(ctx); err != nil || code != -1 || !c.Exited() || time.Since(start) > 10*time.Second {
		t.Errorf("after Kill: exit %d, %v, exited %v", code, err, c.Exited())
	}
}
