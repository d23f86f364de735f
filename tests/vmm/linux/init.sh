#!/bin/sh
# /init of the direct-boot test's initramfs (busybox): loads the virtio modules, checks
# what Linux made of busmap-vmm's PCI bus, the disk and the NIC, and reports through
# isa-debug-exit at 0x501, which ends the run with status (v << 1) | 1.
#
# Values written (status in parentheses): 1 pass (3); 2 a module did not load (5);
# 3 a virtio device is missing from the PCI bus (7); 4 virtio-pci is not bound (9);
# 5 a BAR was left unassigned (11); 6 no /dev/vda (13); 7 the disk's first sector is not
# what the host wrote (15); 8 a sector written did not read back (17); 9 no eth0 with
# the expected MAC (19); 10 eth0 sent nothing (21); 11 no token on the command line (23).
PATH=/bin
export PATH

mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

say() { echo "linux-boot: $*"; }

verdict() { # VALUE WHY
	say "verdict $1: $2 (uptime $(cut -d' ' -f1 /proc/uptime) s)"
	printf "\\$(printf %o "$1")" | dd of=/dev/port bs=1 seek=1281 count=1 2>/dev/null
	# Only reached when the port write did not end the run: the host sees status 0.
	say "cannot write to isa-debug-exit through /dev/port"
	poweroff -f
	exit 1
}

token=
for arg in $(cat /proc/cmdline); do
	case "$arg" in busmap.token=*) token=${arg#busmap.token=} ;; esac
done
[ -n "$token" ] || verdict 11 "no busmap.token= on the command line"

for m in $(cat /lib/modules/load.list); do
	insmod "/lib/modules/$m" || verdict 2 "insmod $m failed"
done

# The transitional virtio functions: 1af4:1001 (block) and 1af4:1000 (network).
for want in 0x1001 0x1000; do
	found=
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = "$want" ] || continue
		found=$d
	done
	[ -n "$found" ] || verdict 3 "no PCI device 1af4:${want#0x}"
	drv=$(readlink "$found/driver" 2>/dev/null)
	say "${found##*/} 1af4:${want#0x} class $(cat "$found/class") driver ${drv##*/}"
	[ "${drv##*/}" = virtio-pci ] || verdict 4 "${found##*/} is not bound to virtio-pci"
	# resource: "start end flags" per BAR; a BAR that exists (flags != 0) must be placed.
	n=0
	while read -r start end flags; do
		if [ "$flags" != 0x0000000000000000 ] && [ "$n" -lt 6 ]; then
			say "  BAR $n: $start-$end flags $flags"
			[ "$start" != 0x0000000000000000 ] || verdict 5 "${found##*/} BAR $n unassigned"
		fi
		n=$((n + 1))
	done <"$found/resource"
done

# Which BARs Linux placed itself (none when the VMM placed them before the boot).
say "BARs Linux assigned: $(dmesg | grep -c 'BAR [0-9].*assigned')"

[ -b /dev/vda ] || verdict 6 "no /dev/vda"
want="busmap-linux-boot $token"
got=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c ${#want})
say "vda sector 0: '$got'"
[ "$got" = "$want" ] || verdict 7 "vda sector 0 is not '$want'"

# Write sector 1, drop the page cache, read it back from the device; the host checks the
# image file too.
mark="written-by-guest $token"
printf '%s' "$mark" | dd of=/dev/vda bs=512 seek=1 count=1 conv=sync,fsync 2>/dev/null ||
	verdict 8 "writing vda sector 1 failed"
sync
echo 3 >/proc/sys/vm/drop_caches
got=$(dd if=/dev/vda bs=512 skip=1 count=1 2>/dev/null | head -c ${#mark})
say "vda sector 1 after the write: '$got'"
[ "$got" = "$mark" ] || verdict 8 "vda sector 1 did not read back"

mac=$(cat /sys/class/net/eth0/address 2>/dev/null)
say "eth0 $mac"
[ "$mac" = 52:54:00:12:34:56 ] || verdict 9 "no eth0 with MAC 52:54:00:12:34:56"
ip link set eth0 up || verdict 10 "ip link set eth0 up failed"
ip addr add 10.0.2.15/24 dev eth0
# ARP requests for an address nobody answers: frames the device must take from the ring.
ping -c 2 -W 1 10.0.2.2 >/dev/null 2>&1
tx=0
for _ in $(seq 50); do
	tx=$(cat /sys/class/net/eth0/statistics/tx_packets)
	[ "$tx" -gt 0 ] && break
	sleep 0.2
done
say "eth0 tx_packets $tx"
[ "$tx" -gt 0 ] || verdict 10 "eth0 sent nothing"

grep -i virtio /proc/interrupts | while read -r line; do say "irq $line"; done
verdict 1 "pass"
