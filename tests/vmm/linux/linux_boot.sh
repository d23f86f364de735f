#!/bin/bash
# End to end: busmap-vmm boots Debian's kernel directly (-kernel, -initrd, -append) with a
# virtio-blk disk and a virtio-net NIC. Linux enumerates busmap's PCI bus with no firmware
# having assigned a BAR, binds virtio-pci, reads and writes the disk and transmits on the
# NIC; init.sh reports through isa-debug-exit, status 3 meaning all of it worked.
#
# usage: linux_boot.sh BUSMAP-VMM [EXTRA-VMM-OPTION...]   (e.g. --bar-layout=bhyve)
#
# The kernel is the one tests/vmm/nested/prepare.sh keeps in its cache
# ($BUSMAP_NESTED_CACHE, else ~/.cache/busmap-nested); the virtio_blk and virtio_net
# modules come from the same Debian package (apt-get download, once, kept in the cache
# under vmm-linux/). Runs busmap-vmm directly when /dev/kvm opens, else inside the nested
# KVM of tests/vmm/nested/run.sh. Environment: LINUX_BOOT_TIMEOUT (seconds, default 900),
# LINUX_BOOT_KEEP=1 keeps the scratch directory, LINUX_BOOT_QEMU=1 runs the same guest
# under qemu-system-x86_64 -accel tcg instead (the reference; SeaBIOS places the BARs).
#
# Exit status: 0 pass, 1 fail, 77 skip (no kernel, no modules, no KVM; reason on stderr).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$here/../../.." && pwd -P)

skip() { echo "linux_boot.sh: SKIP: $*" >&2; exit 77; }
die() { echo "linux_boot.sh: FAIL: $*" >&2; exit 1; }
note() { echo "linux_boot.sh: $*" >&2; }

