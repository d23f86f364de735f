#!/bin/bash
# Inside the nested guest (run.sh -- tests/vmm/nested/seabios_check.sh):
# boot Debian's SeaBIOS with qemu-system-x86_64 -accel kvm and no disks,
# and check that it gets through POST (16-bit real mode and 32-bit
# protected mode code, the 16-bit VGA option ROM) to its boot phase
# ("Booting from ..." or "No bootable device" in its debug port log).
# Prints when each milestone was reached.
#
# usage: seabios_check.sh [SECONDS]   (give up after SECONDS, default 30)
# Exit status: 0 boot phase reached, 1 not reached, 77 no /dev/kvm or QEMU.
set -euo pipefail

limit=${1:-30}
bios=/usr/share/seabios/bios.bin
[ -c /dev/kvm ] || { echo "seabios_check: no /dev/kvm" >&2; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "seabios_check: no qemu-system-x86_64" >&2; exit 77; }
[ -f "$bios" ] || { echo "seabios_check: no $bios (package seabios)" >&2; exit 77; }

log=$(mktemp /tmp/seabios.XXXXXX)
t0=$(date +%s%N)
timeout "$limit" qemu-system-x86_64 -accel kvm -nodefaults -nographic -bios "$bios" \
	-display none -serial none -monitor none -vga std -nic none -m 64 \
	-debugcon "file:$log" -global isa-debugcon.iobase=0x402 2>"$log.qemu" &
pid=$!
reached=1
for milestone in 'SeaBIOS \(version' 'Running on KVM' 'Start SeaVGABIOS' 'Booting from|No bootable device'; do
	until grep -qE "$milestone" "$log"; do
		kill -0 "$pid" 2>/dev/null || break 2
		sleep 0.05
	done
	echo "seabios_check: '$milestone' after $((($(date +%s%N) - t0) / 1000000)) ms"
	case "$milestone" in Booting*) reached=0 ;; esac
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [ "$reached" = 0 ]; then
	echo "seabios_check: SeaBIOS reached its boot phase under nested KVM"
	grep -E 'Booting from|No bootable device' "$log" | head -n 3
else
	echo "seabios_check: SeaBIOS did NOT reach its boot phase within $limit s; log tail:"
	tail -n 20 "$log"
	cat "$log.qemu"
fi
rm -f "$log" "$log.qemu"
exit "$reached"
