#!/bin/bash
# Run a command inside a throw-away Linux guest under QEMU's software
# emulation (TCG) whose emulated AMD CPU has SVM, so that the guest has a
# working /dev/kvm even on a host without one.  See README.md.
#
# usage: run.sh [options] -- CMD [ARGS...]
#
#   --cpus N       guest vCPUs (default 2)
#   --mem MIB      guest memory in MiB (default 2048)
#   --timeout S    kill the guest after S seconds, boot included (default 600)
#   --cache DIR    cache made by prepare.sh (default $BUSMAP_NESTED_CACHE, else
#                  ${XDG_CACHE_HOME:-~/.cache}/busmap-nested); prepared on
#                  first use
#   --rw DIR       also share DIR read-write (repeatable; $BUSMAP_NESTED_RW
#                  adds a colon-separated list)
#   --append ARGS  extra guest kernel command line arguments
#   -v, --verbose  copy the guest console to stderr, print timings at the end
#
# Environment: BUSMAP_NESTED_CACHE, BUSMAP_NESTED_RW (above);
# BUSMAP_NESTED_APPEND (like --append); BUSMAP_NESTED_CPU (QEMU -cpu model,
# default "max"); BUSMAP_NESTED_KEEP=1 keeps the scratch directory (guest
# console log, QEMU messages, generated cmd.sh) for debugging.
#
# The guest's / is the host's / read-only; /tmp, /var/tmp, /run and
# /dev/shm are empty tmpfs; the project checkout, the current directory
# (unless it is /) and every --rw DIR are the host directories, read-write,
# at the same absolute paths.  CMD runs as root with the caller's
# environment and working directory; its stdout and stderr come out on
# run.sh's stdout and stderr.  The guest has no network.
#
# Exit status: CMD's status, or
#   77   skip: the nested setup cannot be prepared, QEMU is missing, or the
#        guest has no usable /dev/kvm (reason on stderr)
#   124  timeout (the guest was killed)
#   125  the harness or the guest failed before CMD could report a status
# (CMD itself may also exit 77/124/125; run.sh's stderr says which it was.)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$here/../../.." && pwd -P)
TAG='@@busmap-nested@@'

skip() { echo "run.sh: SKIP: $*" >&2; exit 77; }
fail() { echo "run.sh: ERROR: $*" >&2; exit 125; }
show_help() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
usage() { show_help | sed -n '/^usage:/,/^Environment:/p' | sed '$d' >&2; exit 125; }

cpus=2
mem=2048
timeout=600
cache=${BUSMAP_NESTED_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/busmap-nested}
verbose=0
append=${BUSMAP_NESTED_APPEND:+ $BUSMAP_NESTED_APPEND}
rw=()
if [ -n "${BUSMAP_NESTED_RW:-}" ]; then
	IFS=: read -r -a rw <<<"$BUSMAP_NESTED_RW"
fi

num() { [[ $2 =~ ^[1-9][0-9]*$ ]] || fail "$1 wants a positive integer, not '$2'"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--cpus) num "$1" "${2:-}"; cpus=$2; shift ;;
	--mem) num "$1" "${2:-}"; mem=$2; shift ;;
	--timeout) num "$1" "${2:-}"; timeout=$2; shift ;;
	--cache) [ -n "${2:-}" ] || usage; cache=$2; shift ;;
	--rw) [ -n "${2:-}" ] || usage; rw+=("$2"); shift ;;
	--append) append+=" ${2:-}"; shift ;;
	-v | --verbose) verbose=1 ;;
	-h | --help) show_help; exit 0 ;;
	--) shift; break ;;
	*) echo "run.sh: unknown argument '$1' (the command goes after --)" >&2; usage ;;
	esac
	shift
