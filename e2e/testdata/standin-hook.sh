#!/bin/sh
# Stand-in for the virt-failover hook while developing the harness: it logs every call in the
# real hook's JSON line format (decision "pass", no rewrite) and prints nothing.
cat >/dev/null
printf '{"time":"%s","domain":"%s","op":"%s","subop":"%s","extra":"%s","decision":"pass","duration_ms":0}\n' \
	"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" "$3" "$4" >>/var/log/libvirt/virt-failover.log
