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
# Two more modes need the modes initramfs (guest.Image.ModesInitrd), which adds their modules
# (/modules.bond, /modules.mpath) and the multipath helper /bin/vfo-mpath:
#
# vfo.bond=1: no net_failover; the guest bonds its NICs itself (bond0, role=bond, carries the
# address): active-backup, the NIC that is not virtio (a VF, here an emulated e1000e) is the
# primary. NICs report their packet counters, the bond its state:
#
#   ... | bond0 drv=- state=up master=- role=bond mode=active-backup active=eth1 primary=eth1 slaves=eth0,eth1
#       | eth0 drv=virtio_net state=up master=bond0 role=- tx=3 rx=40 | eth1 drv=e1000e ... tx=52 rx=61
#
# vfo.mpath=1: dm-multipath over the SCSI disks that share a WWID, with a writer that writes and
# verifies checksummed blocks through the map (e2e/guest/mpath); its state ends the heartbeat:
#
#   ... | mpath mpath0 dev=dm-0 wwid=naa.5001405000e2e001 group=1 paths=sda:vmw_pvscsi:A:1,sdb:virtio_scsi:A:2 written=120 verified=238 ioerr=0 bad=0
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
bond=
mpath=
noeject=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	vfo.ip=*) ip=${arg#vfo.ip=} ;;
	vfo.gw=*) gw=${arg#vfo.gw=} ;;
	vfo.plain=1) plain=1 ;;
	vfo.bond=1) bond=1 ;;
	vfo.mpath=1) mpath=1 ;;
	vfo.noeject=1) noeject=1 ;;
	esac
done

# load_mode loads a mode's modules, in dependency order.
load_mode() {
	if [ ! -r "/modules.$1" ]; then
		echo "VFO: this initramfs has no modules for vfo.$1=1 (boot the modes initramfs)"
		return 1
	fi
	for m in $(cat "/modules.$1"); do
		args=
		[ "$m" = bonding.ko ] && args=max_bonds=0 # bond0 is made through bonding_masters
		insmod "/lib/modules/$m" $args || echo "VFO: insmod $m failed"
	done
}

# vfo.mpath=1: the helper waits for the paths itself, while the network comes up.
if [ -n "$mpath" ] && load_mode mpath; then
	vfo-mpath -status /tmp/mpath.hb &
fi

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

# vfo.bond=1: bonding through its sysfs interface (kernel.org, Documentation/networking/bonding.rst,
# "Configuring Bonding Manually via Sysfs"; busybox has no ifenslave). active-backup with the
# primary preferred whenever its link is up (primary_reselect=always), links watched by miimon.
# Both NICs have the same MAC (the domain gives them one) and fail_over_mac=none, the default the
# document names for active-backup: the bond and every slave keep that one MAC, so a failover
# needs no new address at the peers, only the gratuitous ARP the bond sends from the new active
# slave to move the switch's entry.
bond_setup() {
	load_mode bond || return 1
	echo +bond0 >/sys/class/net/bonding_masters || return 1
	b=/sys/class/net/bond0/bonding
	echo active-backup >$b/mode
	echo 100 >$b/miimon
	echo none >$b/fail_over_mac
	echo always >$b/primary_reselect
	ip link set bond0 up
	bond_enslave
	return 0 # a NIC that would not enslave is tried again by bond_watch
}

# bond_enslave enslaves every NIC not under the bond yet (a slave must be down to be enslaved);
# a NIC that is not virtio becomes the primary. A NIC hot-unplugged leaves the bond by itself
# (bonding releases a slave that unregisters); one plugged in again (under any name) is enslaved
# by the next round of bond_watch, which polls: the guest has no udev.
bond_enslave() {
	for d in /sys/class/net/*; do
		[ -e "$d/device/driver" ] && [ ! -e "$d/master" ] || continue
		n=${d##*/}
		drv=$(basename "$(readlink "$d/device/driver")")
		ip link set "$n" down
		echo "+$n" >/sys/class/net/bond0/bonding/slaves || continue
		echo "VFO: bond0 enslaved $n ($drv)"
		[ "$drv" = virtio_net ] || echo "$n" >/sys/class/net/bond0/bonding/primary
	done
}

