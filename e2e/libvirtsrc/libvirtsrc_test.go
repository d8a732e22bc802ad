package libvirtsrc

import "testing"

func TestUpstreamVersion(t *testing.T) {
	for in, want := range map[string]string{"9.0.0-4+deb12u2": "9.0.0", "1:10.10.0-3": "10.10.0", "9.0.0": "9.0.0", "2:1.2-3-4\n": "1.2-3"} {
		if got := upstreamVersion(in); got != want {
			t.Errorf("upstreamVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
