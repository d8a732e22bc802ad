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
