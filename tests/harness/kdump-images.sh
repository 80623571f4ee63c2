#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# What the kdump boots need besides the dom0 images (all cached):
#   $BUILD/images/kdump/crash-initrd.gz  the crash kernel's initramfs: static
#                                        busybox, virtio_pci + virtio_blk and
#                                        an init that copies /proc/vmcore to
#                                        the scratch disk (kdump/crash-init)
#   $BUILD/images/kdump/kexec            Debian's kexec-tools binary (built with
#                                        Xen support; it needs libxenctrl, which
#                                        the rootfs dom0 has)
#   $BUILD/images/kdump/vmlinux          the debug vmlinux of the dom0 kernel
#                                        (from linux-image-6.1.0-NN-amd64-dbg,
#                                        about 860 MB, downloaded once into
#                                        $BUILD/dl), for `crash` in dom0 mode
# The crash kernel is the dom0 kernel itself ($BUILD/images/vmlinuz).
# Usage: kdump-images.sh BUILD_DIR
set -euo pipefail

BUILD=$1
HARNESS=$(cd "$(dirname "$0")" && pwd)
DL="$BUILD/dl"
OUT="$BUILD/images/kdump"
WORK="$BUILD/kdump-images"
KEXEC_PKG=kexec-tools
# The crash kernel reaches the scratch disk through virtio-pci.
CRASH_MODULES="virtio_pci virtio_blk"

KDEB=$(ls "$DL"/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | head -n1 || true)
[ -n "$KDEB" ] && [ -f "$BUILD/images/vmlinuz" ] || { echo "kdump-images: dom0 kernel missing; run 'make dom0-kernel'" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "kdump-images: /bin/busybox missing; run 'make deps'" >&2; exit 1; }
mkdir -p "$OUT" "$DL"

# download PKG[=VERSION] GLOB: reuse $DL/GLOB, else apt-get download it.
download() {
    local spec=$1 glob=$2
    ls "$DL"/$glob >/dev/null 2>&1 && return 0
    echo "kdump-images: downloading $spec"
    (cd "$DL" && apt-get download -qq "$spec" 2>&1 | grep -v 'unsandboxed as root' || true)
    ls "$DL"/$glob >/dev/null 2>&1 \
        || { echo "kdump-images: cannot download $spec; run 'apt-get update'" >&2; exit 1; }
}

# ---- The crash initrd ------------------------------------------------------
key=$( { cat "$0" "$HARNESS/kdump/crash-init"; basename "$KDEB"; sha256sum < /bin/busybox; } \
       | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/crash-initrd.gz" ] && [ "$(cat "$OUT/.crash-initrd.key" 2>/dev/null)" = "$key" ]; then
    echo "kdump-images: $OUT/crash-initrd.gz is up to date"
    touch "$OUT/crash-initrd.gz"
else
    rm -rf "$WORK"
    mkdir -p "$WORK/kernel" "$WORK/root"/{bin,dev,proc,sys,lib/modules}
    dpkg-deb --fsys-tarfile "$KDEB" \
        | tar -x -C "$WORK/kernel" --wildcards './lib/modules/*/kernel/drivers/virtio/*' \
              './lib/modules/*/kernel/drivers/block/virtio_blk.ko'
    moddir=$(echo "$WORK/kernel"/lib/modules/*)
    : > "$WORK/root/lib/modules/load-order"
    # add_module NAME: copy NAME.ko after what its "depends=" names.
    add_module() {
        local name=$1 file dep
        grep -qx "$name.ko" "$WORK/root/lib/modules/load-order" && return 0
        file=$(find "$moddir/kernel" -name "$name.ko" | head -n1)
        [ -n "$file" ] || { echo "kdump-images: module $name missing from $(basename "$KDEB")" >&2; exit 1; }
        for dep in $(strings -a "$file" | sed -n 's/^depends=//p' | tr , ' '); do
            add_module "$dep"
        done
        cp "$file" "$WORK/root/lib/modules/$name.ko"
        echo "$name.ko" >> "$WORK/root/lib/modules/load-order"
    }
    for m in $CRASH_MODULES; do add_module "$m"; done
    cp /bin/busybox "$WORK/root/bin/busybox"
    ln -s busybox "$WORK/root/bin/sh"
    install -m 755 "$HARNESS/kdump/crash-init" "$WORK/root/init"
    (cd "$WORK/root" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$OUT/crash-initrd.gz.tmp"
    mv "$OUT/crash-initrd.gz.tmp" "$OUT/crash-initrd.gz"
    echo "$key" > "$OUT/.crash-initrd.key"
    echo "kdump-images: $OUT/crash-initrd.gz ($(du -k "$OUT/crash-initrd.gz" | cut -f1) KiB; modules: $(tr '\n' ' ' < "$WORK/root/lib/modules/load-order"))"
    rm -rf "$WORK"
fi

# ---- kexec-tools ----------------------------------------------------------
download "$KEXEC_PKG" "${KEXEC_PKG}_*.deb"
kexec_deb=$(ls "$DL/${KEXEC_PKG}"_*.deb | sort -V | tail -n1)
if [ ! -x "$OUT/kexec" ] || [ "$(cat "$OUT/.kexec.deb" 2>/dev/null)" != "$(basename "$kexec_deb")" ]; then
    rm -rf "$WORK"
    mkdir -p "$WORK"
    dpkg-deb --fsys-tarfile "$kexec_deb" | tar -x -C "$WORK" ./sbin/kexec
    install -m 755 "$WORK/sbin/kexec" "$OUT/kexec"
    basename "$kexec_deb" > "$OUT/.kexec.deb"
    rm -rf "$WORK"
fi
# Without Xen support kexec would load into dom0's own kernel, not Xen.
readelf -d "$OUT/kexec" | grep -q 'libxenctrl' \
    || { echo "kdump-images: $(basename "$kexec_deb") has no Xen support (no libxenctrl)" >&2; exit 1; }
echo "kdump-images: $OUT/kexec from $(basename "$kexec_deb")"

# ---- The dom0 kernel's debug vmlinux ----------------------------------------
kpkg=$(dpkg-deb -f "$KDEB" Package)
kver=$(dpkg-deb -f "$KDEB" Version)
dbg="$kpkg-dbg"
if [ -f "$OUT/vmlinux" ] && [ "$(cat "$OUT/.vmlinux.pkg" 2>/dev/null)" = "$dbg=$kver" ]; then
    echo "kdump-images: $OUT/vmlinux ($dbg $kver) is up to date"
else
    download "$dbg=$kver" "${dbg}_${kver}_*.deb"
    ddeb=$(ls "$DL/${dbg}_${kver}"_*.deb | head -n1)
    member="./usr/lib/debug/boot/vmlinux-${kpkg#linux-image-}"
    echo "kdump-images: extracting $member from $(basename "$ddeb")"
    rm -rf "$WORK"
    mkdir -p "$WORK"
    dpkg-deb --fsys-tarfile "$ddeb" | tar -x -C "$WORK" "$member"
    mv "$WORK/$member" "$OUT/vmlinux"
    echo "$dbg=$kver" > "$OUT/.vmlinux.pkg"
    rm -rf "$WORK"
    echo "kdump-images: $OUT/vmlinux ($(du -m "$OUT/vmlinux" | cut -f1) MiB)"
fi