[ $# -ge 1 ] || die "usage: linux_boot.sh BUSMAP-VMM [VMM-OPTION...]"
vmm=$(realpath "$1")
shift
[ -x "$vmm" ] || die "$vmm is not executable"
timeout=${LINUX_BOOT_TIMEOUT:-900}

for tool in cpio dpkg-deb dpkg-query apt-get tar od realpath timeout; do
	command -v "$tool" >/dev/null || skip "$tool is missing"
done

# ---- the kernel, its modules, busybox ----------------------------------
cache=${BUSMAP_NESTED_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/busmap-nested}
plog=$(mktemp "${TMPDIR:-/tmp}/linux-boot-prepare.XXXXXX")
if ! "$project/tests/vmm/nested/prepare.sh" "$cache" >"$plog" 2>&1; then
	cat "$plog" >&2
	rm -f "$plog"
	skip "no kernel: tests/vmm/nested/prepare.sh $cache failed (see above)"
fi
rm -f "$plog"
cache=$(cd "$cache" && pwd -P)
kernel=$cache/kernel/vmlinuz
[ -s "$kernel" ] || skip "no kernel at $kernel"
read -r pkg version kver <"$cache/kernel/package" || skip "no $cache/kernel/package"

# Dependencies first (each module's "depends=" in this kernel).
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
failover net_failover virtio_net"

mods=$cache/vmm-linux/$kver
have_modules() {
	local m
	for m in $modules; do [ -s "$mods/$m.ko" ] || return 1; done
}

# apt-get download as prepare.sh does it: as root, apt drops to _apt, who must be able
# to write the download directory.
fetch_modules() {
	local work deb m f
	work=$(mktemp -d "${TMPDIR:-/tmp}/linux-boot-apt.XXXXXX")
	chmod 755 "$work"
	if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$work"; fi
	note "fetching $pkg $version for its virtio modules"
	if ! (cd "$work" && apt-get download "$pkg=$version" >&2); then
		rm -rf "$work"
		return 1
	fi
	deb=$(ls "$work"/*.deb)
	mkdir "$work/x"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -x -C "$work/x" --wildcards "./lib/modules/$kver/kernel/drivers/virtio/*" \
			"./lib/modules/$kver/kernel/drivers/block/virtio_blk.ko*" \
			"./lib/modules/$kver/kernel/drivers/net/*" \
			"./lib/modules/$kver/kernel/net/core/failover.ko*"
	mkdir -p "$mods.tmp"
	for m in $modules; do
		f=$(find "$work/x" -name "$m.ko*" | head -n 1)
		case "$f" in
		*.ko) cp "$f" "$mods.tmp/$m.ko" ;;
		*.ko.xz) xz -dc "$f" >"$mods.tmp/$m.ko" ;;
		*.ko.zst) zstd -qdc "$f" >"$mods.tmp/$m.ko" ;;
		*.ko.gz) gzip -dc "$f" >"$mods.tmp/$m.ko" ;;
		*) rm -rf "$work" "$mods.tmp"; return 1 ;;
		esac
	done
	rm -rf "$mods"
	mv "$mods.tmp" "$mods"
	rm -rf "$work"
}

if ! mkdir -p "$cache/vmm-linux" 2>/dev/null || [ ! -w "$cache/vmm-linux" ]; then
	skip "cannot write the module cache $cache/vmm-linux"
fi
exec 9>"$cache/vmm-linux/.lock"
command -v flock >/dev/null && flock 9
if ! have_modules; then
	rm -rf "$mods.tmp"
	fetch_modules || skip "cannot get the virtio modules of $kver (apt-get download $pkg=$version)"
fi
exec 9>&-

busybox=
if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
	for f in $(dpkg-query -L busybox-static); do
		case "$f" in */bin/busybox) [ -f "$f" ] && busybox=$f ;; esac
	done
fi
[ -n "$busybox" ] || busybox=$cache/busybox/bin/busybox
[ -x "$busybox" ] || skip "no static busybox (busybox-static)"

# ---- KVM: here, or nested --------------------------------------------
if [ -n "${LINUX_BOOT_QEMU:-}" ]; then
	nested=0 # the reference: the same guest under QEMU (TCG), SeaBIOS assigning the BARs
elif [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; then
	nested=0
else
	nested=1
	command -v qemu-system-x86_64 >/dev/null ||
		skip "no /dev/kvm here and no qemu-system-x86_64 for the nested KVM"
fi

# ---- scratch: initramfs, disk image, serial log -------------------------
scratch=$(mktemp -d "${TMPDIR:-/tmp}/linux-boot.XXXXXX")
scratch=$(cd "$scratch" && pwd -P)
cleanup() {
	if [ -n "${LINUX_BOOT_KEEP:-}" ]; then note "kept $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT

root=$scratch/root
mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
for applet in cat cut dd dmesg echo grep head insmod ip ls mount ping poweroff printf readlink \
	seq sleep sync; do
	ln -s busybox "$root/bin/$applet"
done
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init"
for m in $modules; do cp "$mods/$m.ko" "$root/lib/modules/"; done
# shellcheck disable=SC2086 # one line per module
printf '%s.ko\n' $modules >"$root/lib/modules/load.list"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) \
	>"$scratch/initramfs.cpio"

token=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
disk=$scratch/disk.img
head -c $((1 << 20)) /dev/zero >"$disk"
printf 'busmap-linux-boot %s' "$token" | dd of="$disk" conv=notrunc status=none

append="console=ttyS0 panic=-1 busmap.token=$token"
cmd=("$vmm" -m 512 -kernel "$kernel" -initrd "$scratch/initramfs.cpio" -append "$append"
	-device "virtio-blk,file=$disk" -device virtio-net -device isa-debug-exit
	--check-memslots -serial "file:$scratch/serial.log" "$@")

if [ -n "${LINUX_BOOT_QEMU:-}" ]; then
	# shellcheck disable=SC2054 # QEMU's own comma-separated options
	cmd=(qemu-system-x86_64 -accel tcg -M pc -m 512 -nodefaults -display none
		-kernel "$kernel" -initrd "$scratch/initramfs.cpio" -append "$append"
		-drive "file=$disk,format=raw,if=none,id=d0" -device virtio-blk-pci,drive=d0
		-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0
		-device isa-debug-exit -serial "file:$scratch/serial.log")
fi

# ---- run ---------------------------------------------------------------
note "running busmap-vmm ${*:-(firmware BAR layout)}$([ $nested = 1 ] && echo ' in the nested KVM')"
start=$(date +%s.%N)
rc=0
if [ $nested = 0 ]; then
	timeout "$timeout" "${cmd[@]}" 2>"$scratch/vmm.err" || rc=$?
else
	"$project/tests/vmm/nested/run.sh" --timeout "$timeout" --rw "$scratch" -- "${cmd[@]}" \
		2>"$scratch/vmm.err" || rc=$?
fi
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

if [ $nested = 1 ] && [ $rc = 77 ] && grep -q '^run.sh: SKIP:' "$scratch/vmm.err"; then
	skip "nested KVM unavailable: $(sed -n 's/^run.sh: SKIP: //p' "$scratch/vmm.err" | head -n 1)"
fi

echo "---- serial console ----"
cat "$scratch/serial.log" 2>/dev/null || true
echo "---- busmap-vmm's stderr ----"
cat "$scratch/vmm.err"
echo "----"
note "status $rc after ${wall} s ($([ $nested = 1 ] && echo 'nested KVM under TCG, guest boot included' || echo 'KVM'))"
uptime=$(sed -n 's/.*linux-boot: verdict .*(uptime \([0-9.]*\) s).*/\1/p' "$scratch/serial.log" 2>/dev/null | tail -n 1)
[ -z "$uptime" ] || note "Linux's uptime at its verdict: $uptime s"

case $rc in
3) ;;
5) die "a module did not load" ;;
7) die "a virtio device is missing from the PCI bus" ;;
9) die "virtio-pci did not bind" ;;
11) die "a BAR was left unassigned" ;;
13) die "no /dev/vda" ;;
15) die "the disk's first sector is not what was written to the image" ;;
17) die "a sector written by the guest did not read back" ;;
19) die "no eth0 with MAC 52:54:00:12:34:56" ;;
21) die "eth0 transmitted nothing" ;;
23) die "the token did not reach the kernel command line" ;;
124) die "timeout after $timeout s" ;;
*) die "busmap-vmm exited with status $rc (3 = pass)" ;;
esac

# Without firmware Linux places every BAR itself (3 per virtio function); with
# --bar-layout=bhyve it keeps the VMM's placement.
assigned=$(sed -n 's/.*linux-boot: BARs Linux assigned: \([0-9]*\).*/\1/p' "$scratch/serial.log" | tail -n 1)
if [ -z "${LINUX_BOOT_QEMU:-}" ]; then
	case " $* " in
	*" --bar-layout=bhyve "*) [ "$assigned" = 0 ] ||
		die "Linux assigned ${assigned:-?} BARs although busmap-vmm had placed them all" ;;
	*) [ "${assigned:-0}" -ge 6 ] ||
		die "Linux assigned ${assigned:-?} BARs, not the 6 of the two virtio functions" ;;
	esac
fi

# The write must have reached the image file, not only the guest's page cache.
mark="written-by-guest $token"
got=$(dd if="$disk" bs=512 skip=1 count=1 status=none | head -c ${#mark})
[ "$got" = "$mark" ] || die "sector 1 of the image holds '$got', not '$mark'"
note "pass"
