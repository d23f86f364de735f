#!/bin/bash
# Prepare the cache directory for run.sh: a Debian kernel, the few modules the
# nested guest needs (virtio-pci, 9p over virtio, virtio-serial, kvm_amd) and
# an initramfs made of Debian's static busybox plus our init.sh.
#
# usage: prepare.sh [--update] DIR
#
# Idempotent: a second run with everything in place downloads nothing and
# rebuilds nothing.  The kernel package is chosen once (what the Debian
# metapackage linux-image-amd64 depends on) and then kept; --update chooses
# again, and NESTED_KERNEL_PKG=linux-image-X-amd64 forces a package.
# Everything comes from the configured Debian archive through apt-get; the
# kernel is only unpacked into DIR with dpkg-deb, never installed.
#
# Exit status: 0 when DIR is ready, 1 on any failure (reason on stderr).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "prepare.sh: error: $*" >&2; exit 1; }
note() { echo "prepare.sh: $*" >&2; }

update=0
dir=
while [ $# -gt 0 ]; do
	case "$1" in
	--update) update=1 ;;
	-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) [ -z "$dir" ] || die "only one DIR"; dir=$1 ;;
	esac
	shift
done
[ -n "$dir" ] || die "usage: prepare.sh [--update] DIR"

for tool in apt-get apt-cache dpkg-deb dpkg-query cpio sha256sum; do
	command -v "$tool" >/dev/null || die "$tool is missing (this needs a Debian host)"
done

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# One preparer at a time per cache directory.
if command -v flock >/dev/null; then
	exec 9>"$dir/.lock"
	flock 9
fi

# Modules the guest loads, by group: "base" must load or the run is an error,
# "kvm" failing means the run is skipped.  Dependencies are added below.
base_modules="virtio_pci virtio_console 9pnet_virtio 9p"
kvm_modules="kvm_amd"

# apt-get download PKG into DEST.  As root, apt drops to the _apt user, who
# must be able to write where it downloads: use a fresh directory in /tmp
# (DIR may be under /root) and move the .deb afterwards.
apt_download() { # DEST PKG
	local dl rc=0
	dl=$(mktemp -d "${TMPDIR:-/tmp}/busmap-nested-apt.XXXXXX")
	chmod 755 "$dl"
	if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
	(cd "$dl" && apt-get download "$2" >&2) || rc=$?
	[ "$rc" != 0 ] || mv "$dl"/*.deb "$1"/ || rc=$?
	rm -rf "$dl"
	return "$rc"
}

# ---- busybox (static) ---------------------------------------------------
# The installed busybox-static package if there is one, else the package
# unpacked into the cache.
busybox=
if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
	for f in $(dpkg-query -L busybox-static); do
		case "$f" in */bin/busybox) [ -f "$f" ] && busybox=$f ;; esac
	done
fi
if [ -z "$busybox" ]; then
	if [ ! -x "$dir/busybox/bin/busybox" ]; then
		note "fetching busybox-static from the Debian archive"
		work=$(mktemp -d "$dir/.work.XXXXXX")
		apt_download "$work" busybox-static || die "apt-get download busybox-static failed"
		dpkg-deb -x "$work"/busybox-static_*.deb "$work/x"
		rm -rf "$dir/busybox"
		mkdir -p "$dir/busybox"
		cp -a "$work/x/bin" "$dir/busybox/"
		rm -rf "$work"
	fi
	busybox=$dir/busybox/bin/busybox
fi
[ -x "$busybox" ] || die "no busybox binary at $busybox"

# ---- kernel package -----------------------------------------------------
resolve_kernel() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n 1
}

pkg=${NESTED_KERNEL_PKG:-}
if [ -z "$pkg" ] && [ "$update" = 0 ] && [ -s "$dir/kernel/package" ]; then
	read -r pkg _ <"$dir/kernel/package"
