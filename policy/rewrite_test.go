package policy

import (
	"os"
	"strings"
	"testing"
)

func TestPlanRewrite(t *testing.T) {
	src, err := os.ReadFile("../testdata/hooks/web-01.xml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		networks map[string]string
		bridges  map[string]string
		changes  []string
	}{
		{"no-tables", nil, nil, nil},
		{"no-match", map[string]string{"fabric-a": "fabric-b"}, map[string]string{"br-x": "br-y"}, nil},
		{"network", map[string]string{"lan": "lan-b"}, nil, []string{
			"interface ua-sby0: source network 'lan' -> 'lan-b'",
			"interface ua-pri0: source network 'lan' -> 'lan-b'",
		}},
		{"bridge-only-touches-bridge-interfaces", nil, map[string]string{"br-a": "br-b", "lan": "x"}, []string{
			"interface 52:54:00:6d:90:03: source bridge 'br-a' -> 'br-b'",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Default()
			p.Rewrite.Networks, p.Rewrite.Bridges = tc.networks, tc.bridges
			doc := mustParse(t, src)
			plan := PlanRewrite(doc, p)
			if strings.Join(plan.Changes, "\n") != strings.Join(tc.changes, "\n") {
				t.Fatalf("changes\n got %q\nwant %q", plan.Changes, tc.changes)
			}
			out, err := plan.Transform.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.changes) == 0 && string(out) != string(src) {
				t.Errorf("no change planned but the output differs")
			}
			if err := CheckABI(doc, mustParse(t, out)); err != nil {
				t.Errorf("the rewrite changes the ABI: %v", err)
			}
			// A second pass over the output finds nothing left to map to itself.
			again := PlanRewrite(mustParse(t, out), p)
			for _, c := range again.Changes {
				for _, first := range plan.Changes {
					if c == first {
						t.Errorf("second pass repeats %q", c)
					}
				}
			}
		})
	}
}

// A parked interface comes back on this host: [rewrite] maps its source inside its record too, in
// either namespace form, and the rest of the definition stays byte for byte.
func TestPlanRewriteParkedInterfaces(t *testing.T) {
	src := `<domain type='kvm'>
  <metadata>
    <vfo:failover xmlns:vfo="http://virt-failover.org/xmlns/domain/1.0">
      <vfo:parked alias="ua-pri0" kind="bond" reason="migration">
        <vfo:interface type="network"><vfo:source network="lan"/><vfo:alias name="ua-pri0"/></vfo:interface>
      </vfo:parked>
      <vfo:parked alias="ua-pri1" kind="bond" reason="switch">
        <interface type="bridge"><source bridge="br-a"/><alias name="ua-pri1"/></interface>
      </vfo:parked>
    </vfo:failover>
  </metadata>
  <devices>
    <interface type='network'><source network='lan'/><alias name='ua-sby0'/></interface>
  </devices>
</domain>`
	p := Default()
	p.Rewrite.Networks, p.Rewrite.Bridges = map[string]string{"lan": "lan-b"}, map[string]string{"br-a": "br-b"}
	plan := PlanRewrite(mustParse(t, []byte(src)), p)
	want := []string{
		"interface ua-sby0: source network 'lan' -> 'lan-b'",
		"parked interface ua-pri0: source network 'lan' -> 'lan-b'",
		"parked interface ua-pri1: source bridge 'br-a' -> 'br-b'",
	}
	if strings.Join(plan.Changes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes\n got %q\nwant %q", plan.Changes, want)
	}
	out, err := plan.Transform.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	wantOut := strings.NewReplacer(`network="lan"`, `network="lan-b"`, `network='lan'`, `network='lan-b'`, `bridge="br-a"`, `bridge="br-b"`).Replace(src)
	if string(out) != wantOut {
		t.Errorf("output:\n%s\nwant:\n%s", out, wantOut)
	}
}
