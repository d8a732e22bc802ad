package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/virt-failover/virt-failover/e2e/harness"
)

// runDir makes this test's log directory, e2e/out/PREFIX-TIME (VF_E2E_OUT overrides it), after
// stopping what an earlier, killed run left behind. It is removed when the test passes, unless
// VF_E2E_KEEP=1. Cleanups registered after it (stopping the hosts) run before the removal.
func runDir(t *testing.T, prefix string) (root, run string) {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	outRoot := filepath.Join(root, "e2e", "out")
	harness.SweepStale(outRoot, t.Logf)
	run = os.Getenv("VF_E2E_OUT")
	if run == "" {
		run = filepath.Join(outRoot, prefix+"-"+time.Now().Format("20060102-150405"))
	}
	if err := harness.ClaimRunDir(run); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("VF_E2E_KEEP") == "1" {
			t.Logf("logs kept in %s", run)
		} else {
			_ = os.RemoveAll(run)
		}
	})
	return root, run
}

// hookUnderTest is the binary VF_BIN names (an absolute path), else one built into run.
func hookUnderTest(t *testing.T, root, run string) string {
	t.Helper()
	bin := os.Getenv("VF_BIN")
	if bin == "" {
		return buildBinary(t, root, run)
	}
	if !filepath.IsAbs(bin) {
		t.Fatalf("VF_BIN=%q: want an absolute path", bin)
	}
	return bin
}

// buildBinary builds the static virt-failover binary into run.
func buildBinary(t *testing.T, root, run string) string {
	t.Helper()
	bin := filepath.Join(run, "virt-failover")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/virt-failover")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building virt-failover: %v\n%s", err, out)
	}
	return bin
}

// debUnderTest is the package B installs: VF_DEB (an absolute path; "make e2e" sets it), else
// the one "make deb" builds into bin/. It is "" when the hook under test is the stand-in script,
// which no package holds.
func debUnderTest(t *testing.T, root, hook string) string {
	t.Helper()
	if harness.IsStandIn(hook) {
		return ""
	}
	if deb := os.Getenv("VF_DEB"); deb != "" {
		if !filepath.IsAbs(deb) {
			t.Fatalf("VF_DEB=%q: want an absolute path", deb)
		}
		return deb
	}
	cmd := exec.Command("make", "--no-print-directory", "deb")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(root, "bin", "virt-failover_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb left %d packages in bin/: %v", len(debs), debs)
	}
	return debs[0]
}