fi
if [ -z "$pkg" ]; then
	pkg=$(resolve_kernel)
	if [ -z "$pkg" ] || [ "$update" = 1 ]; then
		if [ "$(id -u)" = 0 ]; then
			note "apt-get update"
			apt-get update -qq >&2 || die "apt-get update failed"
			pkg=$(resolve_kernel)
		fi
	fi
	[ -n "$pkg" ] || die "cannot find which package linux-image-amd64 depends on (apt-cache depends linux-image-amd64)"
fi
case "$pkg" in
linux-image-*-amd64) ;;
*) die "unexpected kernel package name '$pkg'" ;;
esac

# ---- kernel + modules ---------------------------------------------------
kernel_ready() {
	[ -s "$dir/kernel/package" ] && [ -s "$dir/kernel/vmlinuz" ] &&
		[ -s "$dir/kernel/load.list" ] &&
		[ "$(cut -d' ' -f1 "$dir/kernel/package")" = "$pkg" ]
}

# module file name (kvm-amd.ko) -> module name (kvm_amd)
modname() { local b=${1##*/}; b=${b%%.ko*}; echo "${b//-/_}"; }

if ! kernel_ready; then
	work=$(mktemp -d "$dir/.work.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	note "downloading $pkg"
	if ! apt_download "$work" "$pkg"; then
		if [ "$(id -u)" = 0 ]; then
			note "apt-get update, then retrying"
			apt-get update -qq >&2 || die "apt-get update failed"
			apt_download "$work" "$pkg" || die "apt-get download $pkg failed"
		else
			die "apt-get download $pkg failed (run 'apt-get update' as root?)"
		fi
	fi
	deb=$(ls "$work"/"$pkg"_*.deb)
	version=$(dpkg-deb -f "$deb" Version)
	note "unpacking $pkg $version"
	dpkg-deb -x "$deb" "$work/x"
	kver=${pkg#linux-image-}
	mdir=$work/x/lib/modules/$kver
	[ -f "$work/x/boot/vmlinuz-$kver" ] || die "$deb has no boot/vmlinuz-$kver"
	[ -d "$mdir" ] || die "$deb has no lib/modules/$kver"

	# Dependencies: busybox depmod writes modules.dep into the unpacked tree.
	"$busybox" depmod -b "$work/x" "$kver" || die "depmod failed"

	declare -A path_of deps_of done_mod
	while IFS= read -r line; do
		key=${line%%:*}
		name=$(modname "$key")
		path_of[$name]=$key
		deps_of[$name]=${line#*:}
	done <"$mdir/modules.dep"
	builtin_names=" "
	while IFS= read -r line; do
		builtin_names+="$(modname "$line") "
	done <"$mdir/modules.builtin"

	load=()
	visit() { # NAME GROUP: append NAME's dependencies, then NAME, to load
		local name=$1 group=$2 d
		[ -z "${done_mod[$name]:-}" ] || return 0
		done_mod[$name]=1
		if [ -z "${path_of[$name]:-}" ]; then
			case "$builtin_names" in
			*" $name "*) return 0 ;;
			*) die "module $name is neither built into $kver nor shipped as a module" ;;
			esac
		fi
		for d in ${deps_of[$name]}; do visit "$(modname "$d")" "$group"; done
		load+=("$group ${path_of[$name]}")
	}
	for m in $base_modules; do visit "$m" base; done
	for m in $kvm_modules; do visit "$m" kvm; done

	rm -rf "$work/kernel"
	mkdir -p "$work/kernel/modules"
	cp "$work/x/boot/vmlinuz-$kver" "$work/kernel/vmlinuz"
	cp "$work/x/boot/config-$kver" "$work/kernel/config"
	: >"$work/kernel/load.list"
	for entry in "${load[@]}"; do
		group=${entry%% *}
		rel=${entry#* }
		src=$mdir/$rel
		base=${rel##*/}
		case "$base" in
		*.ko) cp "$src" "$work/kernel/modules/$base" ;;
		*.ko.xz) base=${base%.xz}; xz -dc "$src" >"$work/kernel/modules/$base" ;;
		*.ko.zst) base=${base%.zst}; zstd -qdc "$src" >"$work/kernel/modules/$base" ;;
		*.ko.gz) base=${base%.gz}; gzip -dc "$src" >"$work/kernel/modules/$base" ;;
		*) die "unexpected module file $rel" ;;
		esac
		echo "$group $base" >>"$work/kernel/load.list"
	done
	echo "$pkg $version $kver" >"$work/kernel/package"
	rm -rf "$dir/kernel"
	mv "$work/kernel" "$dir/kernel"
	rm -rf "$work"
	trap - EXIT
	note "kernel $kver ($pkg $version) ready; modules: $(cut -d' ' -f2 "$dir/kernel/load.list" | tr '\n' ' ')"