bond_watch() {
	while :; do
		bond_enslave
		usleep 250000
	done
}

find_bond() {
	[ -d /sys/class/net/bond0 ] && echo bond0
}

master=
role=failover
finder=find_master
if [ -n "$bond" ]; then
	role=bond
	finder=find_bond
	bond_setup && { bond_watch & }
elif [ -n "$plain" ]; then
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

# vfo.noeject=1: a guest that never completes a hot-unplug. QEMU's q35 signals PCI hotplug
# through ACPI: general-purpose event 1 (\_GPE._E01) makes the guest's acpiphp look at the slots,
# and an eject request there makes it remove the device and call _EJ0. The failover primary
# itself arrives by hotplug (QEMU plugs it once the guest acks the standby feature), so hotplug
# cannot be off from boot (acpiphp.disable=1 leaves the guest without its primary): once a NIC
# that is not virtio has a master, the guest disables that event (kernel.org,
# Documentation/ABI/testing/sysfs-firmware-acpi), and every later request goes unanswered.
noeject_watch() {
	while :; do
		for d in /sys/class/net/*; do
			[ -e "$d/master" ] && [ -e "$d/device/driver" ] || continue
			[ "$(basename "$(readlink "$d/device/driver")")" = virtio_net ] && continue
			if echo disable >/sys/firmware/acpi/interrupts/gpe01; then
				echo "VFO: ${d##*/} enslaved; ACPI GPE 01 (PCI hotplug) disabled: $(cat /sys/firmware/acpi/interrupts/gpe01)"
			else
				echo "VFO: could not disable ACPI GPE 01"
			fi
			for g in /sys/firmware/acpi/interrupts/gpe0?; do echo "VFO: ${g##*/} $(cat "$g")"; done
			return
		done
		usleep 200000
	done
}
[ -n "$noeject" ] && { noeject_watch & }

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

# bond_fields: a bond's mode, active slave, primary and slaves; a NIC's packet counters.
bond_fields() {
	if [ -d "$1/bonding" ]; then
		read -r mode _ <"$1/bonding/mode"
		read -r active <"$1/bonding/active_slave" || active=-
		read -r primary <"$1/bonding/primary" || primary=-
		read -r sl <"$1/bonding/slaves"
		slaves=
		for s in $sl; do slaves=${slaves:+$slaves,}$s; done
		echo " mode=$mode active=${active:--} primary=${primary:--} slaves=${slaves:--}"
	elif [ -r "$1/statistics/tx_packets" ]; then
		read -r tx <"$1/statistics/tx_packets"
		read -r rx <"$1/statistics/rx_packets"
		echo " tx=$tx rx=$rx"
	fi
}

while :; do
	read -r up _ </proc/uptime
	line="VFO-HB up=$up sent=$(wc -c </tmp/sent) recv=$(tr -cd y </tmp/done | wc -c) lost=$(tr -cd n </tmp/done | wc -c)"
	for d in /sys/class/net/*; do
		n=${d##*/}
		[ "$n" = lo ] || [ ! -d "$d" ] && continue
		drv=-
		[ -e "$d/device/driver" ] && drv=$(basename "$(readlink "$d/device/driver")")
		mst=-
		[ -e "$d/master" ] && mst=$(basename "$(readlink "$d/master")")
		r=-
		[ "$n" = "$master" ] && r=$role
		line="$line | $n drv=$drv state=$(cat "$d/operstate") master=$mst role=$r"
		[ -n "$bond" ] && line="$line$(bond_fields "$d")"
	done
	[ -n "$mpath" ] && [ -r /tmp/mpath.hb ] && read -r mp </tmp/mpath.hb && line="$line | $mp"
	echo "$line"
	sleep 1
done
