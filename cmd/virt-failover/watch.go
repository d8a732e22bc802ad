package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/virt-failover/virt-failover/internal/virt"
	"github.com/virt-failover/virt-failover/internal/watch"
)

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "follow this host's guests for people and Prometheus: failover state, migrations, pools, hook decisions (/metrics, /healthz, /guests)",
		Description: "A long-running process (the virt-failover-watch systemd unit). It follows libvirt's events of every\n" +
			"domain (lifecycle, devices added and removed) and QEMU's FAILOVER_NEGOTIATED, UNPLUG_PRIMARY and\n" +
			"MIGRATION (through libvirt's QEMU monitor event API, which does not taint the guest), reads the\n" +
			"parked records of the running guests' live definitions, tails the hook's decision log, and serves:\n" +
			"  /metrics  Prometheus metrics (docs/watch.md lists them)\n" +
			"  /healthz  200 when connected to libvirtd, 503 with the reason otherwise\n" +
			"  /guests   each guest's failover state and the last migrations, as JSON (\"virt-failover status\" reads it)\n" +
			"It reconnects with backoff when libvirtd restarts, and reads the live definitions again. It ends on\n" +
			"SIGTERM or SIGINT.",
		Flags: []cli.Flag{
			connectFlag("this host's libvirt"),
			&cli.StringFlag{Name: "listen", Usage: "the address of its HTTP endpoints (default: the policy's [watch] listen, 127.0.0.1:9478)"},
			policyFlag(), rootFlag(),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return usageError("watch: takes no arguments")
			}
			o, err := loadOrchestration(cmd)
			if err != nil {
				return err
			}
			uri, addr := o.connectURI(cmd), o.pol.Watch.Listen
			if cmd.IsSet("listen") {
				addr = cmd.String("listen")
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return &cliError{err: fmt.Errorf("watch: %w", err), code: exitFailed,
					hints: []string{"is another watch running? --listen or the policy's [watch] listen choose another address"}}
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			logf := func(format string, args ...any) {
				fmt.Fprintf(cmd.Root().ErrWriter, "virt-failover watch: %s\n", fmt.Sprintf(format, args...))
			}
			m := watch.NewMetrics(o.pol, o.host.statusDir, nil)
			w := watch.New(watch.Config{
				Dial: func(ctx context.Context) (watch.Source, error) {
					dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					defer cancel()
					return virt.Dial(dctx, uri)
				},
				DegradedAfter: o.pol.Watch.DegradedAfter,
				Logf:          logf,
			}, m)
			srv := &http.Server{Handler: watch.Handler(w, m), ReadHeaderTimeout: 10 * time.Second}
			go m.Tail(ctx, o.pol.Log.File, time.Second, logf)
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			logf("serving /metrics, /healthz and %s on http://%s; libvirt %s; hook log %s", watch.GuestsPath, ln.Addr(), uri, o.pol.Log.File)
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = w.Run(ctx)
			}()
			err = srv.Serve(ln)
			stop()
			<-done
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return &cliError{err: fmt.Errorf("watch: %w", err), code: exitFailed}
			}
			return nil
		},
	}
}