done
[ $# -gt 0 ] || usage
[ "$cpus" -le 2 ] || echo "run.sh: warning: --cpus $cpus on a $(nproc)-core host" >&2

# ---- host prerequisites and the cache ----------------------------------
qemu=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)"
command -v timeout >/dev/null || skip "timeout(1) is missing"
[ -x /bin/bash ] || skip "the guest runs the host's /bin/bash, which is missing"
plog=$(mktemp "${TMPDIR:-/tmp}/busmap-nested-prepare.XXXXXX")
if ! "$here/prepare.sh" "$cache" >"$plog" 2>&1; then
	cat "$plog" >&2
	rm -f "$plog"
	skip "the nested guest cannot be prepared in $cache (prepare.sh failed, see above)"
fi
rm -f "$plog"
cache=$(cd "$cache" && pwd)
read -r _ kernel_version kver <"$cache/kernel/package"
# The plain ELF kernel boots ~3 s faster (PVH entry, no decompression).
kernel=$cache/kernel/vmlinux
[ -s "$kernel" ] || kernel=$cache/kernel/vmlinuz

# ---- scratch: control share (cmd.sh, shares) and the output FIFOs -------
scratch=$(mktemp -d "${TMPDIR:-/tmp}/busmap-nested.XXXXXX")
mkdir "$scratch/ctl" "$scratch/fifo"
qpid=
readers=()
cleanup() {
	local p
	[ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
	for p in "${readers[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -n "${BUSMAP_NESTED_KEEP:-}" ]; then
		echo "run.sh: kept $scratch (console.log, qemu.log, ctl/cmd.sh)" >&2
	else
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM HUP

# Read-write shares: real paths, sorted, dropping any inside another one.
cands=("$project")
cwd=$(pwd -P)
[ "$cwd" = / ] || cands+=("$cwd")
for d in "${rw[@]}"; do
	[ -n "$d" ] || continue
	[ -d "$d" ] || fail "--rw $d: not a directory"
	cands+=("$(cd "$d" && pwd -P)")
done
shares=()
while IFS= read -r d; do
	[ "$d" != / ] || fail "cannot share / read-write (the guest root is the host's / read-only)"
	case "$d" in *$'\t'* | *$'\n'*) fail "cannot share a path with a tab or newline: $d" ;; esac
	covered=0
	for s in "${shares[@]}"; do
		case "$d/" in "$s"/*) covered=1 ;; esac
	done
	[ "$covered" = 1 ] || shares+=("$d")
done < <(printf '%s\n' "${cands[@]}" | LC_ALL=C sort -u)

: >"$scratch/ctl/shares"
for i in "${!shares[@]}"; do
	printf 'rw%d\t%s\n' "$i" "${shares[$i]}" >>"$scratch/ctl/shares"
done

# The command script: the caller's environment, directory and command.
{
	echo '# generated by run.sh'
	for name in $(compgen -e); do
		case "$name" in
		PWD | OLDPWD | SHLVL | _ | BASH_* | SHELLOPTS | BASHOPTS) continue ;;
		esac
		[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
		printf 'export %s=%q\n' "$name" "${!name}"
	done
	# A TMPDIR on the host may not exist in the guest's empty /tmp.
	echo 'if [ -n "${TMPDIR:-}" ] && [ ! -d "$TMPDIR" ]; then mkdir -p "$TMPDIR" 2>/dev/null || unset TMPDIR; fi'
	printf 'cd -- %q || { echo "run.sh (guest): cannot cd to %q" >&2; exit 125; }\n' "$cwd" "$cwd"
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$scratch/ctl/cmd.sh"

# ---- QEMU ------------------------------------------------------------------
q() { printf '%s' "${1//,/,,}"; } # QEMU option values: double the commas

args=(
	-nodefaults -no-user-config -no-reboot
	-accel tcg,thread=multi
	-machine pc
	-cpu "${BUSMAP_NESTED_CPU:-max}"
	-smp "$cpus" -m "$mem"
	-display none -vga none -monitor none -nic none
	-kernel "$kernel"
	-initrd "$cache/initramfs.cpio"
	-append "console=ttyS0 quiet panic=-1 mitigations=off 8250.nr_uarts=1 random.trust_cpu=on$append"
	-chardev "file,id=console,path=$(q "$scratch/fifo/console")"
	-serial chardev:console
	-device virtio-serial-pci,id=vser
	-chardev "file,id=out,path=$(q "$scratch/fifo/out")"
	-device virtserialport,bus=vser.0,chardev=out,name=busmap.stdout
	-chardev "file,id=err,path=$(q "$scratch/fifo/err")"
	-device virtserialport,bus=vser.0,chardev=err,name=busmap.stderr
	-fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
	-fsdev "local,id=busmapctl,path=$(q "$scratch/ctl"),security_model=none,multidevs=remap"
	-device virtio-9p-pci,fsdev=busmapctl,mount_tag=busmapctl
)
for i in "${!shares[@]}"; do
	args+=(-fsdev "local,id=rw$i,path=$(q "${shares[$i]}"),security_model=none,multidevs=remap"
		-device "virtio-9p-pci,fsdev=rw$i,mount_tag=rw$i")
done

for f in console out err; do mkfifo "$scratch/fifo/$f"; done
# If our stdout or stderr goes away (run.sh ... | head), keep draining the
# FIFO: a QEMU that cannot write would stall the guest until the timeout.
(exec <"$scratch/fifo/out"; cat || exec cat >/dev/null) &
readers+=($!)
(exec <"$scratch/fifo/err"; cat >&2 || exec cat >/dev/null) &
readers+=($!)
(
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		printf '%s\n' "$line" >>"$scratch/console.log" || true
		case "$line" in
		*"$TAG start"*) date +%s.%N >"$scratch/t_start" ;;
		esac
		[ "$verbose" = 0 ] || printf 'guest: %s\n' "$line" >&2 || true
	done <"$scratch/fifo/console"
) &
readers+=($!)

t0=$(date +%s.%N)
timeout --kill-after=10 "$timeout" "$qemu" "${args[@]}" </dev/null >"$scratch/qemu.log" 2>&1 &
qpid=$!
qstatus=0
wait "$qpid" || qstatus=$?
qpid=
t1=$(date +%s.%N)

# A reader still blocked opening its FIFO (QEMU never opened it) gets EOF.
for f in console out err; do
	exec {fd}<>"$scratch/fifo/$f"
	exec {fd}>&-
done
for p in "${readers[@]}"; do wait "$p" 2>/dev/null || true; done
readers=()

log=$scratch/console.log
touch "$log"
tail_guest() {
	echo "run.sh: last guest console lines:" >&2
	{ grep -v "^$TAG" "$log" || true; } | tail -n 25 | sed 's/^/  | /' >&2
	if [ -s "$scratch/qemu.log" ]; then
		echo "run.sh: QEMU said:" >&2
		sed 's/^/  | /' "$scratch/qemu.log" >&2
	fi
}

if [ "$verbose" = 1 ]; then
	elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
	up=$(sed -n "s/.*$TAG start uptime=\([0-9.]*\).*/\1/p" "$log" | tail -n 1)
	if [ -s "$scratch/t_start" ]; then
		echo "run.sh: kernel $kver ($kernel_version); command started $(elapsed "$t0" "$(cat "$scratch/t_start")") s after QEMU was launched (guest uptime ${up:-?} s); QEMU ran $(elapsed "$t0" "$t1") s in all" >&2
	else
		echo "run.sh: QEMU ran $(elapsed "$t0" "$t1") s; the command never started" >&2
	fi
fi

if [ "$qstatus" = 124 ] || [ "$qstatus" = 137 ]; then
	echo "run.sh: TIMEOUT: the guest was killed after ${timeout} s" >&2
	tail_guest
	exit 124
fi

status=$(sed -n "s/.*$TAG exit-status=\([0-9]*\).*/\1/p" "$log" | tail -n 1)
reason=$(sed -n "s/.*$TAG \(skip\|error\): //p" "$log" | tail -n 1)
if [ -z "$status" ]; then
	echo "run.sh: ERROR: the guest stopped without reporting a status (QEMU exit status $qstatus)" >&2
	tail_guest
	exit 125
fi
if grep -q "$TAG skip: " "$log"; then
	skip "in the nested guest: $reason"
fi
if grep -q "$TAG error: " "$log"; then
	tail_guest
	fail "in the nested guest: $reason"
fi
exit "$status"
