#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR MIT
# Install the Debian packages and the deb-src entry the pipeline needs.
# Idempotent: does nothing when everything is already there.
set -euo pipefail

PKGS="gcc make python3 bison flex cpio busybox-static qemu-system-x86 \
libclang-dev clang gcc-multilib dpkg-dev xz-utils e2fsprogs binutils \
crash makedumpfile libyajl-dev uuid-dev zlib1g-dev python3-dev pkg-config acpica-tools rsync"

SRC_LIST=/etc/apt/sources.list.d/xen-vp2m-src.sources
need_update=0

if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list \
   && ! grep -qs '^deb-src ' /etc/apt/sources.list; then
    echo "deps: adding the bookworm deb-src entry ($SRC_LIST)"
    cat > "$SRC_LIST" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    need_update=1
fi

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || missing="$missing $p"
done

if [ -n "$missing" ]; then
    need_update=1
fi
if [ "$need_update" = 1 ] || [ ! -e /var/lib/apt/lists/lock ]; then
    echo "deps: apt-get update"
    apt-get update -qq
fi
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "deps: all packages present"
