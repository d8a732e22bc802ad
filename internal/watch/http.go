package watch

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// GuestsPath is where Handler serves the Report as JSON ("virt-failover status" reads it).
const GuestsPath = "/guests"

// Handler serves /metrics (Prometheus), /healthz (200 when connected to libvirtd, 503 with the
// reason otherwise) and /guests (the Report as JSON).
func Handler(w *Watcher, m *Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := w.Health(); err != nil {
			rw.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(rw, "not connected to libvirt: %v\n", err)
			return
		}
		fmt.Fprintf(rw, "ok: connected to %s\n", w.Report().URI)
	})
	mux.HandleFunc("GET "+GuestsPath, func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(rw)
		enc.SetIndent("", "  ")
		_ = enc.Encode(w.Report())
	})
	return mux
}
