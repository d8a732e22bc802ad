package watch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/virt-failover/virt-failover/policy"
)

// exported is every metric name watch exports, histograms' series included.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	pol := policy.Default()
	pol.Pools["lan"] = policy.Pool{Networks: []string{"lan"}}
	pol.State.Dir = dir
	m := NewMetrics(pol, dir, nil)
	w := New(Config{}, m)
	w.guestLocked("vm1").parked = []*policy.Parked{{Alias: "ua-pri0", Kind: policy.KindBondPair, Reason: policy.ParkedForSwitch}}
	m.hookDecisions.WithLabelValues("migrate", "refuse")
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	for _, want := range []string{"virt_failover_pool_resources", "virt_failover_guest_degraded", "virt_failover_hook_decisions_total"} {
		if !names[want] {
			t.Fatalf("the test's metrics lack %s: %v", want, names)
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bvirt_failover_[a-z_]+`)

// The dashboard and the alert rules use only metrics watch exports, and parse.
func TestDeployUsesExportedMetrics(t *testing.T) {
	names := exported(t)
	check := func(file, expr string) {
		t.Helper()
		found := metricName.FindAllString(expr, -1)
		if len(found) == 0 && strings.TrimSpace(expr) != "" {
			t.Errorf("%s: %q uses no virt_failover metric", file, expr)
		}
		for _, n := range found {
			if !names[n] {
				t.Errorf("%s: %q uses %s, which watch does not export", file, expr, n)
			}
		}
	}

	alerts := filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
	b, err := os.ReadFile(alerts)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr, For string
				Labels           map[string]string
				Annotations      map[string]string
			}
		}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", alerts, err)
	}
	var alertNames []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alertNames = append(alertNames, r.Alert)
			check(alerts, r.Expr)
			if r.For == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: %s has no for or no summary", alerts, r.Alert)
			}
		}
	}
	for _, want := range []string{"VirtFailoverGuestDegraded", "VirtFailoverPoolExhausted"} {
		if !slices.Contains(alertNames, want) {
			t.Errorf("%s has no %s (it has %v)", alerts, want, alertNames)
		}
	}

	dash := filepath.Join("..", "..", "deploy", "grafana", "virt-failover.json")
	b, err = os.ReadFile(dash)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Definition string
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dash, err)
	}
	if len(d.Panels) == 0 {
		t.Fatalf("%s has no panels", dash)
	}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", dash, p.Title)
		}
		for _, tg := range p.Targets {
			check(dash, tg.Expr)
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
			}
		}
	}
	for _, v := range d.Templating.List {
		check(dash, v.Definition)
	}
	// Every metric has a panel.
	for n := range names {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if n == base && !used[n] && n != "virt_failover_pool_problems" {
			t.Errorf("%s shows no %s", dash, n)
		}
	}
}
