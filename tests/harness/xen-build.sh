#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Build the hypervisor of one Xen tree and copy the multiboot image to a
# stable path (and xen-syms to IMAGE.syms).  Xen's own make is incremental,
# so a warm run is quick.
# Configuration: Xen's defconfig plus the options of xen.config beside this
# script (CONFIG_PV32=y); a tree configured before an option was added gets
# it through olddefconfig, and the build stays incremental.
# Usage: xen-build.sh TREE IMAGE
set -euo pipefail

TREE=$1
IMAGE=$2
LOG="$(dirname "$IMAGE")/$(basename "$IMAGE").build.log"
FRAGMENT="$(dirname "$0")/xen.config"

[ -f "$TREE/.extracted" ] || { echo "xen-build: $TREE is not fetched yet; run 'make xen-trees'" >&2; exit 1; }
mkdir -p "$(dirname "$IMAGE")"
echo "xen-build: building $TREE/xen (log: $LOG)"
{
    [ -f "$TREE/xen/.config" ] || make -C "$TREE/xen" defconfig
    # Every CONFIG_X=y of the fragment that .config lacks: append, resolve.
    want=$(grep -E '^CONFIG_[A-Za-z0-9_]+=' "$FRAGMENT")
    if echo "$want" | grep -qvxF -f "$TREE/xen/.config"; then
        echo "$want" >> "$TREE/xen/.config"
        make -C "$TREE/xen" olddefconfig
    fi
    echo "$want" | while read -r opt; do
        grep -qxF "$opt" "$TREE/xen/.config" || { echo "xen-build: $opt did not stick in $TREE/xen/.config"; exit 1; }
    done
    make -C "$TREE/xen" -j"$(nproc)"
} > "$LOG" 2>&1 || { tail -30 "$LOG" >&2; echo "xen-build: building $TREE failed; full log in $LOG" >&2; exit 1; }
# The symbols beside the image: crash and makedumpfile read Xen's dumps with them.
cp "$TREE/xen/xen-syms" "$IMAGE.syms"
cp "$TREE/xen/xen" "$IMAGE.tmp"
mv "$IMAGE.tmp" "$IMAGE"
echo "xen-build: $IMAGE"
