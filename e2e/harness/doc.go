// Package harness runs real libvirt and QEMU for the end-to-end tests: two private libvirt hosts
// on one machine (each in its own mount, UTS and network namespaces), a migration link between
// them, a bridge for the guest network, the hook under test installed on both, and the tools to
// watch a failover guest through live migrations: its serial log and heartbeat, the hook logs,
// the QEMU monitor events from libvirtd's log, and the domain logs.
package harness
