#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Build the Xen toolstack of one of our trees (xl, libxl, libxenguest and the
# libraries below them, xenstored, xenconsoled, xen-init-dom0 and the xenstore
# clients) and install it under /opt/xen-NAME in a staging root that rootfs.sh
# copies into dom0's root file system next to Debian's toolstack.
#   NAME patched   build/xen-patched (the series, with the tools patches)
#   NAME pristine  build/xen-pristine (the control)
# Outputs: $BUILD/toolstack/NAME/root/opt/xen-NAME/{bin,sbin,lib}
#          (binaries with an rpath to their own lib/, so no LD_LIBRARY_PATH)
#          $BUILD/toolstack/NAME.build.log
# Cached and incremental: the tree is mirrored into $BUILD/toolstack/NAME/src
# by content (rsync --checksum, source files only), so a tree that was
# extracted again with the same content rebuilds nothing, and a changed file
# rebuilds only what depends on it.  Nothing runs when neither the sources
# nor this script changed.
# Usage: toolstack.sh BUILD_DIR NAME
set -euo pipefail

BUILD=$(cd "$1" && pwd)
NAME=$2
case "$NAME" in patched|pristine) ;; *) echo "toolstack: NAME must be patched or pristine" >&2; exit 2 ;; esac
TREE="$BUILD/xen-$NAME"
WORK="$BUILD/toolstack/$NAME"
SRC="$WORK/src"
DEST="$WORK/root"
PREFIX="/opt/xen-$NAME"
LOG="$BUILD/toolstack/$NAME.build.log"
JOBS=${JOBS:-2}

[ -f "$TREE/.extracted" ] || { echo "toolstack: $TREE missing; run 'make xen-trees'" >&2; exit 1; }
for t in rsync gcc make python3 iasl pkg-config; do
    command -v "$t" >/dev/null || { echo "toolstack: $t missing; run 'make deps'" >&2; exit 1; }
done

# The smallest configuration that gives a working xl for PV guests: no
# hypervisor, stub domains, docs, firmware, device models, OCaml, Go, Python
# bindings' users or monitors.  Run-time folders are Debian's (/etc/xen,
# /var/lib/xen, /var/run/xen), so every toolstack on the disk sees the same
# domains.
CONFIGURE=(--prefix="$PREFIX" --sysconfdir=/etc --localstatedir=/var --enable-rpath
    --disable-xen --disable-stubdom --disable-docs --disable-monitors --disable-ocamltools
    --disable-xsmpolicy --disable-golang --disable-pvshim --disable-seabios --disable-rombios
    --disable-ipxe --disable-qemu-traditional --with-system-qemu=/bin/false
    --with-xenstored=xenstored)
# Sub-folders of tools/, in build order.
SUBDIRS="include libs xenstore console helpers xl"
# The release ships libxlutil's parsers generated; with bison and flex around,
# make would generate them again (different text), the next mirror would put
# the shipped ones back and rebuild libxlutil: use the shipped ones.
MAKEVARS=(BISON= FLEX=)

# ---- Mirror the tree's sources ---------------------------------------------
# xen-tree.sh stamps .extracted after extracting and patching, so every file
# newer than it is an output of the hypervisor build, not a source.
mkdir -p "$SRC"
(cd "$TREE" && find . -type f ! -newer .extracted ! -name .extracted -printf '%P\n') \
    | sort > "$WORK/files"
changed=$(rsync -rlp --checksum --itemize-changes --files-from="$WORK/files" "$TREE/" "$SRC/" | wc -l)
key=$( { cat "$0"; printf '%s\n' "${CONFIGURE[@]}" $SUBDIRS; } | sha256sum | cut -d' ' -f1)
conf_key=$(printf '%s\n' "${CONFIGURE[@]}" | sha256sum | cut -d' ' -f1)
if [ "$changed" = 0 ] && [ "$(cat "$WORK/.key" 2>/dev/null)" = "$key" ] && [ -x "$DEST$PREFIX/sbin/xl" ]; then
    echo "toolstack: $NAME is up to date ($DEST$PREFIX)"
    exit 0
fi
start=$(date +%s)
echo "toolstack: building $NAME ($changed files changed; log $LOG)"
rm -f "$WORK/.key"
{
    cd "$SRC"
    if [ "$(cat .configured 2>/dev/null)" != "$conf_key" ] || [ ! -f config/Tools.mk ]; then
        ./configure "${CONFIGURE[@]}"
        echo "$conf_key" > .configured
    fi
    for d in $SUBDIRS; do
        make -C tools -j"$JOBS" "${MAKEVARS[@]}" "subdir-all-$d"
    done
    rm -rf "$DEST"
    for d in $SUBDIRS; do
        [ "$d" = include ] || make -C tools "${MAKEVARS[@]}" "subdir-install-$d" DESTDIR="$DEST"
    done
} > "$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; echo "toolstack: building $NAME failed; full log in $LOG" >&2; exit 1; }

# Only what runs in dom0: no headers, static or development files; stripped.
rm -rf "$DEST$PREFIX/include" "$DEST$PREFIX/share" "$DEST$PREFIX/lib/pkgconfig" "$DEST/etc" "$DEST/var"
find "$DEST$PREFIX/lib" -name '*.a' -delete
find "$DEST$PREFIX" -type f | while read -r f; do
    [ "$(head -c4 "$f" | tr -d '\0' | tail -c3)" = ELF ] && strip --strip-unneeded "$f"
done
for f in sbin/xl sbin/xenstored sbin/xenconsoled bin/xenstore-read lib/xen/bin/libxl-save-helper \
         lib/xen/bin/xen-init-dom0; do
    [ -x "$DEST$PREFIX/$f" ] || { echo "toolstack: $NAME: $PREFIX/$f was not installed (see $LOG)" >&2; exit 1; }
done
# What it was built from, for the tests' reports (/opt/xen-NAME/.source).
srcsum=$(cd "$SRC" && xargs -d '\n' sha256sum < "$WORK/files" | sha256sum | cut -c1-16)
echo "build/xen-$NAME, sources $srcsum" > "$DEST$PREFIX/.source"
echo "$key" > "$WORK/.key"
echo "toolstack: $NAME in $DEST$PREFIX ($(du -sk "$DEST" | cut -f1) KiB), $(( $(date +%s) - start ))s"
