package lint

import "testing"

func TestDiskNameIndex(t *testing.T) {
	for name, want := range map[string]int{"sda": 0, "sdg": 6, "sdh": 7, "sdz": 25, "sdaa": 26, "sdab": 27, "vdb": 1} {
		if got, ok := diskNameIndex(name); !ok || got != want {
			t.Errorf("diskNameIndex(%q) = %d, %t; want %d", name, got, ok, want)
		}
	}
	for _, name := range []string{"", "sd", "sd1", "s", "sdA"} {
		if _, ok := diskNameIndex(name); ok {
			t.Errorf("diskNameIndex(%q) accepted", name)
		}
	}
}
