// Package racegate lines up processes for a race: each worker says it is ready and waits; the
// gate opens when all are, so the race is between processes already loaded, not their start-up.
// Tests of concurrent claims use it (the claims ledger, the hook).
package racegate

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Start starts cmds, waits until every one of them has called Wait with gate dir, then opens the
// gate and returns when it did. dir must exist and be empty.
func Start(dir string, cmds []*exec.Cmd, timeout time.Duration) (time.Time, error) {
	for i, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			return time.Time{}, fmt.Errorf("process %d: %w", i, err)
		}
	}
	for deadline := time.Now().Add(timeout); ; {
		ready, _ := filepath.Glob(filepath.Join(dir, "ready-*"))
		if len(ready) == len(cmds) {
			break
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("only %d of %d processes got ready within %s", len(ready), len(cmds), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	opened := time.Now()
	return opened, os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
}

// Wait is the worker's side: report ready as id, then wait until the gate in dir opens.
func Wait(dir, id string, timeout time.Duration) error {
	if err := os.WriteFile(filepath.Join(dir, "ready-"+id), nil, 0o644); err != nil {
		return err
	}
	for deadline := time.Now().Add(timeout); ; {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gate never opened within %s", timeout)
		}
		time.Sleep(500 * time.Microsecond)
	}
}
