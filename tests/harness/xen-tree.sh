#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Fetch the pinned Xen source package and lay out the pristine and the
# patched tree side by side:
#   $BUILD/xen-pristine  upstream tree of the orig tarball, untouched
#   $BUILD/xen-patched   the same tree with xen-patches/series applied
# Usage: xen-tree.sh BUILD_DIR PATCH_DIR
set -euo pipefail

BUILD=$1
PATCHES=$2
VERSION=4.17.5+72-g01140da4e8-1
ORIG=xen_4.17.5+72-g01140da4e8.orig.tar.xz
SHA256=53922f4d0a02c577f2ea9d63f65989cd88715779eebeed879ca1d314103ee06e

mkdir -p "$BUILD/dl"
if [ ! -f "$BUILD/dl/$ORIG" ]; then
    echo "xen-tree: fetching Debian source package xen=$VERSION"
    (cd "$BUILD/dl" && apt-get source --download-only -qq "xen=$VERSION") \
        || { echo "xen-tree: apt-get source failed; is the bookworm deb-src entry present? run 'make deps'" >&2; exit 1; }
fi
echo "$SHA256  $BUILD/dl/$ORIG" | sha256sum --quiet -c - \
    || { echo "xen-tree: $ORIG does not match the pinned sha256; delete $BUILD/dl and retry" >&2; exit 1; }

extract() {
    local dest=$1
    rm -rf "$dest.tmp" "$dest"
    mkdir -p "$dest.tmp"
    tar -xJf "$BUILD/dl/$ORIG" -C "$dest.tmp" --strip-components=1
    mv "$dest.tmp" "$dest"
}

if [ ! -f "$BUILD/xen-pristine/.extracted" ]; then
    echo "xen-tree: extracting pristine tree to $BUILD/xen-pristine"
    extract "$BUILD/xen-pristine"
    touch "$BUILD/xen-pristine/.extracted"
fi

echo "xen-tree: applying $PATCHES/series to a fresh copy in $BUILD/xen-patched"
extract "$BUILD/xen-patched.new"
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    out=$(patch -p1 -F0 -N --no-backup-if-mismatch -d "$BUILD/xen-patched.new" < "$PATCHES/$p") \
        || { echo "$out" >&2; echo "xen-tree: $p does not apply" >&2; exit 1; }
    if echo "$out" | grep -qiE 'offset|fuzz'; then
        echo "$out" >&2; echo "xen-tree: $p applies only with offset or fuzz; refresh it" >&2; exit 1
    fi
    echo "  applied $p"
done < "$PATCHES/series"
rm -rf "$BUILD/xen-patched"
mv "$BUILD/xen-patched.new" "$BUILD/xen-patched"
touch "$BUILD/xen-patched/.extracted"
