package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// WatchAddr is where a host's "virt-failover watch" listens, inside the host's network namespace.
const WatchAddr = "127.0.0.1:9478"

// Watch is "virt-failover watch" running inside a host's namespaces.
type Watch struct {
	h   *Host
	d   *daemon
	Out string // its stdout and stderr
}

// StartWatch starts bin's "watch" inside the host's namespaces as the packaged unit runs it on a
// host: the host's own /etc/virt-failover/policy.toml, libvirtd's socket in /run/libvirt and the
// hook log in /var/log/libvirt are the host's there. It waits until /healthz answers 200.
func (h *Host) StartWatch(ctx context.Context, bin string) (*Watch, error) {
	out := filepath.Join(h.Dir, "watch.out")
	d, err := startDaemon("watch", out, daemonEnv, h.nsArgv(bin, "watch", "--root", "/", "--policy", "/etc/virt-failover/policy.toml",
		"--connect", "qemu:///system?socket=/run/libvirt/libvirt-sock", "--listen", WatchAddr)...)
	if err != nil {
		return nil, err
	}
	w := &Watch{h: h, d: d, Out: out}
	for {
		code, body, err := w.Get(ctx, "/healthz")
		if err == nil && code == 200 {
			return w, nil
		}
		if !d.alive() || ctx.Err() != nil {
			w.Stop()
			return nil, fmt.Errorf("host %s: watch not healthy (%d %s %v; ended: %s); see %s", h.Name, code, strings.TrimSpace(body), err, d.ended, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Get fetches a path of the watch's HTTP endpoints with curl inside the host's network namespace.
func (w *Watch) Get(ctx context.Context, path string) (code int, body string, err error) {
	out, err := w.h.NS(ctx, "curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", "http://"+WatchAddr+path)
	if err != nil {
		return 0, out, err
	}
	i := strings.LastIndexByte(out, '\n')
	code, err = strconv.Atoi(strings.TrimSpace(out[i+1:]))
	if i < 0 || err != nil {
		return 0, out, fmt.Errorf("host %s: curl %s: no status code in %q", w.h.Name, path, out)
	}
	return code, out[:i], nil
}

// Ended says how the watch ended, "" while it runs.
func (w *Watch) Ended() string {
	if w.d.alive() {
		return ""
	}
	if w.d.ended == "" {
		return "ended"
	}
	return w.d.ended
}

// Stop ends the watch (SIGTERM, then SIGKILL after 10 s).
func (w *Watch) Stop() { w.d.stop(10 * time.Second) }

// ParseMetrics reads a Prometheus text exposition into its samples, keyed by the series as the
// exposition writes it: `name` or `name{label="value",...}`.
func ParseMetrics(text string) map[string]float64 {
	samples := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			samples[line[:i]] = v
		}
	}
	return samples
}
