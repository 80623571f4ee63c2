#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Build the dom0 root file system with three Xen toolstacks and a PV domU to
# create with `xl create`:
#   debian    Debian's binary packages (the same 4.17.5+72-g01140da4e8-1 as
#             the pinned hypervisor), in /usr: what a user has today
#   patched   ours, built from build/xen-patched (toolstack.sh), /opt/xen-patched
#   pristine  ours, built from build/xen-pristine (the control), /opt/xen-pristine
# dom0's init starts the daemons of the one named by vp2m.toolstack= on dom0's
# command line (default debian); vp2m-toolstack NAME CMD runs CMD with another
# one's xl.  Outputs:
#   $BUILD/images/rootfs.ext4            dom0's root file system (attach with
#                                        boot.sh --disk; QEMU uses it read-only
#                                        through a snapshot)
#   $BUILD/images/initrd-rootfs.cpio.gz  the first stage: busybox, the virtio
#                                        block and ext4 modules and an init that
#                                        mounts the disk and switches root to it
# The Debian packages are unpacked with dpkg-deb (no maintainer scripts run):
# the toolstack needs only its binaries, their libraries and a few folders,
# which tests/harness/rootfs/init sets up at boot.  The disk holds the domU
# too: Debian's dom0 kernel again and a busybox initramfs (/vp2m/domu).
# Cached: nothing is rebuilt unless this script, tests/harness/rootfs/*, the
# kernel, busybox or one of our toolstacks changed.
# Usage: rootfs.sh BUILD_DIR
set -euo pipefail

BUILD=$1
HARNESS=$(cd "$(dirname "$0")" && pwd)
XEN_VERSION=4.17.5+72-g01140da4e8-1
# Every Xen package pinned to the hypervisor's version (bookworm-security's
# newer candidate must not slip in).
XEN_PKGS="xen-utils-4.17 xen-utils-common xenstore-utils libxenmisc4.17 \
libxenstore4 libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 \
libxentoollog1 libxentoolcore1 libxendevicemodel1 libxenhypfs1"
# What the toolstack's binaries link against (checked below from their
# DT_NEEDED entries).  Their Debian dependencies on python3 (pygrub), udev and
# ucf (hotplug and packaging) are not needed to create a PV domU and are left
# out to keep the image small.
LIB_PKGS="libc6 libgcc-s1 libyajl2 libuuid1 liblzma5 libzstd1 zlib1g \
libtinfo6 libncurses6 libncursesw6 libbz2-1.0"
# Our toolstacks (toolstack.sh), each a staging root holding /opt/xen-NAME.
OURS="patched pristine"
# Modules: first stage (disk and file system), dom0 (what xenstored,
# xenconsoled and xl use).
STAGE1_MODULES="virtio_pci virtio_blk crc32c_generic ext4"
DOM0_MODULES="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs"

IMAGES="$BUILD/images"
DL="$BUILD/dl/rootfs"
WORK="$BUILD/rootfs"
OUT="$IMAGES/rootfs.ext4"
OUT1="$IMAGES/initrd-rootfs.cpio.gz"

KDEB=$(ls "$BUILD"/dl/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | head -n1 || true)
[ -n "$KDEB" ] && [ -f "$IMAGES/vmlinuz" ] || { echo "rootfs: dom0 kernel missing; run 'make dom0-kernel'" >&2; exit 1; }
for t in $OURS; do
    [ -x "$BUILD/toolstack/$t/root/opt/xen-$t/sbin/xl" ] \
        || { echo "rootfs: the $t toolstack is not built; run 'make toolstack'" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "rootfs: /bin/busybox missing; run 'make deps'" >&2; exit 1; }
for t in mkfs.ext4 readelf cpio; do
    command -v "$t" >/dev/null || { echo "rootfs: $t missing; run 'make deps'" >&2; exit 1; }
done

key=$( { cat "$0"; find "$HARNESS/rootfs" -type f | sort | xargs cat; basename "$KDEB";
         sha256sum < "$IMAGES/vmlinuz"; sha256sum < /bin/busybox;
         for t in $OURS; do (cd "$BUILD/toolstack/$t/root" && find . -type f | sort | xargs sha256sum); done;
       } | sha256sum | cut -d' ' -f1)
if [ -f "$OUT" ] && [ -f "$OUT1" ] && [ "$(cat "$WORK/.key" 2>/dev/null)" = "$key" ]; then
    echo "rootfs: $OUT is up to date"
    touch "$OUT" "$OUT1"
    exit 0