fi

# ---- uncompressed kernel for PVH boot -------------------------------------
# Under TCG, the bzImage's own decompressor takes ~3 s.  A kernel built with
# CONFIG_PVH can instead be booted by QEMU from the plain ELF vmlinux, so
# unpack that once here (first compressed stream inside the bzImage that
# decompresses to an ELF file).  run.sh falls back to vmlinuz without it.
extract_vmlinux() { # BZIMAGE OUT
	local magic tool off
	for magic in xz zstd gzip; do
		case "$magic" in
		xz) pat=$'\xfd7zXZ\x00'; tool="xz -dc --single-stream" ;;
		zstd) pat=$'\x28\xb5\x2f\xfd'; tool="zstd -qdc" ;;
		gzip) pat=$'\x1f\x8b\x08'; tool="gzip -dc" ;;
		esac
		command -v "${tool%% *}" >/dev/null || continue
		for off in $(LC_ALL=C grep -obUaF "$pat" "$1" 2>/dev/null | cut -d: -f1 | head -n 3); do
			tail -c +$((off + 1)) "$1" | $tool >"$2.tmp" 2>/dev/null || true
			if [ "$(head -c 4 "$2.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
				mv "$2.tmp" "$2"
				return 0
			fi
		done
	done
	rm -f "$2.tmp"
	return 1
}
if [ ! -s "$dir/kernel/vmlinux" ] && grep -q '^CONFIG_PVH=y' "$dir/kernel/config"; then
	if extract_vmlinux "$dir/kernel/vmlinuz" "$dir/kernel/vmlinux"; then
		note "unpacked vmlinux for PVH boot"
	else
		note "warning: could not unpack vmlinux from vmlinuz; run.sh will boot the slower bzImage"
	fi
fi

# ---- initramfs ----------------------------------------------------------
stamp=$( {
	sha256sum "$here/init.sh" "$busybox" "$dir/kernel/load.list" "$dir/kernel/package"
	echo "layout 1"
} | sha256sum | cut -d' ' -f1)
if [ -s "$dir/initramfs.cpio" ] && [ "$(cat "$dir/initramfs.stamp" 2>/dev/null)" = "$stamp" ]; then
	note "$dir is up to date ($(cut -d' ' -f1,2 "$dir/kernel/package"))"
	exit 0
fi

work=$(mktemp -d "$dir/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,ctl,newroot,lib/modules}
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init" "$root/bin/busybox"
cp "$dir"/kernel/modules/*.ko "$root/lib/modules/"
cp "$dir/kernel/load.list" "$root/lib/modules/load.list"
# The kernel opens /dev/console before running /init; init.sh copes without
# it (it mounts devtmpfs first), but the node avoids a boot warning.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc -R 0:0 --quiet) >"$work/initramfs.cpio"
mv "$work/initramfs.cpio" "$dir/initramfs.cpio"
echo "$stamp" >"$dir/initramfs.stamp"
note "initramfs built ($(du -k "$dir/initramfs.cpio" | cut -f1) KiB); $dir is ready"
