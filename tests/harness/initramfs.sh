#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Build the base initramfs of dom0: static busybox, the harness init and the
# Xen kernel modules.  Programs to run are added per boot by boot.sh as a
# second cpio archive appended to this one.
# Usage: initramfs.sh BUILD_DIR HARNESS_DIR
set -euo pipefail

BUILD=$1
HARNESS=$2
OUT="$BUILD/images/initrd-base.cpio.gz"
ROOT="$BUILD/initramfs-root"

[ -f "$BUILD/dom0/modules/load-order" ] || { echo "initramfs: dom0 modules missing; run 'make dom0-kernel'" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "initramfs: /bin/busybox missing; run 'make deps'" >&2; exit 1; }

echo "initramfs: building $OUT"
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,dev,proc,sys,tmp,lib/modules,vp2m/bin}
cp /bin/busybox "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"
cp "$HARNESS/initramfs/init" "$ROOT/init"
chmod +x "$ROOT/init"
cp "$BUILD"/dom0/modules/*.ko "$BUILD/dom0/modules/load-order" "$ROOT/lib/modules/"
(cd "$ROOT" && find . | sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
rm -rf "$ROOT"
