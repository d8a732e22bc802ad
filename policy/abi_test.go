package policy

import (
	"os"
	"strings"
	"testing"

	"github.com/virt-failover/virt-failover/xmlxform"
)

func mustParse(t *testing.T, b []byte) *xmlxform.Doc {
	t.Helper()
	d, err := xmlxform.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCheckABI(t *testing.T) {
	src, err := os.ReadFile("../testdata/hooks/web-01.xml")
	if err != nil {
		t.Fatal(err)
	}
	before := mustParse(t, src)
	for _, tc := range []struct {
		name     string
		old, new string
		want     string // "" = accepted
	}{
		{"source-network-may-change", "<source network='lan'/>", "<source network='lan-b'/>", ""},
		{"source-bridge-may-change", "<source bridge='br-a'/>", "<source bridge='br-z'/>", ""},
		{"interface-type-may-change", "<interface type='bridge'>", "<interface type='direct'>", ""},
		{"comments-may-change", "<!-- the incoming", "<!-- an incoming", ""},
		{"mac-change", "52:54:00:6d:90:03", "52:54:00:6d:90:04", "interface 52:54:00:6d:90:03: MAC '52:54:00:6d:90:03' becomes '52:54:00:6d:90:04'"},
		{"model-change", "<model type='e1000e'/>", "<model type='virtio'/>", "interface ua-pri0: model 'e1000e' becomes 'virtio'"},
		{"guest-address-change", "bus='0x02' slot='0x00'", "bus='0x03' slot='0x00'", "interface ua-pri0: guest address"},
		{"teaming-removed", "<teaming type='persistent'/>", "", "interface ua-sby0: teaming type 'persistent' becomes (none)"},
		{"nic-removed", "<interface type='bridge'>\n      <mac address='52:54:00:6d:90:03'/>\n      <source bridge='br-a'/>\n      <model type='virtio'/>\n    </interface>", "", "interface count 3 becomes 2"},
		{"machine-change", "machine='pc-q35-7.2'", "machine='pc-q35-7.1'", "domain machine 'pc-q35-7.2' becomes 'pc-q35-7.1'"},
		{"memory-change", "<memory unit='KiB'>393216</memory>", "<memory unit='KiB'>393217</memory>", "domain memory"},
		{"controller-index-change", "<controller type='pci' index='2'", "<controller type='pci' index='3'", "index '2' becomes '3'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(src), tc.old) {
				t.Fatalf("fixture lacks %q", tc.old)
			}
			after := mustParse(t, []byte(strings.Replace(string(src), tc.old, tc.new, 1)))
			err := CheckABI(before, after)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("accepted; want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