fi
start=$(date +%s)
echo "rootfs: building $OUT"
rm -rf "$WORK"
mkdir -p "$WORK" "$DL" "$IMAGES"

# ---- Packages ----------------------------------------------------------------
fetch() {   # fetch NAME [VERSION]: reuse a downloaded .deb, else apt-get download
    local name=$1 ver=${2:-}
    if [ -n "$ver" ]; then
        ls "$DL/${name}_${ver}_"*.deb >/dev/null 2>&1 && return 0
        (cd "$DL" && apt-get download -qq "$name=$ver" 2>&1 | grep -v 'unsandboxed as root' || true)
        ls "$DL/${name}_${ver}_"*.deb >/dev/null 2>&1
    else
        ls "$DL/${name}_"*.deb >/dev/null 2>&1 && return 0
        (cd "$DL" && apt-get download -qq "$name" 2>&1 | grep -v 'unsandboxed as root' || true)
        ls "$DL/${name}_"*.deb >/dev/null 2>&1
    fi || { echo "rootfs: cannot download $name${ver:+=$ver}; run 'apt-get update'" >&2; exit 1; }
}
for p in $XEN_PKGS; do fetch "$p" "$XEN_VERSION"; done
for p in $LIB_PKGS; do fetch "$p"; done

ROOT="$WORK/root"
mkdir -p "$ROOT"
: > "$WORK/packages"
for p in $XEN_PKGS $LIB_PKGS; do
    deb=$(ls "$DL/${p}_"*.deb | sort -V | tail -n1)
    case " $XEN_PKGS " in *" $p "*) deb=$(ls "$DL/${p}_${XEN_VERSION}_"*.deb) ;; esac
    dpkg-deb -x "$deb" "$ROOT"
    echo "$(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version)" >> "$WORK/packages"
done
# Not needed to run the toolstack: documentation, locales, character set
# converters, pygrub's python modules, HVM firmware.
rm -rf "$ROOT"/usr/share/{doc,man,info,locale,lintian,bash-completion} \
       "$ROOT"/usr/lib/x86_64-linux-gnu/gconv "$ROOT"/usr/lib/xen-4.17/lib/python \
       "$ROOT"/usr/lib/xen-4.17/boot
# Ours, next to Debian's.
for t in $OURS; do
    cp -a "$BUILD/toolstack/$t/root/." "$ROOT/"
    echo "xen-$t=$(cat "$BUILD/toolstack/$t/root/opt/xen-$t/.source" 2>/dev/null || echo "build/xen-$t")" >> "$WORK/packages"
done

