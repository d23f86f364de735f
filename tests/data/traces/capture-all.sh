#!/bin/bash
# Records again, with Debian's QEMU under TCG, the runs of this folder made by this script
# (not a, c1, d1 and g, which another driver recorded).
#
# usage: capture-all.sh [RUN...]      (default: every run below, one at a time)
#
# Needs Debian packages qemu-system-x86, qemu-system-arm, ovmf, qemu-efi-aarch64,
# u-boot-qemu, seabios, busybox-static and cpio. The Linux runs use Debian's kernel:
# $BUSMAP_KERNEL if set, else the package linux-image-amd64 depends on, fetched with
# apt-get download into $CACHE (default ~/.cache/busmap-traces) and unpacked there, never
# installed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${CACHE:-$HOME/.cache/busmap-traces}
mkdir -p "$cache"
die() { echo "capture-all.sh: error: $*" >&2; exit 1; }

kernel() {
	if [ -n "${BUSMAP_KERNEL:-}" ]; then echo "$BUSMAP_KERNEL"; return; fi
	local k
	k=$(ls "$cache"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
	if [ -z "$k" ]; then
		local pkg dl
		pkg=$(apt-cache depends linux-image-amd64 |
			sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n 1)
		[ -n "$pkg" ] || die "no kernel package found (apt-cache depends linux-image-amd64)"
		dl=$(mktemp -d /tmp/busmap-traces-apt.XXXXXX)
		chmod 755 "$dl"
		if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
		(cd "$dl" && apt-get download "$pkg" >&2)
		dpkg-deb -x "$dl"/*.deb "$cache"
		rm -rf "$dl"
		k=$(ls "$cache"/boot/vmlinuz-* | head -n 1)
	fi
	echo "$k"
}

# A busybox initramfs whose init lists the PCI functions Linux found (bus numbers as
# Linux left them), prints a marker and waits to be stopped.
initramfs() {
	local out=$cache/initramfs.cpio.gz
	if [ ! -s "$out" ]; then
		local root
		root=$(mktemp -d /tmp/busmap-traces-initramfs.XXXXXX)
		mkdir -p "$root"/bin "$root"/proc "$root"/sys "$root"/dev
		cp /bin/busybox "$root"/bin/busybox
		ln -s busybox "$root"/bin/sh
		cat >"$root"/init <<-'EOF'
		#!/bin/sh
		/bin/busybox mount -t proc proc /proc
		/bin/busybox mount -t sysfs sysfs /sys
		for d in /sys/bus/pci/devices/*; do
			echo "pci ${d##*/} $(/bin/busybox cat $d/vendor) $(/bin/busybox cat $d/device)"
		done
		echo BUSMAP-CAPTURE-DONE
		while :; do /bin/busybox sleep 60; done
		EOF
		chmod 755 "$root"/init
		(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$out"
		rm -rf "$root"
	fi
	echo "$out"
}

capture() { # NAME TIMEOUT WAIT... -- QEMU ARGS
	local name=$1 timeout=$2
	shift 2
	echo "capture-all.sh: $name" >&2
	timeout --kill-after=30 $((timeout + 60)) \
		python3 "$here/capture.py" --timeout "$timeout" "${@/#--out/$here/$name}"
}

x86=(qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m 1024 -nodefaults -display none
	-no-reboot)

# Linux on q35 with the initramfs above: NAME, the PCI option, then QEMU's device arguments.
capture_linux() {
	local name=$1 option=$2 k i
	shift 2
	k=$(kernel)
	i=$(initramfs)
	capture "$name" 900 --wait BUSMAP-CAPTURE-DONE --out -- "${x86[@]}" \
		-M q35 -kernel "$k" -initrd "$i" \
		-append "console=ttyS0 ignore_loglevel $option" "$@"
}

run_q35_linux_assign_busses() {
	capture_linux l1-q35-linux-assign-busses pci=assign-busses \
		-device pcie-root-port,id=rp1,chassis=1,addr=2,bus-reserve=3 \
		-device pcie-root-port,id=rp2,chassis=2,addr=3 \
		-device virtio-rng-pci,bus=rp1 \
		-device virtio-blk-pci,bus=rp2,drive=d0 \
		-drive if=none,id=d0,file=null-co://,format=raw,file.size=1M
}

run_q35_ovmf_shell() {
	capture o1-q35-ovmf-shell 900 --wait 'Shell> ' --out -- "${x86[@]}" \
		-M q35 -bios /usr/share/ovmf/OVMF.fd \
		-device pcie-root-port,id=rp1,chassis=1,addr=2 \
		-device virtio-rng-pci,bus=rp1 \
		-device virtio-rng-pci,addr=4
}

run_arm64_edk2_shell() {
	local fw=$cache/QEMU_EFI-pflash.raw vars=$cache/QEMU_VARS.raw
	[ -s "$fw" ] || { cp /usr/share/AAVMF/AAVMF_CODE.fd "$fw"; }
	cp /usr/share/AAVMF/AAVMF_VARS.fd "$vars"
	capture e1-arm64-edk2-shell 900 --wait 'Shell> ' --out -- qemu-system-aarch64 \
		-M virt -cpu cortex-a57 -m 512 -nodefaults -display none \
		-drive if=pflash,format=raw,readonly=on,file="$fw" \
		-drive if=pflash,format=raw,file="$vars" \
		-device pcie-root-port,id=rp1,chassis=1,addr=2 \
		-device virtio-rng-pci,bus=rp1 \
		-device virtio-rng-pci,addr=4
}

run_q35_linux_realloc_nvme() {
	capture_linux l2-q35-linux-realloc-nvme pci=realloc \
		-device pcie-root-port,id=rp1,chassis=1,addr=2 \
		-device nvme,serial=busmap,drive=d0,bus=rp1 \
		-drive if=none,id=d0,file=null-co://,format=raw,file.size=1M \
		-device edu,addr=5 \
		-device virtio-rng-pci,addr=4
}

run_q35_uboot() {
	capture u1-q35-uboot 900 --wait 'autoboot' --send ' ' --wait '=> ' --send 'pci\r' \
		--wait '=> ' --out -- "${x86[@]}" \
		-M q35 -bios /usr/lib/u-boot/qemu-x86_64/u-boot.rom \
		-device pcie-root-port,id=rp1,chassis=1,addr=2 \
		-device virtio-rng-pci,bus=rp1 \
		-device virtio-rng-pci,addr=4,disable-modern=on
}

run_arm64_uboot_root_port() {
	capture u2-arm64-uboot-root-port 600 --wait 'autoboot' --send ' ' --wait '=> ' \
		--send 'pci\r' --wait '=> ' --out -- qemu-system-aarch64 \
		-M virt -cpu cortex-a57 -m 512 -nodefaults -display none \
		-bios /usr/lib/u-boot/qemu_arm64/u-boot.bin \
		-device pcie-root-port,id=rp1,chassis=1,addr=2 \
		-device virtio-rng-pci,bus=rp1 \
		-device pci-bridge,chassis_nr=2,id=br1,addr=3 \
		-device virtio-rng-pci,bus=br1,addr=1,disable-modern=on
}

runs=(q35_linux_assign_busses q35_ovmf_shell arm64_edk2_shell q35_uboot q35_linux_realloc_nvme
	arm64_uboot_root_port)
[ $# -gt 0 ] && runs=("$@")
for r in "${runs[@]}"; do
	"run_${r//-/_}"
done
