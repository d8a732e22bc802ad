package watch

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/virt-failover/virt-failover/internal/claims"
	"github.com/virt-failover/virt-failover/policy"
)

// Metrics are watch's Prometheus metrics (docs/watch.md#metrics), in their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	migrations    *prometheus.CounterVec
	unplug        prometheus.Histogram
	replug        prometheus.Histogram
	migration     *prometheus.HistogramVec
	downtime      prometheus.Histogram
	hookDecisions *prometheus.CounterVec
	reconnects    prometheus.Counter

	pol       *policy.Policy
	statusDir string
	now       func() time.Time
	watcher   *Watcher
}

// durationBuckets span a device going or coming back (tens of milliseconds) to a slow guest's
// release of one (a minute and more).
var durationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300}

// The gauges read when Prometheus scrapes.
var (
	upDesc = prometheus.NewDesc("virt_failover_libvirt_up",
		"1 when watch is connected to libvirtd, else 0.", nil, nil)
	guestsDesc = prometheus.NewDesc("virt_failover_guests",
		"Running guests by failover state (degraded, parked, primary-unplugged, negotiated, running).", []string{"state"}, nil)
	degradedDesc = prometheus.NewDesc("virt_failover_guest_degraded",
		"1 for each guest on its emulated devices for longer than [watch] degraded_after.", []string{"domain"}, nil)
	emulatedDesc = prometheus.NewDesc("virt_failover_guest_emulated_seconds",
		"How long each guest on its emulated devices has been on them.", []string{"domain"}, nil)
	parkedDesc = prometheus.NewDesc("virt_failover_parked_devices",
		"Devices parked (unplugged by virt-failover) in running guests, by kind and reason.", []string{"kind", "reason"}, nil)
	poolDesc = prometheus.NewDesc("virt_failover_pool_resources",
		"Resources of each pool by state (free, claimed, pending, in use).", []string{"pool", "state"}, nil)
	poolProblemsDesc = prometheus.NewDesc("virt_failover_pool_problems",
		"Pool entries of the policy that do not resolve on this host.", nil, nil)
)

// NewMetrics makes the metrics; the pools are read from the policy's pools and claims ledger at
// each scrape (statusDir is libvirt's status directory, as "virt-failover status" reads it).
func NewMetrics(pol *policy.Policy, statusDir string, now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "virt_failover_migrations_total",
			Help: "Migrations watch saw end, by direction (out: from this host, in: to it) and outcome (completed, failed)."},
			[]string{"direction", "outcome"}),
		unplug: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "virt_failover_unplug_duration_seconds",
			Help: "How long the devices of an outgoing migration took to go (parked devices' detach, QEMU's wait-unplug).", Buckets: durationBuckets}),
		replug: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "virt_failover_replug_duration_seconds",
			Help: "From an arrived guest's resume until every device parked for its migration is back and its teaming pairs negotiated.", Buckets: durationBuckets}),
		migration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "virt_failover_migration_duration_seconds",
			Help: "How long migrations took as this host saw them, by direction.", Buckets: durationBuckets}, []string{"direction"}),
		downtime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "virt_failover_migration_downtime_seconds",
			Help:    "The guest's pause at the switch-over, from libvirt's completed job statistics.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5}}),
		hookDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "virt_failover_hook_decisions_total",
			Help: "The hook's decisions from its log since watch started, by operation and decision (pass, rewrite, refuse, error)."},
			[]string{"op", "decision"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "virt_failover_libvirt_reconnects_total",
			Help: "Connections to libvirtd lost and made again."}),
		pol: pol, statusDir: statusDir, now: now,
	}
	// Every series a dashboard or an alert reads exists from the start, at 0.
	for _, dir := range []string{"out", "in"} {
		for _, outcome := range []string{"completed", "failed"} {
			m.migrations.WithLabelValues(dir, outcome)
		}
		m.migration.WithLabelValues(dir)
	}
	m.Registry.MustRegister(m.migrations, m.unplug, m.replug, m.migration, m.downtime, m.hookDecisions, m.reconnects, stateCollector{m})
	return m
}

// observePhases records a migration's unplug and migration times in the histograms (the
// downtime is observed when it is read, the re-plug when it ends).
func (m *Metrics) observePhases(mg *Migration) {
	if mg.Unplug != nil {
		m.unplug.Observe(*mg.Unplug)
	}
	if mg.Migration != nil {
		m.migration.WithLabelValues(mg.Direction).Observe(*mg.Migration)
	}
}

// stateCollector reads the guests' and the pools' state when Prometheus scrapes.
type stateCollector struct{ m *Metrics }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, guestsDesc, degradedDesc, emulatedDesc, parkedDesc, poolDesc, poolProblemsDesc} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.m.now()
	if w := c.m.watcher; w != nil {
		r := w.Report()
		up := 0.0
		if r.Connected {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
		byState := map[string]int{}
		parked := map[[2]string]int{}
		for _, g := range r.Guests {
			byState[g.State]++
			degraded := 0.0
			if g.State == StateDegraded {
				degraded = 1
			}
			ch <- prometheus.MustNewConstMetric(degradedDesc, prometheus.GaugeValue, degraded, g.Name)
			emulated := 0.0
			if g.EmulatedSince != nil {
				emulated = now.Sub(*g.EmulatedSince).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(emulatedDesc, prometheus.GaugeValue, emulated, g.Name)
			for _, p := range g.Parked {
				parked[[2]string{p.Kind, p.Reason}]++
			}
		}
		for _, s := range States {
			ch <- prometheus.MustNewConstMetric(guestsDesc, prometheus.GaugeValue, float64(byState[s]), s)
		}
		for _, kind := range []string{policy.KindNetPair, policy.KindBondPair, policy.KindStoragePair, policy.KindDetachPair} {
			for _, reason := range []string{policy.ParkedForMigration, policy.ParkedForSwitch} {
				ch <- prometheus.MustNewConstMetric(parkedDesc, prometheus.GaugeValue, float64(parked[[2]string{kind, reason}]), kind, reason)
			}
		}
	}
	if c.m.pol == nil {
		return
	}
	st, err := claims.HostStatus(c.m.pol, c.m.statusDir, now)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(poolDesc, err)
		return
	}
	for _, p := range st.Pools {
		for _, s := range []string{claims.StateFree, claims.StateClaimed, claims.StatePending, claims.StateInUse} {
			ch <- prometheus.MustNewConstMetric(poolDesc, prometheus.GaugeValue, float64(p.Counts[s]), p.Name, s)
		}
	}
	ch <- prometheus.MustNewConstMetric(poolProblemsDesc, prometheus.GaugeValue, float64(len(st.Problems)))
}
