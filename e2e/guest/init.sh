#!/bin/busybox sh
# /init of the end-to-end test guest (busybox sh, PID 1).
#
# It loads the failover modules, brings up the net_failover master with the address given on the
# kernel command line (vfo.ip=ADDR/LEN vfo.gw=ADDR), pings the gateway every 0.5 s, and prints a
# heartbeat line on the console every second:
#
#   VFO-HB up=12.34 sent=20 recv=18 lost=1 | eth0 drv=virtio_net state=up master=- role=failover | ...
#
# sent counts the probes sent, recv those answered, lost those that timed out (1 s); a probe
# still in flight is in sent only.
#
# With vfo.plain=1 (a guest without failover) the first virtio netdev carries the address instead,
# with role=plain.
#
# Kernel messages go to the console too (console loglevel 7), so the net_failover lines
# "failover primary slave:eth2 registered/unregistered" show up in the serial log.

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

echo 7 >/proc/sys/kernel/printk
echo "VFO: init on $(uname -r), cmdline: $(cat /proc/cmdline)"

for m in $(cat /modules.order); do
	insmod "/lib/modules/$m" || echo "VFO: insmod $m failed"
done

ip=
gw=
plain=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	vfo.ip=*) ip=${arg#vfo.ip=} ;;
	vfo.gw=*) gw=${arg#vfo.gw=} ;;
	vfo.plain=1) plain=1 ;;
	esac
done

# The failover master is the virtio netdev whose device offers VIRTIO_NET_F_STANDBY (feature bit 62,
# character 63 of the features string) and that has no master of its own; the standby virtio netdev
# shares the device but is enslaved to the master.
find_master() {
	for d in /sys/class/net/*; do
		n=${d##*/}
		[ -e "$d/device/driver" ] || continue
		drv=$(basename "$(readlink "$d/device/driver")")
		feat=-
		[ -r "$d/device/features" ] && feat=$(cut -c63 "$d/device/features")
		mst=-
		[ -e "$d/master" ] && mst=$(basename "$(readlink "$d/master")")
		echo "VFO: netdev $n drv=$drv standby-feature=$feat master=$mst" >&2
		if [ "$drv" = virtio_net ] && [ "$feat" = 1 ] && [ "$mst" = - ]; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

# vfo.plain=1: a guest without failover, the yardstick: its one virtio NIC carries the address.
find_plain() {
	for d in /sys/class/net/*; do
		[ -e "$d/device/driver" ] || continue
		[ "$(basename "$(readlink "$d/device/driver")")" = virtio_net ] && { basename "$d"; return 0; }
	done
	return 1
}

master=
role=failover
finder=find_master
if [ -n "$plain" ]; then
	role=plain
	finder=find_plain
fi
i=0
while [ $i -lt 100 ]; do
	master=$($finder) && break
	usleep 200000
	i=$((i + 1))
done
if [ -z "$master" ]; then
	echo "VFO: no $role netdev found"
else
	echo "VFO: $role netdev $master"
	ip link set "$master" up
	[ -n "$ip" ] && ip addr add "$ip" dev "$master"
	[ -n "$gw" ] && ip route add default via "$gw" dev "$master"
	echo "VFO: $master ip=$ip gw=$gw"
fi
ip link set lo up

# Probes: one ping process every 0.5 s, so a lost probe does not delay the next one.
# Counters are file sizes: one byte per probe sent; one per probe done, y if answered, n if not
# (one write each, so a heartbeat never sees a probe half counted).
: >/tmp/sent
: >/tmp/done
if [ -n "$gw" ]; then
	(
		while :; do
			printf . >>/tmp/sent
			(if ping -c 1 -W 1 -q "$gw" >/dev/null 2>&1; then printf y; else printf n; fi >>/tmp/done) &
			usleep 500000
		done
	) &
fi

while :; do
	read -r up _ </proc/uptime
	line="VFO-HB up=$up sent=$(wc -c </tmp/sent) recv=$(tr -cd y </tmp/done | wc -c) lost=$(tr -cd n </tmp/done | wc -c)"
	for d in /sys/class/net/*; do
		n=${d##*/}
		[ "$n" = lo ] && continue
		drv=-
		[ -e "$d/device/driver" ] && drv=$(basename "$(readlink "$d/device/driver")")
		mst=-
		[ -e "$d/master" ] && mst=$(basename "$(readlink "$d/master")")
		r=-
		[ "$n" = "$master" ] && r=$role
		line="$line | $n drv=$drv state=$(cat "$d/operstate") master=$mst role=$r"
	done
	echo "$line"
	sleep 1
done
