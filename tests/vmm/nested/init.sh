#!/bin/sh
# PID 1 of the nested-KVM test guest (see README.md).  prepare.sh copies this
# file to /init in the initramfs; it runs under busybox ash, not bash.
#
# It loads the modules listed in /lib/modules/load.list, mounts the host's /
# (9p tag "hostroot", read-only) at /newroot with fresh /proc, /sys, /dev,
# /tmp, /var/tmp and /run, mounts each read-write share listed by run.sh in
# the control share (9p tag "busmapctl", file "shares") at its host path,
# then runs the control share's cmd.sh with the host's bash, chrooted into
# /newroot, with stdout and stderr on the virtio-serial ports named
# busmap.stdout and busmap.stderr.  The console (ttyS0) gets progress lines
# and, last, exactly one line "@@busmap-nested@@ exit-status=N", then the
# guest powers off.  N is the command's status, 77 when the guest has no
# usable /dev/kvm, 125 when the guest itself could not be set up.

PATH=/bin
export PATH
/bin/busybox --install -s /bin

mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/null >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

TAG='@@busmap-nested@@'
MSIZE=512000

say() { echo "nested-init: $*"; }

finish() {
	echo "$TAG exit-status=$1"
	sync
	poweroff -f
	sleep 10
	echo o >/proc/sysrq-trigger
}

error() {
	echo "$TAG error: $*"
	dmesg | tail -n 15
	finish 125
}

skip() {
	echo "$TAG skip: $*"
	finish 77
}

load_group() { # GROUP: insmod the modules of GROUP, in order
	while read -r group ko; do
		[ "$group" = "$1" ] || continue
		insmod "/lib/modules/$ko" || return 1
		say "loaded ${ko%.ko}"
	done </lib/modules/load.list
}

mount9p() { # TAG DIR CACHE [ro]
	mount -t 9p -o "trans=virtio,version=9p2000.L,msize=$MSIZE,cache=$3${4:+,$4}" "$1" "$2"
}

load_group base || error "could not load the virtio/9p modules"

mkdir -p /ctl /newroot
mount9p busmapctl /ctl mmap || error "cannot mount the control share (9p tag busmapctl)"
mount9p hostroot /newroot loose ro || error "cannot mount the host root (9p tag hostroot)"
R=/newroot
mount -t proc proc $R/proc || error "mount proc"
mount -t sysfs sysfs $R/sys || error "mount sysfs"
mount -t devtmpfs devtmpfs $R/dev || error "mount devtmpfs"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
for d in /tmp /var/tmp; do
	mount -t tmpfs -o mode=1777 tmpfs $R$d || error "mount tmpfs on $d"
done
mount -t tmpfs -o mode=755 tmpfs $R/run || error "mount tmpfs on /run"
mkdir -p $R/run/busmap-nested
mount -o bind /ctl $R/run/busmap-nested || error "bind the control share"

# Read-write shares: one "TAG<TAB>PATH" per line, parents before children.
TABC=$(printf '\t')
while IFS="$TABC" read -r tag path; do
	[ -n "$tag" ] || continue
	mkdir -p "$R$path" 2>/dev/null
	mount9p "$tag" "$R$path" mmap || error "cannot mount share $tag at $path"
	say "shared read-write: $path"
done </ctl/shares

hostname busmap-nested
ip link set lo up 2>/dev/null

# The command's stdout/stderr go to virtio-serial ports (not ttys: no
# newline translation, and the console stays for these lines).
out=
err=
i=0
while [ $i -lt 100 ]; do
	for p in /sys/class/virtio-ports/*; do
		[ -r "$p/name" ] || continue
		case "$(cat "$p/name")" in
		busmap.stdout) out=/dev/${p##*/} ;;
		busmap.stderr) err=/dev/${p##*/} ;;
		esac
	done
	[ -n "$out" ] && [ -n "$err" ] && [ -c "$out" ] && [ -c "$err" ] && break
	sleep 0.05
	i=$((i + 1))
done
[ -n "$out" ] && [ -n "$err" ] || error "virtio-serial ports busmap.stdout/busmap.stderr did not appear"

if ! load_group kvm; then
	skip "cannot load kvm/kvm_amd: $(dmesg | grep -i -E 'kvm|svm' | tail -n 3 | tr '\n' ' ')"
fi
[ -c /dev/kvm ] || skip "kvm_amd loaded but there is no /dev/kvm"
say "kvm_amd: npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null)" \
	"nested=$(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null)"

read -r up _ </proc/uptime
echo "$TAG start uptime=$up"
chroot $R /bin/bash /run/busmap-nested/cmd.sh >"$out" 2>"$err"
status=$?
read -r up _ </proc/uptime
say "command finished at uptime=$up"
finish $status
