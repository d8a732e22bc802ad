package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Flock is a process on a host that holds an exclusive flock(2) on a file, as a stuck tool, an
// editor or a hung file system would.
type Flock struct {
	Path    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan struct{} // closed when the holder has exited
	waitErr error         // its exit, once done is closed
	once    sync.Once
	err     error
}

// HoldFlock starts flock(1) inside the host's namespaces on path (a path as the host sees it;
// flock creates the file if it is missing) and returns once the lock is held. The lock is held
// until Release, or until the host stops (Stop ends every process in its namespaces).
func (h *Host) HoldFlock(ctx context.Context, path string) (*Flock, error) {
	// flock exits at once if the lock is taken (--nonblock); once it holds it, its command says
	// so and waits for the end of its input.
	argv := h.nsArgv("flock", "--exclusive", "--nonblock", path, "sh", "-c", "echo held; exec cat >/dev/null")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = daemonEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // a Ctrl-C is for the harness, not for it
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	held := &firstLine{line: make(chan string, 1)}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = held, &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("[%s] flock %s: %w", h.Name, path, err)
	}
	f := &Flock{Path: path, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		f.waitErr = cmd.Wait()
		close(f.done)
	}()
	select {
	case l := <-held.line:
		if l == "held" {
			return f, nil
		}
	case <-f.done:
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	_ = f.Release()
	return nil, fmt.Errorf("[%s] flock --exclusive %s: the lock was not taken: %s", h.Name, path, strings.TrimSpace(stderr.String()))
}

// Release ends the holder, which frees the lock, and waits for it to be gone. It may be called
// more than once, from any goroutine.
func (f *Flock) Release() error {
	f.once.Do(func() {
		f.stdin.Close() // cat sees the end of its input: the holder exits
		select {
		case <-f.done:
			f.err = f.waitErr
		case <-time.After(10 * time.Second):
			_ = f.cmd.Process.Kill() // the lock is free all the same once it is gone
			<-f.done
		}
	})
	return f.err
}

// firstLine is a writer that sends the first line written to it on line.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	sent bool
	line chan string
}

func (w *firstLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sent {
		w.buf = append(w.buf, p...)
		if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
			w.line <- strings.TrimSpace(string(w.buf[:i]))
			w.sent = true
		}
	}
	return len(p), nil
}