# Every ELF of the toolstack must find its libraries in the image.
# Ours find their own libraries through their rpath (/opt/xen-NAME/lib).
libdirs="$ROOT/lib/x86_64-linux-gnu $ROOT/usr/lib/x86_64-linux-gnu $ROOT/usr/lib/xen-4.17/lib/x86_64-linux-gnu"
missing=""
while read -r f; do
    dirs=$libdirs
    case "$f" in "$ROOT"/opt/xen-*) o=${f#"$ROOT"/opt/}; dirs="$ROOT/opt/${o%%/*}/lib $libdirs" ;; esac
    for lib in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
        found=0
        for d in $dirs; do [ -e "$d/$lib" ] && found=1 && break; done
        [ "$found" = 1 ] || missing="$missing ${f#"$ROOT"}:$lib"
    done
done < <(find "$ROOT/usr/lib/xen-4.17/bin" "$ROOT/usr/bin" "$ROOT/usr/sbin" \
              "$ROOT/usr/lib/x86_64-linux-gnu" \
              $(for t in $OURS; do echo "$ROOT/opt/xen-$t/bin $ROOT/opt/xen-$t/sbin $ROOT/opt/xen-$t/lib $ROOT/opt/xen-$t/lib/xen/bin"; done) \
              -maxdepth 1 -type f \
         | while read -r f; do [ "$(head -c4 "$f" | tr -d '\0' | tail -c3)" = ELF ] && echo "$f"; done)
[ -z "$missing" ] || { echo "rootfs: libraries missing from the image:$missing" >&2; exit 1; }

# ---- Kernel modules -----------------------------------------------------------
KROOT="$WORK/kernel"
mkdir -p "$KROOT"
dpkg-deb --fsys-tarfile "$KDEB" | tar -x -C "$KROOT" --wildcards './lib/modules/*'
moddir=$(echo "$KROOT"/lib/modules/*)
# add_module DEST NAME: copy NAME.ko and (first) what its "depends=" names.
add_module() {
    local dest=$1 name=$2 file dep
    grep -qx "$name.ko" "$dest/load-order" 2>/dev/null && return 0
    file=$(find "$moddir/kernel" -name "$name.ko" -o -name "$(echo "$name" | tr _ -).ko" | head -n1)
    [ -n "$file" ] || { echo "rootfs: module $name missing from $(basename "$KDEB")" >&2; exit 1; }
    for dep in $(strings -a "$file" | sed -n 's/^depends=//p' | tr , ' '); do
        add_module "$dest" "$dep"
    done
    cp "$file" "$dest/$name.ko"
    echo "$name.ko" >> "$dest/load-order"
}
mkdir -p "$ROOT/lib/modules" "$WORK/stage1/lib/modules"
: > "$ROOT/lib/modules/load-order"
: > "$WORK/stage1/lib/modules/load-order"
for m in $DOM0_MODULES; do add_module "$ROOT/lib/modules" "$m"; done
for m in $STAGE1_MODULES; do add_module "$WORK/stage1/lib/modules" "$m"; done
rm -rf "$KROOT"

# ---- dom0's root: busybox, init, folders ---------------------------------------
mkdir -p "$ROOT"/{bin,sbin,dev,proc,sys,run,tmp,root,etc,var/lib/xen,var/log/xen,vp2m/bin,vp2m/domu,usr/local/sbin}
chmod 1777 "$ROOT/tmp"
ln -sfn /run "$ROOT/var/run"
cp /bin/busybox "$ROOT/bin/busybox"
for a in $(/bin/busybox --list); do
    [ -e "$ROOT/bin/$a" ] || [ -e "$ROOT/sbin/$a" ] || [ -e "$ROOT/usr/bin/$a" ] \
        || [ -e "$ROOT/usr/sbin/$a" ] || ln -s busybox "$ROOT/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\n' > "$ROOT/etc/group"
echo vp2m-dom0 > "$ROOT/etc/hostname"
: > "$ROOT/etc/fstab"
install -m 755 "$HARNESS/rootfs/init" "$ROOT/sbin/init"
install -m 755 "$HARNESS/rootfs/domu-start" "$ROOT/usr/local/sbin/vp2m-domu-start"
install -m 755 "$HARNESS/rootfs/domu-check" "$ROOT/usr/local/sbin/vp2m-domu-check"
install -m 755 "$HARNESS/rootfs/toolstack" "$ROOT/usr/local/sbin/vp2m-toolstack"

cp "$WORK/packages" "$ROOT/vp2m/packages"

# ---- The domU: the same kernel, a busybox initramfs, the xl config --------------
DR="$WORK/domu-root"
mkdir -p "$DR"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$DR/bin/busybox"
ln -s busybox "$DR/bin/sh"
install -m 755 "$HARNESS/rootfs/domu-init" "$DR/init"
(cd "$DR" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$ROOT/vp2m/domu/initrd.gz"
cp "$IMAGES/vmlinuz" "$ROOT/vp2m/domu/vmlinuz"
cp "$HARNESS/rootfs/domu.cfg" "$ROOT/vp2m/domu/domu.cfg"

# ---- The image ------------------------------------------------------------------
used_kb=$(du -sk "$ROOT" | cut -f1)
size_mb=$(( used_kb * 5 / 4 / 1024 + 24 ))
rm -f "$OUT.tmp"
truncate -s "${size_mb}M" "$OUT.tmp"
mkfs.ext4 -q -F -L vp2m-root -m 0 -d "$ROOT" "$OUT.tmp" "${size_mb}M"
mv "$OUT.tmp" "$OUT"

# ---- First stage: mount the disk, switch root ---------------------------------
S1="$WORK/stage1"
mkdir -p "$S1"/{bin,dev,proc,sys,newroot,vp2m/bin}
cp /bin/busybox "$S1/bin/busybox"
ln -s busybox "$S1/bin/sh"
install -m 755 "$HARNESS/rootfs/stage1-init" "$S1/init"
(cd "$S1" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$OUT1.tmp"
mv "$OUT1.tmp" "$OUT1"

rm -rf "$ROOT" "$DR" "$S1"
echo "$key" > "$WORK/.key"
echo "rootfs: $OUT ($size_mb MiB, $((used_kb / 1024)) MiB used), $OUT1, $(wc -l < "$WORK/packages") packages, $(( $(date +%s) - start ))s"
