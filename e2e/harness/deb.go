package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// dpkgArgs are the options of every dpkg run in a host: no log in the machine's /var/log, and no
// triggers (man-db's would rebuild the machine's /var/cache/man, which is not the host's).
var dpkgArgs = []string{"dpkg", "--log=/dev/null", "--no-triggers"}

// InstallDeb installs a .deb with dpkg inside the host's namespaces, as on a real host: its files
// land in the host's overlays and bind mounts, its database entries in the host's /var/lib/dpkg
// (an overlay over the machine's), and its postinst runs there. It returns dpkg's output
// (the maintainer scripts' included).
func (h *Host) InstallDeb(ctx context.Context, deb string) (string, error) {
	// libvirt >= 6.5 runs every executable in hooks/qemu.d; Debian's libvirt makes the directory.
	if err := os.MkdirAll(h.Path("/etc/libvirt/hooks/qemu.d"), 0o755); err != nil {
		return "", err
	}
	return h.Dpkg(ctx, "--install", deb)
}

// Dpkg runs dpkg inside the host's namespaces with args (like --remove virt-failover) and
// returns its combined output.
func (h *Host) Dpkg(ctx context.Context, args ...string) (string, error) {
	full := h.nsArgv(append(append([]string{}, dpkgArgs...), args...)...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = append(daemonEnv, "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("[%s] dpkg %s: %v: %s", h.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Existing returns those of paths (inside the host's namespaces) that exist there, symlinks
// included.
func (h *Host) Existing(ctx context.Context, paths []string) ([]string, error) {
	script := `for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done`
	out, err := h.NS(ctx, append([]string{"sh", "-c", script, "sh"}, paths...)...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}
