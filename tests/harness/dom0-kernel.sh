#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Fetch Debian's dom0 kernel (the exact linux-image-6.1.0-NN-amd64 that the
# linux-image-amd64 metapackage depends on, never a glob) and extract the
# kernel image and the Xen modules dom0 needs.
#   $BUILD/images/vmlinuz           the dom0 kernel
#   $BUILD/dom0/modules/*.ko        xen-privcmd, xenfs and what they depend on
# Usage: dom0-kernel.sh BUILD_DIR
set -euo pipefail

BUILD=$1
DL="$BUILD/dl"
mkdir -p "$DL" "$BUILD/images"

deb=$(ls "$DL"/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
          | sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)
    [ -n "$pkg" ] || { echo "dom0-kernel: cannot resolve linux-image-amd64's kernel; run 'apt-get update'" >&2; exit 1; }
    echo "dom0-kernel: downloading $pkg"
    (cd "$DL" && apt-get download -qq "$pkg")
    deb=$(ls "$DL"/"$pkg"_*.deb | head -n1)
fi

stamp="$BUILD/dom0/.extracted-$(basename "$deb")"
if [ ! -f "$stamp" ]; then
    echo "dom0-kernel: extracting $(basename "$deb")"
    rm -rf "$BUILD/dom0"
    mkdir -p "$BUILD/dom0/root" "$BUILD/dom0/modules"
    dpkg-deb -x "$deb" "$BUILD/dom0/root"
    cp "$BUILD/dom0/root"/boot/vmlinuz-* "$BUILD/images/vmlinuz"
    moddir=$(echo "$BUILD/dom0/root"/lib/modules/*)
    # The package carries no modules.dep (depmod makes it on install), so
    # read each module's "depends=" from its .modinfo section and load the
    # dependencies first.
    : > "$BUILD/dom0/modules/load-order"
    add_module() {
        local name=$1 file dep
        grep -qx "$name.ko" "$BUILD/dom0/modules/load-order" && return 0
        file=$(find "$moddir/kernel" -name "$name.ko" -o -name "$(echo "$name" | tr _ -).ko" | head -n1)
        [ -n "$file" ] || { echo "dom0-kernel: module $name missing from $(basename "$deb")" >&2; exit 1; }
        for dep in $(strings -a "$file" | sed -n 's/^depends=//p' | tr , ' '); do
            add_module "$dep"
        done
        cp "$file" "$BUILD/dom0/modules/$name.ko"
        echo "$name.ko" >> "$BUILD/dom0/modules/load-order"
    }
    add_module xen-privcmd
    add_module xenfs
    rm -rf "$BUILD/dom0/root"
    touch "$stamp"
fi
echo "dom0-kernel: $BUILD/images/vmlinuz, modules: $(tr '\n' ' ' < "$BUILD/dom0/modules/load-order")"
